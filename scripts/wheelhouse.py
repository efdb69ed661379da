"""``./dev wheel``: the minectl wheel and every dependency, in one archive for the minectl role.

``build/wheelhouse/`` gets the wheels (``pip wheel``), ``build/minectl-wheelhouse.tar`` the same
as one archive with fixed metadata (sorted, mtime 0, root-owned), which the role copies to a
site host and installs with ``pip --no-index``: the host needs no network for our code.
Rebuilt only when pyproject.toml or a file under minectl_py/ changes.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEELHOUSE = ROOT / "build" / "wheelhouse"
ARCHIVE = ROOT / "build" / "minectl-wheelhouse.tar"
EXTRAS = "metrics"


def inputs_hash() -> str:
    h = hashlib.sha256()
    files = [ROOT / "pyproject.toml", *sorted((ROOT / "minectl_py").rglob("*.py"))]
    for f in files:
        h.update(str(f.relative_to(ROOT)).encode())
        h.update(f.read_bytes())
    h.update(EXTRAS.encode())
    return h.hexdigest()[:16]


def _reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0
    info.mode = 0o644
    return info


def build(force: bool = False) -> Path:
    want = inputs_hash()
    stamp = WHEELHOUSE / ".inputs"
    if not force and ARCHIVE.exists() and stamp.exists() and stamp.read_text() == want:
        print(f"wheel: {ARCHIVE.relative_to(ROOT)} is up to date ({want})")
        return ARCHIVE
    if WHEELHOUSE.exists():
        shutil.rmtree(WHEELHOUSE)
    WHEELHOUSE.mkdir(parents=True)
    print(f"wheel: building minectl[{EXTRAS}] and its dependencies into {WHEELHOUSE.relative_to(ROOT)} ...", flush=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--disable-pip-version-check",
            "-w",
            str(WHEELHOUSE),
            f".[{EXTRAS}]",
        ],
        cwd=ROOT,
        check=True,
    )
    # pip leaves setuptools' build folder behind; it is not part of the wheelhouse
    shutil.rmtree(ROOT / "build" / "lib", ignore_errors=True)
    for d in (ROOT / "build").glob("bdist.*"):
        shutil.rmtree(d, ignore_errors=True)
    wheels = sorted(WHEELHOUSE.glob("*.whl"))
    if not any(w.name.startswith("minectl-") for w in wheels):
        sys.exit("wheel: pip built no minectl wheel")
    tmp = ARCHIVE.with_suffix(".tmp")
    with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for w in wheels:
            tar.add(w, arcname=w.name, filter=_reset)
    tmp.replace(ARCHIVE)
    stamp.write_text(want)
    size = ARCHIVE.stat().st_size / 1e6
    print(f"wheel: {len(wheels)} wheels, {ARCHIVE.relative_to(ROOT)} ({size:.1f} MB)")
    return ARCHIVE


if __name__ == "__main__":
    build(force="--force" in sys.argv)
