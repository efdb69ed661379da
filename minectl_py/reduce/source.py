"""Reading records for reductions: the event reader with a fast path for whole chunks.

:class:`FastReader` is an :class:`~minectl_py.events.reader.EventReader`: the same inputs
(files, globs, ``-``; gzip, also multi-member, or plain; the fluentd prefix, RS, CRLF or LF)
and the same bad-record reports, because anything it is not sure of is read by the
reader's own :meth:`~minectl_py.events.reader.EventReader.read_stream`. What it adds:

* gzip files are inflated with ISA-L when the ``isal`` package is installed (3-4x zlib's
  speed; else zlib) in a second thread; both release the GIL, so inflating overlaps parsing;
* the fast path: in a chunk of whole lines (several MiB, valid UTF-8), each line of the
  reader's usual forms (``{...}``, ``RS{...}``, ``<time>TAB<tag>TAB[RS]{...}``) is decoded
  in place (a memoryview, no copy) by one ``msgspec`` call straight into the record type
  the reductions read (:class:`~minectl_py.reduce.record.Rec`, or the smaller ``HashRec``),
  skipping boards, pools and digests. Any other line (a bad record, several records on a
  line, a field of the wrong type...) goes to the reader by itself, and the fast path goes
  on after it; a line that may open a pretty-printed record (ending in ``{`` or ``[``)
  sends the rest of the stream to the reader, which joins it across chunks;
* ``prefilters`` (byte strings, e.g. ``b'"lease"'``): lines that contain none of them are
  blanked before the reader sees them (used when no ``poll`` record is wanted).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from minectl_py.events.gzipstream import FastGzipStream
from minectl_py.events.readahead import ReadAhead
from minectl_py.events.reader import BadRecord, EventReader, open_binary
from minectl_py.reduce.record import DecodeError, Rec, ValidationError, decoder_for, from_dict, time_ms

#: bytes read from a stream at a time (whole lines of it are one chunk)
READ = 4 << 20
#: a line that may open a pretty-printed record (``jq --seq .`` writes those): ends in { or [
_PRETTY = re.compile(rb"[^\n]*[{\[][ \t\r\f\v]*\n")
#: records handed on at a time from the reader's path
BATCH = 4096


def prefilters_for(cmds: Iterable[str]) -> tuple[bytes, ...] | None:
    """Byte strings one of which every record of these types contains (None: read all).

    Poll records are most of any log: when they are wanted, whole chunks are decoded in one
    call instead, which is faster than looking at each line."""
    if not cmds or "poll" in cmds:
        return None
    return tuple(sorted({f'"{c}"'.encode() for c in cmds}))


def open_fast(path: str) -> Any:
    """A stream of ``path``'s text: gzip inflated (ISA-L or zlib) ahead in a second thread."""
    if path == "-":
        return open_binary(path)
    f = open(path, "rb")  # noqa: SIM115 - returned to the caller
    if f.read(2) != b"\x1f\x8b":
        f.seek(0)
        return f
    f.seek(0)
    return ReadAhead(FastGzipStream(f))


class FastReader(EventReader):
    def __init__(
        self,
        paths: Iterable[str],
        *,
        prefilters: tuple[bytes, ...] | None = None,
        on_invalid: Callable[[str], None] | None = None,
        rec_type: type = Rec,
        **kw: Any,
    ) -> None:
        super().__init__(paths, **kw)
        if self.where is not None:
            raise ValueError("FastReader has no 'where' filter")
        self.prefilters = prefilters
        self.on_invalid = on_invalid or (lambda msg: None)
        self.rec_type = rec_type
        self._decode = decoder_for(rec_type).decode
        self._filtered = bool(self.types or self.since_ms is not None or self.until_ms is not None)

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        for batch in self.batches():
            yield from batch

    def batches(self) -> Iterator[list[Any]]:
        """Records in lists (one per chunk of input): no per-record generator overhead."""
        for path in self.paths:
            with self._source(path, open_fast) as (stream, name):
                yield from self.read_chunks(stream, name)

    def read_chunks(self, stream: Any, name: str, first_line: int = 1) -> Iterator[list[Any]]:
        """Lists of records (``rec_type``) of one stream, in order.

        This loop cuts the stream at the last LF of each read as the reader's
        :func:`~minectl_py.events.reader.iter_lines` does, but it is kept apart on purpose:
        ``iter_lines`` splits every read into a bytes object per line, which is the very
        cost this fast path avoids (it decodes each line in place from a memoryview of the
        whole chunk). Lines the fast path does not take go to the reader's own code."""
        pos = self.pos
        pos.source = name
        base = first_line - 1  # lines before the chunk
        rest = b""
        whole = self.prefilters is None
        while True:
            buf = stream.read(READ)
            if not buf:
                break
            if rest:
                buf = rest + buf
            cut = buf.rfind(b"\n") + 1
            if not cut:
                rest = buf
                continue
            rest = buf[cut:]
            chunk = buf[:cut]
            if not whole or not _utf8(chunk):
                if whole and _PRETTY.search(chunk):  # may open a record that spans chunks
                    yield from self._by_reader(_Resume(chunk + rest, stream), name, base + 1)
                    return
                yield from self._by_reader(io.BytesIO(chunk), name, base + 1)
                base += chunk.count(b"\n")
                continue
            at = 0  # offset of the next line to read in chunk
            while at < len(chunk):
                recs, end = self._fast(chunk, at)
                if recs:
                    base += len(recs)
                    self.stats.records += len(recs)
                    pos.line = base
                    yield self._filter(recs) if self._filtered else recs
                if end == len(chunk):
                    break
                nl = chunk.index(b"\n", end) + 1  # the line the fast path did not take
                if _PRETTY.match(chunk, end, nl):  # may open a record that spans lines, even chunks
                    yield from self._by_reader(_Resume(chunk[end:] + rest, stream), name, base + 1)
                    return  # the reader read the rest (and reported a truncated gzip stream)
                yield from self._by_reader(io.BytesIO(chunk[end:nl]), name, base + 1)
                base += 1
                at = nl
        if rest:
            yield from self._by_reader(io.BytesIO(rest), name, base + 1)
            base += 1
        pos.line = base
        if getattr(stream, "truncated", False):
            self._bad(BadRecord(name, base + 1, "truncated or corrupt gzip data", ""))

    def _fast(self, chunk: bytes, at: int) -> tuple[list[Any], int]:
        """Records of the lines of ``chunk`` (whole lines, valid UTF-8) from offset ``at``, one
        ``msgspec`` decode per line, in the reader's usual forms (``{...}``, ``RS{...}``,
        ``<time>TAB<tag>TAB[RS]{...}``). Stops at the first line that is anything else or
        does not decode: returns the records and that line's offset (``len(chunk)``: all)."""
        decode = self._decode
        find = chunk.find
        mv = memoryview(chunk)
        out: list[Any] = []
        add = out.append
        i = at
        n = len(chunk)
        try:
            while i < n:
                e = find(b"\n", i)
                c = chunk[i]
                if c == 0x7B:  # {
                    s = i
                elif c == 0x1E:
                    s = i + 1
                else:
                    t = find(b"\t", i, e)
                    if t < 0:
                        break
                    s = find(b"\t", t + 1, e) + 1
                    if not s:
                        break
                    if chunk[s] == 0x1E:
                        s += 1
                if chunk[s] != 0x7B:
                    break
                add(decode(mv[s:e]))
                i = e + 1
        except (DecodeError, RecursionError):  # also a field of the wrong type (ValidationError)
            pass  # the reader says what it is
        return out, i

    def _by_reader(self, stream: Any, name: str, first_line: int) -> Iterator[list[Any]]:
        """The reader's own line handling (bad records, RS-separated and pretty-printed
        records, filters), its dicts turned into ``rec_type``."""
        if self.prefilters is not None:
            stream = io.BytesIO(_blank(stream.read(), self.prefilters))
        out: list[Any] = []
        rec_type = self.rec_type
        for d in EventReader.read_stream(self, stream, name, first_line):
            try:
                out.append(from_dict(d, rec_type))
            except (ValidationError, TypeError) as e:
                self.on_invalid(f"{name}:{self.pos.line}: {e}")
                continue
            if len(out) >= BATCH:
                yield out
                out = []
        if out:
            yield out

    def _filter(self, recs: list[Any]) -> list[Any]:
        kept = [r for r in recs if self._keep(r)]
        self.stats.skipped += len(recs) - len(kept)
        return kept

    def _keep(self, rec: Any) -> bool:
        if self.types is not None and rec.cmd not in self.types:
            return False
        return (self.since_ms is None and self.until_ms is None) or self._in_window(time_ms(rec))


def _utf8(chunk: bytes) -> bool:
    """Is ``chunk`` text the reader parses (UTF-8, surrogates allowed, as ``json.loads``)?
    msgspec does not check strings it skips."""
    if chunk.isascii():
        return True
    try:
        chunk.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return False
    return True


def _blank(text: bytes, pres: tuple[bytes, ...]) -> bytes:
    """``text`` with every line that contains none of ``pres`` emptied (line numbers kept)."""
    lines = text.split(b"\n")
    if len(pres) == 1:
        p = pres[0]
        return b"\n".join(ln if p in ln else b"" for ln in lines)
    return b"\n".join(ln if any(p in ln for p in pres) else b"" for ln in lines)


class _Resume:
    """``head``, then the rest of ``stream`` (whose ``truncated`` it reports)."""

    def __init__(self, head: bytes, stream: Any) -> None:
        self.head = head
        self.stream = stream

    def read(self, n: int = -1) -> bytes:
        if self.head:
            head, self.head = self.head, b""
            return head
        return self.stream.read(n)

    @property
    def truncated(self) -> bool:
        return bool(getattr(self.stream, "truncated", False))
