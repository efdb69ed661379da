"""Reductions: hashrate over 1M events against zcat and the seed's jq pipeline; peak memory on
10M events; materialization rates into real MariaDB and InfluxDB.

``./dev bench --only reduce`` (``--quick``: 100k events, 1M for the memory run). Inputs are
generated once by ``minectl_py.events.generate`` (the seed's fluentd line form, gzip) into
``$MINECTL_BENCH_DIR`` (default /tmp/minectl-bench) and reused.

* decompression floor: ``zcat FILE | wc -l``;
* the seed's pipeline: ``zcat FILE | grep -o '{.*' | jq`` with :data:`JQ`, computing the same
  per-minute sums (checked to agree with ours to 1e-6);
* ours: ``minectl reduce hashrate FILE --csv``;
* memory: ``minectl reduce hashrate -`` fed 10M events (the 1M file ten times over, each copy
  shifted in time by :data:`SHIFT`); peak RSS of the reducer from ``wait4``;
* materialization: the rows of ``minectl reduce all`` over 200k events, written by the
  MariaDB and InfluxDB sinks into servers started for the run (rows or points per second,
  InfluxDB's continuous-query backfill timed apart).
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

from bench.bench_poll import vm_hwm_mb
from minectl_py.events.gzipstream import HAVE_ISAL

ROOT = Path(__file__).resolve().parent.parent
REPEAT = 3
DATA = Path(os.environ.get("MINECTL_BENCH_DIR", "/tmp/minectl-bench"))

#: the seed's way: per minute, each miner's mean hashrate, summed over miners
JQ = r"""
reduce (inputs | select(.cmd == "poll")
        | [((.created_at_ms | tonumber) / 60000 | floor * 60), (.mac // .miner.mac // .ip), .miner.hashrate_ths])
  as [$m, $k, $h]
  ({}; .[$m | tostring][$k] |= (if . == null then [$h, 1] else [.[0] + $h, .[1] + 1] end))
| to_entries[] | [(.key | tonumber), ([.value[] | .[0] / .[1]] | add)] | @csv
"""

SHIFT = r"""
import re, sys
off = int(sys.argv[1])
pat = re.compile(rb'"created_at_ms":"(\d+)"')
out = sys.stdout.buffer
rest = b""
while True:
    chunk = sys.stdin.buffer.read(1 << 22)
    if not chunk:
        break
    chunk = rest + chunk
    cut = chunk.rfind(b"\n") + 1
    rest = chunk[cut:]
    out.write(pat.sub(lambda m: b'"created_at_ms":"%d"' % (int(m.group(1)) + off), chunk[:cut]) if off else chunk[:cut])
out.write(rest)
"""


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT))


def events_file(n: int) -> Path:
    """``n`` generated events (1,000 miners polled each minute), fluentd lines, gzip."""
    DATA.mkdir(parents=True, exist_ok=True)
    p = DATA / f"reduce-{n}.log.gz"
    if not p.exists():
        from minectl_py.events.generate import generate, write

        tmp = p.with_suffix(".tmp")
        write(str(tmp), generate(records=n, miners=1000, seed=1), fmt="fluentd", gzip=True)
        tmp.rename(p)
    return p


CPU: dict[str, float] = {}


def sh(cmd: str, out: str | None = None, name: str = "") -> float:
    """Wall time of a shell pipeline; its CPU time (user + system, all processes) in CPU[name]."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    with open(out or os.devnull, "wb") as f:
        subprocess.run(["bash", "-o", "pipefail", "-c", cmd], stdout=f, check=True, env=_env())
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if name:
        CPU[name] = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall


def per_minute(csv_path: str) -> dict[int, float]:
    out = {}
    for ln in Path(csv_path).read_text().splitlines():
        parts = ln.strip('"').split(",")
        if parts[0].isdigit():
            out[int(parts[0])] = float(parts[1])
    return out


def peak_rss_mb(cmd: list[str], stdin_cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    t = time.perf_counter()
    feeder = subprocess.Popen(stdin_cmd, stdout=subprocess.PIPE, env={**_env(), **env})
    red = subprocess.Popen(cmd, stdin=feeder.stdout, stdout=subprocess.DEVNULL, env=_env())
    assert feeder.stdout is not None
    feeder.stdout.close()
    # the reducer's own high-water mark, sampled until it exits: its ``ru_maxrss`` would
    # include this (larger) benchmark process's peak, which Linux carries across fork and exec
    peak = 0.0
    while red.poll() is None:
        peak = max(peak, vm_hwm_mb(red.pid))
        time.sleep(0.02)
    feeder.wait()
    if red.returncode != 0:
        raise RuntimeError(f"reducer exited with status {red.returncode}")
    return peak, time.perf_counter() - t


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (a server we started)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def materialize(n: int) -> dict[str, float]:
    """Rows of `reduce all` over n events, written by each sink into a real server."""
    from minectl_py.reduce.base import Context
    from minectl_py.reduce.engine import Engine
    from minectl_py.reduce.sink_influx import InfluxSink
    from minectl_py.reduce.sink_mariadb import MariaDBSink
    from minectl_py.reduce.source import FastReader
    from tests.integration.dbservers import InfluxDB, MariaDB

    class Keep:
        def __init__(self) -> None:
            self.out: list[tuple] = []

        def write(self, view, rows) -> None:
            self.out.append((view, list(rows)))

        def flush(self) -> None:
            pass

        def close(self) -> None:
            pass

    keep = Keep()
    eng = Engine(["all"], [keep], Context())
    eng.feed_batches(FastReader([str(events_file(n))]).batches())
    eng.finish()
    rows = sum(len(r) for _, r in keep.out)
    res: dict[str, float] = {"materialize_events": n, "materialize_rows": rows}
    with tempfile.TemporaryDirectory(prefix="minectl-bench-") as d:
        my = MariaDB(Path(d) / "mariadb")
        ix = InfluxDB(Path(d) / "influx")
        try:
            my.init()
            my.start()
            my.create_users()
            ix.start()
            for db, how in (("bench", "load"), ("bench_insert", "insert")):
                my.database(db)  # created, with the reducer's grants
                q = {"load": "1" if how == "load" else "0"}
                sink = MariaDBSink("127.0.0.1", my.port, my.user, my.password, db, q)
                s0, c0, t = _cpu_s(my.proc.pid), time.process_time(), time.perf_counter()
                for view, r in keep.out:
                    sink.write(view, r)
                sink.close()
                dt = time.perf_counter() - t
                key = "mariadb" if how == "load" else "mariadb_insert"
                res.update(
                    {
                        f"{key}_rows": sink.written,
                        f"{key}_s": round(dt, 2),
                        f"{key}_rows_per_s": round(sink.written / dt),
                        f"{key}_server_cpu_s": round(_cpu_s(my.proc.pid) - s0, 2),
                        f"{key}_client_cpu_s": round(time.process_time() - c0, 2),
                        f"{key}_load_average": os.getloadavg()[0],
                    }
                )
            isink = InfluxSink("127.0.0.1", ix.http, "", "", "bench", {"retention": "INF", "backfill": "0"})
            s0, c0, t = _cpu_s(ix.proc.pid), time.process_time(), time.perf_counter()
            for view, r in keep.out:
                isink.write(view, r)
            isink.flush()
            dt = time.perf_counter() - t
            res.update(
                influx_server_cpu_s=round(_cpu_s(ix.proc.pid) - s0, 2),
                influx_client_cpu_s=round(time.process_time() - c0, 2),
                influx_load_average=os.getloadavg()[0],
            )
            t2 = time.perf_counter()
            isink.backfill_rollups()
            bf = time.perf_counter() - t2
            isink.close()
            res.update(
                influx_points=isink.written,
                influx_s=round(dt, 2),
                influx_points_per_s=round(isink.written / dt),
                influx_backfill_s=round(bf, 2),
            )
        finally:
            my.stop()
            ix.stop()
    return res


def run(quick: bool = False) -> dict:
    n = 100_000 if quick else 1_000_000
    f = events_file(n)
    py = sys.executable
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="minectl-bench-") as d:
        ours_csv, jq_csv = f"{d}/ours.csv", f"{d}/jq.csv"
        sh(f"cat {f} > /dev/null")  # warm the page cache
        # the floor and ours in turn, 3 times each: medians (this machine's load drifts)
        zc, ou, zc_cpu, ou_cpu = [], [], [], []
        for _ in range(REPEAT):
            zc.append(sh(f"zcat {f} | wc -l", None, "zcat"))
            zc_cpu.append(CPU["zcat"])
            ou.append(sh(f"{py} -m minectl_py reduce hashrate {f} --csv", ours_csv, "ours"))
            ou_cpu.append(CPU["ours"])
        t_zcat, t_ours = statistics.median(zc), statistics.median(ou)
        CPU["zcat"], CPU["ours"] = statistics.median(zc_cpu), statistics.median(ou_cpu)
        pairs = sorted(o / z for o, z in zip(ou, zc, strict=True))
        t_pipe = sh(f"zcat {f} | grep -o '{{.*' | {py} -m minectl_py reduce hashrate --csv", None)
        jq_prog = Path(d) / "hashrate.jq"
        jq_prog.write_text(JQ)
        t_jq = sh(f"zcat {f} | grep -o '{{.*' | jq -n -r -f {jq_prog}", jq_csv, "jq")
        ours, theirs = per_minute(ours_csv), per_minute(jq_csv)
        agree = ours.keys() == theirs.keys() and all(abs(ours[k] - theirs[k]) <= 1e-6 * max(1, theirs[k]) for k in ours)
    res: dict = {
        "events": n,
        "zcat_wc_s": round(t_zcat, 2),
        "reduce_hashrate_s": round(t_ours, 2),
        "reduce_vs_zcat": round(t_ours / t_zcat, 2),
        "seed_pipeline_with_minectl_s": round(t_pipe, 2),
        "jq_pipeline_s": round(t_jq, 2),
        "jq_vs_reduce": round(t_jq / t_ours, 1),
        "cpu_zcat_s": round(CPU["zcat"], 2),
        "cpu_reduce_s": round(CPU["ours"], 2),
        "cpu_jq_s": round(CPU["jq"], 2),
        "reduce_vs_zcat_pairs": [round(x, 2) for x in pairs],
        "zcat_wc_runs_s": [round(x, 2) for x in zc],
        "reduce_hashrate_runs_s": [round(x, 2) for x in ou],
        "isal": HAVE_ISAL,
        "load_average_start": load0,
        "load_average": os.getloadavg()[0],
        "minutes": len(ours),
        "jq_agrees": agree,
    }
    big = 10 * n
    span = 60_000 * (len(ours) + 1)
    rss, t_big = peak_rss_mb(
        [py, "-m", "minectl_py", "reduce", "hashrate", "-", "--csv"],
        ["bash", "-c", f'for k in $(seq 0 9); do zcat {f} | {py} -c "$SHIFT" $((k * {span})); done'],
        {"SHIFT": SHIFT},
    )
    res.update(rss_events=big, peak_rss_mb=round(rss, 1), rss_run_s=round(t_big, 1))
    res.update(materialize(20_000 if quick else 200_000))
    return res
