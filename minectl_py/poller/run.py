"""The poll loop: bounded concurrency, batched writes, back-off for dead miners, clean stop.

One asyncio loop; ``concurrency`` worker coroutines take targets from a queue and poll
them (``minectl_py.miner.poll``); results become ``poll`` / ``poll_fail`` records, committed
in batches by one writer thread (``Sink``: event log + state directory), so disk syncs never
stall the sockets; at most :data:`MAX_QUEUED_BATCHES` wait for it (memory stays bounded when
the disk is slower than the miners). A miner whose polls time out (connect or reply) is skipped for 1, 2, 4 ...
up to ``backoff_max`` cycles, so dead miners never eat the interval; fast failures (refused,
garbage...) cost nothing and are retried every cycle. On stop, workers take no new targets,
in-flight polls get ``grace`` seconds, then are abandoned; finished results are committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from minectl_py.events import record
from minectl_py.miner.poll import Options, PollResult, poll_miner
from minectl_py.poller.sink import Sink
from minectl_py.poller.targets import Target

log = logging.getLogger("minectl.poll")

#: failures that cost a timeout, and so earn a back-off
SLOW_REASONS = frozenset({"connect_timeout", "timeout", "unreachable"})
#: batches waiting for the writer thread at most; polling pauses while more are queued, so a
#: slow disk bounds memory instead of piling up records
MAX_QUEUED_BATCHES = 4


@dataclass
class Settings:
    concurrency: int = 512
    connect_timeout: float = 3.0
    timeout: float = 10.0
    batch: int = 500
    backoff_max: int = 16  # cycles
    grace: float = 5.0  # seconds in-flight polls get on stop
    keep_results: bool = False  # --once --json wants every result


@dataclass
class CycleStats:
    cycle: int = 0
    targets: int = 0
    polled: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    abandoned: int = 0
    elapsed_s: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)
    results: list[tuple[Target, PollResult]] = field(default_factory=list)

    def line(self) -> str:
        rs = ", ".join(f"{k} {v}" for k, v in self.reasons.most_common())
        extra = f" ({rs})" if rs else ""
        skipped = f", {self.skipped} backing off" if self.skipped else ""
        aband = f", {self.abandoned} abandoned" if self.abandoned else ""
        return (
            f"cycle {self.cycle}: {self.targets} targets, {self.ok} ok, {self.failed} failed{extra}"
            f"{skipped}{aband} in {self.elapsed_s:.2f} s"
        )


def to_record(nodename: str, t: Target, r: PollResult) -> dict[str, Any]:
    if r.ok and r.data is not None:
        fields: dict[str, Any] = {"ip": t.ip}
        mac = t.mac or r.data.mac
        if mac:
            fields["mac"] = mac
        fields |= {"elapsed_ms": r.elapsed_ms, "digest": r.digest, "miner": r.data.to_dict()}
        return record.make("poll", nodename, fields)
    fields = {"ip": t.ip}
    if t.mac:
        fields["mac"] = t.mac
    fields |= {"reason": r.reason or "unknown", "detail": r.detail[:300], "elapsed_ms": r.elapsed_ms}
    return record.make("poll_fail", nodename, fields)


class Poller:
    def __init__(self, settings: Settings, sink: Sink | None, nodename: str) -> None:
        self.s = settings
        self.sink = sink
        self.nodename = nodename
        self.opts = Options(connect_timeout=settings.connect_timeout, timeout=settings.timeout)
        self.plans: dict[str, str] = {}
        self.slow_fails: dict[str, int] = {}
        self.next_cycle: dict[str, int] = {}
        self.cycle = 0
        self.stop_event = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="minectl-poll-sink")

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def stop(self) -> None:
        self.stop_event.set()

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self.sink is not None:
            self.sink.close()

    def _note(self, t: Target, r: PollResult) -> None:
        ip = t.ip
        if r.plan:
            self.plans[ip] = r.plan
        else:
            self.plans.pop(ip, None)
        if not r.ok and r.reason in SLOW_REASONS:
            k = self.slow_fails.get(ip, 0) + 1
            self.slow_fails[ip] = k
            self.next_cycle[ip] = self.cycle + min(2 ** (k - 1), self.s.backoff_max)
        elif ip in self.slow_fails:
            del self.slow_fails[ip]
            self.next_cycle.pop(ip, None)

    async def run_cycle(self, targets: list[Target]) -> CycleStats:
        loop = asyncio.get_running_loop()
        self.cycle += 1
        st = CycleStats(cycle=self.cycle, targets=len(targets))
        t0 = loop.time()
        queue: deque[Target] = deque()
        for t in targets:
            if self.next_cycle.get(t.ip, 0) > self.cycle:
                st.skipped += 1
            else:
                queue.append(t)
        pending: list[dict[str, Any]] = []
        commits: list[asyncio.Future[None]] = []

        def flush() -> None:
            if pending and self.sink is not None:
                batch = pending[:]
                commits.append(loop.run_in_executor(self._executor, self.sink.commit, batch))
            pending.clear()

        async def worker() -> None:
            while queue and not self.stopping:
                t = queue.popleft()
                r = await poll_miner(t.ip, self.plans.get(t.ip), self.opts)
                self._note(t, r)
                st.polled += 1
                if r.ok:
                    st.ok += 1
                else:
                    st.failed += 1
                    st.reasons[r.reason] += 1
                if self.s.keep_results:
                    st.results.append((t, r))
                if self.sink is not None:
                    pending.append(to_record(self.nodename, t, r))
                    if len(pending) >= self.s.batch:
                        flush()
                        if len(commits) > MAX_QUEUED_BATCHES:  # errors surface at the end
                            await asyncio.wait([commits[-MAX_QUEUED_BATCHES - 1]])

        n = max(1, min(self.s.concurrency, len(queue)))
        workers = [asyncio.ensure_future(worker()) for _ in range(n)]
        stopper = asyncio.ensure_future(self.stop_event.wait())
        all_done = asyncio.gather(*workers, return_exceptions=True)
        await asyncio.wait([all_done, stopper], return_when=asyncio.FIRST_COMPLETED)
        if not all_done.done():  # stopping: grace for in-flight polls, then abandon them
            _done, not_done = await asyncio.wait(workers, timeout=self.s.grace)
            for w in not_done:
                w.cancel()
            st.abandoned = len(not_done)
        await all_done
        stopper.cancel()
        for w in workers:  # a bug in a worker must not pass silently
            if not w.cancelled() and w.exception() is not None:
                raise w.exception()  # type: ignore[misc]
        flush()
        if commits:
            await asyncio.gather(*commits)
        st.elapsed_s = loop.time() - t0
        return st

    async def serve(self, get_targets: Any, interval: float, jitter: float) -> None:
        """Poll every ``interval`` seconds (+- ``jitter`` of it) until stopped."""
        loop = asyncio.get_running_loop()
        while not self.stopping:
            start = loop.time()
            try:
                targets = await loop.run_in_executor(None, get_targets)
            except OSError as e:
                log.error("cannot read targets: %s", e)
                targets = []
            st = await self.run_cycle(targets)
            log.info("%s", st.line())
            delay = interval * (1.0 + random.uniform(-jitter, jitter)) - (loop.time() - start)
            if delay <= 0:
                log.warning("cycle %d took %.1f s, longer than the %g s interval", st.cycle, st.elapsed_s, interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), timeout=max(0.5, delay))
