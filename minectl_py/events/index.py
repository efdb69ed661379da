"""Temporal index: a sidecar per event file so ``--since/--until`` seek instead of scanning.

The sidecar of ``DIR/NAME`` is ``DIR/.NAME.idx`` (hidden, so globs such as ``data.*`` never
pick it up). If ``DIR`` is not writable it goes to ``$MINECTL_INDEX_DIR`` (default
``~/.cache/minectl/index``); if that fails too, the index lives in memory for this run.
It is a small JSON document:

``{"v": 1, "ino", "size", "mtime_ns", "head_crc", "end", "end_crc", "lines", "gzip",
"blocks": [[min_ms, max_ms, offset, first_line], ...]}``

* A block is a run of whole lines: about :data:`BLOCK_BYTES` of text in a plain file; in a
  gzip file one or more whole members (decompression can only start at a member: fluentd
  appends one per flushed chunk, ``minectl events compact`` writes 1-4 MiB members).
  ``offset`` is where the block starts in the file as stored, ``first_line`` its first line
  number in the (decompressed) text, so bad-record reports name the same line either way.
* ``min_ms``/``max_ms`` bound the ``created_at_ms`` of every record in the block (``null``
  when none has one). A block is read when that range meets the window; the reader filters
  records as always, so the records returned are exactly those of a full scan.
* ``end`` is where the indexed part stops: the start of the last record (plain) or the end of
  the last complete member ending on a line end (gzip). What follows (the last record, a live
  file's new appends, a partial line or member) is always read, unindexed. Blocks (and
  ``end``) never fall inside a pretty-printed multi-line record.
* Validity: same inode, size and mtime: fresh. Same inode, at least ``end`` bytes and the
  same bytes at the start (``head_crc``) and before ``end`` (``end_crc``): appended to, the
  index is extended. Anything else (replaced, truncated, rewritten): rebuilt.

Stdin, pipes and files under :data:`MIN_INDEX_BYTES` are read in full. Records (and bad
records) in skipped blocks are not seen: ``count`` reports fewer ``good``/``bad`` with the
index than without, and ``index_blocks_skipped``; the matching records are identical.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

from minectl_py.events.reader import EventReader, GzipStream, _split_records, classify, continues, record_time_ms

INDEX_VERSION = 1
#: Text per block in plain files.
BLOCK_BYTES = 1 << 20
#: Smallest text per block in gzip files (small members are merged).
GZIP_BLOCK_BYTES = 256 << 10
#: Files smaller than this are simply read.
MIN_INDEX_BYTES = 256 << 10
CRC_SPAN = 4096
_CHUNK = 1 << 20
_TIME = re.compile(rb'"created_at_ms"\s*:\s*(?:"(\d{1,18})"|(\d{1,18})(?=[\s,}]))')


@dataclass(slots=True)
class Index:
    ino: int
    size: int
    mtime_ns: int
    head_crc: int
    end: int
    end_crc: int
    lines: int
    gzip: bool
    blocks: list[list[Any]] = field(default_factory=list)  # [min_ms, max_ms, offset, first_line]

    def to_json(self) -> bytes:
        return json.dumps({"v": INDEX_VERSION, **asdict(self)}, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Index:
        d = json.loads(data)
        if not isinstance(d, dict) or d.pop("v", None) != INDEX_VERSION:
            raise ValueError("not an index of this version")
        return cls(**d)


def line_time_range(raw: bytes) -> tuple[int | None, int | None]:
    """Smallest and largest ``created_at_ms`` of the record(s) on one line, or ``(None, None)``.

    The fast path takes the value a regex finds; wherever that could disagree with the reader
    (several keys or records, escapes, odd number forms) the line is parsed as JSON. A block's
    range may come out wider than needed, never narrower."""
    if b"\\u" not in raw:
        n = raw.count(b"created_at_ms")
        if n == 0:
            return None, None
        if n == 1 and raw.count(b"\x1e") <= 1:
            m = _TIME.search(raw)
            if m:
                v = int(m.group(1) or m.group(2))
                return v, v
    lo = hi = None
    for text in _split_records(raw):
        rec, _ = classify(text)
        t = record_time_ms(rec) if rec is not None else None
        if t is not None:
            lo = t if lo is None or t < lo else lo
            hi = t if hi is None or t > hi else hi
    return lo, hi


# ----------------------------------------------------------------------------- build
class _Builder:
    """Lines -> blocks. Blocks start only where a record may start: at a line that does not
    continue a pretty-printed record (see ``reader.continues``)."""

    def __init__(self, first_line: int, offset: int) -> None:
        self.blocks: list[list[Any]] = []
        self.line = first_line - 1
        self.pos = offset  # plain files: offset of the next line's first byte
        self.rest = b""
        self.cur: list[Any] = []
        self.cur_bytes = 0
        self.cut = (offset, self.line)  # last place a scan may start: (offset, lines before it)
        self.start(offset)

    def start(self, offset: int) -> None:
        self.cur = [None, None, offset, self.line + 1]
        self.cur_bytes = 0
        self.blocks.append(self.cur)

    def feed(self, data: bytes, cut: int = 0) -> None:
        """Text in file order; with ``cut`` (plain files) a new block starts at the first
        record start after ``cut`` bytes of text."""
        if self.rest:
            data = self.rest + data
        last = data.rfind(b"\n") + 1
        body, self.rest = data[:last], data[last:]
        start = 0
        while start < len(body):
            if cut and self.cur_bytes >= cut and not continues(body[start : start + 1]):
                self.start(self.pos)
            stop = len(body)
            if cut:
                stop = body.find(b"\n", start + max(cut - self.cur_bytes, 1) - 1) + 1 or len(body)
            piece = body[start:stop]
            if not self._fast(piece):
                self._lines(piece, cut)
            start = stop
        if self.rest and not continues(self.rest):
            self.cut = (self.pos, self.line)

    def _fast(self, piece: bytes) -> bool:
        """A run of whole lines at once, when no line could continue a pretty-printed record
        and every ``created_at_ms`` is in the plain form the regex reads (then the range of
        all values found bounds every record's time). False: not applicable, nothing done."""
        if (
            continues(piece)
            or b"\\u" in piece
            or b"\n " in piece
            or b"\n\t" in piece
            or b"\n}" in piece
            or b"\n]" in piece
        ):
            return False
        found = _TIME.findall(piece)
        if len(found) != piece.count(b"created_at_ms"):
            return False
        cur = self.cur
        if found:
            vals = [int(a or b) for a, b in found]
            lo, hi = min(vals), max(vals)
            if cur[0] is None or lo < cur[0]:
                cur[0] = lo
            if cur[1] is None or hi > cur[1]:
                cur[1] = hi
        n = piece.count(b"\n")
        last_start = piece.rfind(b"\n", 0, len(piece) - 1) + 1
        self.cut = (self.pos + last_start, self.line + n - 1)
        self.line += n
        self.pos += len(piece)
        self.cur_bytes += len(piece)
        return True

    def _lines(self, piece: bytes, cut: int) -> None:
        lines = piece.split(b"\n")
        lines.pop()  # piece ends with LF
        cur = self.cur
        for ln in lines:
            if not continues(ln):
                self.cut = (self.pos, self.line)
                if cut and self.cur_bytes >= cut:
                    self.start(self.pos)
                    cur = self.cur
            self.line += 1
            n = len(ln) + 1
            self.pos += n
            self.cur_bytes += n
            lo, hi = line_time_range(ln)
            if lo is not None:
                if cur[0] is None or lo < cur[0]:
                    cur[0] = lo
                if cur[1] is None or hi > cur[1]:  # type: ignore[operator]
                    cur[1] = hi


def _scan_plain(f: BinaryIO, b: _Builder) -> tuple[int, int]:
    """Index a plain file from ``b.pos`` (a record start). Returns ``(end, lines)``: the start
    of the last record (a live file's last line may still grow; it is read unindexed)."""
    f.seek(b.pos)
    while buf := f.read(_CHUNK):
        b.feed(buf, BLOCK_BYTES)
    return b.cut


def _scan_gzip(f: BinaryIO, b: _Builder) -> tuple[int, int]:
    """Index a gzip file member by member from ``b.pos`` (a member start). Returns
    ``(end, lines)``: the last member start where a record starts, or the end of the file
    if it ends cleanly there (complete member, complete line)."""
    off = b.pos  # compressed offset of buf[0]
    f.seek(off)
    end, end_lines = off, b.line
    d: Any = None
    member = -1  # offset of a member whose first text is still to come
    while buf := f.read(_CHUNK):
        while buf:
            if d is None:
                z = len(buf) - len(buf.lstrip(b"\0"))
                off, buf = off + z, buf[z:]
                if not buf:
                    break
                member = off
                d = zlib.decompressobj(wbits=31)
            try:
                out = d.decompress(buf)
            except zlib.error:
                return end, end_lines
            if out and member >= 0:
                if not b.rest and not continues(out):
                    end, end_lines = member, b.line
                    if b.cur_bytes and b.cur_bytes >= GZIP_BLOCK_BYTES:
                        b.start(member)
                member = -1
            b.feed(out)
            if not d.eof:
                off += len(buf)
                break
            off += len(buf) - len(d.unused_data)
            buf, d = d.unused_data, None
    if d is None and not b.rest:
        end, end_lines = off, b.line
    return end, end_lines


def _starts_inside_record(f: BinaryIO, gz: bool, offset: int) -> bool:
    """Does the text at ``offset`` continue a pretty-printed record (so no scan may start there)?"""
    raw = _Range(f, offset, None)
    head = (GzipStream(raw) if gz else raw).read(_CHUNK)
    return continues(head)


def _crc(f: BinaryIO, start: int, stop: int) -> int:
    f.seek(start)
    return zlib.crc32(f.read(max(stop - start, 0)))


def build(f: BinaryIO, old: Index | None = None) -> Index:
    """Index the open file ``f``; given ``old`` (an index of the file before it grew), only
    the new part is scanned."""
    st = os.fstat(f.fileno())
    f.seek(0)
    gz = f.read(2) == b"\x1f\x8b"
    if old is not None and _starts_inside_record(f, gz, old.end):
        old = None  # the new part continues the old last record: index it all again
    if old is not None:  # appended to: keep the old blocks, scan from the old end
        b = _Builder(old.lines + 1, old.end)
        b.blocks = [list(x) for x in old.blocks] + b.blocks
    else:
        b = _Builder(1, 0)
    end, lines = _scan_gzip(f, b) if gz else _scan_plain(f, b)
    # Drop empty blocks: those at or past the indexed end, and any followed by one at the same offset.
    blocks = [x for i, x in enumerate(b.blocks) if x[2] < end and (i + 1 == len(b.blocks) or b.blocks[i + 1][2] > x[2])]
    return Index(
        ino=st.st_ino,
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        head_crc=_crc(f, 0, min(CRC_SPAN, st.st_size)),
        end=end,
        end_crc=_crc(f, max(0, end - CRC_SPAN), end),
        lines=lines,
        gzip=gz,
        blocks=blocks,
    )


def state(idx: Index, f: BinaryIO) -> str:
    """``fresh``, ``appended`` (extendable) or ``stale`` for the open file ``f``."""
    st = os.fstat(f.fileno())
    if idx.ino != st.st_ino or st.st_size < idx.end:
        return "stale"
    if st.st_size == idx.size and st.st_mtime_ns == idx.mtime_ns:
        return "fresh"
    if _crc(f, 0, min(CRC_SPAN, idx.size)) == idx.head_crc and _crc(f, max(0, idx.end - CRC_SPAN), idx.end) == (
        idx.end_crc
    ):
        return "appended"
    return "stale"


# ----------------------------------------------------------------------------- storage
def sidecar_path(path: str) -> str:
    d, base = os.path.split(os.path.abspath(path))
    return os.path.join(d, f".{base}.idx")


def cache_path(path: str) -> str:
    root = os.environ.get("MINECTL_INDEX_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "minectl", "index")
    real = os.path.realpath(path)
    h = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return os.path.join(root, f"{h}-{os.path.basename(real)}.idx")


def load(path: str) -> Index | None:
    for p in (sidecar_path(path), cache_path(path)):
        try:
            with open(p, "rb") as f:
                return Index.from_json(f.read())
        except (OSError, ValueError, TypeError):
            continue
    return None


def save(path: str, idx: Index) -> str | None:
    """Write the sidecar atomically (beside the file, else in the cache). Returns where."""
    data = idx.to_json()
    for p in (sidecar_path(path), cache_path(path)):
        tmp = f"{p}.tmp{os.getpid()}"
        try:
            os.makedirs(os.path.dirname(p), exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            os.replace(tmp, p)
            return p
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return None


def ensure(path: str, f: BinaryIO, *, force: bool = False) -> tuple[Index, str]:
    """A current index of ``path`` (open as ``f``): loaded, extended or rebuilt (and saved).
    Returns ``(index, what)`` with ``what`` one of fresh, extended, built."""
    old = None if force else load(path)
    how = state(old, f) if old is not None else "stale"
    small_tail = how == "appended" and os.fstat(f.fileno()).st_size - old.end < BLOCK_BYTES // 4  # type: ignore[union-attr]
    if old is not None and (how == "fresh" or small_tail):
        return old, "fresh"  # a small unindexed tail is simply read
    idx = build(f, old if how == "appended" else None)
    save(path, idx)
    return idx, "extended" if how == "appended" else "built"


# ----------------------------------------------------------------------------- reading
class _Range:
    """``read`` limited to ``[start, stop)`` of a file (``stop`` None: to EOF)."""

    def __init__(self, f: BinaryIO, start: int, stop: int | None) -> None:
        self.f, self.left = f, (None if stop is None else stop - start)
        f.seek(start)

    def read(self, n: int = _CHUNK) -> bytes:
        if self.left is None:
            return self.f.read(n)
        data = self.f.read(min(n, self.left))
        self.left -= len(data)
        return data

    def close(self) -> None:
        pass


def selected(block: list[Any], since_ms: int | None, until_ms: int | None) -> bool:
    """May the block hold a record in ``[since_ms, until_ms)``?"""
    lo, hi = block[0], block[1]
    return lo is not None and (since_ms is None or hi >= since_ms) and (until_ms is None or lo < until_ms)


def runs(idx: Index, since_ms: int | None, until_ms: int | None) -> Iterator[tuple[int, int, int]]:
    """Contiguous runs ``(start, stop, first_line)`` of blocks that may hold wanted records."""
    run: list[int] | None = None
    for i, blk in enumerate(idx.blocks):
        off, line = blk[2], blk[3]
        stop = idx.blocks[i + 1][2] if i + 1 < len(idx.blocks) else idx.end
        ok = selected(blk, since_ms, until_ms)
        if ok and run is not None and run[1] == off:
            run[1] = stop
        elif ok:
            if run is not None:
                yield run[0], run[1], run[2]
            run = [off, stop, line]
    if run is not None:
        yield run[0], run[1], run[2]


class IndexedReader(EventReader):
    """:class:`EventReader` that seeks with the temporal index when a time window is given.

    Same arguments, same records in the same order; indexes are built or refreshed as needed.
    """

    def __init__(self, paths: Iterable[str], *, min_bytes: int = MIN_INDEX_BYTES, **kw: Any) -> None:
        super().__init__(paths, **kw)
        self.min_bytes = min_bytes

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self.since_ms is None and self.until_ms is None:
            yield from super().__iter__()
            return
        for path in self.paths:
            yield from self._one(path)

    def _one(self, path: str) -> Iterator[dict[str, Any]]:
        if path == "-":
            yield from self._sub([path])
            return
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_size < self.min_bytes:
                yield from self._sub([path])
                return
            idx, _ = ensure(path, f)
            self.stats.sources.append(path)
            for start, stop, first_line in runs(idx, self.since_ms, self.until_ms):
                raw = _Range(f, start, stop)
                yield from self.read_stream(GzipStream(raw) if idx.gzip else raw, path, first_line)
            self.stats.blocks_skipped += sum(1 for b in idx.blocks if not selected(b, self.since_ms, self.until_ms))
            raw = _Range(f, idx.end, None)
            yield from self.read_stream(GzipStream(raw) if idx.gzip else raw, path, idx.lines + 1)

    def _sub(self, paths: list[str]) -> EventReader:
        """A plain reader sharing this one's filters, stats and position (unindexed inputs)."""
        sub = EventReader(
            paths,
            strict=self.strict,
            since_ms=self.since_ms,
            until_ms=self.until_ms,
            types=self.types,
            where=self.where,
            prefilter=self.prefilter,
            stats=self.stats,
        )
        sub.pos = self.pos
        return sub
