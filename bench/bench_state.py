"""The state directory: a poll cycle projected, and a whole-site read, at 5,000 miners.

* read: ``minectl_py.state.read.load_all`` over 5,000 miners (what ``minectl status`` does)
  against the floor of reading the same ``miner.json`` files' bytes without parsing them;
* poll cycle: 5,000 realistic ``poll`` records (docs/miners.md; new hashrate, temperatures,
  fans, uptime each cycle) projected with ``apply_many`` (only changed files rewritten,
  ``renameat2`` exchange), against the floor of one atomic replace (temp + rename) of one
  small file per miner; and the same cycle again (nothing changed: nothing written).
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from pathlib import Path

from bench.bench_poll import discard
from minectl_py.state import project, read
from tests.statefakes import lease, mac_of, poll


def _ip(i: int) -> str:
    return f"10.77.{1 + i // 250}.{1 + i % 250}"


def run(quick: bool = False) -> dict[str, object]:
    n = 500 if quick else 5000
    work = Path(tempfile.mkdtemp(prefix="minectl-bench-state-", dir="/var/tmp"))
    try:
        st = str(work / "state")
        t0 = 1_790_000_000_000
        rng = random.Random(1)
        project.forget_cache()
        project.apply_many(st, [lease("add", mac_of(i), _ip(i), t0, f"m{i}") for i in range(n)])
        first = [poll(rng, _ip(i), t0 + 60_000, kind=i) for i in range(n)]
        t = time.perf_counter()
        project.apply_many(st, first)  # first poll after the lease: every poll value is new
        first_s = time.perf_counter() - t
        # second poll: long-running writers swap folders, so each folder gets its poll values once
        t = time.perf_counter()
        project.apply_many(st, [poll(rng, _ip(i), t0 + 120_000, kind=i) for i in range(n)])
        second_s = time.perf_counter() - t
        cycle = [poll(rng, _ip(i), t0 + 180_000, kind=i) for i in range(n)]
        t = time.perf_counter()
        project.apply_many(st, cycle)
        poll_s = time.perf_counter() - t
        t = time.perf_counter()
        project.apply_many(st, cycle)
        same_s = time.perf_counter() - t
        # floor: one atomic file replace per miner
        d = work / "floor"
        d.mkdir()
        for i in range(n):
            (d / f"f{i}").write_text("0\n")
        t = time.perf_counter()
        for i in range(n):
            tmp = d / f".f{i}.tmp"
            tmp.write_text(f"{i}\n")
            os.rename(tmp, d / f"f{i}")
        floor_write_s = time.perf_counter() - t
        # read
        t = time.perf_counter()
        miners = read.load_all(st)
        load_s = time.perf_counter() - t
        assert len(miners) == n
        t = time.perf_counter()
        root = os.path.join(st, "miners")
        for e in os.scandir(root):
            with open(os.path.join(e.path, "miner.json"), "rb") as f:
                f.read()
        floor_read_s = time.perf_counter() - t
        return {
            "miners": n,
            "load_all_s": round(load_s, 3),
            "load_all_vs_raw_read": round(load_s / floor_read_s, 2),
            "first_poll_s": round(first_s, 2),
            "second_poll_s": round(second_s, 2),
            "poll_cycle_s": round(poll_s, 2),
            "poll_cycle_ms_per_miner": round(1000 * poll_s / n, 3),
            "poll_cycle_vs_one_replace_per_miner": round(poll_s / floor_write_s, 2),
            "unchanged_cycle_s": round(same_s, 3),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }
    finally:
        project.forget_cache()
        discard(str(work))
