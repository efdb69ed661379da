"""Lease hook latency and a mass power-on, against ``/usr/bin/python3 -I -S -c pass``.

dnsmasq runs the hook once per lease change, serially, and waits for it. The floor is the
cost of starting the interpreter at all, measured in the same run, interleaved with the hook
so both see the same machine load:

* latency: 2,000 sequential invocations of the launcher dnsmasq runs (``python3 -IS``, see
  ``minectl_py.hook_launcher``): 200 ``add`` of new miners, then ``old`` renewals with a new
  expiry each (what leasefile-ro sends), p50 and p99, and the ratio of p50s to the floor;
  also pip's ``minectl-lease-hook`` console script for comparison (why the launcher exists);
* mass power-on: 1,000 new leases through the hook one after another, as dnsmasq's helper
  would run them when a whole site powers on at once: seconds to drain (target <= 30 s).

Each invocation is a real process (posix_spawn + waitpid) writing a durable event
(fdatasync) and the state directory, in a private temporary directory.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from minectl_py import hook_launcher

ROOT = Path(__file__).resolve().parent.parent
PY = "/usr/bin/python3"


def _mac(i: int) -> str:
    return f"02:42:00:{i >> 16 & 0xFF:02x}:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}"


def _ip(i: int) -> str:
    return f"10.77.{1 + i // 250}.{1 + i % 250}"


def _run(argv: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env)
    _, status = os.waitpid(pid, 0)
    dt = time.perf_counter() - t
    if status != 0:
        raise RuntimeError(f"{argv[:3]} exited with status {status}")
    return dt


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000.0


def _env(i: int, now: int, action: str) -> dict[str, str]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DNSMASQ_LEASE_EXPIRES": str(now + 43200 + i)}
    if action == "add":
        env.update(
            DNSMASQ_INTERFACE="eth1",
            DNSMASQ_SUPPLIED_HOSTNAME=f"miner{i}",
            DNSMASQ_VENDOR_CLASS="bmminer-S19",
            DNSMASQ_TIME_REMAINING="43200",
            DNSMASQ_REQUESTED_OPTIONS="1,3,6,12,15,28,42",
        )
    return env


def run(quick: bool = False) -> dict[str, object]:
    n = 200 if quick else 2000
    n_power = 100 if quick else 1000
    work = Path(tempfile.mkdtemp(prefix="minectl-bench-hook-", dir="/var/tmp"))
    try:
        hook = work / "lease-hook"
        hook_launcher.write(
            str(hook),
            hook_launcher.render(
                root=str(ROOT), events=str(work / "ev" / "events.log"), state_dir=str(work / "st"), nodename="bench"
            ),
        )
        base_argv = [PY, "-I", "-S", "-c", "pass"]
        now = int(time.time())
        miners = 50 if quick else 200
        base, hook_all, hook_add, hook_old = [], [], [], []
        for k in range(n):
            i = k % miners
            action = "add" if k < miners else "old"
            env = _env(k, now, action)
            base.append(_run(base_argv, env))
            dt = _run([str(hook), action, _mac(i), _ip(i), f"miner{i}"], env)
            hook_all.append(dt)
            (hook_add if action == "add" else hook_old).append(dt)
        # pip's console script (site, venv, `import re`), for comparison
        console = str(ROOT / ".venv" / "bin" / "minectl-lease-hook")
        cons: list[float] = []
        cons_base: list[float] = []  # interleaved, like the hook's
        if os.path.exists(console):
            cenv = {"MINECTL_EVENTS": str(work / "ev2" / "events.log"), "MINECTL_STATE_DIR": str(work / "st2")}
            for k in range(min(200, n)):
                cons_base.append(_run(base_argv, _env(k, now, "old")))
                cons.append(_run([console, "old", _mac(k % 50), _ip(k % 50), "m"], {**_env(k, now, "old"), **cenv}))
        # mass power-on: new leases back to back, as dnsmasq's helper runs them; in slices
        # of 100, each followed by 100 bare interpreter starts (the same load for both)
        load_before = os.getloadavg()[0]
        drain = base_drain = 0.0
        for s0 in range(0, n_power, 100):
            t = time.perf_counter()
            for j in range(s0, min(n_power, s0 + 100)):
                i = 100_000 + j
                _run([str(hook), "add", _mac(i), _ip(j), f"p{j}"], _env(j, now, "add"))
            drain += time.perf_counter() - t
            t = time.perf_counter()
            for j in range(s0, min(n_power, s0 + 100)):
                _run(base_argv, _env(j, now, "add"))
            base_drain += time.perf_counter() - t
        events = (work / "ev" / "events.log").read_bytes().count(b"\n")
        assert events == n + n_power, (events, n + n_power)
        b50 = _pct(base, 0.5)
        res: dict[str, object] = {
            "invocations": n,
            "baseline": "/usr/bin/python3 -I -S -c pass",
            "baseline_p50_ms": round(b50, 2),
            "baseline_p99_ms": round(_pct(base, 0.99), 2),
            "hook_p50_ms": round(_pct(hook_all, 0.5), 2),
            "hook_p99_ms": round(_pct(hook_all, 0.99), 2),
            "hook_p50_ratio": round(_pct(hook_all, 0.5) / b50, 2),
            "hook_p99_ratio": round(_pct(hook_all, 0.99) / _pct(base, 0.99), 2),
            "hook_add_new_p50_ratio": round(_pct(hook_add, 0.5) / b50, 2),
            "hook_old_renewal_p50_ratio": round(_pct(hook_old, 0.5) / b50, 2),
            "floor_p50_within_2x": _pct(hook_all, 0.5) <= 2 * b50,
            "power_on_leases": n_power,
            "power_on_drain_s": round(drain, 1),
            "power_on_within_30s": drain <= 30.0 or quick,
            "power_on_leases_per_s": round(n_power / drain, 1),
            # the same number of bare interpreter starts, back to back, interleaved with the drain
            "power_on_baseline_drain_s": round(base_drain, 1),
            "power_on_vs_baseline": round(drain / base_drain, 2),
            "power_on_load_avg_1m_before": round(load_before, 2),
            "python": sys.version.split()[0],
        }
        if cons:
            res["console_script_p50_ratio"] = round(_pct(cons, 0.5) / _pct(cons_base, 0.5), 2)
        res["load_avg_1m"] = round(os.getloadavg()[0], 2)
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)
