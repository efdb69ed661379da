"""The dnsmasq role's real effect: a miner container gets its lease and its reserved name; the hook runs."""

from __future__ import annotations

import json
import re
import time

import pytest
import testinfra

testinfra_hosts = ["podman://mctl-dnsmasq"]
MINER_MAC = "02:00:0a:14:00:01"  # r01-s1-p1 in inventory/example/files/site.csv


@pytest.fixture(scope="module")
def lease() -> str:
    """The miner asks for a lease (dhclient; the address is not configured: -sf /bin/true)."""
    miner = testinfra.get_host("podman://mctl-dnsmasq-miner")
    miner.run("rm -f /tmp/l /tmp/p")
    out = miner.run("timeout 60 dhclient -1 -v -sf /bin/true -lf /tmp/l -pf /tmp/p eth0")
    assert out.rc == 0, out.stderr
    text = miner.file("/tmp/l").content_string
    m = re.search(r"fixed-address (10\.77\.0\.\d+);", text)
    assert m, text
    assert 'option domain-name "mine.lan";' in text
    assert "option domain-name-servers 10.77.0.1;" in text
    miner.run("kill $(cat /tmp/p) 2>/dev/null")
    # what dhclient-script would do (it is /bin/true here: podman owns the container's resolv.conf)
    miner.run(f"ip address replace {m.group(1)}/24 dev eth0")
    return m.group(1)


def test_dnsmasq_runs_with_the_site_settings(host):
    assert host.service("dnsmasq").is_running and host.service("dnsmasq").is_enabled
    conf = host.file("/etc/dnsmasq.d/minectl.conf").content_string
    for line in ("interface=eth0", "no-hosts", "dhcp-lease-max=200", "no-ping", "leasefile-ro", "dhcp-scriptuser=minectl",
                 "dhcp-authoritative", "dhcp-hostsfile=/etc/dnsmasq-minectl/reservations"):
        assert line in conf.splitlines(), line
    assert host.run("/usr/share/dnsmasq/systemd-helper checkconfig").rc == 0
    dhcp = host.check_output("ss -Hlun 'sport = :67'")
    assert "0.0.0.0%eth0:67" in dhcp, dhcp  # DHCP bound to the mine LAN interface only
    assert host.socket("udp://10.77.0.1:53").is_listening
    assert host.socket("udp://127.0.0.1:53").is_listening


def test_reservations_come_from_the_site_csv(host):
    res = host.file("/etc/dnsmasq-minectl/reservations").content_string.splitlines()
    assert f"{MINER_MAC},r01-s1-p1" in res
    assert "02:00:0a:14:00:06,10.20.0.50,r02-s1-p1" in res  # the pinned IP column
    assert len([r for r in res if not r.startswith("#")]) == 6


def test_the_miner_gets_a_lease_and_its_reserved_name(host, lease):
    assert 100 <= int(lease.rsplit(".", 1)[1]) <= 199
    miner = testinfra.get_host("podman://mctl-dnsmasq-miner")
    assert miner.check_output("dig +short @10.77.0.1 r01-s1-p1.mine.lan") == lease
    assert miner.check_output("dig +short @10.77.0.1 controller.mine.lan") == "10.77.0.1"


def test_dnsmasq_runs_the_fast_launcher(host):
    conf = host.file("/etc/dnsmasq.d/minectl.conf").content_string.splitlines()
    assert "dhcp-script=/usr/local/lib/minectl/lease-hook" in conf
    launcher = host.file("/usr/local/lib/minectl/lease-hook")
    assert launcher.user == "root" and launcher.mode == 0o755
    text = launcher.content_string
    assert text.startswith("#!/usr/bin/python3 -IS\n")
    assert "sys.path.insert(0, '/opt/minectl/venv/lib/python3.11/site-packages')" in text
    assert "os.environ.setdefault('MINECTL_EVENTS', '/var/lib/minectl/events/events.log')" in text


def test_the_lease_lands_in_the_event_log_and_the_state(host, lease):
    events = host.file("/var/lib/minectl/events/events.log")
    ip = host.file(f"/var/lib/minectl/state/miners/{MINER_MAC}/ip")
    for _ in range(40):
        if events.exists and MINER_MAC in events.content_string and ip.exists:
            break
        time.sleep(0.5)
    assert events.user == "minectl" and events.group == "minectl" and events.mode == 0o640
    recs = [json.loads(r.strip("\x1e\n")) for r in events.content_string.split("\x1e") if r.strip()]
    adds = [r for r in recs if r["cmd"] == "lease" and r.get("mac") == MINER_MAC and r["action"] == "add"]
    assert adds and adds[-1]["ip"] == lease and adds[-1]["hostname"] == "r01-s1-p1"
    assert adds[-1]["nodename"] == "mctl-dnsmasq"  # MINECTL_NODENAME from the launcher (inventory_hostname)
    assert ip.content_string.strip() == lease
    assert host.file(f"/var/lib/minectl/state/miners/{MINER_MAC}").user == "minectl"
    for d in ("/var/lib/minectl/events", "/var/lib/minectl/state"):
        f = host.file(d)
        assert f.user == "minectl" and f.group == "minectl" and f.mode == 0o2750, d


def test_a_member_of_group_minectl_reads_what_the_hook_wrote(host, lease):
    host.run("id viewer || useradd -M -s /bin/sh -G minectl viewer")
    out = host.run(f"runuser -u viewer -- cat /var/lib/minectl/state/miners/{MINER_MAC}/ip")
    assert out.rc == 0 and out.stdout.strip() == lease, out.stderr
    assert host.run("runuser -u viewer -- grep -c lease /var/lib/minectl/events/events.log").rc == 0
    assert host.run("runuser -u nobody -- cat /var/lib/minectl/events/events.log").rc != 0


def test_a_restart_keeps_the_lease(host, lease):
    """leasefile-ro: dnsmasq asks the hook (init) for its leases; the launcher must answer."""
    assert host.run("systemctl restart dnsmasq").rc == 0
    dump = host.check_output("runuser -u minectl -- /usr/local/lib/minectl/lease-hook init")
    assert f"{MINER_MAC} {lease} r01-s1-p1" in dump
    assert host.service("dnsmasq").is_running


def test_the_lan_address_unit(host):
    assert host.service("minectl-lan-address").is_enabled
    assert "10.77.0.1/24" in host.check_output("ip -4 -o addr show dev eth0")


def _exposure(host, unit: str) -> float:
    out = host.check_output(f"systemd-analyze security --no-pager {unit} | tail -1")
    m = re.search(r"exposure level for \S+: (\d+\.\d+)", out)
    assert m, out
    return float(m.group(1))


def _stock_exposure(host, unit_file: str) -> float:
    """Debian's unit as shipped (a copy under another name: no drop-in applies)."""
    out = host.check_output(
        f"d=$(mktemp -d) && cp {unit_file} $d/stock-$(basename {unit_file})"
        f" && systemd-analyze security --offline=yes --no-pager $d/stock-$(basename {unit_file}) | tail -1; rm -rf $d"
    )
    return float(re.search(r"exposure level for \S+: (\d+\.\d+)", out).group(1))


def test_dnsmasq_runs_sandboxed_and_still_serves(host, lease):
    """The drop-in is in force on the running dnsmasq, which still handed out the lease and ran
    the hook (the tests above use the same dnsmasq); exposure measured here, in the container."""
    dropin = host.file("/etc/systemd/system/dnsmasq.service.d/minectl-sandbox.conf")
    assert dropin.exists and dropin.user == "root" and dropin.content_string.startswith("#")
    show = host.check_output("systemctl show -p ProtectSystem -p NoNewPrivileges -p DropInPaths dnsmasq")
    assert "ProtectSystem=strict" in show and "NoNewPrivileges=yes" in show and "minectl-sandbox.conf" in show, show
    pid = host.check_output("systemctl show -p MainPID --value dnsmasq")
    status = host.file(f"/proc/{pid}/status").content_string
    # bounding set: CHOWN 0, DAC_OVERRIDE 1, KILL 5, SETGID 6, SETUID 7, NET_BIND_SERVICE 10,
    # NET_ADMIN 12, NET_RAW 13 = 0x34e3
    assert re.search(r"^CapBnd:\s+00000000000034e3$", status, re.M), status
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M), status
    assert re.search(r"^Seccomp:\s+2$", status, re.M), status  # the system call filter
    # the container has CAP_SYS_ADMIN (molecule.yml) so that systemd can build the mount
    # namespace: without it systemd skips ProtectSystem & co. silently, and this would fail
    mounts = {ln.split()[4]: ln.split()[5] for ln in host.file(f"/proc/{pid}/mountinfo").content_string.splitlines()}
    assert mounts["/"].split(",")[0] == "ro", mounts  # everything read-only ...
    # ... but what the hook and dnsmasq write (systemd mounts /var/lib/minectl once: the
    # event log's folder is inside it)
    for rw in ("/var/lib/minectl", "/run/dnsmasq"):
        assert mounts[rw].split(",")[0] == "rw", (rw, mounts)
    assert not any(m.startswith("/var/lib/minectl/") and o.startswith("ro") for m, o in mounts.items()), mounts
    # the hook, run by dnsmasq inside the sandbox, wrote the lease (test above) and the journal was cut
    assert host.file("/var/lib/minectl/state/.journal").size == 0
    before, after = _stock_exposure(host, "/lib/systemd/system/dnsmasq.service"), _exposure(host, "dnsmasq.service")
    print(f"\nexposure dnsmasq: stock {before}, sandboxed {after}")
    assert after < 5.0 and after < before - 3.0, (before, after)


def test_the_lan_address_unit_is_sandboxed(host):
    assert host.service("minectl-lan-address").is_enabled
    after = _exposure(host, "minectl-lan-address.service")
    print(f"\nexposure minectl-lan-address: {after}")
    assert after < 4.5, after
