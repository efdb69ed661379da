"""``minectl poll``: poll miners for stats, as a service or once."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from typing import Any, ClassVar

from minectl_py import config
from minectl_py.cliargs import parser

EPILOG = """\
examples:
  minectl poll                                   the service: every miner of the state directory every 60 s
  minectl poll --once                            one pass, a table on stdout
  minectl poll --once --json --targets 10.1.0.0/24
  minectl poll --once --targets 10.1.0.5,10.1.0.20-40 --no-write
  minectl poll --interval 30 --concurrency 1000 --connect-timeout 2

Targets: --targets IPs, ranges (10.0.0.1-10.0.0.50, 10.0.0.1-50) and CIDRs (hosts only), or by
default every miner of $MINECTL_STATE_DIR with an address and an active lease (re-read every cycle).
Each poll appends a `poll` or `poll_fail` event to $MINECTL_EVENTS and updates the miner's state
files (only the values that changed). Miners whose polls time out are skipped for 1, 2, 4 ... up
to --backoff-max cycles. SIGTERM/SIGINT: no new polls, in-flight ones get --grace seconds, every
finished result is written whole. Logs go to stderr (journald priority prefixes under systemd).
exit codes: 0 every poll ok, 1 some failed, 2 usage error, 3 no targets, 130 interrupted.
"""


def _parser(prog: str) -> argparse.ArgumentParser:
    ap = parser(
        prog, "Poll miners over the cgminer-family API (TCP 4028) into the event log and state directory.", EPILOG
    )
    ap.add_argument("--once", action="store_true", help="one pass, then exit")
    ap.add_argument("--json", action="store_true", help="with --once: every result as JSON on stdout")
    ap.add_argument("--targets", action="append", default=[], metavar="LIST", help="IPs, ranges, CIDRs")
    ap.add_argument("--interval", type=float, default=60.0, help="seconds between cycles (default 60)")
    ap.add_argument("--jitter", type=float, default=0.1, help="fraction of the interval (default 0.1)")
    ap.add_argument("--concurrency", type=int, default=512, help="polls in flight (default 512)")
    ap.add_argument("--connect-timeout", type=float, default=3.0, help="seconds (default 3)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds for a whole reply (default 10)")
    ap.add_argument("--backoff-max", type=int, default=16, help="most cycles a dead miner is skipped (16)")
    ap.add_argument("--grace", type=float, default=5.0, help="seconds in-flight polls get on stop (5)")
    ap.add_argument("--batch", type=int, default=500, help="records per write (default 500)")
    ap.add_argument("--events", help="event log (default $MINECTL_EVENTS)")
    ap.add_argument("--state-dir", help="state directory (default $MINECTL_STATE_DIR)")
    ap.add_argument("--no-write", action="store_true", help="write no events and no state (just look)")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return ap


class _JournalFormatter(logging.Formatter):
    """``<N>message`` under systemd (journald maps the prefix to a priority), else timestamped."""

    PRIO: ClassVar[dict[int, int]] = {
        logging.DEBUG: 7,
        logging.INFO: 6,
        logging.WARNING: 4,
        logging.ERROR: 3,
        logging.CRITICAL: 2,
    }

    def __init__(self, journal: bool) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s" if not journal else "%(message)s")
        self.journal = journal

    def format(self, rec: logging.LogRecord) -> str:
        msg = super().format(rec).replace("\n", " ")
        return f"<{self.PRIO.get(rec.levelno, 6)}>{msg}" if self.journal else msg


def setup_logging(verbose: bool) -> None:
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(_JournalFormatter(bool(os.environ.get("JOURNAL_STREAM"))))
    lg = logging.getLogger("minectl")
    lg.handlers[:] = [h]
    lg.setLevel(logging.DEBUG if verbose else logging.INFO)
    lg.propagate = False


def _row(ip: str, r: Any) -> str:
    if not r.ok:
        return f"{ip:<16} {'-':<22} {'FAIL ' + r.reason:>9}  {r.detail[:60]}"
    d = r.data
    pool = d.active_pool.url if d.active_pool else "-"
    hr = f"{d.hashrate_ths:.2f}" if d.hashrate_ths is not None else "-"
    temp = f"{d.temp_max:.0f}" if d.temp_max is not None else "-"
    fans = " ".join(str(f) for f in d.fans[:4])
    return f"{ip:<16} {d.model[:22]:<22} {hr:>9}  {temp:>4}  {fans:<23} {pool[:40]}"


def main(argv: list[str], prog: str = "minectl poll", command: str = "poll") -> int:
    ap = _parser(prog)
    a = ap.parse_args(argv)
    from minectl_py.poller.targets import TargetError, from_state_dir, parse_targets

    bad = [
        (a.interval <= 0, "--interval must be positive"),
        (not 0 <= a.jitter < 1, "--jitter must be in [0, 1)"),
        (a.concurrency < 1, "--concurrency must be at least 1"),
        (a.connect_timeout <= 0 or a.timeout <= 0, "timeouts must be positive"),
        (a.batch < 1, "--batch must be at least 1"),
        (a.json and not a.once, "--json needs --once"),
    ]
    for cond, msg in bad:
        if cond:
            print(f"{prog}: {msg}", file=sys.stderr)
            return 2
    try:
        fixed = parse_targets(a.targets) if a.targets else None
    except TargetError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    state_dir = a.state_dir or config.state_dir()
    setup_logging(a.verbose)

    def get_targets() -> list[Any]:
        return fixed if fixed is not None else from_state_dir(state_dir)

    from minectl_py.miner.api import raise_fd_limit
    from minectl_py.poller.run import Settings
    from minectl_py.poller.sink import Sink

    raise_fd_limit(a.concurrency * 3 + 256)
    settings = Settings(
        concurrency=a.concurrency,
        connect_timeout=a.connect_timeout,
        timeout=a.timeout,
        batch=a.batch,
        backoff_max=a.backoff_max,
        grace=a.grace,
        keep_results=a.once,
    )
    sink = None if a.no_write else Sink(a.events or config.events_path(), state_dir)
    return asyncio.run(_amain(a, settings, sink, get_targets))


async def _amain(a: argparse.Namespace, settings: Any, sink: Any, get_targets: Any) -> int:
    from minectl_py.poller.run import Poller

    poller = Poller(settings, sink, config.nodename())
    loop = asyncio.get_running_loop()
    signalled: list[int] = []

    def on_signal(sig: int) -> None:
        if signalled:  # second signal: no more grace
            poller.s.grace = 0.0
        signalled.append(sig)
        logging.getLogger("minectl.poll").info("signal %d: stopping", sig)
        poller.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        if not a.once:
            logging.getLogger("minectl.poll").info("polling every %.0f s", a.interval)
            await poller.serve(get_targets, a.interval, a.jitter)
            return 130 if signalled and signal.SIGINT in signalled else 0
        targets = get_targets()
        if not targets:
            print(f"{'minectl poll'}: no targets (none given, none in the state directory)", file=sys.stderr)
            return 3
        st = await poller.run_cycle(targets)
        logging.getLogger("minectl.poll").info("%s", st.line())
        if a.json:
            out = []
            for t, r in st.results:
                item: dict[str, Any] = {"ip": t.ip, "mac": t.mac or (r.data.mac if r.data else None), "ok": r.ok}
                if r.ok and r.data is not None:
                    item["miner"] = r.data.to_dict()
                else:
                    item |= {"reason": r.reason, "detail": r.detail}
                item["elapsed_ms"] = r.elapsed_ms
                out.append(item)
            doc = {"targets": st.targets, "ok": st.ok, "failed": st.failed, "elapsed_s": round(st.elapsed_s, 3)}
            json.dump(doc | {"results": out}, sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            print(f"{'IP':<16} {'MODEL':<22} {'TH/s':>9}  {'TEMP':>4}  {'FANS':<23} POOL")
            for t, r in sorted(st.results, key=lambda x: tuple(int(p) for p in x[0].ip.split("."))):
                print(_row(t.ip, r))
            print(f"{st.ok} ok, {st.failed} failed of {st.targets} in {st.elapsed_s:.2f} s")
        if signalled:
            return 130
        if sink is not None and sink.errors:
            print(f"minectl poll: {sink.lost} results not recorded: {sink.last_error}", file=sys.stderr)
            return 4
        return 0 if st.failed == 0 and st.abandoned == 0 else 1
    finally:
        poller.close()
