"""Issue #9: miners that answer slowly, hang, reset or send megabytes do not hold up the rest
of the site. A simulated fleet with 10 % faulty miners, polled by the real `minectl poll`
process: every healthy miner is read in the cycle, every faulty one is classified, the
cycle ends well inside the interval and the poller's memory stays bounded by the reply cap
while the huge miners send far more than that. (The 5,000-miner figure is a benchmark:
`./dev bench --only pollfaults`, docs/benchmarks.md.)"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import threading

import pytest

from minectl_py.sim import FleetError, FleetSpec, MinerSpec, finish, run_fleet_in_thread
from tests.conftest import ROOT
from tests.simfleet import start_fleet

pytestmark = pytest.mark.integration

N = 330  # 33 faulty: 10 %
#: fault -> (params, the reason the poller must report)
FAULTS = {
    "dead": ({}, "connect_timeout"),
    "hanging": ({}, "timeout"),
    "slow": ({"delay": 30}, "timeout"),
    "resetting": ({}, "reset"),
    "huge": ({"size": 64 << 20}, "too_large"),
    "garbage": ({}, "garbage"),
    "truncated": ({}, "truncated"),
    "invalid_json": ({}, "invalid_json"),
    "refusing": ({}, "refused"),
    "dying": ({}, "empty"),
    "slow-ok": ({"delay": 0.5}, None),  # slow, but inside the timeout: read like any other
}
INTERVAL = 60.0
#: runs the poller as its only child and prints the child's peak RSS (KiB) on stderr
RSS_WRAPPER = (
    "import resource, subprocess, sys\n"
    "r = subprocess.run(sys.argv[1:])\n"
    "print('MAXRSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(r.returncode)\n"
)


def _fleet(third: int):
    rng = random.Random(third)
    idx = list(range(N))
    rng.shuffle(idx)
    faulty = {}
    for k, name in enumerate(FAULTS):
        for i in idx[3 * k : 3 * k + 3]:
            faulty[i] = name
    miners = []
    for i in range(N):
        ip = f"127.72.{third + i // 250}.{1 + i % 250}"
        ms = MinerSpec(ip=ip, personality="s19" if i % 4 else "s9")
        if i in faulty:
            name = faulty[i]
            ms.faults = {name.split("-")[0]: dict(FAULTS[name][0])}
        miners.append(ms)
    spec = FleetSpec(miners=miners, seed=third, http_port=None, ssh_port=None)
    return run_fleet_in_thread(finish(spec)), {miners[i].ip: n for i, n in faulty.items()}


@pytest.fixture(scope="module")
def fleet():
    last: Exception | None = None
    for _ in range(10):
        third = random.randrange(2, 250, 2)
        try:
            f, faulty = _fleet(third)
        except (FleetError, OSError) as e:
            last = e
            continue
        yield f, faulty
        f.stop()
        return
    raise RuntimeError(f"could not start the fleet: {last}")


def test_faulty_tenth_does_not_hold_up_the_site(fleet, tmp_path):
    f, faulty = fleet
    assert len(faulty) == 3 * len(FAULTS) == N // 10 and len(f.addresses) == N
    env = dict(os.environ, PYTHONPATH=str(ROOT), MINECTL_NODENAME="test-controller")
    cmd = [sys.executable, "-m", "minectl_py", "poll", "--once", "--json", "--concurrency", "64"]
    cmd += ["--connect-timeout", "2", "--timeout", "5", "--events", str(tmp_path / "events.log")]
    cmd += ["--state-dir", str(tmp_path / "state")]
    for ip in f.addresses:
        cmd += ["--targets", ip]
    proc = subprocess.run([sys.executable, "-c", RSS_WRAPPER, *cmd], env=env, capture_output=True, timeout=300)
    err = proc.stderr.decode()
    assert proc.returncode == 1, err[-2000:]  # some failed
    out = proc.stdout
    maxrss_kib = int(err.rsplit("MAXRSS ", 1)[1].split()[0])
    doc = json.loads(out)
    results = {r["ip"]: r for r in doc["results"]}
    assert len(results) == N
    healthy = [ip for ip in f.addresses if faulty.get(ip, "slow-ok") == "slow-ok"]
    assert len(healthy) == N - 3 * (len(FAULTS) - 1)
    assert [ip for ip in healthy if not results[ip]["ok"]] == []
    got = {ip: results[ip].get("reason") for ip, name in faulty.items() if name != "slow-ok"}
    want = {ip: FAULTS[name][1] for ip, name in faulty.items() if name != "slow-ok"}
    assert got == want
    # the faulty tenth costs at most its timeouts, in parallel: far inside the interval
    assert doc["elapsed_s"] < INTERVAL / 2, doc["elapsed_s"]
    # every huge miner sent 64 MiB; the reply cap (1 MiB) keeps the poller small
    assert maxrss_kib < 150 * 1024, maxrss_kib
    lines = (tmp_path / "events.log").read_bytes().count(b"\n")
    assert lines == N


class _BlockedSink:
    """A sink whose disk is stuck until ``gate`` opens (the real Sink's interface)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.records: list[dict] = []

    def commit(self, records: list[dict]) -> None:
        self.entered.set()
        self.gate.wait(120)
        self.records += records

    def close(self) -> None:
        pass


def test_a_stuck_writer_pauses_polling_instead_of_piling_up_records():
    from minectl_py.poller import run as prun

    f = start_fleet(["s9"] * 40, block="127.73", thirds=(1, 200))
    try:
        sink = _BlockedSink()
        p = prun.Poller(prun.Settings(concurrency=1, batch=1, connect_timeout=2, timeout=5), sink, "t")  # type: ignore[arg-type]
        targets = [prun.Target(ip) for ip in f.addresses]
        seen: list[int] = []

        async def main() -> prun.CycleStats:
            task = asyncio.ensure_future(p.run_cycle(targets))
            while not sink.entered.is_set():
                await asyncio.sleep(0.02)
            for _ in range(50):  # a second or more for polling to run ahead, if it could
                await asyncio.sleep(0.02)
                seen.append(len(p.plans))
            sink.gate.set()
            return await task

        st = asyncio.run(main())
        p.close()
        # one batch in the writer, MAX_QUEUED_BATCHES waiting, one being filled, one in flight
        assert max(seen) <= 1 + prun.MAX_QUEUED_BATCHES + 2, seen
        assert st.ok == len(sink.records) == 40
    finally:
        f.stop()
