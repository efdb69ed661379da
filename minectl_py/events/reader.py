"""Reading event records from anything: files, gzip (multi-member), globs, stdin.

One reader for every input. Each line may carry:

* the fluentd prefix ``<time>\\t<tag>\\t`` (the aggregator's daily files),
* a leading 0x1E (RFC 7464) or not, and more than one (ignored, RFC 7464 section 2.1),
* a CRLF or LF ending.

Bad records (not JSON, not an object, invalid UTF-8, a truncated last line) are counted and
reported with file, line and a short, terminal-safe sample; reading goes on with the next
record. ``strict=True`` makes the first bad record raise :class:`BadRecordError`.

The reader works on bytes in large chunks; ``prefilter`` (a byte string every wanted record
contains, e.g. ``b'"cmd":"poll"'``) skips JSON parsing of the rest, which is how reductions
stay close to the speed of decompression.
"""

from __future__ import annotations

import glob
import io
import itertools
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from minectl_py.events.gzipstream import GzipStream

try:  # optional: 3-5x faster parsing when installed
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - depends on the environment
    _fast_loads = None

RS = 0x1E
CHUNK = 1 << 20
#: Gzip files at least this big are decompressed in a second thread (zlib releases the GIL).
READ_AHEAD_BYTES = 4 << 20
#: How many bad records keep their sample for the report (the count is always exact).
MAX_SAMPLES = 20
SAMPLE_LEN = 80


@dataclass(frozen=True, slots=True)
class BadRecord:
    source: str
    line: int
    reason: str
    sample: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}: {self.sample}"


class BadRecordError(ValueError):
    def __init__(self, bad: BadRecord) -> None:
        super().__init__(str(bad))
        self.bad = bad


@dataclass(slots=True)
class ReadStats:
    """What a read saw. ``records`` counts good records (before time/type filters)."""

    records: int = 0
    bad: int = 0
    skipped: int = 0  # good records left out by a filter
    blocks_skipped: int = 0  # index blocks not read (see events.index)
    sources: list[str] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    samples: list[BadRecord] = field(default_factory=list)
    on_bad: Callable[[BadRecord], None] | None = None  # e.g. report at once while following

    def add_bad(self, bad: BadRecord) -> None:
        self.bad += 1
        self.reasons[bad.reason] += 1
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(bad)
        if self.on_bad is not None:
            self.on_bad(bad)

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "bad": self.bad,
            "skipped": self.skipped,
            "index_blocks_skipped": self.blocks_skipped,
            "sources": self.sources,
            "bad_reasons": dict(self.reasons),
            "bad_samples": [
                {"source": b.source, "line": b.line, "reason": b.reason, "sample": b.sample} for b in self.samples
            ],
        }


def printable(data: bytes, limit: int = SAMPLE_LEN) -> str:
    """A short sample that is safe to print on a terminal: control bytes are escaped."""
    text = data[:limit].decode("utf-8", "backslashreplace")
    out = []
    for ch in text:
        o = ord(ch)
        if o < 0x20 or o == 0x7F or 0x80 <= o < 0xA0:
            out.append(f"\\x{o:02x}")
        else:
            out.append(ch)
    return "".join(out) + ("..." if len(data) > limit else "")


# ---------------------------------------------------------------------------- parsing
def strip_prefix(line: bytes) -> bytes:
    """Remove an optional fluentd ``<time>\\t<tag>\\t`` prefix and leading RS bytes."""
    if line[:1] == b"{":
        return line
    if line[:1] != b"\x1e":
        i = line.find(b"\t")
        if i >= 0:
            j = line.find(b"\t", i + 1)
            if j >= 0:
                line = line[j + 1 :]
    return line.lstrip(b"\x1e \t")


def loads(text: bytes) -> Any:
    if _fast_loads is not None:
        try:
            return _fast_loads(text)
        except ValueError:
            pass  # orjson is stricter (big ints, lone surrogates): let json decide
    return json.loads(text)


def classify(text: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """Parse one record's text. Returns ``(record, None)`` or ``(None, reason)``."""
    try:
        obj = loads(text)
    except UnicodeDecodeError:
        return None, "invalid UTF-8"
    except ValueError:
        try:
            text.decode("utf-8")
        except UnicodeDecodeError:
            return None, "invalid UTF-8"
        return None, "not JSON"
    except RecursionError:
        return None, "not JSON"
    if not isinstance(obj, dict):
        return None, "not an object"
    return obj, None


# ------------------------------------------------------------------------------ sources
def open_binary(path: str) -> BinaryIO:
    """Open a path (or ``-`` for stdin) for reading; gzip is detected by its magic bytes."""
    if path == "-":
        raw: BinaryIO = sys.stdin.buffer
        if not isinstance(raw, io.BufferedReader):
            raw = io.BufferedReader(raw)  # type: ignore[arg-type]
        if raw.peek(2)[:2] == b"\x1f\x8b":
            return GzipStream(raw)  # type: ignore[return-value]
        return raw
    f = open(path, "rb")  # noqa: SIM115 - returned to the caller
    if f.read(2) == b"\x1f\x8b":
        f.seek(0)
        gz = GzipStream(f)
        if os.fstat(f.fileno()).st_size >= READ_AHEAD_BYTES:
            from minectl_py.events.readahead import ReadAhead

            return ReadAhead(gz)  # type: ignore[return-value]
        return gz  # type: ignore[return-value]
    f.seek(0)
    return f


def expand_paths(paths: Iterable[str] | None, default: Callable[[], list[str]] | None = None) -> list[str]:
    """Globs are expanded (sorted); ``-`` is stdin; no paths means ``default()``."""
    out: list[str] = []
    for p in paths or []:
        if p == "-":
            out.append(p)
            continue
        if any(c in p for c in "*?["):
            matched = sorted(glob.glob(p))
            if not matched:
                raise FileNotFoundError(f"no file matches {p!r}")
            out.extend(matched)
        elif os.path.isdir(p):
            from minectl_py.events.segments import log_set

            out.extend(log_set(os.path.join(p, "events.log")))
        else:
            if not os.path.exists(p):
                raise FileNotFoundError(f"no such event file: {p}")
            out.append(p)
    if not out and default is not None:
        out = default()
    return out


# ----------------------------------------------------------------------------- reading
def iter_lines(stream: Any, chunk: int = CHUNK) -> Iterator[tuple[bytes, bool]]:
    """Yield ``(line, complete)`` with the LF (and a CR before it) removed.

    ``complete`` is False only for a last line that had no LF.
    """
    rest = b""
    while True:
        buf = stream.read(chunk)
        if not buf:
            break
        if rest:
            buf = rest + buf
        lines = buf.split(b"\n")
        rest = lines.pop()
        for ln in lines:
            yield (ln[:-1] if ln[-1:] == b"\r" else ln), True
    if rest:
        yield (rest[:-1] if rest[-1:] == b"\r" else rest), False


@dataclass(slots=True)
class Position:
    """Where a record came from: the source, its 1-based line, and the line's byte offset
    in the decompressed stream (for the temporal index)."""

    source: str = ""
    line: int = 0


class EventReader:
    """Iterate over good records of one or more sources, in order.

    Filters (``since_ms``/``until_ms`` on ``created_at_ms``, ``types`` on ``cmd``,
    ``where`` for anything else) apply after parsing. ``prefilter`` skips parsing of lines
    that do not contain the given bytes; such lines are neither counted as records nor
    checked for badness, so use it only where that is acceptable (reductions).
    """

    def __init__(
        self,
        paths: Iterable[str],
        *,
        strict: bool = False,
        since_ms: int | None = None,
        until_ms: int | None = None,
        types: Iterable[str] | None = None,
        where: Callable[[dict[str, Any]], bool] | None = None,
        prefilter: bytes | None = None,
        stats: ReadStats | None = None,
    ) -> None:
        self.paths = list(paths)
        self.strict = strict
        self.since_ms = since_ms
        self.until_ms = until_ms
        self.types = frozenset(types) if types else None
        self.where = where
        self.prefilter = prefilter
        self.stats = stats if stats is not None else ReadStats()
        self.pos = Position()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for path in self.paths:
            with self._source(path, open_binary) as (stream, name):
                yield from self.read_stream(stream, name)

    @contextmanager
    def _source(self, path: str, opener: Callable[[str], Any]) -> Iterator[tuple[Any, str]]:
        """``(stream, name)`` of one path (``-``: stdin), counted in the stats; the stream is
        closed after (stdin is not)."""
        name = "<stdin>" if path == "-" else path
        self.stats.sources.append(name)
        stream = opener(path)
        try:
            yield stream, name
        finally:
            if path != "-":
                stream.close()

    def read_stream(self, stream: Any, name: str, first_line: int = 1) -> Iterator[dict[str, Any]]:
        stats = self.stats
        pos = self.pos
        pos.source = name
        lineno = first_line - 1
        pre = self.prefilter
        filtered = self.types is not None or self.since_ms is not None or self.until_ms is not None or self.where
        want = self._wanted
        fast = _fast_loads or json.loads
        it: Iterator[tuple[bytes, bool]] = iter_lines(stream)
        again = True
        while again:
            again = False
            for raw, complete in it:
                lineno += 1
                if pre is not None and pre not in raw:
                    continue
                # Fast path for the usual forms: RS{...}, {...}, and <time>TAB<tag>TAB[RS]{...}.
                # Anything it does not accept goes the general way below, with the same result.
                c = raw[:1]
                if c == b"\x1e":
                    text = raw[1:]
                elif c == b"{":
                    text = raw
                else:
                    j = raw.find(b"\t", raw.find(b"\t") + 1)
                    text = raw[j + 1 :] if j > 0 else b""
                    if text[:1] == b"\x1e":
                        text = text[1:]
                if text[:1] == b"{":
                    try:
                        rec = fast(text)
                    except (ValueError, RecursionError):
                        rec = None
                    if type(rec) is dict:
                        stats.records += 1
                        pos.line = lineno
                        if not filtered or want(rec):
                            yield rec
                        else:
                            stats.skipped += 1
                        continue
                texts = _split_records(raw)
                for text in texts:
                    rec, reason = classify(text)
                    start = lineno
                    if rec is None and complete and len(texts) == 1 and text.strip() in (b"{", b"["):
                        # The first line of a pretty-printed record (``jq --seq .`` writes those)?
                        rec, taken, push = _join_pretty(text, it)
                        if rec is not None:
                            lineno += len(taken)
                        else:
                            push = taken + push  # not one: read those lines as usual
                        if push:
                            it = itertools.chain(push, it)
                            again = True
                    if rec is None:
                        if not complete and reason == "not JSON":
                            reason = "truncated last line"
                        self._bad(BadRecord(name, start, reason or "bad", printable(text)))
                        continue
                    stats.records += 1
                    pos.line = start
                    if not filtered or want(rec):
                        yield rec
                    else:
                        stats.skipped += 1
                if again:
                    break
        if getattr(stream, "truncated", False):
            self._bad(BadRecord(name, lineno + 1, "truncated or corrupt gzip data", ""))

    def _bad(self, bad: BadRecord) -> None:
        self.stats.add_bad(bad)
        if self.strict:
            raise BadRecordError(bad)

    def _wanted(self, rec: dict[str, Any]) -> bool:
        if self.types is not None and rec.get("cmd") not in self.types:
            return False
        if (self.since_ms is not None or self.until_ms is not None) and not self._in_window(record_time_ms(rec)):
            return False
        return self.where is None or self.where(rec)

    def _in_window(self, t: int | None) -> bool:
        """Is a record of time ``t`` (epoch ms; None: no time) inside ``since_ms``/``until_ms``?"""
        if t is None:
            return False
        if self.since_ms is not None and t < self.since_ms:
            return False
        return self.until_ms is None or t < self.until_ms


#: Lines that may continue a pretty-printed record: indented, or the closing bracket.
_CONTINUATION = frozenset(b" \t}]")
MAX_PRETTY_BYTES = 1 << 20


def continues(raw: bytes) -> bool:
    """Could this line be inside a pretty-printed record (not the start of a new one)?"""
    return bool(raw) and raw[0] in _CONTINUATION


def _join_pretty(
    first: bytes, it: Iterator[tuple[bytes, bool]]
) -> tuple[dict[str, Any] | None, list[tuple[bytes, bool]], list[tuple[bytes, bool]]]:
    """Join ``first`` (``{`` or ``[``) with the continuation lines that follow.

    Returns ``(record, taken, push)``: the record (or None), the lines joined, and the line
    that stopped the join (to be read as usual). A line that is a (non-empty) record by itself
    is never joined, so a valid record after a bad line always survives."""
    parts = [first]
    taken: list[tuple[bytes, bool]] = []
    size = len(first)
    for raw, complete in it:
        if not continues(raw) or size > MAX_PRETTY_BYTES or classify(raw)[0]:  # `{}` may be a nested value
            return None, taken, [(raw, complete)]
        taken.append((raw, complete))
        parts.append(raw)
        size += len(raw) + 1
        if raw[:1] in (b"}", b"]"):  # a closing bracket in column 0 ends a record
            rec, _ = classify(b"\n".join(parts))
            return rec, taken, []
    return None, taken, []


def _split_records(raw: bytes) -> list[bytes]:
    """The record texts on one line: usually one; several if RS bytes separate them."""
    text = strip_prefix(raw)
    if b"\x1e" in text:
        parts = [p.strip(b" \t") for p in text.split(b"\x1e")]
        return [p for p in parts if p]
    if not text.strip(b" \t"):
        return []
    return [text]


def record_time_ms(rec: dict[str, Any]) -> int | None:
    """``created_at_ms`` as an int (it is a string in the seed's records), or None."""
    v = rec.get("created_at_ms")
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            return None
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    return None


def read(paths: Iterable[str], **kw: Any) -> EventReader:
    """Shorthand: ``for rec in read(["a.log.gz", "-"]): ...``."""
    return EventReader(paths, **kw)
