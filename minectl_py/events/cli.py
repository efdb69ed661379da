"""``minectl events``: cat, count, tail, index and rotate the site event log."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from minectl_py import config
from minectl_py.events.reader import BadRecordError, EventReader, ReadStats, expand_paths
from minectl_py.events.record import encode, encode_plain
from minectl_py.events.segments import log_set
from minectl_py.timeparse import parse_time_ms

EPILOG = """\
Inputs: files (plain or gzip, also multi-member), globs ('data.2018070*.log.gz'), directories
(their events.log and its rotated segments) or '-' for stdin. With none, the site log:
$MINECTL_EVENTS (default {default}) and its rotated segments, oldest first.

Each input line may carry the fluentd prefix '<time>\\t<tag>\\t', a leading 0x1E or not, and
LF or CRLF. Bad records are counted and reported on stderr (file:line: reason: sample); the
records after them are still read. --strict makes the first bad record fatal (exit 1).

Times (--since/--until): epoch ms, ISO 8601 (UTC unless a zone is given), the seed's
20180704T143646-0700, or an age such as 90s, 15m, 1h, 2d. --until is exclusive.

--since/--until seek with the temporal index (a hidden .NAME.idx beside each file, built or
refreshed as needed; --no-index scans). 'tail' follows the live log across rotation.

Examples:
  minectl events cat --since 1h --type lease
  zcat data.2018070*.log.gz | minectl events cat - --lines | jq -c .
  minectl events count --json /var/log/fluent/data.*.log.gz
  minectl events cat --since 2018-07-04T10:00-07:00 --until 2018-07-04T11:00-07:00 data.20180704.log.gz
  minectl events tail --type poll_fail
  minectl events tail --from-start | jq --seq -c 'select(.cmd == "action")'
  minectl events index && minectl events compact --older-than 2d
"""


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", metavar="PATH", help="event files, globs, directories or - (stdin)")
    p.add_argument("--since", metavar="T", help="only records at or after T")
    p.add_argument("--until", metavar="T", help="only records before T")
    p.add_argument(
        "--type",
        action="append",
        metavar="CMD",
        dest="types",
        help="only records of this type (cmd); repeatable",
    )
    p.add_argument("--miner", metavar="MAC|IP|NAME", help="only records about this miner")
    p.add_argument("--strict", action="store_true", help="any bad record is fatal (exit 1)")
    p.add_argument("--no-index", action="store_true", help="scan instead of using the temporal index")


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Read, count, follow, index and rotate the site event log (RFC 7464 JSON text sequences).",
        epilog=EPILOG.format(default=config.DEFAULT_EVENTS),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="sub", metavar="SUBCOMMAND", required=True)
    c = sub.add_parser("cat", help="write records to stdout as RFC 7464 (or JSON lines)")
    _add_filters(c)
    c.add_argument("--lines", action="store_true", help="plain JSON lines instead of RS-framed records")
    n = sub.add_parser("count", help="count good and bad records")
    _add_filters(n)
    n.add_argument("--json", action="store_true", help='print {"records": N, "bad": M, ...}')
    t = sub.add_parser("tail", help="follow the live log across rotation (like tail -F)")
    _add_filters(t)
    t.add_argument("--lines", action="store_true", help="plain JSON lines instead of RS-framed records")
    t.add_argument("--from-start", action="store_true", help="replay the whole log first, then follow")
    t.add_argument(
        "--idle-exit", type=float, metavar="S", help="exit after S seconds without new records (default: never)"
    )
    ix = sub.add_parser("index", help="build or refresh the temporal index of event files")
    ix.add_argument("paths", nargs="*", metavar="PATH")
    ix.add_argument("--force", action="store_true", help="rebuild even if the index is fresh")
    ix.add_argument("--json", action="store_true", help="one object per file instead of a table")
    cp = sub.add_parser("compact", help="gzip old rotated segments (many members, so they stay seekable)")
    cp.add_argument("--log", metavar="PATH", help="live log (default $MINECTL_EVENTS)")
    cp.add_argument("--older-than", default="2d", metavar="AGE", help="only segments of days this old (2d)")
    cp.add_argument("--member-mb", type=float, default=2.0, help="MiB of text per gzip member (2)")
    cp.add_argument("--json", action="store_true")
    r = sub.add_parser("rotate", help="rotate the live log now (normally automatic at the first write of a day)")
    r.add_argument("--log", metavar="PATH", help="live log (default $MINECTL_EVENTS)")
    return p


def miner_matcher(sel: str) -> Callable[[dict[str, Any]], bool]:
    """Match a record about a miner by MAC, IP or name (hostname)."""
    s = sel.strip().lower()

    def match(rec: dict[str, Any]) -> bool:
        for k in ("mac", "ip", "target", "hostname", "name"):
            v = rec.get(k)
            if isinstance(v, str) and v.lower() == s:
                return True
        return False

    return match


def reader_from_args(a: argparse.Namespace, stats: ReadStats) -> EventReader:
    paths = expand_paths(a.paths, default=lambda: log_set(config.events_path()))
    kw: dict[str, Any] = {
        "strict": a.strict,
        "types": a.types,
        "stats": stats,
        "since_ms": parse_time_ms(a.since) if a.since else None,
        "until_ms": parse_time_ms(a.until) if a.until else None,
        "where": miner_matcher(a.miner) if a.miner else None,
    }
    if not getattr(a, "no_index", False) and (kw["since_ms"] is not None or kw["until_ms"] is not None):
        try:
            from minectl_py.events.index import IndexedReader
        except ImportError:
            pass
        else:
            return IndexedReader(paths, **kw)
    return EventReader(paths, **kw)


def report_bad(stats: ReadStats) -> None:
    if not stats.bad:
        return
    for b in stats.samples:
        print(f"minectl events: bad record: {b}", file=sys.stderr)
    more = stats.bad - len(stats.samples)
    tail = f" ({more} more not shown)" if more > 0 else ""
    reasons = ", ".join(f"{k}: {v}" for k, v in sorted(stats.reasons.items()))
    print(f"minectl events: {stats.bad} bad record(s){tail} [{reasons}]", file=sys.stderr)


def main(argv: list[str], prog: str = "minectl events", command: str = "events") -> int:
    a = build_parser(prog).parse_args(argv)
    stats = ReadStats()
    try:
        if a.sub == "cat":
            return _cat(a, stats)
        if a.sub == "count":
            return _count(a, stats)
        if a.sub == "tail":
            from minectl_py.events.follow import tail_main

            return tail_main(a, stats)
        if a.sub == "index":
            return index_main(a)
        if a.sub == "compact":
            return _compact(a)
        if a.sub == "rotate":
            from minectl_py.events.writer import EventWriter

            with EventWriter(a.log or config.events_path()) as w:
                seg = w.rotate_now()
            print(seg or "nothing to rotate (live log empty or missing)")
            return 0
    except BadRecordError as e:
        print(f"minectl events: bad record (strict): {e}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as e:
        print(f"minectl events: {e}", file=sys.stderr)
        return 2
    return 2


def _compact(a: argparse.Namespace) -> int:
    from minectl_py.events.compact import compact
    from minectl_py.timeparse import parse_duration_ms

    done = compact(
        a.log or config.events_path(),
        older_than_days=parse_duration_ms(a.older_than) / 86_400_000,
        member_bytes=int(a.member_mb * (1 << 20)),
    )
    if a.json:
        print(json.dumps(done))
    else:
        for d in done:
            print(f"{d['compressed']}: {d['bytes']} -> {d['gzip_bytes']} bytes, {d['members']} members")
        if not done:
            print("nothing to compact")
    return 0


def _cat(a: argparse.Namespace, stats: ReadStats) -> int:
    out = sys.stdout.buffer
    enc = encode_plain if a.lines else encode
    buf: list[bytes] = []
    for rec in reader_from_args(a, stats):
        buf.append(enc(rec))
        if len(buf) >= 1024:
            out.write(b"".join(buf))
            buf.clear()
    out.write(b"".join(buf))
    out.flush()
    report_bad(stats)
    return 0


def _count(a: argparse.Namespace, stats: ReadStats) -> int:
    n = 0
    for _ in reader_from_args(a, stats):
        n += 1
    if a.json:
        d = stats.as_dict()
        d["good"] = d["records"]  # every well-formed record read
        d["records"] = n  # the ones that passed the filters
        print(json.dumps(d))
    else:
        print(f"{n} matching record(s); {stats.records} good, {stats.bad} bad, in {len(stats.sources)} source(s)")
        report_bad(stats)
    return 0


def index_main(a: Any) -> int:
    """``minectl events index [PATHS] [--force] [--json]``."""
    from minectl_py.events.index import cache_path, ensure, sidecar_path
    from minectl_py.timeparse import format_ms

    paths = [p for p in expand_paths(a.paths, default=lambda: log_set(config.events_path())) if p != "-"]
    rows = []
    for p in paths:
        with open(p, "rb") as f:
            idx, how = ensure(p, f, force=a.force)
        times = [b[0] for b in idx.blocks if b[0] is not None] + [b[1] for b in idx.blocks if b[1] is not None]
        rows.append(
            {
                "path": p,
                "status": how,
                "blocks": len(idx.blocks),
                "lines": idx.lines,
                "gzip": idx.gzip,
                "first_ms": min(times) if times else None,
                "last_ms": max(times) if times else None,
                "unindexed_bytes": idx.size - idx.end,
                "sidecar": sidecar_path(p) if os.path.exists(sidecar_path(p)) else cache_path(p),
            }
        )
    if getattr(a, "json", False):
        print(json.dumps(rows))
        return 0
    if not rows:
        print("no event files", file=sys.stderr)
        return 3
    print(f"{'status':<9} {'blocks':>6} {'lines':>10}  {'first (UTC)':<20} {'last (UTC)':<20} path")
    for r in rows:
        first = format_ms(r["first_ms"]) if r["first_ms"] is not None else "-"
        last = format_ms(r["last_ms"]) if r["last_ms"] is not None else "-"
        print(f"{r['status']:<9} {r['blocks']:>6} {r['lines']:>10}  {first:<20} {last:<20} {r['path']}")
    return 0
