"""`minectl poll` against a simulated fleet: events, state targets, back-off, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minectl_py.events.model import Poll, PollFail, parse
from minectl_py.events.reader import EventReader
from minectl_py.poller.run import Poller, Settings
from minectl_py.poller.targets import Target, TargetError, from_state_dir, parse_targets
from tests.conftest import ROOT, run_minectl
from tests.simfleet import start_fleet

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fleet():
    f = start_fleet(["s19", "s9", "btminer", "bosminer", "cgminer", "s19:refusing", "s19:dead"])
    yield f
    f.stop()


def events(site: Path) -> list:
    log = site / "events" / "events.log"
    return [parse(r) for r in EventReader([str(log)])] if log.exists() else []


def test_once_writes_one_event_per_miner(site, fleet):
    first, last = fleet.addresses[0], fleet.addresses[-1]
    p = run_minectl("poll", "--once", "--json", "--targets", f"{first}-{last}", "--connect-timeout", "0.5")
    assert p.returncode == 1, p.stderr  # two miners fail
    out = json.loads(p.stdout)
    assert (out["targets"], out["ok"], out["failed"]) == (7, 5, 2)
    evs = events(site)
    polls = {e.ip: e for e in evs if isinstance(e, Poll)}
    fails = {e.ip: e for e in evs if isinstance(e, PollFail)}
    assert set(polls) == set(fleet.addresses[:5])
    assert fails[fleet.addresses[5]].reason == "refused"
    assert fails[fleet.addresses[6]].reason == "connect_timeout"
    s19 = polls[first]
    assert s19.miner["model"] == "Antminer S19 Pro" and len(s19.digest) == 64 and s19.v == 1
    assert polls[fleet.addresses[2]].mac == fleet.show(fleet.addresses[2])["mac"]  # btminer reports its MAC
    assert b"cycle 1: 7 targets, 5 ok, 2 failed" in p.stderr


def test_table_and_exit_codes(site, fleet):
    p = run_minectl("poll", "--once", "--no-write", "--targets", fleet.addresses[1])
    assert p.returncode == 0, p.stderr
    assert b"Antminer S9" in p.stdout and b"1 ok, 0 failed of 1" in p.stdout
    assert not (site / "events" / "events.log").exists()
    assert run_minectl("poll", "--once", "--targets", "10.0.0.300").returncode == 2
    assert run_minectl("poll", "--once").returncode == 3  # empty state directory


def test_targets_parse():
    ips = [t.ip for t in parse_targets(["10.0.0.1-3,10.0.0.2", "10.0.1.0/30", "10.0.2.9"])]
    assert ips == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.1.1", "10.0.1.2", "10.0.2.9"]
    for bad in ("10.0.0.5-2", "x", "10.0.0.0/8"):
        with pytest.raises(TargetError):
            parse_targets([bad])


def test_targets_from_state_directory_and_state_updates(site, fleet):
    from minectl_py.events import record
    from minectl_py.state import project, read

    state = str(site / "miners")
    ips = [fleet.addresses[0], fleet.addresses[1], fleet.addresses[6], fleet.addresses[3]]
    macs = [f"02:00:00:00:00:0{i}" for i in range(4)]
    leases = [record.make("lease", "t", {"action": "add", "mac": m, "ip": ip}) for m, ip in zip(macs, ips, strict=True)]
    leases.append(record.make("lease", "t", {"action": "del", "mac": macs[3], "ip": ips[3]}))
    project.apply_many(state, leases)
    got = from_state_dir(state)
    assert [(t.ip, t.mac) for t in got] == list(zip(ips[:3], macs[:3], strict=True))  # not the released one
    p = run_minectl("poll", "--once", "--connect-timeout", "0.5")
    assert p.returncode == 1, p.stderr  # the dead one fails
    evs = events(site)
    assert sorted(e.mac for e in evs if isinstance(e, Poll)) == macs[:2]
    assert [e.mac for e in evs if isinstance(e, PollFail)] == [macs[2]]
    vals = {v["mac"]: v for v in read.load_all(state)}
    s19 = vals[macs[0]]
    assert s19["state"] == "online" and s19["model"] == "Antminer S19 Pro" and s19["hashrate"] > 50
    assert s19["pool"] == "stratum+tcp://pool1.example.com:3333" and len(s19["fans"]) == 4
    assert vals[macs[2]]["state"] == "failing" and vals[macs[2]]["last_error"].startswith("connect_timeout")
    assert vals[macs[3]]["state"] == "offline"
    hashrate_file = site / "miners" / "miners" / macs[1] / "hashrate"
    assert float(hashrate_file.read_text()) > 10  # the S9, one value per file


def test_dead_miners_back_off_and_come_back(fleet):
    dead = fleet.addresses[6]
    ok = fleet.addresses[0]
    p = Poller(Settings(connect_timeout=0.3, timeout=1.0), None, "test")

    async def cycles():
        out = []
        for _ in range(4):
            out.append(await p.run_cycle([Target(ok), Target(dead)]))
        return out

    sts = asyncio.run(cycles())
    # fails in cycle 1 (retry next), 2 (skip 1), skipped in 3, tried again in 4
    assert [(s.ok, s.failed, s.skipped) for s in sts] == [(1, 1, 0), (1, 1, 0), (1, 0, 1), (1, 1, 0)]
    fleet.clear(dead)
    try:
        st = asyncio.run(p.run_cycle([Target(dead)]))
        assert (st.ok, st.skipped) == (0, 1)  # still backing off after 3 timeouts
        p.cycle += 10
        assert asyncio.run(p.run_cycle([Target(dead)])).ok == 1
        assert dead not in p.slow_fails
    finally:
        fleet.fault(dead, "dead")


def test_sigterm_stops_cleanly_without_torn_records(site, fleet):
    slow = fleet.addresses[4]
    fleet.fault(slow, "slow", delay=30)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    targets = ",".join(fleet.addresses[:5])
    cmd = [sys.executable, "-m", "minectl_py", "poll", "--targets", targets, "--interval", "0.5", "--grace", "0.5"]
    cmd += ["--batch", "1", "--timeout", "60"]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        deadline = time.time() + 30
        while time.time() < deadline and len(events(site)) < 4:
            time.sleep(0.1)
        time.sleep(0.3)
        t0 = time.time()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=15)
        took = time.time() - t0
    finally:
        fleet.clear(slow)
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read().decode()
    assert rc == 0, err
    assert took < 10 and "stopping" in err and "abandoned" in err
    raw = (site / "events" / "events.log").read_bytes()
    assert raw.endswith(b"\n") and raw.count(b"\x1e") == raw.count(b"\n")
    assert all(isinstance(e, Poll) for e in events(site))  # the slow miner was abandoned, not failed
