"""Container images and the offline Ansible collection that the Molecule scenarios use.

Two images, each rebuilt only when its inputs change (a hash of the inputs is stored as an
image label and compared before building):

``localhost/minectl-debian-systemd:bookworm``
    A minimal Debian 12 with systemd as PID 1 and Python for Ansible, made with
    ``debootstrap`` and ``podman import`` (no registry needed: only the Debian mirror).
``localhost/minectl-molecule:bookworm``
    The base plus the Debian packages the roles install (dnsmasq, OpenSSH, nftables,
    OpenVPN, MariaDB, InfluxDB, ...), so every scenario's converge skips the downloads.
    The packages' services are disabled again, so the roles still have to enable them.

The ``containers.podman`` collection (Molecule's podman driver needs it; Galaxy is not
reachable here) is extracted from the PyPI ``ansible`` wheel into ``.cache/collections``.

Run through invoke: ``./dev image``, ``./dev collections``. Every podman call uses
``molecule/containers.conf`` (runc; crun fails on this kernel's rlimits).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTAINERS_CONF = ROOT / "molecule" / "containers.conf"
CACHE = ROOT / ".cache"
COLLECTIONS = CACHE / "collections"

BASE_IMAGE = "localhost/minectl-debian-systemd:bookworm"
MOLECULE_IMAGE = "localhost/minectl-molecule:bookworm"
LABEL = "org.minectl.inputs"
SUITE = "bookworm"
MIRROR = os.environ.get("MINECTL_DEBIAN_MIRROR", "http://deb.debian.org/debian")

#: In the base: what systemd, Ansible (python3, python3-apt) and testinfra need.
BASE_PACKAGES = [
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "python3-apt",
    "ca-certificates",
    "iproute2",
    "procps",
    "sudo",
    "acl",
    "less",
]

#: Baked into the second layer: what the roles install (so converge needs no download).
#: Keep in step with the roles' package lists; a package missing here is simply
#: downloaded at converge time.
MOLECULE_PACKAGES = [
    "openssh-server",
    "nftables",
    "unattended-upgrades",
    "apt-listchanges",
    "chrony",
    "python3-debian",
    "dnsmasq",
    "openvpn",
    "python3-venv",
    "mariadb-server",
    "mariadb-client",
    "influxdb",
    "influxdb-client",
    "gpg",
    "python3-yaml",
    # test-only helpers: a DHCP client, dig and ping for the scenarios' other side
    "isc-dhcp-client",
    "dnsutils",
    "iputils-ping",
    "curl",
]

#: Units that cannot work in a container and only make ``is-system-running`` degraded.
MASKED_UNITS = [
    "systemd-udevd.service",
    "systemd-udev-trigger.service",
    "getty@tty1.service",
    "systemd-remount-fs.service",
    "systemd-firstboot.service",
]

ANSIBLE_WHEEL = "ansible==12.3.0"
COLLECTION_PREFIXES = ("ansible_collections/containers/podman/",)


def podman_env() -> dict[str, str]:
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
    return env


def podman(*args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], env=podman_env(), check=check, text=True, capture_output=capture)


def image_label(image: str) -> str | None:
    """The inputs hash stored on ``image``, or None if the image does not exist."""
    r = podman("image", "inspect", "--format", '{{ index .Labels "' + LABEL + '" }}', image, check=False, capture=True)
    if r.returncode != 0:
        return None
    return r.stdout.strip()


def image_id(image: str) -> str:
    return podman("image", "inspect", "--format", "{{.Id}}", image, capture=True).stdout.strip()


def inputs_hash(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def base_hash() -> str:
    return inputs_hash(SUITE, MIRROR, *BASE_PACKAGES, *MASKED_UNITS, _base_setup_script())


def _base_setup_script() -> str:
    """Shell run inside the fresh root file system (chroot) before it is imported."""
    masks = " ".join(MASKED_UNITS)
    return f"""set -e
cat > /etc/apt/sources.list <<EOF
deb {MIRROR} {SUITE} main
deb {MIRROR} {SUITE}-updates main
deb http://deb.debian.org/debian-security {SUITE}-security main
EOF
for u in {masks}; do ln -sf /dev/null /etc/systemd/system/$u; done
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
echo 'APT::Install-Recommends "false";' > /etc/apt/apt.conf.d/90minectl-norecommends
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log
"""


def build_base(force: bool = False) -> bool:
    """Build the debootstrap base image if its inputs changed. Returns True if built."""
    want = base_hash()
    if not force and image_label(BASE_IMAGE) == want:
        print(f"image: {BASE_IMAGE} is up to date ({want})")
        return False
    if os.geteuid() != 0:
        sys.exit("image: debootstrap needs root")
    print(f"image: building {BASE_IMAGE} with debootstrap ({SUITE} from {MIRROR}) ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="mctl-rootfs-", dir="/var/tmp") as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=" + ",".join(BASE_PACKAGES),
                SUITE,
                str(rootfs),
                MIRROR,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(["chroot", str(rootfs), "/bin/sh", "-c", _base_setup_script()], check=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", "-", "."], stdout=subprocess.PIPE)
        subprocess.run(
            [
                "podman",
                "import",
                "--change",
                "CMD=/sbin/init",
                "--change",
                "STOPSIGNAL=SIGRTMIN+3",
                "--change",
                f"LABEL={LABEL}={want}",
                "-",
                BASE_IMAGE,
            ],
            stdin=tar.stdout,
            env=podman_env(),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        assert tar.stdout is not None
        tar.stdout.close()
        if tar.wait() != 0:
            sys.exit("image: tar of the root file system failed")
    print(f"image: {BASE_IMAGE} built")
    return True


def _containerfile() -> str:
    pkgs = " ".join(MOLECULE_PACKAGES)
    return f"""FROM {BASE_IMAGE}
RUN printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \\
 && apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {pkgs} \\
 && rm -f /usr/sbin/policy-rc.d /etc/ssh/ssh_host_* \\
 && for u in ssh dnsmasq mariadb influxdb chrony unattended-upgrades nftables; do \\
      systemctl disable $u.service 2>/dev/null || true; done \\
 && rm -f /var/log/*.log
LABEL {LABEL}=__HASH__
CMD ["/sbin/init"]
"""


def build_molecule(force: bool = False) -> bool:
    """Build the package layer on top of the base if the base or the package list changed."""
    want = inputs_hash(image_id(BASE_IMAGE), _containerfile())
    if not force and image_label(MOLECULE_IMAGE) == want:
        print(f"image: {MOLECULE_IMAGE} is up to date ({want})")
        return False
    print(f"image: building {MOLECULE_IMAGE} (packages: {' '.join(MOLECULE_PACKAGES)}) ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="mctl-build-") as tmp:
        (Path(tmp) / "Containerfile").write_text(_containerfile().replace("__HASH__", want))
        podman("build", "--quiet", "--network", "host", "-t", MOLECULE_IMAGE, tmp)
    print(f"image: {MOLECULE_IMAGE} built")
    return True


def build(force: bool = False) -> None:
    if shutil.which("podman") is None or shutil.which("debootstrap") is None:
        sys.exit("image: podman and debootstrap are needed (scripts/apt-packages.txt; ./dev installs them)")
    build_base(force)
    build_molecule(force)


def collections(force: bool = False) -> Path:
    """Extract containers.podman from the PyPI ansible wheel into .cache/collections."""
    marker = COLLECTIONS / ".from"
    if not force and marker.exists() and marker.read_text() == ANSIBLE_WHEEL:
        print(f"collections: {COLLECTIONS} is up to date ({ANSIBLE_WHEEL})")
        return COLLECTIONS
    dl = CACHE / "wheels"
    dl.mkdir(parents=True, exist_ok=True)
    version = ANSIBLE_WHEEL.split("==")[1]
    wheel = dl / f"ansible-{version}-py3-none-any.whl"
    if not wheel.exists():
        print(f"collections: downloading {ANSIBLE_WHEEL} (only to extract containers.podman) ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(dl), ANSIBLE_WHEEL],
            check=True,
        )
    if COLLECTIONS.exists():
        shutil.rmtree(COLLECTIONS)
    COLLECTIONS.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n.startswith(COLLECTION_PREFIXES)]
        z.extractall(COLLECTIONS, names)
    marker.write_text(ANSIBLE_WHEEL)
    print(f"collections: containers.podman extracted into {COLLECTIONS}")
    return COLLECTIONS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["image", "collections", "all"], nargs="?", default="all")
    p.add_argument("--force", action="store_true", help="rebuild even if the inputs did not change")
    a = p.parse_args(argv)
    if a.what in ("collections", "all"):
        collections(a.force)
    if a.what in ("image", "all"):
        build(a.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
