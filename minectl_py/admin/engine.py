"""Running one action on many miners: bounded concurrency, per-step timeouts, retries,
fallback along the transport chain, and a callback per finished miner (progress, audit).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from minectl_py.admin.credentials import Credentials
from minectl_py.admin.plan import NOT_POSSIBLE, READ_ONLY, family, steps
from minectl_py.admin.transports import FALL_THROUGH, HostKeys, Outcome, run_step

#: results worth another attempt: nothing reached the miner (or, for read-only actions, anything)
RETRY_ON = frozenset({"unreachable"})
#: when every transport fell through, the first of these found is the miner's result
REPORT_ORDER = ("auth", "denied", "unreachable", "unsupported", "nocred")
RETRY_ON_READ = frozenset({"unreachable", "timeout", "lost", "fail"})


@dataclass(slots=True)
class Result:
    miner: Mapping[str, Any]
    outcome: Outcome
    attempts: int
    elapsed_ms: int


@dataclass(slots=True)
class Options:
    timeout: float = 10.0
    retries: int = 1
    retry_delay: float = 1.0
    concurrency: int = 50


@dataclass(slots=True)
class Progress:
    total: int
    done: int = 0
    ok: int = 0
    failed: int = 0
    started: float = field(default_factory=time.monotonic)


def execute_one(
    m: Mapping[str, Any],
    action: str,
    params: Mapping[str, Any],
    creds: Credentials,
    opts: Options,
    hk: HostKeys | None,
    stop: threading.Event | None = None,
) -> Result:
    """The transport chain for this miner's family, with retries. Never raises."""
    t0 = time.monotonic()
    fam = family(m)
    chain = steps(action, fam, params)
    retry_on = RETRY_ON_READ if action in READ_ONLY else RETRY_ON
    attempts = 0
    out = Outcome("unsupported", None, NOT_POSSIBLE.get((action, fam), f"{action} is not possible on {fam} firmware"))
    while chain:
        attempts += 1
        tried: list[str] = []
        out = Outcome("unsupported", None, "")
        fell: list[Outcome] = []
        for st in chain:
            try:
                out = run_step(m, fam, st, creds, opts.timeout, hk)
            except Exception as e:
                out = Outcome("fail", st.transport, f"internal error: {type(e).__name__}: {e}")
            tried.append(f"{st.transport}:{out.result}")
            if out.result not in FALL_THROUGH:
                break
            fell.append(out)
        else:
            # every transport fell through: report the one that says most about the miner
            out = min(fell, key=lambda o: REPORT_ORDER.index(o.result)) if fell else out
        out.tried = tried
        if len(tried) > 1 and out.result in FALL_THROUGH:
            out.detail = f"{out.detail} (tried {', '.join(tried)})"
        if out.result not in retry_on or attempts > opts.retries or (stop is not None and stop.is_set()):
            break
        time.sleep(opts.retry_delay * attempts)
    return Result(m, out, attempts, int((time.monotonic() - t0) * 1000))


def run_all(
    miners: Sequence[Mapping[str, Any]],
    action: str,
    params: Mapping[str, Any] | Callable[[Mapping[str, Any]], Mapping[str, Any]],
    creds: Credentials,
    opts: Options,
    *,
    on_result: Callable[[Result, Progress], None] | None = None,
    on_tick: Callable[[Progress], None] | None = None,
    tick: float = 0.1,
) -> list[Result]:
    """Every miner through :func:`execute_one`, at most ``opts.concurrency`` at a time.

    ``params`` may be a function of the miner (per-miner parameters). Results come back in
    the miners' order. ``on_result`` runs in the calling thread as each
    miner finishes; ``on_tick`` every ``tick`` seconds (progress bar). On KeyboardInterrupt the
    miners not started are left alone, the running ones finish, and the interrupt propagates.
    """
    hk = HostKeys(creds.known_hosts, creds.ssh_host_keys) if creds.known_hosts or creds.ssh_host_keys else None
    prog = Progress(total=len(miners))
    results: dict[int, Result] = {}
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=max(1, min(opts.concurrency, len(miners) or 1)))
    futs: dict[Future[Result], int] = {}
    try:
        for i, m in enumerate(miners):
            mp = params(m) if callable(params) else params
            futs[pool.submit(execute_one, m, action, mp, creds, opts, hk, stop)] = i
        pending = set(futs)
        while pending:
            done, pending = wait(pending, timeout=tick, return_when=FIRST_COMPLETED)
            for f in done:
                r = f.result()
                results[futs[f]] = r
                prog.done += 1
                if r.outcome.ok:
                    prog.ok += 1
                else:
                    prog.failed += 1
                if on_result is not None:
                    on_result(r, prog)
            if on_tick is not None:
                on_tick(prog)
    except KeyboardInterrupt:
        stop.set()
        for f in futs:
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        for f, i in futs.items():
            if i not in results and f.done() and not f.cancelled():
                r = f.result()
                results[i] = r
                if on_result is not None:
                    on_result(r, prog)
        raise
    finally:
        pool.shutdown(wait=True)
        if hk is not None:
            with contextlib.suppress(OSError):
                hk.save()
    return [results[i] for i in sorted(results)]
