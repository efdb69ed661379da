"""Debian's dnsmasq, our generated config and lease hook, real DHCP clients in namespaces.

One LAN for the module (tests run in order): leases, DNS, reservations from the inventory,
release, restart with ``init``, 200 miners at once, and a lease that really expires.
"""

from __future__ import annotations

import signal
import time

import pytest

from minectl_py.events.reader import EventReader
from minectl_py.state import project, read
from tests.conftest import run_minectl
from tests.integration.dhcplan import Lan, miner_mac, sh, wait_for

pytestmark = pytest.mark.integration

EXPIRING = 9


@pytest.fixture(scope="module")
def lan(tmp_path_factory):
    if sh("id", "-u").stdout.strip() != "0":
        pytest.fail("needs root (network namespaces)")
    lan = Lan(tmp_path_factory.mktemp("dhcp"))
    try:
        lan.up()
        yield lan
    finally:
        lan.down()


def leases(lan: Lan, action: str | None = None) -> list[dict]:
    if not lan.events.exists():
        return []
    evs = list(EventReader([str(lan.events)], strict=True, types={"lease"}))
    return [e for e in evs if action is None or e["action"] == action]


def miner(lan: Lan, i: int) -> dict | None:
    return read.load_one(str(lan.state), miner_mac(i))


def test_lease_appears_in_state_and_as_event(lan):
    for i in (1, 2, 3, 4, EXPIRING):
        lan.add_miner(i)
    wait_for(lambda: all(miner(lan, i) for i in (1, 2, 3, 4, EXPIRING)), 60, "5 leases in the state directory")
    lan.stop_client(EXPIRING, signal.SIGKILL)  # gone without a release: its lease must expire
    lan.expiring_since = time.monotonic()  # type: ignore[attr-defined]
    adds = {e["mac"]: e for e in leases(lan, "add")}
    e = adds[miner_mac(1)]
    assert e["hostname"] == "miner1" and e["supplied_hostname"] == "miner1"
    assert e["vendor_class"] == "bmminer-S19" and e["interface"] == "eth0"
    assert e["expires"] > time.time() + 60
    v = miner(lan, 1)
    assert v["ip"] == e["ip"] and v["ip"].startswith("10.77.") and v["state"] == "new"
    assert v["hostname"] == "miner1" and v["vendor_class"] == "bmminer-S19"
    assert read.load_one(str(lan.state), "miner1")["mac"] == miner_mac(1)
    assert read.load_one(str(lan.state), v["ip"])["mac"] == miner_mac(1)
    # the miner really has the address dnsmasq gave
    r = sh("ip", "-n", f"dh-{lan.id}-1", "-4", "addr", "show", "dev", "eth0")
    assert f"inet {v['ip']}/16" in r.stdout


def test_dns_answers_names_and_reverse_lookups(lan):
    ip1 = miner(lan, 1)["ip"]
    assert lan.dig("miner1.mine.lan") == ip1
    assert lan.dig("-x", ip1) == "miner1.mine.lan."
    assert lan.dig("controller.mine.lan") == "10.77.0.1"
    assert lan.dig("nosuchminer.mine.lan") == ""


def test_inventory_reservation_gives_fixed_address_and_name(lan):
    csv = lan.work / "site.csv"
    csv.write_text(f"mac,name,rack,shelf,position,model,ip\n{miner_mac(5)},r1-s1-p5,R1,1,5,Antminer S19,10.77.0.50\n")
    env = {"MINECTL_STATE_DIR": str(lan.state), "MINECTL_EVENTS": str(lan.events)}
    r = run_minectl("inventory", "apply", str(csv), "--hostsdir", str(lan.hostsdir), env=env)
    assert r.returncode == 0, r.stderr
    project.forget_cache()
    lan.add_miner(5, hostname="antMiner")
    wait_for(lambda: (miner(lan, 5) or {}).get("state") == "new", 60, "the reserved miner's lease")
    v = miner(lan, 5)
    assert v["ip"] == "10.77.0.50" and v["name"] == "r1-s1-p5" and v["rack"] == "R1"
    assert lan.dig("r1-s1-p5.mine.lan") == "10.77.0.50"
    assert lan.dig("-x", "10.77.0.50") == "r1-s1-p5.mine.lan."


def test_release_gives_del(lan):
    ip2 = miner(lan, 2)["ip"]
    lan.stop_client(2, signal.SIGTERM)  # udhcpc -R: DHCPRELEASE on exit
    wait_for(
        lambda: any(e["mac"] == miner_mac(2) for e in leases(lan, "del")) and miner(lan, 2)["state"] == "offline",
        30,
        "del after the release",
    )
    v = miner(lan, 2)
    assert v["state"] == "offline" and v["lease"] == "del"
    assert read.load_one(str(lan.state), ip2) is None  # by-ip link gone
    assert lan.dig("miner2.mine.lan") == ""


def test_restart_with_init_keeps_every_lease(lan):
    before = {e["mac"] for e in leases(lan) if e["mac"] != miner_mac(2)}
    n_old = len(leases(lan, "old"))
    lan.stop_dnsmasq()
    lan.start_dnsmasq()
    # dnsmasq got the leases from `init`: it replays each as `old` and answers their names at once
    wait_for(lambda: {e["mac"] for e in leases(lan, "old")[n_old:]} >= before, 30, "old for every lease")
    assert lan.dig("miner1.mine.lan") == miner(lan, 1)["ip"]
    assert lan.dig("r1-s1-p5.mine.lan") == "10.77.0.50"
    assert miner(lan, 3)["state"] == "new" and miner(lan, 2)["state"] == "offline"
    log = lan.log.read_text(errors="replace")
    assert "lease-init script returned" not in log and "failed to execute" not in log


def test_scale_200_miners(lan):
    t0 = time.monotonic()
    ids = range(100, 300)
    for i in ids:
        lan.add_miner(i)
    wait_for(lambda: sum(1 for i in ids if (miner(lan, i) or {}).get("ip")) == len(ids), 240, "200 leases", step=1)
    took = time.monotonic() - t0
    vals = [miner(lan, i) for i in ids]
    assert len({v["ip"] for v in vals}) == 200
    assert all(v["hostname"] == f"miner{i}" for i, v in zip(ids, vals, strict=True))
    adds = {e["mac"] for e in leases(lan, "add")}
    assert {miner_mac(i) for i in ids} <= adds
    assert lan.dig("miner250.mine.lan") == miner(lan, 250)["ip"]
    print(f"200 miners up and leased in {took:.1f} s")


def test_expiry_gives_del(lan):
    # the killed client's 2-minute lease runs out; dnsmasq's own timer fires del
    left = 150 - (time.monotonic() - lan.expiring_since)
    wait_for(
        # the event is appended, then projected: wait for both
        lambda: (
            any(e["mac"] == miner_mac(EXPIRING) for e in leases(lan, "del"))
            and miner(lan, EXPIRING)["state"] == "offline"
        ),
        max(left, 5),
        "del at lease expiry",
        step=1,
    )
    v = miner(lan, EXPIRING)
    assert v["state"] == "offline"
    assert v["lease_expires"] <= time.time() + 1
    # the live clients renewed meanwhile (renewals reach the hook as old with leasefile-ro)
    assert miner(lan, 1)["state"] == "new" and miner(lan, 1)["lease"] == "old"
