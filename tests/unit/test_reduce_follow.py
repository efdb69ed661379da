"""One definition per reduction: batch replay and live follow give the same views; --since."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from minectl_py.events.generate import generate, write
from minectl_py.events.writer import EventWriter
from minectl_py.reduce.sink_sqlite import dump
from tests.conftest import ROOT, run_minectl


def test_batch_and_follow_give_the_same_views(tmp_path):
    live = tmp_path / "events" / "events.log"
    live.parent.mkdir()
    recs = list(generate(miners=40, duration_s=45 * 60, seed=3, fault_rate=0.02))
    half = len(recs) // 2
    w = EventWriter(str(live))
    w.append_many(recs[: half // 2])
    assert w.rotate_now()  # a rotated segment before the follower starts
    w.append_many(recs[half // 2 : half])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    fol = subprocess.Popen(
        [sys.executable, "-m", "minectl_py", "reduce", "all", "--follow", str(live.parent), "--idle-exit", "5",
         "--db", str(tmp_path / "follow.sqlite")],
        env=env, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        rest = recs[half:]
        step = max(len(rest) // 8, 1)
        for i in range(0, len(rest), step):
            w.append_many(rest[i : i + step])
            if i == 3 * step:
                w.rotate_now()  # rotation while the follower runs
            time.sleep(0.2)
        _, err = fol.communicate(timeout=240)
    finally:
        fol.kill()
    assert fol.returncode == 0, err
    r = run_minectl("reduce", "all", str(live.parent), "--db", str(tmp_path / "batch.sqlite"))
    assert r.returncode == 0, r.stderr
    batch, follow = dump(str(tmp_path / "batch.sqlite")), dump(str(tmp_path / "follow.sqlite"))
    assert batch["hashrate_site"] and batch["timeline"] and batch["leases_site"]
    assert follow == batch


def test_since_until_window_matches_a_filtered_full_read(tmp_path):
    p = tmp_path / "data.log.gz"
    write(str(p), generate(miners=50, duration_s=3 * 3600, seed=4), fmt="fluentd", gzip=True)
    since, until = "2018-07-04T08:00Z", "2018-07-04T09:00Z"
    win = run_minectl("reduce", "hashrate", str(p), "--since", since, "--until", until, "--csv")
    assert win.returncode == 0, win.stderr
    full = run_minectl("reduce", "hashrate", str(p), "--csv")
    rows = win.stdout.decode().splitlines()
    assert len(rows) == 61  # header + 60 minutes
    t0 = 1_530_691_200  # 08:00Z
    want = [ln for ln in full.stdout.decode().splitlines()[1:] if t0 <= int(ln.split(",")[0]) < t0 + 3600]
    assert rows[1:] == want
