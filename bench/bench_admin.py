"""minectl for admins: seeing 5,000 miners, and rebooting 1,000 simulated ones.

* ``minectl status`` and ``minectl summary`` over a 5,000-miner state directory, timed as whole
  processes (start-up included), against two baselines measured in the same run: the
  interpreter doing nothing (``python -c pass``) and ``ls -R`` of the state directory.
  Target: 1 s or less each.
* ``minectl reboot`` of 1,000 simulated Antminers (HTTP digest ``reboot.cgi``) at concurrency
  100: target 30 s or less with every result in the table and in the audit log.

Run: ``./dev bench --only admin`` (``--quick``: 500 miners and 100 reboots).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _time(cmd: list[str], env: dict[str, str], runs: int) -> dict[str, float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return {"median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4)}


def seeing(n: int, runs: int) -> dict[str, Any]:
    from tests import admin_site

    tmp = Path(tempfile.mkdtemp(prefix="bench-admin-"))
    try:
        state = tmp / "state"
        t0 = time.perf_counter()
        admin_site.apply(str(state), admin_site.generate(n))
        build_s = time.perf_counter() - t0
        env = dict(os.environ, MINECTL_STATE_DIR=str(state), PYTHONPATH=str(ROOT), NO_COLOR="1")
        mc = [sys.executable, "-m", "minectl_py"]
        out: dict[str, Any] = {"miners": n, "build_state_s": round(build_s, 2)}
        out["baseline_python_pass"] = _time([sys.executable, "-c", "pass"], env, runs)
        out["baseline_ls_R"] = _time(["ls", "-R", str(state)], env, runs)
        for name, args in (
            ("status", ["status"]),
            ("status_json", ["status", "--json"]),
            ("status_where", ["status", "--where", "hashrate_pct<80 or temp>=85", "--sort", "-temp"]),
            ("summary", ["summary"]),
            ("map", ["map"]),
        ):
            t = _time(mc + args, env, runs)
            t["vs_python_pass"] = round(t["median_s"] / out["baseline_python_pass"]["median_s"], 1)
            t["vs_ls_R"] = round(t["median_s"] / out["baseline_ls_R"]["median_s"], 2)
            out[name] = t
        out["status_under_1s"] = out["status"]["median_s"] <= 1.0
        out["summary_under_1s"] = out["summary"]["median_s"] <= 1.0
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def reboot(n: int, concurrency: int) -> dict[str, Any]:
    from tests import admin_sim

    fleet = admin_sim.start(["s19"] * n, http=True, ssh=False, third=100, reboot_seconds=5.0)
    tmp = Path(tempfile.mkdtemp(prefix="bench-admin-reboot-"))
    try:
        admin_sim.state_for(fleet, tmp / "state")
        (tmp / "events").mkdir()
        cred = tmp / "credentials.yml"
        cred.write_text("families:\n  antminer:\n    http: {user: root, password: root}\n")
        os.chmod(cred, 0o600)
        env = dict(
            os.environ,
            MINECTL_STATE_DIR=str(tmp / "state"),
            MINECTL_EVENTS=str(tmp / "events" / "events.log"),
            MINECTL_CONFIG_DIR=str(tmp),
            PYTHONPATH=str(ROOT),
        )
        cmd = [sys.executable, "-m", "minectl_py", "reboot", "all", "--yes", "--json", "-j", str(concurrency)]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, env=env, capture_output=True, check=False)
        took = time.perf_counter() - t0
        doc = json.loads(r.stdout)
        results = doc["results"]
        ok = sum(1 for x in results if x["result"] == "ok")
        events = [x for x in (tmp / "events" / "events.log").read_text().split("\n") if x]
        rebooted = sum(1 for ip in fleet.addresses if fleet.show(ip)["reboots"] == 1)
        return {
            "miners": n,
            "concurrency": concurrency,
            "seconds": round(took, 2),
            "per_miner_ms": round(1000 * took / n, 1),
            "vs_30s_budget": round(took / 30.0, 3),
            "exit_code": r.returncode,
            "results": len(results),
            "ok": ok,
            "audit_events": len(events),
            "simulator_saw_reboots": rebooted,
            "under_30s_all_recorded": took <= 30 and len(results) == n and len(events) == n,
        }
    finally:
        fleet.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run(quick: bool = False) -> dict[str, Any]:
    """Both parts, each with the 1/5/15-minute load average before and after it (the figures
    depend on what else the machine runs; docs/benchmarks.md records them)."""
    load0 = _load()
    see = seeing(500 if quick else 5000, 3 if quick else 5)
    see["load_before_after"] = [load0, _load()]
    load1 = _load()
    boot = reboot(100 if quick else 1000, 100)
    boot["load_before_after"] = [load1, _load()]
    return {"cores": os.cpu_count(), "seeing": see, "reboot": boot}


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
