"""Following the live log across rotation (like ``tail -F``), giving the records batch replay gives.

``follow(live)`` yields records appended to ``live`` from now on; ``from_start=True`` first
replays the rotated segments and the live file from its beginning, so that::

    list(follow(live, from_start=True, stop=lambda: True))  ==  list(EventReader(log_set(live)))

(``stop`` is asked each time the follower has caught up; returning True ends the iteration.)
Reductions use one definition for both modes: feed them ``EventReader(...)`` in batch and
``follow(...)`` live. Filters and stats are the reader's: pass ``since_ms``, ``until_ms``,
``types``, ``where``, ``prefilter``, ``strict``, ``stats`` as to :class:`EventReader`.

How it crosses rotation without loss or duplicates: the writer renames the live file to a
segment under its lock and every writer re-checks the inode under the same lock, so once
the follower sees that ``live`` has a new inode (or is gone), nothing more is written to the
file it holds open. It then reads that file to its end, reads any segment rotated after it
that it has not seen (two rotations while it was busy), and opens the new live file from its
first byte. Files are told apart by inode, so a segment is never read twice.

An unterminated last line is held until its LF arrives (a writer may be mid-append); only when
the file is rotated away with it still unterminated is it reported as a bad record
("truncated last line"), exactly as a batch read of that segment reports it. A live file that
shrinks (copied and truncated by some other tool) is read again from its start.
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from minectl_py import config
from minectl_py.events.reader import BadRecord, EventReader, ReadStats
from minectl_py.events.segments import segments

_CHUNK = 1 << 20


class _Open:
    """One followed file: descriptor, inode, read offset, held partial line, line count."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.ino = os.fstat(fd).st_ino
        self.pos = 0
        self.partial = b""
        self.lines = 0
        self.skip = False  # drop text up to the first LF (we started inside a line)

    def close(self) -> None:
        os.close(self.fd)


def _open(path: str) -> _Open | None:
    try:
        return _Open(path, os.open(path, os.O_RDONLY | os.O_CLOEXEC))
    except FileNotFoundError:
        return None


def _skip_history(f: _Open) -> None:
    """Follow from now: start at the end, counting the lines before it (so reports name the
    right line) and skipping the rest of a line we start inside of."""
    size = os.fstat(f.fd).st_size
    pos = 0
    while pos < size:
        data = os.pread(f.fd, min(_CHUNK, size - pos), pos)
        if not data:
            break
        f.lines += data.count(b"\n")
        pos += len(data)
    f.pos = pos
    f.skip = pos > 0 and os.pread(f.fd, 1, pos - 1) != b"\n"


def _stem(path: str) -> str:
    return path[:-3] if path.endswith(".gz") else path


def _ino(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


class Follower:
    """The iterator behind :func:`follow`; ``stats`` is the reader's :class:`ReadStats`."""

    def __init__(
        self,
        live: str | None = None,
        *,
        from_start: bool = False,
        stop: Callable[[], bool] | None = None,
        poll_s: float = 0.2,
        idle_timeout: float | None = None,
        on_idle: Callable[[], None] | None = None,
        **reader_kw: Any,
    ) -> None:
        self.live = live or config.events_path()
        self.from_start = from_start
        self.stop = stop
        self.poll_s = poll_s
        self.idle_timeout = idle_timeout
        self.on_idle = on_idle
        reader_kw.setdefault("stats", ReadStats())
        self.reader_kw = reader_kw
        self.reader = EventReader([], **reader_kw)
        self.stats: ReadStats = self.reader.stats
        self.seen: set[int] = set()
        self.names: set[str] = set()  # segment names (without .gz) known when the live file was opened

    # -- reading pieces ------------------------------------------------------------
    def _batch(self, paths: list[str]) -> Iterator[dict[str, Any]]:
        if not paths:
            return
        kw = dict(self.reader_kw)
        if kw.get("since_ms") is not None or kw.get("until_ms") is not None:
            from minectl_py.events.index import IndexedReader

            yield from IndexedReader(paths, **kw)
        else:
            yield from EventReader(paths, **kw)

    def _drain(self, f: _Open) -> Iterator[dict[str, Any]]:
        """Records of every complete line from ``f.pos`` to the current end."""
        while True:
            data = os.pread(f.fd, _CHUNK, f.pos)
            if not data:
                return
            f.pos += len(data)
            if f.skip:
                nl = data.find(b"\n")
                if nl < 0:
                    continue
                data, f.skip = data[nl + 1 :], False
                f.lines += 1
            data = f.partial + data
            cut = data.rfind(b"\n") + 1
            f.partial = data[cut:]
            if cut:
                first = f.lines + 1
                f.lines += data.count(b"\n", 0, cut)
                yield from self.reader.read_stream(io.BytesIO(data[:cut]), f.path, first)

    def _finish(self, f: _Open) -> Iterator[dict[str, Any]]:
        """``f`` was rotated away: read it to its end; an unterminated last line is bad."""
        yield from self._drain(f)
        if f.partial:
            yield from self.reader.read_stream(io.BytesIO(f.partial), f.path, f.lines + 1)
        f.close()

    def _segments_after(self, ino: int) -> list[str]:
        """Segments rotated since the live file with inode ``ino`` (-1: none) was opened, not
        read yet, oldest first. They are told by name (``names``: every segment known when that
        file was opened), so a segment compacted meanwhile (a ``.gz`` with a new inode) is still
        found; the finished file's own segment (read through its descriptor) is left out: the
        one with its inode, else, if it was compacted since, the oldest new name."""
        segs = [s for s in segments(self.live) if _stem(s) not in self.names]
        self.names.update(_stem(s) for s in segs)
        if ino != -1 and segs:
            own = [s for s in segs if _ino(s) == ino]
            segs.remove(own[0] if own else segs[0])
        return [s for s in segs if _ino(s) not in self.seen]

    # -- the loop ----------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict[str, Any]]:
        self.names = {_stem(s) for s in segments(self.live)}
        f = _open(self.live)
        if f is not None:
            self.seen.add(f.ino)
            self.stats.sources.append(self.live)
            if self.from_start:
                older = [s for s in segments(self.live) if _ino(s) != f.ino]
                self.seen.update(i for i in map(_ino, older) if i is not None)
                yield from self._batch(older)
            else:
                _skip_history(f)
        last_ino: int | None = None
        if f is None:  # no live file yet: segments that appear from now on are new
            older = segments(self.live)
            self.seen.update(i for i in map(_ino, older) if i is not None)
            if self.from_start:
                yield from self._batch(older)
            last_ino = -1
        idle_since = time.monotonic()
        try:
            while True:
                progressed = False
                if f is not None:
                    before = f.pos
                    yield from self._drain(f)
                    progressed = f.pos != before
                    now_ino = _ino(self.live)
                    if now_ino != f.ino:  # rotated (or removed): nothing more will be written to f
                        last_ino = f.ino
                        yield from self._finish(f)
                        f = None
                        progressed = True
                    elif os.fstat(f.fd).st_size < f.pos:  # truncated in place
                        self.stats.add_bad(BadRecord(f.path, f.lines + 1, "file truncated; reading again", ""))
                        f.pos, f.partial, f.lines = 0, b"", 0
                        progressed = True
                if f is None:
                    nf = _open(self.live)
                    if nf is not None:
                        # Segments rotated after the last file we finished, before this one
                        # (several rotations while we were busy): read them first.
                        if last_ino is not None:
                            later = [s for s in self._segments_after(last_ino) if _ino(s) != nf.ino]
                            self.seen.update(i for i in map(_ino, later) if i is not None)
                            yield from self._batch(later)
                        f = nf
                        self.seen.add(f.ino)
                        self.stats.sources.append(self.live)
                        continue
                if progressed:
                    idle_since = time.monotonic()
                    continue
                if self.stop is not None and self.stop():
                    return
                if self.idle_timeout is not None and time.monotonic() - idle_since >= self.idle_timeout:
                    return
                if self.on_idle is not None:
                    self.on_idle()
                time.sleep(self.poll_s)
        finally:
            if f is not None:
                f.close()


def follow(live: str | None = None, **kw: Any) -> Iterator[dict[str, Any]]:
    """Records of the live log as they are appended (see the module docstring)."""
    return iter(Follower(live, **kw))


def tail_main(a: Any, stats: ReadStats) -> int:
    """``minectl events tail [LIVE] [--from-start] [filters] [--lines] [--idle-exit S]``."""
    from minectl_py.events.cli import miner_matcher
    from minectl_py.events.record import encode, encode_plain
    from minectl_py.timeparse import parse_time_ms

    if len(a.paths) > 1 or a.paths == ["-"]:
        print("minectl events tail: follows one live log file (default $MINECTL_EVENTS)", file=sys.stderr)
        return 2
    live = a.paths[0] if a.paths else config.events_path()
    if os.path.isdir(live):
        live = os.path.join(live, "events.log")
    fol = Follower(
        live,
        from_start=a.from_start,
        idle_timeout=getattr(a, "idle_exit", None),
        strict=a.strict,
        types=a.types,
        stats=stats,
        since_ms=parse_time_ms(a.since) if a.since else None,
        until_ms=parse_time_ms(a.until) if a.until else None,
        where=miner_matcher(a.miner) if a.miner else None,
    )
    out = sys.stdout.buffer
    enc = encode_plain if a.lines else encode
    stats.on_bad = lambda b: print(f"minectl events: bad record: {b}", file=sys.stderr, flush=True)
    fol.on_idle = out.flush
    for rec in fol:
        out.write(enc(rec))
    out.flush()
    if stats.bad:
        print(f"minectl events: {stats.bad} bad record(s)", file=sys.stderr)
    return 0
