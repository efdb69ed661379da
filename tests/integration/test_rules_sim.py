"""The watchdog against simulated miners with injected faults: real API, real poller, real
state directory, real action engine. Hold times of minutes run on an injected clock; the
miners, the polls and the actions are real and happen in real time."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from minectl_py.events.reader import EventReader
from minectl_py.rules import ruleset
from minectl_py.rules.actuator import make_actuator
from minectl_py.rules.service import Service
from tests import rules_hook
from tests.conftest import run_minectl
from tests.integration.test_rules_service import Clock
from tests.rules_sim import SimSite, start_fleet

pytestmark = pytest.mark.integration

RULES = """\
version: 1
limits:
  actions_per_miner_per_hour: 3
  max_miners_acting: 5
  storm_percent: 20
  storm_min: 3
notify:
  webhook: {{url: "{url}", timeout: 3s}}
rules:
  - name: hot
    when: temp_max > 95
    for: 2m
    severity: critical
  - name: low-hashrate
    when: state == online and hashrate_pct < 80
    for: 10m
    retry: 5m
    actions: [restart, reboot]
"""


@pytest.fixture
def hook():
    with rules_hook.hook() as srv:
        yield srv


@pytest.fixture
def site(tmp_path):
    made: list = []

    def make(personalities, **kw):
        fleet = start_fleet(personalities, **kw)
        made.append(fleet)
        return SimSite(fleet, tmp_path)

    yield make
    for f in made:
        f.stop()


def service(s: SimSite, hook, clock: Clock, creds: str | None = None) -> Service:
    rs = ruleset.load_text(RULES.format(url=hook.url))
    act = make_actuator(creds or s.credentials("default: {}\n"))
    act.opts.timeout = 3.0
    return Service(
        rs, events_path=str(s.events), state_dir=str(s.state), nodename="test-controller", actuator=act, clock=clock
    )


def log(s: SimSite, cmd: str, **match) -> list[dict]:
    return [r for r in EventReader([str(s.events)]) if r["cmd"] == cmd and all(r.get(k) == v for k, v in match.items())]


def wait_for(cond, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_hot_miner_alerts_within_one_poll_after_hold_and_clears(site, hook):
    s = site(["cgminer"] * 6)
    hot_ip = s.ips[2]
    s.fleet.fault(hot_ip, "hot")
    clock = Clock(time.time())
    svc = service(s, hook, clock)
    s.poll()
    svc.cycle()  # the timer starts
    clock.advance(1)
    s.poll()
    assert svc.cycle().notified == []  # held 1 of 2 minutes
    clock.advance(1)
    s.poll()  # the first poll after the hold time
    rep = svc.cycle()
    raised = [e for e in rep.events if e["cmd"] == "alert"]
    assert [(e["rule"], e["state"], e["mac"]) for e in raised] == [("hot", "raised", s.mac(2))]
    assert raised[0]["values"]["temp_max"] > 95
    body = hook.received[-1][1]
    assert body["alerts"][0]["id"] == raised[0]["id"] and body["alerts"][0]["ip"] == hot_ip
    s.fleet.clear(hot_ip)
    clock.advance(0.5)
    s.poll()
    rep = svc.cycle()
    assert [(e["rule"], e["state"]) for e in rep.events if e["cmd"] == "alert"] == [("hot", "cleared")]
    assert hook.received[-1][1]["alerts"][0]["state"] == "cleared"
    svc.close()


def test_low_hashrate_restart_then_reboot_then_left_alone(site, hook):
    s = site(["bosminer"] * 6, ssh=True)
    ip = s.ips[4]
    s.fleet.fault(ip, "low_hashrate")
    creds = s.credentials('families:\n  bosminer:\n    ssh: {user: root, password: root}\nssh_host_keys: "off"\n')
    clock = Clock(time.time())
    svc = service(s, hook, clock, creds)
    s.poll()
    svc.cycle()
    clock.advance(10)
    s.poll()
    rep = svc.cycle()
    assert [(a["action"], a["result"], a["rule"], a["mac"]) for a in rep.actions] == [
        ("restart", "ok", "low-hashrate", s.mac(4))
    ]
    assert s.fleet.show(ip)["restarts"] == 1
    s.wait_up(4)
    clock.advance(5)  # the retry time: still low after the restart
    s.poll()
    rep = svc.cycle()
    assert [(a["action"], a["result"], a["transport"]) for a in rep.actions] == [("reboot", "ok", "ssh")]
    wait_for(lambda: s.fleet.show(ip)["reboots"] == 1)  # the miner reboots just after the SSH session
    s.poll()  # dark while it reboots: the episode ends, the ladder is remembered
    svc.cycle()
    s.wait_up(4)
    for minutes in (1, 10, 10, 10):  # back, still low: held again, then it gives up
        clock.advance(minutes)
        s.poll()
        rep = svc.cycle()
        assert rep.actions == []
    exhausted = log(s, "alert", kind="exhausted", state="raised")
    assert len(exhausted) == 1 and exhausted[0]["mac"] == s.mac(4) and "giving up" in exhausted[0]["detail"]
    acts = log(s, "action", rule="low-hashrate")
    assert [a["action"] for a in acts] == ["restart", "reboot"]
    assert s.fleet.show(ip)["restarts"] == 1 and s.fleet.show(ip)["reboots"] == 1
    assert any(a["kind"] == "exhausted" for _, b in hook.received for a in b["alerts"])
    svc.close()


def test_thirty_percent_failing_is_a_site_fault_not_thirty_percent_reboots(site, hook):
    s = site(["bosminer"] * 10)
    for i in (1, 4, 7):
        s.fleet.fault(s.ips[i], "low_hashrate")
    clock = Clock(time.time())
    svc = service(s, hook, clock)
    for minutes in (0, 10, 20, 40):
        clock.advance(minutes)
        s.poll()
        assert svc.cycle().actions == []
    assert log(s, "action") == []
    assert sum(s.fleet.show(ip)["restarts"] + s.fleet.show(ip)["reboots"] for ip in s.ips) == 0
    site_alerts = log(s, "alert", kind="site", state="raised")
    assert len(site_alerts) == 1 and "3 of 10 miners (30%)" in site_alerts[0]["detail"]
    notified = [a for _, b in hook.received for a in b["alerts"]]
    assert [a["kind"] for a in notified] == ["site"]  # one notification, not one per miner
    svc.close()


def test_silence_holds(site, hook):
    s = site(["bosminer"] * 6)
    ip = s.ips[3]
    s.fleet.fault(ip, "low_hashrate")
    p = run_minectl("silence", s.show[ip]["hostname"], "--for", "2h", "--reason", "test", env=s.env)
    assert p.returncode == 0, p.stderr.decode()
    clock = Clock(time.time())
    svc = service(s, hook, clock)
    for minutes in (0, 10, 15, 30):
        clock.advance(minutes)
        s.poll()
        assert svc.cycle().actions == []
    assert s.fleet.show(ip)["restarts"] == 0 and log(s, "action") == []
    assert hook.received == []
    assert [r["decision"] for r in log(s, "rule", mac=s.mac(3)) if r["decision"] != "pending"] == ["silenced"]
    rows = json.loads(run_minectl("alerts", "--json", env=s.env).stdout)
    assert [(r["rule"], r["silenced"], r["open"]) for r in rows] == [("low-hashrate", True, True)]
    # the silence is cleared: the next cycle acts
    p = run_minectl("silence", "--clear", s.show[ip]["hostname"], env=s.env)
    assert p.returncode == 0, p.stderr.decode()
    clock.advance(1)
    s.poll()
    rep = svc.cycle()
    assert [(a["action"], a["result"]) for a in rep.actions] == [("restart", "ok")]
    svc.close()


def test_rules_run_once_cli(site, hook, tmp_path: Path):
    s = site(["cgminer"] * 3)
    s.fleet.fault(s.ips[0], "hot")
    s.poll()
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES.format(url=hook.url).replace("for: 2m", "for: 0s"))
    p = run_minectl("rules", "run", "--once", "--dry-run", "--rules", str(rules), env=s.env)
    assert p.returncode == 0, p.stderr.decode()
    assert b"alert raised  hot" in p.stdout
    assert log(s, "alert") == [] and hook.received == []  # dry run: nothing written or sent
    p = run_minectl("rules", "run", "--once", "--json", "--rules", str(rules), env=s.env)
    assert p.returncode == 0, p.stderr.decode()
    doc = json.loads(p.stdout)
    assert [e["rule"] for e in doc["events"] if e["cmd"] == "alert"] == ["hot"]
    assert len(log(s, "alert", state="raised")) == 1 and len(hook.received) == 1
    p = run_minectl("alerts", env=s.env)
    assert b"hot" in p.stdout and b"1 open, 0 cleared" in p.stdout
