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
