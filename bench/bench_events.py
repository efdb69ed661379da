"""Event log benchmark: the reader against ``zcat FILE | wc -l``, the index, the writer.

``./dev bench --only events`` (``--quick``: 100k records instead of 1M). The input is a
realistic site file in the seed's form (fluentd aggregator lines, multi-member gzip) from
``minectl_py.events.generate`` (seed 1, 1000 miners), generated once and cached in
``bench/data/`` (gitignored). Every figure is a median of several runs, and each ratio is
against a baseline measured in the same run:

* read: ``minectl events count FILE`` (a new process, as an admin runs it) vs
  ``zcat FILE | wc -l`` (decompress and count lines, nothing parsed), wall and CPU time;
* index: ``minectl events count --since/--until`` over a 1 % window with the temporal index
  vs the same with ``--no-index`` (a full scan); plus the one-off time to build the index;
* write: ``EventWriter.append`` (lock, one ``write``, ``fdatasync`` per record) and
  ``append_many`` (100 records per write and sync) vs plain ``os.write`` of the same bytes
  to an ``O_APPEND`` file (no lock, no sync).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _timed(cmd: list[str], runs: int) -> dict[str, float]:
    walls, cpus = [], []
    for _ in range(runs):
        c0, t0 = _children_cpu(), time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        walls.append(time.perf_counter() - t0)
        cpus.append(_children_cpu() - c0)
        if p.returncode != 0:
            raise RuntimeError(f"{cmd} failed: {p.stderr.decode()[-500:]}")
    return {"wall_s": round(statistics.median(walls), 3), "cpu_s": round(statistics.median(cpus), 3)}


def data_file(records: int) -> Path:
    """The cached benchmark input (generated on first use)."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"site-{records // 1000}k-seed1.log.gz"
    if not path.exists():
        from minectl_py.events.generate import generate, write

        t0 = time.perf_counter()
        st = write(str(path), generate(records=records, miners=1000, seed=1), fmt="fluentd")
        print(f"generated {path} ({st['records']} records) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return path


def bench_read(path: Path, records: int, runs: int) -> dict[str, Any]:
    base = _timed(["sh", "-c", f"zcat '{path}' | wc -l"], runs)
    ours = _timed([sys.executable, "-m", "minectl_py", "events", "count", str(path)], runs)
    text_bytes = int(subprocess.run(["sh", "-c", f"zcat '{path}' | wc -c"], capture_output=True).stdout)
    return {
        "records": records,
        "gzip_bytes": path.stat().st_size,
        "text_bytes": text_bytes,
        "zcat_wc": base,
        "minectl_count": ours,
        "ratio_wall": round(ours["wall_s"] / base["wall_s"], 2),
        "ratio_cpu": round(ours["cpu_s"] / base["cpu_s"], 2),
        "records_per_s": round(records / ours["wall_s"]),
    }


def bench_index(path: Path, runs: int) -> dict[str, Any]:
    from minectl_py.events import index
    from minectl_py.events.reader import EventReader

    with tempfile.TemporaryDirectory() as d:
        link = Path(d) / path.name  # the sidecar goes into the temp dir, not bench/data
        os.symlink(path.resolve(), link)
        first = last = None
        for rec in EventReader([str(link)], types=["time"]):
            first = first or int(rec["created_at_ms"])
            last = int(rec["created_at_ms"])
        assert first is not None and last is not None
        since = first + (last - first) // 2
        until = since + (last - first) // 100
        t0, c0 = time.perf_counter(), time.process_time()
        with open(link, "rb") as f:
            idx, _ = index.ensure(str(link), f, force=True)
        build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
        args = [sys.executable, "-m", "minectl_py", "events", "count", "--since", str(since), "--until", str(until)]
        seek = _timed([*args, str(link)], runs)
        scan = _timed([*args, "--no-index", str(link)], runs)
    return {
        "window": "1 % of the file's time span",
        "blocks": len(idx.blocks),
        "build_s": round(build_s, 3),
        "build_cpu_s": round(build_cpu, 3),
        "no_index": scan,
        "with_index": seek,
        "speedup_wall": round(scan["wall_s"] / seek["wall_s"], 1),
    }


def bench_write(n_sync: int, n_bulk: int) -> dict[str, Any]:
    from minectl_py.events.generate import generate
    from minectl_py.events.record import encode
    from minectl_py.events.writer import EventWriter

    recs = list(generate(records=n_bulk, miners=1000, seed=2))
    out: dict[str, Any] = {"records_synced": n_sync, "records_bulk": n_bulk}
    with tempfile.TemporaryDirectory(dir=str(DATA)) as d:  # on the disk, not tmpfs
        raw = os.path.join(d, "raw.log")
        t0 = time.perf_counter()
        fd = os.open(raw, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        for r in recs:
            os.write(fd, encode(r))
        os.close(fd)
        base = time.perf_counter() - t0
        w = EventWriter(os.path.join(d, "a.log"), rotate=True)
        t0 = time.perf_counter()
        for r in recs[:n_sync]:
            w.append(r)
        synced = time.perf_counter() - t0
        w.close()
        w = EventWriter(os.path.join(d, "b.log"), rotate=True)
        t0 = time.perf_counter()
        for i in range(0, n_bulk, 100):
            w.append_many(recs[i : i + 100])
        bulk = time.perf_counter() - t0
        w.close()
        w = EventWriter(os.path.join(d, "c.log"), rotate=True, fsync=False)
        t0 = time.perf_counter()
        for r in recs:
            w.append(r)
        nosync = time.perf_counter() - t0
        w.close()
    out["raw_write_per_s"] = round(n_bulk / base)
    out["append_fsync_per_s"] = round(n_sync / synced)
    out["append_many_100_fsync_per_s"] = round(n_bulk / bulk)
    out["append_nosync_per_s"] = round(n_bulk / nosync)
    out["ratio_append_fsync"] = round((synced / n_sync) / (base / n_bulk), 1)
    out["ratio_append_nosync"] = round(nosync / base, 2)
    out["ratio_append_many_fsync"] = round(bulk / base, 2)
    return out


def run(quick: bool = False) -> dict[str, Any]:
    records = 100_000 if quick else 1_000_000
    runs = 3 if quick else 5
    path = data_file(records)
    return {
        "read": bench_read(path, records, runs),
        "index": bench_index(path, runs),
        "write": bench_write(200 if quick else 1000, 20_000 if quick else 100_000),
        "load_avg": os.getloadavg()[0],
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
