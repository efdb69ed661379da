"""Follow mode and concurrent writers: processes append and rotate while a follower runs;
every record is intact afterwards and the follower saw exactly what a batch replay sees."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from minectl_py.events import record
from minectl_py.events.follow import Follower, follow
from minectl_py.events.reader import EventReader, ReadStats
from minectl_py.events.segments import log_set
from minectl_py.events.writer import EventWriter
from tests.conftest import ROOT, run_minectl

WRITER = """
import sys
from minectl_py.events.record import make
from minectl_py.events.writer import EventWriter
path, name, n, fsync, many = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5] == "1"
w = EventWriter(path, fsync=fsync)
i = 0
while i < n:
    if many:  # a few records in one write
        k = min(3, n - i)
        w.append_many([make("poll", "node", {"writer": name, "seq": i + j, "pad": "p" * (i % 300)}) for j in range(k)])
        i += k
    else:
        w.append(make("poll", "node", {"writer": name, "seq": i, "pad": "\u00e9\\n\\u001e" * (i % 50)}))
        i += 1
"""

ROTATOR = """
import os, sys, time
from minectl_py.events.writer import EventWriter
path, stop = sys.argv[1], sys.argv[2]
w = EventWriter(path, fsync=False)
while not os.path.exists(stop):
    w.rotate_now()
    time.sleep(0.05)
"""


def _spawn(script: str, *args: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", script, *args], env=env, stderr=subprocess.PIPE)


def test_concurrent_writers_rotation_and_a_follower(tmp_path):
    live = str(tmp_path / "events.log")
    stop_file = str(tmp_path / "stop")
    got: list[dict] = []
    writers_done = threading.Event()
    fstats = ReadStats()

    def run_follower() -> None:
        for rec in follow(live, from_start=True, stop=writers_done.is_set, poll_s=0.02, stats=fstats):
            got.append(rec)

    # The follower starts before the log exists; some records arrive before it runs.
    th = threading.Thread(target=run_follower)
    th.start()
    plan = [("a", 3000, "0", "0"), ("b", 3000, "0", "1"), ("c", 3000, "0", "0"), ("d", 300, "1", "0")]
    procs = [_spawn(WRITER, live, name, str(n), fsync, many) for name, n, fsync, many in plan]
    rot = _spawn(ROTATOR, live, stop_file)
    for p in procs:
        assert p.wait(timeout=240) == 0, p.stderr.read().decode() if p.stderr else ""
    Path(stop_file).touch()
    assert rot.wait(timeout=60) == 0
    writers_done.set()
    th.join(timeout=120)
    assert not th.is_alive()

    files = log_set(live)
    assert len(files) > 3, "the rotator should have rotated several times"
    stats = ReadStats()
    batch = list(EventReader(files, stats=stats))
    assert stats.bad == 0, stats.samples
    # Every record intact, once, and each writer's records in the order it wrote them.
    seqs: dict[str, list[int]] = defaultdict(list)
    for rec in batch:
        seqs[rec["writer"]].append(rec["seq"])
    for name, n, _, _ in plan:
        assert seqs[name] == list(range(n)), name
    for data in (Path(f).read_bytes() for f in files):
        assert all(line.startswith(b"\x1e{") for line in data.split(b"\n")[:-1])
        assert data.endswith(b"\n") or not data
    # The follower crossed every rotation without loss or duplicates.
    assert fstats.bad == 0, fstats.samples
    assert got == batch


def _appending(path: Path, steps: list[bytes]) -> Callable[[], bool]:
    """A follower's ``stop``: each call appends the next of ``steps`` to ``path`` and says
    go on; once every step is written, stop."""
    left = iter(steps)

    def stop() -> bool:
        step = next(left, None)
        if step is None:
            return True
        with open(path, "ab") as f:
            f.write(step)
        return False

    return stop


def test_partial_last_line_is_held_while_following(tmp_path):
    live = tmp_path / "events.log"
    rec = record.make("time", "n", {"ip": "10.0.0.1"})
    enc = record.encode(rec)
    live.write_bytes(b"")
    stats = ReadStats()
    fol = Follower(str(live), stats=stats, poll_s=0.01)
    it = iter(fol)
    out: list[dict] = []
    fol.stop = _appending(live, [enc[:20], enc[20:], b""])
    out = list(it)
    assert out == [rec] and stats.bad == 0


def test_rotated_away_unterminated_line_is_bad_like_batch(tmp_path):
    live = tmp_path / "events.log"
    good = record.make("time", "n", {})
    live.write_bytes(record.encode(good) + b'\x1e{"created_at_ms":"1')
    stats = ReadStats()
    state = {"n": 0}

    def stop() -> bool:
        state["n"] += 1
        if state["n"] == 1:
            os.rename(live, tmp_path / "events-20261127.log")
            return False
        return state["n"] > 3

    got = list(follow(str(live), from_start=True, stop=stop, poll_s=0.01, stats=stats))
    assert got == [good]
    assert stats.bad == 1 and stats.samples[0].reason == "truncated last line" and stats.samples[0].line == 2
    bstats = ReadStats()
    assert list(EventReader(log_set(str(live)), stats=bstats)) == got
    assert [(b.line, b.reason) for b in bstats.samples] == [(2, "truncated last line")]


def test_follow_from_now_skips_history_and_sees_new_records(tmp_path):
    live = str(tmp_path / "events.log")
    with EventWriter(live, fsync=False) as w:
        w.append(record.make("time", "n", {"old": True}))
        fresh = [record.make("time", "n", {"i": i}) for i in range(5)]
        pending = list(fresh)

        def stop() -> bool:
            if pending:
                w.append(pending.pop(0))
                if len(pending) == 2:
                    w.rotate_now()
                return False
            return True

        got = list(follow(live, stop=stop, poll_s=0.01))
    assert got == fresh


def test_tail_cli_from_start_equals_cat(site):
    live = site / "events" / "events.log"
    with EventWriter(str(live), fsync=False) as w:
        for i in range(30):
            fields = {"action": "add", "mac": f"aa:00:00:00:00:{i:02x}", "ip": f"10.0.0.{i}"}
            w.append(record.make("lease", "n", fields))
            if i % 10 == 9:
                w.rotate_now()
    cat = run_minectl("events", "cat", "--type", "lease")
    tail = run_minectl("events", "tail", "--from-start", "--idle-exit", "0.5", "--type", "lease")
    assert cat.returncode == tail.returncode == 0, tail.stderr
    assert tail.stdout == cat.stdout and tail.stdout.count(b"\x1e") == 30
    lines = run_minectl("events", "tail", "--from-start", "--idle-exit", "0.3", "--lines", "--miner", "10.0.0.7")
    assert [json.loads(x)["ip"] for x in lines.stdout.splitlines()] == ["10.0.0.7"]


def test_tail_cli_follows_appends(site):
    live = site / "events" / "events.log"
    live.write_bytes(b"")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen(
        [sys.executable, "-m", "minectl_py", "events", "tail", "--idle-exit", "3", "--lines"],
        stdout=subprocess.PIPE,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the follower has the file open
        fds = Path(f"/proc/{p.pid}/fd")
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) == str(live) for fd in fds.iterdir()):
                break
        time.sleep(0.05)
    recs = [record.make("time", "n", {"i": i}) for i in range(3)]
    with EventWriter(str(live), fsync=False) as w:
        for r in recs:
            w.append(r)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 0
    assert [json.loads(x) for x in out.splitlines()] == recs


def test_follow_from_now_starting_inside_a_line_skips_it_and_counts_lines(tmp_path):
    live = tmp_path / "events.log"
    old = record.make("time", "n", {"old": True})
    live.write_bytes(record.encode(old) * 3 + b'\x1e{"created_at_ms":"1')  # a writer mid-record
    new = record.make("time", "n", {"new": True})
    stop = _appending(live, [b'2","x":1}\n', b"garbage\n" + record.encode(new)])
    stats = ReadStats()
    got = list(follow(str(live), stop=stop, poll_s=0.01, stats=stats))
    assert got == [new]
    assert [(b.line, b.reason) for b in stats.samples] == [(5, "not JSON")]
