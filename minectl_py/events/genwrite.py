"""Writing generated site records to files: the aggregator's line form, gzip members, daily files.

Used through :mod:`minectl_py.events.generate` (which re-exports ``write``, ``write_daily``
and ``main``); see its docstring for the API.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from minectl_py.events.record import dumps

FORMATS = ("fluentd", "rs", "lines")
MEMBER_BYTES = 4 << 20
_BATCH = 2000


def _tz_seconds(tz: str) -> int:
    """``-0700`` -> -25200. Raises ValueError naming the input."""
    t = tz.replace(":", "")
    if len(t) != 5 or t[0] not in "+-" or not t[1:].isdigit():
        raise ValueError(f"not a UTC offset: {tz!r} (use e.g. -0700 or +00:00)")
    secs = int(t[1:3]) * 3600 + int(t[3:5]) * 60
    return -secs if t[0] == "-" else secs


class LineFormatter:
    """Record -> bytes in one of :data:`FORMATS`. The fluentd prefix is the record's time, to
    the second, in the zone ``tz`` (``20180704T143646-0700``), then the tag, TAB-separated."""

    def __init__(self, fmt: str = "fluentd", tz: str = "-0700", tag: str = "mainstream") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        self.fmt = fmt
        self.off = _tz_seconds(tz)
        self.suffix = ("-" if self.off < 0 else "+") + f"{abs(self.off) // 3600:02d}{abs(self.off) % 3600 // 60:02d}"
        self.tag = tag.encode()
        self._sec = -1
        self._prefix = b""

    def prefix(self, t_ms: int) -> bytes:
        sec = t_ms // 1000
        if sec != self._sec:
            self._sec = sec
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(sec + self.off)) + self.suffix
            self._prefix = stamp.encode() + b"\t" + self.tag + b"\t"
        return self._prefix

    def day(self, t_ms: int) -> str:
        return time.strftime("%Y%m%d", time.gmtime(t_ms // 1000 + self.off))

    def line(self, rec: dict[str, Any]) -> bytes:
        body = dumps(rec)
        if self.fmt == "fluentd":
            return self.prefix(int(rec["created_at_ms"])) + body + b"\n"
        if self.fmt == "rs":
            return b"\x1e" + body + b"\n"
        return body + b"\n"


def _corrupt(line: bytes, k: int) -> bytes:
    """A bad line derived from a good one (kinds rotate): truncated JSON, garbage, bad UTF-8."""
    kind = k % 3
    if kind == 0:
        return line[: max(len(line) // 2, 1)].rstrip(b"\n") + b"\n"
    if kind == 1:
        return line[: line.find(b"{")] + b"<html>502 Bad Gateway</html>\n"
    return line[: line.find(b"{")] + b'{"cmd":"poll","x":"\xff\xfe"}\n'


class _Sink:
    """Plain or gzip (a new member every ``member_bytes`` of text) output."""

    def __init__(self, out: BinaryIO, gzip: bool, member_bytes: int, level: int = 6) -> None:
        self.out = out
        self.gzip = gzip
        self.member_bytes = member_bytes
        self.level = level
        self._z: Any = None
        self._in_member = 0
        self.members = 0

    def write(self, data: bytes) -> None:
        if not self.gzip:
            self.out.write(data)
            return
        if self._z is None:
            self._z = zlib.compressobj(self.level, zlib.DEFLATED, 31)
            self.members += 1
        self.out.write(self._z.compress(data))
        self._in_member += len(data)
        if self._in_member >= self.member_bytes:
            self.end_member()

    def end_member(self) -> None:
        if self._z is not None:
            self.out.write(self._z.flush())
            self._z = None
            self._in_member = 0


def _write_lines(
    sink: _Sink, recs: Iterator[dict[str, Any]], fmt: LineFormatter, bad_every: int, stats: dict[str, Any]
) -> None:
    buf: list[bytes] = []
    size = 0
    for rec in recs:
        line = fmt.line(rec)
        buf.append(line)
        stats["records"] += 1
        if stats["first_ms"] is None:
            stats["first_ms"] = int(rec["created_at_ms"])
        stats["last_ms"] = int(rec["created_at_ms"])
        if bad_every and stats["records"] % bad_every == 0:
            buf.append(_corrupt(line, stats["bad"]))
            stats["bad"] += 1
        size += len(line)
        if len(buf) >= _BATCH or (sink.gzip and sink._in_member + size >= sink.member_bytes):
            data = b"".join(buf)
            stats["bytes"] += len(data)
            sink.write(data)
            buf.clear()
            size = 0
    if buf:
        data = b"".join(buf)
        stats["bytes"] += len(data)
        sink.write(data)
    sink.end_member()


def _new_stats() -> dict[str, Any]:
    return {"records": 0, "bad": 0, "bytes": 0, "first_ms": None, "last_ms": None, "members": 0}


def write(
    path: str,
    records: Iterable[dict[str, Any]],
    *,
    fmt: str = "fluentd",
    gzip: bool | None = None,
    tz: str = "-0700",
    tag: str = "mainstream",
    member_bytes: int = MEMBER_BYTES,
    bad_every: int = 0,
) -> dict[str, Any]:
    """Write ``records`` to ``path`` (``-``: stdout). ``gzip=None``: by the ``.gz`` suffix.
    Returns ``{"records", "bad", "bytes" (uncompressed), "first_ms", "last_ms", "members"}``."""
    formatter = LineFormatter(fmt, tz, tag)
    gz = path.endswith(".gz") if gzip is None else gzip
    stats = _new_stats()
    if path == "-":
        sink = _Sink(sys.stdout.buffer, gz, member_bytes)
        _write_lines(sink, iter(records), formatter, bad_every, stats)
        sys.stdout.buffer.flush()
    else:
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "wb", buffering=1 << 20) as f:
            sink = _Sink(f, gz, member_bytes)
            _write_lines(sink, iter(records), formatter, bad_every, stats)
        os.replace(tmp, path)
    stats["members"] = sink.members
    return stats


def write_daily(
    directory: str,
    records: Iterable[dict[str, Any]],
    *,
    fmt: str = "fluentd",
    tz: str = "-0700",
    tag: str = "mainstream",
    pattern: str = "data.{day}.log.gz",
    member_bytes: int = MEMBER_BYTES,
    bad_every: int = 0,
) -> dict[str, Any]:
    """The aggregator's layout: one gzip file per local day (``tz``) in ``directory``,
    named by ``pattern``. Returns the totals plus ``"files"`` (the paths, in order)."""
    os.makedirs(directory, exist_ok=True)
    formatter = LineFormatter(fmt, tz, tag)
    total = _new_stats()
    total["files"] = []
    it = iter(records)
    pending: dict[str, Any] | None = next(it, None)
    while pending is not None:
        day = formatter.day(int(pending["created_at_ms"]))
        first = pending

        def same_day(first: dict[str, Any] = first, day: str = day) -> Iterator[dict[str, Any]]:
            nonlocal pending
            yield first
            for r in it:
                if formatter.day(int(r["created_at_ms"])) != day:
                    pending = r
                    return
                yield r
            pending = None

        path = os.path.join(directory, pattern.format(day=day))
        st = write(
            path,
            same_day(),
            fmt=fmt,
            gzip=path.endswith(".gz"),
            tz=tz,
            tag=tag,
            member_bytes=member_bytes,
            bad_every=bad_every,
        )
        total["files"].append(path)
        for k in ("records", "bad", "bytes", "members"):
            total[k] += st[k]
        total["first_ms"] = total["first_ms"] or st["first_ms"]
        total["last_ms"] = st["last_ms"]
    return total


EPILOG = """\
Examples:
  python -m minectl_py.events.generate --records 1000000 --seed 1 -o site-1m.log.gz
  python -m minectl_py.events.generate --duration 2d --miners 200 --daily agg/
  python -m minectl_py.events.generate --records 5000 --format rs -o events.log
  python -m minectl_py.events.generate --records 20 --format lines -o - | jq -c .miner.model

The same --seed and options always give byte-identical files. A summary goes to stderr
(JSON with --json).
"""


def main(argv: list[str] | None = None) -> int:
    from minectl_py.events.generate import Site, generate
    from minectl_py.timeparse import parse_duration_ms, parse_time_ms

    ap = argparse.ArgumentParser(
        prog="python -m minectl_py.events.generate",
        description="Generate realistic site event files (deterministic for a seed, streaming).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("-o", "--output", default="-", help="output file (.gz: gzip), - for stdout (default)")
    ap.add_argument("--daily", metavar="DIR", help="write DIR/data.YYYYMMDD.log.gz per day instead of -o")
    ap.add_argument("--records", type=int, help="stop after this many records")
    ap.add_argument("--duration", help="stop after this much site time (e.g. 6h, 2d)")
    ap.add_argument("--miners", type=int, default=1000, help="miners at the site (default 1000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", help="site time of the first record (default 2018-07-04T00:00-07:00)")
    ap.add_argument("--poll-interval", type=int, default=60, metavar="S", help="seconds between polls (60)")
    ap.add_argument("--fault-rate", type=float, default=0.002, help="chance per miner and poll of a fault")
    ap.add_argument("--nodename", default="overlord")
    ap.add_argument("--format", choices=FORMATS, default="fluentd", help="line form (default fluentd)")
    ap.add_argument("--gzip", action=argparse.BooleanOptionalAction, default=None, help="default: by .gz suffix")
    ap.add_argument("--tz", default="-0700", help="zone of the fluentd time prefix and daily files")
    ap.add_argument("--tag", default="mainstream")
    ap.add_argument("--member-mb", type=float, default=4.0, help="MiB of text per gzip member (default 4)")
    ap.add_argument("--bad-every", type=int, default=0, metavar="N", help="a corrupt line after every N-th record")
    ap.add_argument("--json", action="store_true", help="summary as JSON")
    a = ap.parse_args(argv)
    if a.records is None and a.duration is None:
        ap.error("give --records N or --duration D (the generator is endless otherwise)")
    try:
        site = Site(
            miners=a.miners,
            seed=a.seed,
            poll_interval_s=a.poll_interval,
            fault_rate=a.fault_rate,
            nodename=a.nodename,
            records=a.records,
            duration_s=parse_duration_ms(a.duration) / 1000 if a.duration else None,
        )
        if a.start:
            site.start_ms = parse_time_ms(a.start)
        kw = {"fmt": a.format, "tz": a.tz, "tag": a.tag, "member_bytes": int(a.member_mb * (1 << 20))}
        t0 = time.perf_counter()
        if a.daily:
            st = write_daily(a.daily, generate(site), bad_every=a.bad_every, **kw)  # type: ignore[arg-type]
        else:
            st = write(a.output, generate(site), gzip=a.gzip, bad_every=a.bad_every, **kw)  # type: ignore[arg-type]
        st["seconds"] = round(time.perf_counter() - t0, 3)
    except ValueError as e:
        print(f"generate: {e}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(st), file=sys.stderr)
    else:
        where = a.daily or a.output
        print(f"generate: {st['records']} records ({st['bad']} bad) to {where} in {st['seconds']} s", file=sys.stderr)
    return 0
