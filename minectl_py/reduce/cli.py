"""``minectl reduce NAME [PATHS|-]``: replay events into views (tables, SQLite, MariaDB, InfluxDB)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import Any

from minectl_py import config
from minectl_py.events.reader import BadRecordError, ReadStats, expand_paths
from minectl_py.events.segments import log_set
from minectl_py.reduce.base import Context, Options
from minectl_py.reduce.engine import NAME_VIEWS, REDUCTIONS, Engine
from minectl_py.reduce.inventory import Inventory, InventoryError
from minectl_py.reduce.sink_stdout import FORMATS, StdoutSink
from minectl_py.reduce.sinks import SinkError, open_sink
from minectl_py.reduce.source import FastReader, prefilters_for
from minectl_py.reduce.views import ALL, PERIODS
from minectl_py.timeparse import parse_duration_ms, parse_time_ms

EPILOG = """\
Reductions (NAME; without one: all when writing to databases, else hashrate):
hashrate (per miner, rack and site), underperformers (below --underperform % of nominal
over 5/60 min), availability (polls answered, uptime, restarts), states (miners by
state), temperature (temperatures and fans), leases (lease churn), timeline (faults and admin
actions), all (every view in one pass).

Every view has one-minute rows and 5 and 60 minute rollups (--period picks what is printed).
Inputs: files, globs, directories or '-' (stdin; the default when stdin is a pipe); gzip or
plain, with or without the fluentd prefix or RS. With no input and a terminal: the site log.
Bad records are counted and reported on stderr, never fatal.

Databases (--db, repeatable; upserts, so re-running the same input changes nothing):
  FILE.sqlite | sqlite:FILE                      SQLite file (no server)
  mysql://USER[:PASS]@HOST[:PORT]/DB             MariaDB/MySQL (also ?unix_socket=PATH)
  influx://HOST:PORT/DB                          InfluxDB 1.x (retention policies m1/m5/h1,
                                                 continuous queries for 5 and 60 minutes)
Passwords can come from $MINECTL_DB_PASSWORD instead of the URL.

Examples:
  zcat data.2018070*.log.gz | grep -o '{.*' | minectl reduce hashrate
  zcat data.2018070*.log.gz | minectl reduce hashrate --period 5m --csv
  minectl reduce all 'data.2018070*.log.gz' --inventory site.csv --db views.sqlite
  minectl reduce hashrate --view hashrate_rack --inventory site.csv data.20180704.log.gz
  minectl reduce all --since 2h --db mysql://reducer@localhost/minectl
  minectl reduce all --follow --db influx://127.0.0.1:8086/minectl
  minectl reduce 'data.2018070*.log.gz' --inventory site.csv --report report/   # plots + index.html
"""


def _period(text: str) -> int:
    s = int(parse_duration_ms(text) // 1000)
    if s not in PERIODS:
        raise argparse.ArgumentTypeError(f"period must be one of 1m, 5m, 60m (got {text!r})")
    return s


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        usage="%(prog)s [NAME] [PATH ...|-] [options]",
        description="Replay site events into views: per-minute hashrate, availability, temperatures, "
        "lease churn, underperformers, a timeline; printed, or upserted into SQLite, MariaDB, InfluxDB.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="*", metavar="[NAME] PATH", help="reduction (all with --db, else hashrate), inputs")
    p.add_argument("--since", metavar="T", help="only events at or after T (uses the temporal index)")
    p.add_argument("--until", metavar="T", help="only events before T")
    p.add_argument("--follow", action="store_true", help="replay the live log, then follow it (across rotation)")
    p.add_argument("--from-now", action="store_true", help="with --follow: skip what is already in the log")
    p.add_argument("--idle-exit", type=float, metavar="S", help="with --follow: stop after S seconds without news")
    p.add_argument("--no-index", action="store_true", help="scan instead of using the temporal index")
    p.add_argument("--inventory", metavar="CSV", help="site CSV mac,name,rack,shelf,position,model")
    p.add_argument("--db", action="append", default=[], metavar="URL", help="materialize into this database")
    p.add_argument("--mysql", action="append", default=[], metavar="URL", help="same as --db mysql://...")
    p.add_argument("--influx", action="append", default=[], metavar="URL", help="same as --db influx://HOST:PORT/DB")
    p.add_argument("--view", choices=sorted(ALL), help="view to print (default: the reduction's main one)")
    p.add_argument("--period", type=_period, default=60, metavar="1m|5m|60m", help="rows to print (default 1m)")
    p.add_argument("--format", choices=FORMATS, default=None, help="print as table (default), csv or json")
    p.add_argument("--csv", action="store_const", const="csv", dest="format", help="same as --format csv")
    p.add_argument("--json", action="store_const", const="json", dest="format", help="JSON text sequence rows")
    p.add_argument("--print", action="store_true", help="print the view even when writing to --db")
    p.add_argument("--lateness", default="5m", metavar="DUR", help="how late a record may arrive (default 5m)")
    p.add_argument("--underperform", type=float, default=90.0, metavar="PCT", help="threshold, %% of nominal")
    p.add_argument("--stats", action="store_true", help="print a JSON summary of what was read on stderr")
    p.add_argument("--report", metavar="DIR", help="also write PNG plots and index.html (all views; DIR/views.sqlite)")
    return p


def _paths(a: argparse.Namespace) -> list[str]:
    if a.follow:
        return list(a.paths)  # the live log (or its directory) itself, not its segments
    if not a.paths and not sys.stdin.isatty():
        return ["-"]
    return expand_paths(a.paths, default=lambda: log_set(config.events_path()))


def _records(
    a: argparse.Namespace,
    paths: list[str],
    stats: ReadStats,
    cmds: frozenset[str],
    on_invalid: Any,
    on_idle: Any,
    rec_type: type,
) -> Any:
    since = parse_time_ms(a.since) if a.since else None
    until = parse_time_ms(a.until) if a.until else None
    kw: dict[str, Any] = {"since_ms": since, "until_ms": until, "stats": stats}
    if a.follow:
        from minectl_py.events.follow import Follower

        live = paths[0] if paths else config.events_path()
        if len(paths) > 1 or live == "-":
            raise ValueError("--follow follows one live log (a file or its directory), not several inputs")
        if os.path.isdir(live):
            live = os.path.join(live, "events.log")
        return Follower(
            live,
            from_start=not a.from_now,
            idle_timeout=a.idle_exit,
            on_idle=on_idle,
            types=sorted(cmds),
            **kw,
        )
    if (since is not None or until is not None) and not a.no_index and "-" not in paths:
        try:
            from minectl_py.events.index import IndexedReader
        except ImportError:
            pass
        else:
            return IndexedReader(paths, types=cmds, **kw)
    return FastReader(paths, prefilters=prefilters_for(cmds), on_invalid=on_invalid, rec_type=rec_type, **kw)


def main(argv: list[str], prog: str = "minectl reduce", command: str = "reduce") -> int:
    p = build_parser(prog)
    a = p.parse_intermixed_args(argv)
    if a.paths and a.paths[0] in REDUCTIONS:
        a.name = a.paths.pop(0)
    else:  # no NAME: every view into databases, or the site's hashrate printed
        a.name = "all" if (a.db or a.mysql or a.influx) else "hashrate"
    a.db += a.mysql + [_influx_url(u) for u in a.influx]
    report_db = None
    if a.report:
        a.name = "all"
        report_db = next((u for u in a.db if u.endswith((".sqlite", ".db")) or u.startswith("sqlite:")), None)
        if report_db is None:
            os.makedirs(a.report, exist_ok=True)
            report_db = os.path.join(a.report, "views.sqlite")
            a.db.append(report_db)
        report_db = report_db.removeprefix("sqlite:")
    try:
        lateness = int(parse_duration_ms(a.lateness) // 1000)
        inv = Inventory.from_csv(a.inventory) if a.inventory else Inventory()
        sinks: list[Any] = [open_sink(u) for u in a.db]
    except SinkError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    except (ValueError, InventoryError, OSError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    view = a.view or REDUCTIONS[a.name][1]
    wanted = set(NAME_VIEWS[a.name]) if sinks else set()
    if not sinks or a.print or a.format:
        sinks.append(StdoutSink(view, a.period if ALL[view].periodic else None, a.format or "table"))
        wanted.add(view)
    ctx = Context(inventory=inv, options=Options(underperform_pct=a.underperform), wanted=frozenset(wanted))
    stats = ReadStats()
    rc = 0
    eng: Engine | None = None
    signal.signal(signal.SIGTERM, _terminate)
    try:
        eng = Engine([a.name] if view in NAME_VIEWS[a.name] else [a.name, _owner(view)], sinks, ctx, lateness)
        paths = _paths(a)
        src = _records(a, paths, stats, eng.cmds, ctx.bad, _idle_flusher(sinks), eng.rec_type)
        if isinstance(src, FastReader):
            eng.feed_batches(src.batches())
        else:
            eng.feed_all(src)
        eng.finish()
    except (FileNotFoundError, ValueError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    except BadRecordError as e:
        print(f"{prog}: bad record: {e}", file=sys.stderr)
        return 1
    except SinkError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        rc = 1
    except KeyboardInterrupt as e:
        rc = 0 if isinstance(e, Terminated) else 130
        try:
            if eng is not None:
                eng.finish()  # what was read is written before we go
        except SinkError as err:
            print(f"{prog}: {err}", file=sys.stderr)
            rc = 1
    finally:
        for s in sinks:
            try:
                s.close()
            except SinkError as e:
                print(f"{prog}: {e}", file=sys.stderr)
                rc = rc or 1
    _report(prog, a, stats, ctx, eng)
    if rc == 0 and report_db is not None:
        from minectl_py.reduce.report import build

        try:
            print(f"{prog}: report: {build(report_db, a.report)}", file=sys.stderr)
        except (ValueError, OSError) as e:
            print(f"{prog}: report: {e}", file=sys.stderr)
            rc = 1
    return rc


class Terminated(KeyboardInterrupt):
    """SIGTERM (systemd stopping the reducer): finish the open minutes, flush, exit 0."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated()


def _idle_flusher(sinks: list[Any], every_s: float = 5.0) -> Any:
    """While following: write what is buffered when the log is quiet (at most every 5 s)."""
    last = [0.0]

    def on_idle() -> None:
        now = time.monotonic()
        if now - last[0] >= every_s:
            last[0] = now
            for s in sinks:
                s.flush()

    return on_idle


def _influx_url(u: str) -> str:
    """``http://HOST:PORT/DB`` (as Grafana writes it) -> ``influx://HOST:PORT/DB``."""
    for pre in ("http://", "https://"):
        if u.startswith(pre):
            return "influx://" + u[len(pre) :]
    return u if "://" in u else "influx://" + u


def _owner(view: str) -> str:
    for name, views in NAME_VIEWS.items():
        if view in views and name != "all":
            return name
    return "all"


def _report(prog: str, a: argparse.Namespace, stats: ReadStats, ctx: Context, eng: Engine | None) -> None:
    for b in stats.samples:
        print(f"{prog}: bad record: {b}", file=sys.stderr)
    for s in ctx.invalid_samples[:5]:
        print(f"{prog}: invalid record: {s}", file=sys.stderr)
    if stats.bad or ctx.invalid or ctx.late:
        print(
            f"{prog}: {stats.bad} bad record(s), {ctx.invalid} invalid, {ctx.late} too late (more than "
            f"--lateness {a.lateness} behind) of {stats.records} read",
            file=sys.stderr,
        )
    if a.stats:
        d = stats.as_dict()
        d.update(invalid=ctx.invalid, late=ctx.late, used=eng.records if eng else 0, rows=eng.rows if eng else 0)
        print(json.dumps(d), file=sys.stderr)


if os.environ.get("MINECTL_REDUCE_PROFILE"):  # pragma: no cover - developer aid
    import cProfile

    _main = main

    def main(argv: list[str], prog: str = "minectl reduce", command: str = "reduce") -> int:  # type: ignore[no-redef]
        with cProfile.Profile() as pr:
            rc = _main(argv, prog, command)
        pr.dump_stats(os.environ["MINECTL_REDUCE_PROFILE"])
        return rc
