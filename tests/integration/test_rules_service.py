"""The rules service's I/O edges for real: the event log, a webhook received by a real HTTP
server on loopback, syslog datagrams on a private unix socket, email through a sendmail
program, silences from the CLI picked up by a running service, restarts without re-firing.

Miners here are state-directory records written the way the poller writes them; the
simulator-driven tests are in test_rules_sim.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minectl_py.events import model
from minectl_py.events.reader import EventReader
from minectl_py.rules import ruleset
from minectl_py.rules.alerts_cli import load_alerts
from minectl_py.rules.notify import Notifier
from minectl_py.rules.service import Service
from tests import rules_hook
from tests.conftest import run_minectl

pytestmark = pytest.mark.integration

T0 = 1_800_000_000.0
ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, minutes: float) -> None:
        self.t += minutes * 60


@pytest.fixture
def webhook():
    with rules_hook.hook() as srv:
        yield srv


@pytest.fixture
def dead():
    with rules_hook.dead_url() as url:
        yield url


def write_miner(state: Path, mac: str, **vals) -> None:
    d = state / "miners" / mac
    d.mkdir(parents=True, exist_ok=True)
    rec = {"mac": mac, "ip": "10.9.0." + str(int(mac[-2:], 16)), "name": f"m{mac[-2:]}", "state": "online"}
    rec.update({"hashrate_pct": 100.0, "temp_max": 70.0, "fans": [5000, 5000]})
    rec.update(vals)
    (d / "miner.json").write_text(json.dumps(rec))


def rules_text(url: str, sock: str = "/nonexistent/log", extra: str = "") -> str:
    return f"""\
version: 1
limits: {{storm_percent: 50, storm_min: 3}}
notify:
  webhook: {{url: "{url}", timeout: 2s, headers: {{X-Site-Token: abc}}}}
  syslog: {{facility: local3, socket: "{sock}"}}
{extra}
rules:
  - name: hot
    when: temp_max > 90
    for: 2m
    severity: critical
"""


def events(site: Path) -> list[dict]:
    return list(EventReader([str(site / "events" / "events.log")]))


def service(site: Path, text: str, clock: Clock, **kw) -> Service:
    rs = ruleset.load_text(text)
    return Service(
        rs,
        events_path=str(site / "events" / "events.log"),
        state_dir=str(site / "state"),
        nodename="test-controller",
        actuator=None,
        clock=clock,
        **kw,
    )


def test_hot_alert_webhook_body_and_clear(site: Path, webhook):
    url = webhook.url
    for i in range(4):
        write_miner(site / "state", f"02:00:00:00:00:0{i}")
    write_miner(site / "state", "02:00:00:00:00:03", temp_max=96.5)
    clock = Clock()
    svc = service(site, rules_text(url), clock)
    svc.cycle()
    clock.advance(1.9)
    assert svc.cycle().notified == []
    clock.advance(0.1)
    rep = svc.cycle()
    assert [n["result"] for n in rep.notified] == ["ok", "fail"]  # webhook ok; syslog socket missing
    assert "No such file" in rep.notified[1]["detail"] or "FileNotFound" in rep.notified[1]["detail"]
    headers, body = webhook.received[-1]
    assert headers["X-Site-Token"] == "abc" and headers["Content-Type"] == "application/json"
    assert body["site"] == "test-controller" and body["count"] == 1
    a = body["alerts"][0]
    assert (a["rule"], a["state"], a["mac"], a["severity"]) == ("hot", "raised", "02:00:00:00:00:03", "critical")
    assert a["values"] == {"temp_max": 96.5} and a["since_ms"] == int(T0 * 1000)
    # it cools: cleared, notified, and the pair is linked
    write_miner(site / "state", "02:00:00:00:00:03", temp_max=75)
    clock.advance(1)
    svc.cycle()
    _, body = webhook.received[-1]
    assert body["alerts"][0]["state"] == "cleared" and body["alerts"][0]["raised_id"] == a["id"]
    svc.close()
    log = events(site)
    for rec in log:
        model.parse(rec)
    kinds = [(r["cmd"], r.get("state") or r.get("decision") or r.get("result")) for r in log]
    assert kinds.count(("alert", "raised")) == 1 and kinds.count(("alert", "cleared")) == 1
    assert kinds.count(("notify", "fail")) == 2  # every syslog failure recorded, the loop went on
    rows = load_alerts(str(site / "events" / "events.log"), 0, int(clock() * 1000))
    assert len(rows) == 1 and not rows[0]["open"]


def test_webhook_down_is_recorded_not_fatal(site: Path, dead: str):
    write_miner(site / "state", "02:00:00:00:00:01", temp_max=99)
    clock = Clock()
    svc = service(site, rules_text(dead), clock)  # nothing listens there
    svc.cycle()
    clock.advance(3)
    rep = svc.cycle()
    hook = [n for n in rep.notified if n["channel"] == "webhook"]
    assert hook and hook[0]["result"] == "fail" and "cannot reach" in hook[0]["detail"]
    clock.advance(1)
    svc.cycle()  # still running
    svc.close()


def test_syslog_datagram(site: Path, tmp_path: Path):
    sock_path = str(tmp_path / "log.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(sock_path)
    rx.settimeout(5)
    try:
        rs = ruleset.load_text(rules_text("http://127.0.0.1:9/unused", sock_path))
        n = Notifier(rs.notify, "site1")
        alert = model.Alert.new(
            "site1", rule="hot", state="raised", severity="critical", name="r1-\x1b[2Jevil", detail="temp_max > 90"
        ).to_record()
        out = n.send([(alert, ("syslog",))])
        assert out[0]["result"] == "ok"
        msg = rx.recv(4096).decode()
    finally:
        rx.close()
    assert msg.startswith(f"<{19 * 8 + 2}>minectl-rules[")  # local3, crit
    assert "RAISED critical hot: r1-?[2Jevil" in msg and "\x1b" not in msg


def test_email_through_sendmail(site: Path, tmp_path: Path):
    out_file = tmp_path / "mail.txt"
    sendmail = tmp_path / "sendmail"
    sendmail.write_text(f"#!/bin/sh\ncat > {out_file}\n")
    sendmail.chmod(sendmail.stat().st_mode | stat.S_IXUSR)
    extra = f"  email: {{to: [ops@example.com], from: minectl@site, sendmail: {sendmail}}}"
    rs = ruleset.load_text(rules_text("http://127.0.0.1:9/unused", extra=extra))
    n = Notifier(rs.notify, "site1")
    alert = model.Alert.new("site1", rule="hot", state="raised", name="m1", detail="temp_max > 90").to_record()
    assert n.send([(alert, ("email",))])[0]["result"] == "ok"
    mail = out_file.read_text()
    assert "To: ops@example.com" in mail and "Subject: [minectl site1] 1 raised, 0 cleared" in mail
    assert "RAISED warning hot: m1" in mail
    os.unlink(sendmail)
    r = n.send([(alert, ("email",))])[0]
    assert r["result"] == "fail" and "no local MTA" in r["detail"]


def test_restart_does_not_refire_and_silence_from_cli(site: Path, webhook):
    url = webhook.url
    write_miner(site / "state", "02:00:00:00:00:01", temp_max=99)
    write_miner(site / "state", "02:00:00:00:00:02")
    clock = Clock(time.time())  # the CLI stamps its silence with real time
    svc = service(site, rules_text(url), clock)
    svc.cycle()
    clock.advance(2)
    svc.cycle()
    assert len(webhook.received) == 1
    svc.close()
    # a new process: replays the log, the alert is already open
    svc = service(site, rules_text(url), clock)
    clock.advance(1)
    rep = svc.cycle()
    assert rep.events == [] and len(webhook.received) == 1
    # an admin silences miner 2 while the service runs; it gets hot: alert recorded, not notified
    env = {"MINECTL_EVENTS": str(site / "events" / "events.log")}
    p = run_minectl("silence", "name:m02", "--for", "2h", "--reason", "fan swap", env=env)
    assert p.returncode == 0, p.stderr
    write_miner(site / "state", "02:00:00:00:00:02", temp_max=99)
    svc.cycle()
    clock.advance(3)
    rep = svc.cycle()
    raised = [e for e in rep.events if e["cmd"] == "alert"]
    assert raised and raised[0]["silenced"] is True and rep.notified == []
    assert len(webhook.received) == 1
    svc.close()
    env = {"MINECTL_EVENTS": str(site / "events" / "events.log")}
    rows = json.loads(run_minectl("alerts", "--json", env=env).stdout)
    assert sorted((r["name"], r["open"], r["silenced"]) for r in rows) == [("m01", True, False), ("m02", True, True)]
    lst = run_minectl("silence", "--list", env=env)
    assert b"name:m02" in lst.stdout and b"fan swap" in lst.stdout


def test_dry_run_writes_and_sends_nothing(site: Path, webhook):
    url = webhook.url
    write_miner(site / "state", "02:00:00:00:00:01", temp_max=99)
    clock = Clock()
    svc = service(site, rules_text(url), clock, dry_run=True)
    svc.cycle()
    clock.advance(2)
    rep = svc.cycle()
    assert any(e["cmd"] == "alert" for e in rep.events)
    svc.close()
    assert not (site / "events" / "events.log").exists() and webhook.received == []


def test_unchanged_records_still_age(site: Path):
    """A miner whose record stops changing (the poller lost it) is caught by an age rule:
    facts cached between cycles still get their clocks refreshed."""
    import time as _t

    now = float(int(_t.time()))
    write_miner(site / "state", "02:00:00:00:00:01", last_seen=int(now), last_poll=int(now))
    text = "rules:\n  - name: stale\n    when: age > 600\n    for: 0s\n"
    clock = Clock(now)
    svc = service(site, text, clock)
    assert svc.cycle().events == []
    clock.advance(9)
    assert svc.cycle().events == []
    clock.advance(2)
    rep = svc.cycle()
    assert [(e["rule"], e["state"]) for e in rep.events if e["cmd"] == "alert"] == [("stale", "raised")]
    assert rep.events[-1]["values"] == {"age": 660}
    svc.close()


def test_rules_check_cli(tmp_path: Path):
    ok = run_minectl("rules", "check", str(ROOT / "files" / "rules" / "example.yml"))
    assert ok.returncode == 0 and b": ok: " in ok.stdout
    bad = tmp_path / "bad.yml"
    bad.write_text("rules:\n  - name: hot\n    when: temp_max >> 90\n    colour: red\n")
    p = run_minectl("rules", "check", str(bad))
    assert p.returncode == 2
    err = p.stderr.decode()
    assert f"{bad}:3: rules[0].when: at column 11" in err and f"{bad}:4: rules[0].colour: unknown key" in err
    doc = json.loads(run_minectl("rules", "check", "--json", str(bad)).stdout)
    assert doc["ok"] is False and [x["line"] for x in doc["problems"]] == [3, 4]
    assert run_minectl("rules", "check", str(tmp_path / "none.yml")).returncode == 2


def test_service_process_runs_stops_on_sigterm_and_restarts_without_refiring(site: Path, tmp_path: Path):
    write_miner(site / "state", "02:00:00:00:00:01", temp_max=99)
    rules = tmp_path / "rules.yml"
    rules.write_text("rules:\n  - name: hot\n    when: temp_max > 90\n    for: 0s\n")
    env = {
        "MINECTL_EVENTS": str(site / "events" / "events.log"),
        "MINECTL_STATE_DIR": str(site / "state"),
        "MINECTL_RULES": str(rules),
        "MINECTL_CONFIG_DIR": str(tmp_path),
        "PYTHONPATH": str(ROOT),
    }
    for _ in range(2):
        proc = subprocess.Popen(
            [sys.executable, "-m", "minectl_py", "rules", "run", "--interval", "0.2s", "--json"],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            cycles = [json.loads(proc.stdout.readline()) for _ in range(3)]  # one JSON line per cycle
            assert all(c["miners"] == 1 for c in cycles)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, proc.stderr.read().decode()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    alerts = [r for r in events(site) if r["cmd"] == "alert"]
    assert [(a["rule"], a["state"]) for a in alerts] == [("hot", "raised")]  # once, across cycles and a restart


def test_silence_cli_schedule_list_clear(site: Path):
    env = {"MINECTL_EVENTS": str(site / "events" / "events.log")}
    p = run_minectl("silence", "rack:R1*", "--from", "+1h", "--for", "2h", "--reason", "upgrade", env=env)
    assert p.returncode == 0 and b" from " in p.stdout, p.stderr
    rows = json.loads(run_minectl("silence", "--list", "--json", env=env).stdout)
    assert len(rows) == 1 and rows[0]["selector"] == "rack:R1*"
    assert rows[0]["until_ms"] - rows[0]["from_ms"] == 2 * 3_600_000
    assert rows[0]["from_ms"] - int(rows[0]["set_ms"]) >= 3_599_000
    assert run_minectl("silence", "colour:red", "--for", "1h", env=env).returncode == 2
    assert run_minectl("silence", "all", env=env).returncode == 2  # no --for
    assert run_minectl("silence", "--clear", "rack:r2", env=env).returncode == 3
    assert run_minectl("silence", "--clear", rows[0]["id"][:10], env=env).returncode == 0
    assert b"no active silences" in run_minectl("silence", "--list", env=env).stdout


def test_an_empty_state_directory_does_not_clear_every_alert(site: Path):
    import shutil

    write_miner(site / "state", "02:00:00:00:00:01", temp_max=99)
    clock = Clock()
    svc = service(site, "rules:\n  - name: hot\n    when: temp_max > 90\n    for: 0s\n", clock)
    assert svc.cycle().events  # raised
    shutil.rmtree(site / "state" / "miners")
    clock.advance(1)
    assert svc.cycle().events == []  # skipped, nothing cleared
    write_miner(site / "state", "02:00:00:00:00:01", temp_max=99)
    clock.advance(1)
    assert svc.cycle().events == []  # still the same open alert
    svc.close()
