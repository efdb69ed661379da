"""The simulator's cgminer-family API, driven by our client over real loopback TCP."""

from __future__ import annotations

import asyncio
import socket

import pytest

from minectl_py.miner import api
from minectl_py.miner.poll import Options, poll_miner
from tests.simfleet import start_fleet, wait_for

pytestmark = pytest.mark.integration


def raw(ip: str, payload: bytes, port: int = 4028) -> bytes:
    with socket.create_connection((ip, port), timeout=5) as s:
        s.sendall(payload)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def fleet():
    f = start_fleet(["cgminer", "s9", "s19", "btminer", "bosminer", "cgminer", "s19", "cgminer"])
    yield f
    f.stop()


def test_every_personality_polls_to_the_normalized_model(fleet):
    ips = fleet.addresses[:5]

    async def all_of():
        return await asyncio.gather(*(poll_miner(ip) for ip in ips))

    results = run(all_of())
    assert [r.ok for r in results] == [True] * 5, [(r.reason, r.detail) for r in results]
    got = {r.data.model: r for r in results}
    assert set(got) == {"Generic SHA256 ASIC", "Antminer S9", "Antminer S19 Pro", "Whatsminer M30S", "Antminer S19"}
    plans = [r.plan for r in results]
    assert plans == ["cgminer", "antminer_joined", "antminer", "btminer", "bosminer"]
    for r in results:
        d = r.data
        assert d.nominal_ths is None or 0.5 * d.nominal_ths < d.hashrate_ths < 1.5 * d.nominal_ths
        assert len(d.boards) == 3 and d.uptime_s > 0 and d.pools[0].active and len(r.digest) == 64
    assert got["Antminer S9"].data.fans and len(got["Antminer S19 Pro"].data.fans) == 4
    # the plan is reused: one poll with the learned plan gives the same identity
    again = run(poll_miner(ips[2], plans[2]))
    assert again.ok and again.data.model == "Antminer S19 Pro"


def test_framing_nul_and_close_json_and_text(fleet):
    ip = fleet.addresses[0]
    out = raw(ip, b'{"command":"version"}')
    assert out.endswith(b"\0") and out.count(b"\0") == 1
    assert b'"Code":22' in out and b'"CGMiner":"4.11.1"' in out
    text = raw(ip, b"summary")
    assert text.startswith(b"STATUS=S,When=") and b"|SUMMARY,Elapsed=" in text and text.endswith(b"|\0")
    assert raw(ip, b"nonsense").startswith(b"STATUS=E,When=")
    inv = raw(ip, b'{"command":"nonsense"}')
    assert b'"Code":14' in inv and b"Description" not in inv  # no version info to probes
    assert b'"Code":23' in raw(ip, b'{"command":')


def test_s9_stats_carry_the_bmminer_bug_and_s19_refuses_joins(fleet):
    s9, s19 = fleet.addresses[1], fleet.addresses[2]
    assert b'"Type":"Antminer S9"}{"STATS":0' in raw(s9, b'{"command":"stats"}')
    rep = run(api.command(s19, "summary+pools"))
    assert rep.reason == "error" and rep.status["Code"] == 14
    assert b'"Pool Stale%%"' in raw(s19, b'{"command":"pools"}')


def test_privileged_commands_denied_on_stock_and_stateful_where_allowed(fleet):
    s19, cg = fleet.addresses[2], fleet.addresses[5]
    assert run(api.command(s19, "switchpool", "1")).reason == "denied"
    assert run(api.command(s19, "devdetails")).reason == "denied"  # stock S19 api-groups
    assert run(api.command(fleet.addresses[3], "restart")).reason == "denied"  # btminer without token
    rep = run(api.command(cg, "addpool", "stratum+tcp://new.example.com:3333,w.1,x"))
    assert rep.ok and rep.status["Code"] == 55
    pools = run(api.command(cg, "pools")).data["POOLS"]
    assert pools[-1]["URL"] == "stratum+tcp://new.example.com:3333"
    assert run(api.command(cg, "switchpool", str(len(pools) - 1))).status["Code"] == 27
    after = run(poll_miner(cg))
    assert after.data.active_pool.url == "stratum+tcp://new.example.com:3333"
    assert run(api.command(cg, "removepool", "0")).status["Code"] == 67  # active
    assert run(api.command(cg, "switchpool", "9")).status["Code"] == 26
    assert run(api.command(cg, "ascidentify", "0")).status["Code"] == 113
    assert fleet.show(cg)["led"] is True


def test_restart_resets_uptime_and_reboot_goes_dark_then_comes_back(fleet):
    ip = fleet.addresses[7]
    before = run(poll_miner(ip)).data.uptime_s
    assert before > 300
    assert run(api.command(ip, "restart")).data == {"STATUS": "RESTART", "id": 1}
    assert wait_for(lambda: fleet.show(ip)["restarts"] == 1)
    assert wait_for(lambda: run(poll_miner(ip)).ok)
    assert run(poll_miner(ip)).data.uptime_s < 5
    fleet.reboot(ip, 0.5)
    assert run(api.command(ip, "summary")).reason == "refused"
    assert fleet.show(ip)["dark"] is True
    assert wait_for(lambda: not fleet.show(ip)["dark"])
    r = run(poll_miner(ip))
    assert r.ok and r.data.uptime_s < 5 and fleet.show(ip)["reboots"] == 1


@pytest.mark.parametrize(
    ("fault", "params", "reason"),
    [
        ("refusing", {}, "refused"),
        ("dead", {}, "connect_timeout"),
        ("hanging", {}, "timeout"),
        ("slow", {"delay": 3}, "timeout"),
        ("truncated", {}, "truncated"),
        ("garbage", {}, "garbage"),
        ("invalid_json", {}, "invalid_json"),
    ],
)
def test_transport_faults_are_classified(fleet, fault, params, reason):
    ip = fleet.addresses[6]
    fleet.fault(ip, fault, **params)
    try:
        r = run(poll_miner(ip, "antminer", Options(connect_timeout=0.5, timeout=0.8)))
        assert not r.ok and r.reason == reason, r
    finally:
        fleet.clear(ip)
    assert run(poll_miner(ip, "antminer")).ok


def test_slow_miner_answers_within_a_longer_timeout(fleet):
    ip = fleet.addresses[6]
    fleet.fault(ip, "slow", delay=0.3)
    try:
        r = run(poll_miner(ip, "antminer", Options(timeout=3)))
        assert r.ok and r.elapsed_ms >= 300
    finally:
        fleet.clear(ip)


def test_state_faults_show_in_the_data(fleet):
    ip = fleet.addresses[6]
    for f in ("hot", "fan_failed", "board_failed", "low_hashrate"):
        fleet.fault(ip, f)
    try:
        d = run(poll_miner(ip, "antminer")).data
        assert d.temp_max >= 95 and d.fans[0] == 0
        assert [b.status for b in d.boards] == ["ok", "ok", "failed"] and d.boards[2].chips == 0
        assert d.hashrate_ths < 0.5 * d.nominal_ths
    finally:
        fleet.clear(ip)


def test_live_state_evolves_and_pool_dead_and_reboot_loop(fleet):
    ip = fleet.addresses[6]
    a = run(poll_miner(ip, "antminer")).data
    assert wait_for(lambda: run(poll_miner(ip, "antminer")).data.uptime_s > a.uptime_s)
    b = run(poll_miner(ip, "antminer")).data
    assert a.hashrate_ths != b.hashrate_ths  # noise around nominal
    fleet.fault(ip, "pool_dead")
    try:
        d = run(poll_miner(ip, "antminer")).data
        assert {p.status for p in d.pools} == {"dead"} and d.active_pool is None
    finally:
        fleet.clear(ip)
    fleet.fault(ip, "reboot_loop", period=0.2)
    try:
        assert wait_for(lambda: fleet.show(ip)["reboots"] >= 2, timeout=15)
    finally:
        fleet.clear(ip)
    assert wait_for(lambda: run(poll_miner(ip, "antminer")).ok)


def test_whatsminer_privileged_api_with_token(fleet):
    from minectl_py.miner import whatsminer as wm

    ip = fleet.addresses[3]
    assert run(wm.privileged(ip, "reboot", "wrong")).reason in ("error", "denied")
    assert fleet.show(ip)["reboots"] == 0
    rep = run(wm.privileged(ip, "update_pools", "admin", pool1="stratum+tcp://wm.example.com:3333", worker1="w.1"))
    assert rep.ok, rep
    assert run(poll_miner(ip)).data.active_pool.url == "stratum+tcp://wm.example.com:3333"
    assert run(wm.privileged(ip, "set_led", "admin", color="red", period=1000, duration=600000, start=0)).ok
    assert fleet.show(ip)["led"] is True
    assert run(wm.privileged(ip, "set_led", "admin", param="auto")).ok and fleet.show(ip)["led"] is False
    assert run(wm.privileged(ip, "reboot", "admin")).ok
    assert wait_for(lambda: fleet.show(ip)["reboots"] == 1)
    assert wait_for(lambda: run(poll_miner(ip)).ok)
