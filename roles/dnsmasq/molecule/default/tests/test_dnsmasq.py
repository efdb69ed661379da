"""The dnsmasq role's real effect: a miner container gets its lease and its reserved name; the hook runs."""

from __future__ import annotations

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


def test_the_lease_hook_ran_as_the_minectl_user(host, lease):
    for _ in range(20):
        events = host.file("/var/lib/minectl/events/events.log")
        recorded = host.file("/var/lib/minectl/recording-hook.log")
        if (events.exists and MINER_MAC in events.content_string) or (
            recorded.exists and MINER_MAC in recorded.content_string
        ):
            break
        time.sleep(0.5)
    if events.exists and MINER_MAC in events.content_string:  # the real hook
        assert events.user == "minectl"
        assert lease in events.content_string
    else:  # the recording stand-in (see converge.yml)
        line = [x for x in recorded.content_string.splitlines() if f"add {MINER_MAC}" in x][0]
        assert line == f"minectl add {MINER_MAC} {lease} r01-s1-p1 events=/var/lib/minectl/events/events.log"


def test_the_lan_address_unit(host):
    assert host.service("minectl-lan-address").is_enabled
    assert "10.77.0.1/24" in host.check_output("ip -4 -o addr show dev eth0")
