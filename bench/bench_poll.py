"""Poller benchmark: a full poll of 1,000 / 5,000 / 10,000 simulated miners on loopback,
and pyasic fetching the same data from the same 1,000 miners in the same run.

The simulator runs in two processes of its own (``minectl sim run``, 10,000 Antminers: S19
Pro and S9 4:1, API on 4028, addresses from 127.72.0.1; the first 1,000 also serve digest
HTTP on 80 for pyasic; two processes keep each under this machine's 20,000 open files). Each measurement
runs in a fresh child process so CPU seconds and peak RSS are its own:

* ``state``: the poller core (``Poller.run_cycle``, default concurrency 512) with the real
  sink (event log with fsync per batch, state directory projection): the state directory
  holds a leased folder per miner (set up before timing) and the targets are read from it.
  ``cold`` = the first cycle (identification included: a joined first contact, and for
  S19s the fallback to ``stats`` + ``pools``; every poll value written for the first time),
  ``second`` = the next (each miner's shadow folder filled once, docs/state.md), ``warm`` =
  the third: what the service does every interval.
* ``events``: the same with the event log only (no state directory), ``cold`` and ``warm``.
* ``pyasic``: ``MinerFactory.get_multiple_miners`` (identification) then ``get_data`` limited
  to what we normalize (hashrate, expected hashrate, boards, fans, pools, uptime, firmware,
  MAC), 100 at a time (the most it sustains here: see PYASIC_CONCURRENCY).

Throughput ratio = our miners/s over pyasic's miners/s, cold against cold (both identify and
fetch) and warm against pyasic's fetch alone. Run: ``./dev bench --only poll``.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASE_IP = "127.72.0.1"  # this area's loopback block (127.72.0.0/16)
CONCURRENCY = 512
#: pyasic's identification races HTTP and RPC probes under a 3 s timeout; with hundreds at
#: once on 2 shared cores most probes time out and nothing is identified, so it gets a
#: concurrency it can sustain (its own ``get_multiple_miners(limit=)`` does not bound anything)
PYASIC_CONCURRENCY = 100


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rss_mb() -> float:
    """This process's own peak RSS (``VmHWM``). Not ``ru_maxrss``: Linux carries the parent's
    high-water mark across fork and exec, so a child of a large benchmark process would
    report the parent's peak (``./dev bench`` running every benchmark in one process showed
    395 MB for every poll run that way)."""
    return vm_hwm_mb("self")


def vm_hwm_mb(pid: int | str) -> float:
    """Peak resident set (``VmHWM`` in ``/proc/PID/status``) in MB; 0.0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


#: cycles timed per run: with state writes the first poll writes every poll value of a miner
#: for the first time, the second fills the shadow folder once (docs/state.md); from the
#: third on, a cycle is what the service does every interval
PHASES = {"state": ("cold", "second", "warm"), "events": ("cold", "warm")}


async def _ours(ips: list[str], work: str, mode: str = "state") -> dict:
    from minectl_py.miner.api import raise_fd_limit
    from minectl_py.poller.run import Poller, Settings
    from minectl_py.poller.sink import Sink
    from minectl_py.poller.targets import Target

    raise_fd_limit(4 * CONCURRENCY + 1024)
    state = os.path.join(work, "state")
    os.makedirs(state, exist_ok=True)
    sink = Sink(os.path.join(work, "events.log"), state if mode == "state" else None)
    p = Poller(Settings(concurrency=CONCURRENCY), sink, "bench")
    macs = json.loads(Path(work, "macs.json").read_text()) if os.path.exists(os.path.join(work, "macs.json")) else {}
    if sink.project is not None and macs:
        # the site as the lease hook leaves it: one folder per miner, targets read from it
        from minectl_py.events import record
        from minectl_py.poller.targets import from_state_dir

        leases = [record.make("lease", "bench", {"action": "add", "mac": macs[ip], "ip": ip}) for ip in ips]
        sink.project.apply_many(state, leases)
        t0 = time.perf_counter()
        targets = from_state_dir(state)
        read_s = time.perf_counter() - t0
    else:
        targets, read_s = [Target(ip) for ip in ips], 0.0
    out: dict = {"miners": len(ips), "targets": len(targets), "state_projection": sink.project is not None}
    out["loadavg_1m_at_start"] = round(os.getloadavg()[0], 2)
    out["read_targets_s"] = round(read_s, 3)
    for phase in PHASES[mode]:
        t0, c0 = time.perf_counter(), _cpu()
        st = await p.run_cycle(targets)
        out[phase] = {
            "wall_s": round(time.perf_counter() - t0, 3),
            "cpu_s": round(_cpu() - c0, 3),
            "ok": st.ok,
            "failed": st.failed,
            "reasons": dict(st.reasons),
        }
    p.close()
    out["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    out["events_bytes"] = os.path.getsize(os.path.join(work, "events.log"))
    out["peak_rss_mb"] = round(_rss_mb(), 1)
    return out


async def _pyasic(ips: list[str]) -> dict:
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    from pyasic.miners.data import DataOptions
    from pyasic.miners.factory import MinerFactory

    from minectl_py.miner.api import raise_fd_limit

    raise_fd_limit(8 * len(ips) + 1024)
    want = [
        DataOptions.HASHRATE,
        DataOptions.EXPECTED_HASHRATE,
        DataOptions.HASHBOARDS,
        DataOptions.FANS,
        DataOptions.POOLS,
        DataOptions.UPTIME,
        DataOptions.FW_VERSION,
        DataOptions.MAC,
    ]
    sem = asyncio.Semaphore(PYASIC_CONCURRENCY)
    factory = MinerFactory()

    async def ident(ip: str) -> Any:
        async with sem:
            return await factory.get_miner(ip)

    t0, c0 = time.perf_counter(), _cpu()
    miners = [m for m in await asyncio.gather(*(ident(ip) for ip in ips)) if m is not None]
    t1, c1 = time.perf_counter(), _cpu()

    async def one(m: Any) -> bool:
        async with sem:
            try:
                d = await m.get_data(include=want)
            except Exception:  # pyasic raises on miners it cannot read
                return False
            return d.hashrate is not None and bool(d.hashboards)

    oks = await asyncio.gather(*(one(m) for m in miners))
    t2, c2 = time.perf_counter(), _cpu()
    return {
        "miners": len(ips),
        "identified": len(miners),
        "ok": sum(oks),
        "identify": {"wall_s": round(t1 - t0, 3), "cpu_s": round(c1 - c0, 3)},
        "fetch": {"wall_s": round(t2 - t1, 3), "cpu_s": round(c2 - c1, 3)},
        "total": {"wall_s": round(t2 - t0, 3), "cpu_s": round(c2 - c0, 3)},
        "peak_rss_mb": round(_rss_mb(), 1),
    }


def stop_sims(sims: list[subprocess.Popen]) -> None:
    for sim in sims:
        sim.send_signal(signal.SIGTERM)
    for sim in sims:
        try:
            sim.wait(timeout=60)
        except subprocess.TimeoutExpired:
            sim.kill()


def discard(path: str) -> None:
    """Remove a work directory in a detached ``rm -rf``: deleting a few hundred thousand
    small files takes minutes on this VM's ext4 (mounted with ``discard``), and the figures
    must not wait for it."""
    subprocess.Popen(
        ["rm", "-rf", path],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _child(kind: str, ips: list[str], work: str) -> dict:
    """``kind``: ``state`` (event log + state directory), ``events`` (event log only), ``pyasic``."""
    ipfile = os.path.join(work, f"ips-{kind}-{len(ips)}.json")
    Path(ipfile).write_text(json.dumps(ips))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_poll", kind, ipfile, work],
        env=env,
        capture_output=True,
        timeout=900,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{kind} run failed: {out.stderr.decode()[-2000:]}")
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def _start_sim(n: int, base: str, http: bool, work: str, name: str) -> tuple[subprocess.Popen, list[str]]:
    ready = os.path.join(work, f"ready-{name}.json")
    cmd = [sys.executable, "-m", "minectl_py", "sim", "run", "--miners", str(n), "--base-ip", base]
    seed = "1" if name == "a" else "2"  # MACs embed the seed: distinct across the two processes
    cmd += ["--mix", "s19=4,s9=1", "--seed", seed, "--no-ssh"]
    cmd += ["--http-port", "80"] if http else ["--no-http"]
    cmd += ["--control", os.path.join(work, f"sim-{name}.sock"), "--ready-file", ready]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while not os.path.exists(ready):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError(f"simulator did not start: {proc.stderr.read().decode()[-1000:] if proc.stderr else ''}")
        time.sleep(0.1)
    return proc, json.loads(Path(ready).read_text())["miners"]


def run(quick: bool) -> dict:
    sizes = [200, 500] if quick else [1000, 5000, 10000]
    if os.environ.get("MINECTL_BENCH_POLL_SIZES"):  # e.g. 1000,5000: a shorter run
        sizes = sorted(int(x) for x in os.environ["MINECTL_BENCH_POLL_SIZES"].split(","))
    n_pyasic = 200 if quick else 1000
    work = tempfile.mkdtemp(prefix="minectl-bench-poll-")
    # two simulator processes: the first n_pyasic miners with HTTP (pyasic reads S19 boards
    # over HTTP), the rest API only, so each stays under a 20,000 open-file hard limit
    sims: list[subprocess.Popen] = []
    try:
        sim, ips = _start_sim(n_pyasic, BASE_IP, True, work, "a")
        sims.append(sim)
        from minectl_py.sim.spec import addresses

        sim, more = _start_sim(max(sizes) - n_pyasic, addresses(ips[-1], 2)[1], False, work, "b")
        sims.append(sim)
        ips += more
    except BaseException:
        for p in sims:
            p.kill()
        raise
    res: dict = {
        "cpus": os.cpu_count(),
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
        "simulator": {"miners": len(ips), "processes": 2, "mix": "s19=4,s9=1", "http_miners": n_pyasic},
        "concurrency": CONCURRENCY,
    }
    try:
        from minectl_py.sim import control

        macs = {}
        for name in ("a", "b"):
            for m in control.request(os.path.join(work, f"sim-{name}.sock"), {"op": "list"}):
                macs[m["ip"]] = m["mac"]
        for n in sizes:
            for mode in ("state", "events"):
                sub = os.path.join(work, f"{mode}-{n}")
                os.makedirs(sub)
                Path(sub, "macs.json").write_text(json.dumps(macs))
                res[f"{mode}_{n}"] = _child(mode, ips[:n], sub)
        res[f"pyasic_{n_pyasic}"] = py = _child("pyasic", ips[:n_pyasic], work)
    finally:
        stop_sims(sims)
        discard(work)
    res["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    ours = res[f"state_{n_pyasic}"]
    if not py["ok"] or not ours["cold"]["ok"]:
        raise RuntimeError(f"nothing polled: {json.dumps(res)[:3000]}")

    def rate(r: dict) -> float:
        return r["ok"] / r["wall_s"]

    py_total, py_fetch = py["ok"] / py["total"]["wall_s"], py["ok"] / py["fetch"]["wall_s"]
    res["ratio_cold_vs_pyasic_total"] = round(rate(ours["cold"]) / py_total, 2)
    res["ratio_second_vs_pyasic_total"] = round(rate(ours["second"]) / py_total, 2)
    res["ratio_warm_vs_pyasic_fetch"] = round(rate(ours["warm"]) / py_fetch, 2)
    res["ratio_warm_vs_pyasic_total"] = round(rate(ours["warm"]) / py_total, 2)
    # with state writes, per size: cold (first cycle), second, warm (steady) wall seconds
    res["summary_state_wall_s"] = {
        str(n): {ph: res[f"state_{n}"][ph]["wall_s"] for ph in PHASES["state"]} for n in sizes
    }
    ev = res[f"events_{n_pyasic}"]
    res["ratio_events_only_cold_vs_pyasic_total"] = round(rate(ev["cold"]) / py_total, 2)
    if not quick and {5000, 10000} <= set(sizes):
        res["floors"] = {
            "5000_le_10s_with_state_warm": res["state_5000"]["warm"]["wall_s"] <= 10.0,
            "10000_le_20s_with_state_warm": res["state_10000"]["warm"]["wall_s"] <= 20.0,
            "5000_le_10s_with_state_cold": res["state_5000"]["cold"]["wall_s"] <= 10.0,
            "10000_le_20s_with_state_cold": res["state_10000"]["cold"]["wall_s"] <= 20.0,
            "5000_le_10s_with_state_second": res["state_5000"]["second"]["wall_s"] <= 10.0,
            "10000_le_20s_with_state_second": res["state_10000"]["second"]["wall_s"] <= 20.0,
            "5000_le_10s_events_only_cold": res["events_5000"]["cold"]["wall_s"] <= 10.0,
            "10000_le_20s_events_only_cold": res["events_10000"]["cold"]["wall_s"] <= 20.0,
            "rss_le_300mb": max(res[f"{m}_{n}"]["peak_rss_mb"] for n in sizes for m in ("state", "events")) <= 300.0,
            "pyasic_ratio_ge_3": res["ratio_cold_vs_pyasic_total"] >= 3.0,
        }
    return res


def _main() -> int:
    kind, ipfile, work = sys.argv[1:4]
    ips = json.loads(Path(ipfile).read_text())
    out = asyncio.run(_pyasic(ips) if kind == "pyasic" else _ours(ips, work, kind))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
