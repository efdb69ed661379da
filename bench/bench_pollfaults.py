"""Issue #9: 5,000 simulated miners, 10 % of them faulty, polled with state writes: do the
healthy 90 % still get polled within the interval, and does the poller's memory hold?

One simulator process (``minectl sim run``, S19 Pro and S9 4:1, API only, from 127.73.0.1),
every 10th miner given one transport fault in turn: dead, hanging, slow (30 s: over the
10 s reply timeout), resetting, huge (an 8 MiB reply), garbage, truncated, invalid_json,
refusing, dying. The poller (``bench.bench_poll``'s child: default settings, concurrency 512,
event log + state directory) runs three cycles; then the same three cycles against the same
miners with every fault cleared: the baseline of the ratio. Figures: wall and CPU seconds per
cycle, healthy miners read, reasons, peak RSS. Run: ``./dev bench --only pollfaults``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from bench.bench_poll import _child, _start_sim, discard, stop_sims

BASE_IP = "127.73.0.1"  # this area's second loopback block (127.73.0.0/16)
INTERVAL_S = 60.0
FAULTS = [
    ("dead", {}),
    ("hanging", {}),
    ("slow", {"delay": 30}),
    ("resetting", {}),
    ("huge", {"size": 8 << 20}),
    ("garbage", {}),
    ("truncated", {}),
    ("invalid_json", {}),
    ("refusing", {}),
    ("dying", {}),
]


def _run(ips: list[str], macs: dict[str, str], work: str, name: str) -> dict:
    sub = os.path.join(work, name)
    os.makedirs(sub)
    Path(sub, "macs.json").write_text(json.dumps(macs))
    return _child("state", ips, sub)


def run(quick: bool) -> dict:
    n = 500 if quick else 5000
    work = tempfile.mkdtemp(prefix="minectl-bench-pollfaults-")
    sim = None
    res: dict = {"cpus": os.cpu_count(), "loadavg_1m_at_start": round(os.getloadavg()[0], 2), "miners": n}
    try:
        from minectl_py.sim import control

        sim, ips = _start_sim(n, BASE_IP, False, work, "a")
        sock = os.path.join(work, "sim-a.sock")
        macs = {m["ip"]: m["mac"] for m in control.request(sock, {"op": "list"})}
        faulty: dict[str, str] = {}
        for k, ip in enumerate(ips[::10]):
            fault, params = FAULTS[k % len(FAULTS)]
            control.request(sock, {"op": "fault", "ip": ip, "fault": fault, "params": params})
            faulty[ip] = fault
        res["faulty"] = len(faulty)
        res["faulty_by_kind"] = {f: sum(1 for v in faulty.values() if v == f) for f, _ in FAULTS}
        res["with_faults"] = _run(ips, macs, work, "faulty")
        control.request(sock, {"op": "clear", "ip": "*"})
        res["baseline_all_healthy"] = _run(ips, macs, work, "healthy")
    finally:
        stop_sims([sim] if sim is not None else [])
        discard(work)
    res["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    healthy = n - res["faulty"]
    f, b = res["with_faults"], res["baseline_all_healthy"]
    for phase in ("cold", "second", "warm"):
        res[f"{phase}_healthy_all_read"] = f[phase]["ok"] >= healthy
        res[f"{phase}_within_interval"] = f[phase]["wall_s"] <= INTERVAL_S
        res[f"{phase}_wall_ratio_vs_healthy"] = round(f[phase]["wall_s"] / b[phase]["wall_s"], 2)
    res["peak_rss_ratio_vs_healthy"] = round(f["peak_rss_mb"] / b["peak_rss_mb"], 2)
    return res
