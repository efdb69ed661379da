"""Rule evaluation over 5,000 miners with 20 rules: one watchdog cycle, against loading the
state snapshots it evaluates (the baseline, measured in the same run).

A state directory of 5,000 ``miner.json`` files (docs/state.md) in a temp dir; 5 % of miners
sick in assorted ways so alerts, pending timers and action ladders are exercised. Measured:

* ``load_s``: reading every miner's record from the state directory (the baseline);
* ``cycle_s``: a full service cycle in dry-run (load + facts + the engine), steady state
  (after the first cycles raised what there is to raise), median of N; records that did not
  change since the last cycle reuse their facts (the usual case: cycles every 5 s, polls every 60 s);
* ``cycle_all_changed_s``: the same when every record changed (right after a poll pass);
* ``engine_s``: facts + engine alone (no file reading), median of N.

Floor (issue #10): a cycle in 1 s or less.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import tempfile
import time
from typing import Any

from minectl_py.rules import ruleset
from minectl_py.rules.engine import Engine
from minectl_py.rules.facts import facts
from minectl_py.rules.service import Service, read_state_dir
from minectl_py.rules.state import RuleState

RULES = """\
version: 1
site: {primary_pool: "stratum+tcp://pool.example.com:3333"}
limits: {max_miners_acting: 50, storm_percent: 20}
rules:
  - {name: hot, when: temp_max > 90, for: 2m, severity: critical}
  - {name: warm, when: temp_max > 85, for: 10m}
  - {name: low-hashrate, when: state == online and hashrate_pct < 80, for: 10m, actions: [restart, reboot]}
  - {name: very-low, when: state == online and hashrate_pct < 30, for: 5m, actions: [reboot]}
  - {name: offline, when: "state in (offline, failing)", for: 5m}
  - {name: fan-stopped, when: fans_zero > 0, for: 1m, severity: critical}
  - {name: fan-slow, when: fan_min < 1500 and fan_min > 0, for: 10m}
  - {name: failed-board, when: boards_failed > 0, for: 10m}
  - {name: dhcp-flapping, when: lease_changes_1h > 3, for: 0s}
  - {name: wrong-pool, when: state == online and pool != $primary_pool, for: 15m}
  - {name: no-pool, when: state == online and pool == null, for: 5m}
  - {name: hw-errors, when: hw_errors > 10000, for: 30m}
  - {name: no-nominal, when: state == online and nominal == null, for: 1h}
  - {name: young, when: uptime < 300 and state == online, for: 30m}
  - {name: s19-hot, scope: {model: "*S19*"}, when: temp_max > 80, for: 10m}
  - {name: s9-hot, scope: {model: "*S9*"}, when: temp_max > 82, for: 10m}
  - {name: r1-slow, scope: {rack: "R1*"}, when: hashrate_pct < 90, for: 20m}
  - {name: r2-warm, scope: {rack: ["R2*", "R3*"]}, when: temp_max > 80 or fan_max > 6000, for: 20m}
  - {name: named, scope: {name: "r4*-s1*"}, when: "hashrate_pct < 95 and temp_max >= 75", for: 5m}
  - {name: model-mismatch, when: "model !~ '*S19*' and model !~ '*S9*' and state == online", for: 1h}
"""


def _miner(i: int, rng: random.Random, now: float) -> dict[str, Any]:
    mac = f"02:bb:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}:01"
    model = "Antminer S19 Pro" if i % 3 else "Antminer S9"
    nominal = 110.0 if i % 3 else 13.5
    rec: dict[str, Any] = {
        "mac": mac,
        "ip": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
        "hostname": f"r{i // 100:02d}-s{(i // 10) % 10}-p{i % 10}",
        "name": f"r{i // 100:02d}-s{(i // 10) % 10}-p{i % 10}",
        "rack": f"R{i // 100:02d}",
        "shelf": str((i // 10) % 10),
        "position": str(i % 10),
        "make": "Bitmain",
        "model": model,
        "firmware": "bmminer 2.0.0",
        "state": "online",
        "hashrate": round(nominal * rng.uniform(0.95, 1.03), 2),
        "nominal": nominal,
        "temp_max": round(rng.uniform(60, 78), 1),
        "fans": [rng.randrange(3000, 5000) for _ in range(4)],
        "pool": "stratum+tcp://pool.example.com:3333",
        "pool_user": f"site.{i}",
        "uptime": rng.randrange(1000, 10**6),
        "hw_errors": rng.randrange(0, 500),
        "last_seen": int(now) - 30,
        "last_poll": int(now) - 30,
    }
    rec["hashrate_pct"] = round(100 * rec["hashrate"] / nominal, 1)
    k = rng.random()
    if k < 0.01:
        rec["temp_max"] = 95.0
    elif k < 0.02:
        rec["hashrate"], rec["hashrate_pct"] = nominal * 0.4, 40.0
    elif k < 0.03:
        rec["state"] = "offline"
    elif k < 0.04:
        rec["fans"][0] = 0
    elif k < 0.05:
        rec["pool"] = "stratum+tcp://other:3333"
    return rec


def _write(root: str, n: int, now: float) -> None:
    rng = random.Random(7)
    base = os.path.join(root, "miners")
    os.makedirs(base)
    for i in range(n):
        rec = _miner(i, rng, now)
        d = os.path.join(base, rec["mac"])
        os.mkdir(d)
        with open(os.path.join(d, "miner.json"), "w") as f:
            json.dump(rec, f)


def run(quick: bool = False) -> dict[str, Any]:
    n = 1000 if quick else 5000
    reps = 3 if quick else 7
    rs = ruleset.load_text(RULES)
    assert len(rs.rules) == 20
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-rules-") as tmp:
        state_dir = os.path.join(tmp, "state")
        _write(state_dir, n, now)
        read_state_dir(state_dir)  # warm the page cache for both measurements
        load = []
        for _ in range(reps):
            t0 = time.perf_counter()
            recs = read_state_dir(state_dir)
            load.append(time.perf_counter() - t0)
        assert len(recs) == n

        clock = [now]
        svc = Service(
            rs,
            events_path=os.path.join(tmp, "events", "events.log"),
            state_dir=state_dir,
            nodename="bench",
            actuator=None,
            clock=lambda: clock[0],
            dry_run=True,
        )
        first = time.perf_counter()
        rep0 = svc.cycle()  # the first cycle: every sick miner starts a timer
        first_s = time.perf_counter() - first
        clock[0] += 3600  # past every hold time: alerts raised, ladders started
        rep1 = svc.cycle()
        cycles = []
        for _ in range(reps):
            clock[0] += 5
            t0 = time.perf_counter()
            svc.cycle()
            cycles.append(time.perf_counter() - t0)
        changed = []
        for _ in range(reps):  # as right after a poll pass: every record changed, no facts reused
            clock[0] += 5
            svc._facts.clear()
            t0 = time.perf_counter()
            svc.cycle()
            changed.append(time.perf_counter() - t0)
        svc.close()

        # facts + engine alone on records already in memory
        st = RuleState()
        eng = Engine(rs, st, "bench", dry_run=True)
        t = now
        eng.cycle({r["mac"]: facts(r, t) for r in recs}, int(t * 1000))
        engine = []
        for _ in range(reps):
            t += 5
            t0 = time.perf_counter()
            eng.cycle({r["mac"]: facts(r, t) for r in recs}, int(t * 1000))
            engine.append(time.perf_counter() - t0)

    load_s = statistics.median(load)
    cycle_s = statistics.median(cycles)
    return {
        "miners": n,
        "rules": len(rs.rules),
        "load_s": round(load_s, 4),
        "cycle_s": round(cycle_s, 4),
        "cycle_min_s": round(min(cycles), 4),
        "cycle_all_changed_s": round(statistics.median(changed), 4),
        "cycle_all_changed_min_s": round(min(changed), 4),
        "all_changed_vs_load": round(statistics.median(changed) / load_s, 2),
        "load_min_s": round(min(load), 4),
        "engine_s": round(statistics.median(engine), 4),
        "first_cycle_s": round(first_s, 4),
        "cycle_vs_load": round(cycle_s / load_s, 2),
        "events_first_cycle": len(rep0.events),
        "events_at_hold": len(rep1.events),
        "actions_at_hold": len(rep1.requests),
        "floor_cycle_s": 1.0,
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "ok": max(cycle_s, statistics.median(changed)) <= 1.0,
    }


if __name__ == "__main__":
    print(json.dumps(run(quick=False), indent=2))
