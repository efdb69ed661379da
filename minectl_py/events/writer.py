"""Appending to the live event log: concurrent writers, durable appends, daily rotation.

Standard library only: the lease hook appends through this module.

Guarantees (see docs/events.md, "Writing"):

* Every record is written as ``0x1E <json> 0x0A`` in a single ``write(2)`` on an
  ``O_APPEND`` descriptor, while holding an exclusive ``flock`` on the log's lock file
  (``.<name>.lock`` beside it). Concurrent writers (lease hook, poller, minectl) never
  interleave or tear records.
* ``append`` returns only after ``fdatasync``: the record is on disk.
* Daily rotation happens inside the same lock: the first append of a new UTC day renames the
  live file to ``<stem>-YYYYMMDD<suffix>`` (the day of its last write) and starts a new one.
  Followers (fluentd ``in_tail``, ``minectl events tail``) see a rename and a new file, the
  pattern they handle. A writer that still holds the old descriptor notices the inode change
  under the lock and reopens, so nothing is written to a rotated segment.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from minectl_py.events.owner import own_like_dir as _own_like_dir
from minectl_py.events.record import encode

#: Mode of new log files and the lock file. The directory carries the group (see docs).
FILE_MODE = 0o640


class EventLogError(OSError):
    """The event log could not be written (disk full, permissions...). Nothing was torn."""


def utc_day(ts: float) -> str:
    return time.strftime("%Y%m%d", time.gmtime(ts))


def segment_name(live: str, day: str, seq: int = 0) -> str:
    """``/d/events.log`` + day -> ``/d/events-20261127.log`` (``-20261127-1.log`` if taken)."""
    d, base = os.path.split(live)
    stem, dot, suffix = base.partition(".")
    tail = f"-{day}" + (f"-{seq}" if seq else "")
    return os.path.join(d, stem + tail + (dot + suffix if dot else ""))


def _sidecar(path: str) -> str:
    d, base = os.path.split(path)
    return os.path.join(d, f".{base}.idx")


def lock_path(live: str) -> str:
    d, base = os.path.split(live)
    return os.path.join(d, f".{base}.lock")


class EventWriter:
    """An appender to one live log. Cheap to create; keeps its descriptors until ``close``.

    ``rotate=False`` turns daily rotation off (a plain file, as in tests and ad hoc logs).
    ``clock`` is injectable for rotation tests.
    """

    def __init__(
        self,
        path: str,
        *,
        fsync: bool = True,
        rotate: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.fsync = fsync
        self.rotate = rotate
        self.clock = clock
        self._fd: int | None = None
        self._lock_fd: int | None = None

    # -- public -------------------------------------------------------------------
    def append(self, record: dict[str, Any]) -> None:
        """Append one record; durable on return."""
        self.append_bytes(encode(record))

    def append_many(self, records: Iterable[dict[str, Any]]) -> int:
        """Append several records in one write and one sync. Returns how many."""
        chunks = [encode(r) for r in records]
        if chunks:
            self.append_bytes(b"".join(chunks))
        return len(chunks)

    def append_bytes(self, data: bytes) -> None:
        """Append already-encoded records (each ``RS json LF``)."""
        try:
            lock_fd = self._lock()
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            try:
                fd = self._current_fd()
                size = os.fstat(fd).st_size
                try:
                    self._write_all(fd, data)
                    if self.fsync:
                        os.fdatasync(fd)
                except OSError:
                    # Disk full mid-record: cut the partial write so no torn record stays.
                    with _suppress_oserror():
                        os.ftruncate(fd, size)
                    raise
            finally:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)
        except OSError as e:
            raise EventLogError(e.errno, f"cannot append to event log {self.path}: {e.strerror}") from e

    def rotate_now(self) -> str | None:
        """Rotate the live file now if it is not empty. Returns the segment's path."""
        lock_fd = self._lock()
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        try:
            return self._rotate_locked(force=True)
        finally:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)

    def close(self) -> None:
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._lock_fd = None

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------
    def _lock(self) -> int:
        if self._lock_fd is None:
            d = os.path.dirname(self.path) or "."
            if not os.path.isdir(d):
                os.makedirs(d, mode=0o750, exist_ok=True)
            self._lock_fd = os.open(lock_path(self.path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
            _own_like_dir(self._lock_fd, d)
        return self._lock_fd

    def _current_fd(self) -> int:
        """The descriptor of the current live file (called with the lock held)."""
        if self.rotate:
            self._rotate_locked(force=False)
        if self._fd is not None:
            try:
                st = os.stat(self.path)
                if st.st_ino == os.fstat(self._fd).st_ino:
                    return self._fd
            except FileNotFoundError:
                pass
            os.close(self._fd)
            self._fd = None
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        _own_like_dir(self._fd, os.path.dirname(self.path) or ".")
        return self._fd

    def _rotate_locked(self, *, force: bool) -> str | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        if st.st_size == 0:
            return None
        day = utc_day(st.st_mtime)
        if not force and day == utc_day(self.clock()):
            return None
        seq = 0
        while True:
            target = segment_name(self.path, day, seq)
            if not os.path.exists(target) and not os.path.exists(target + ".gz"):
                break
            seq += 1
        os.rename(self.path, target)
        # The temporal index sidecar (events.index) follows its file; its inode still matches.
        with _suppress_oserror():
            os.rename(_sidecar(self.path), _sidecar(target))
        _fsync_dir(os.path.dirname(self.path) or ".")
        return target

    @staticmethod
    def _write_all(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            if n <= 0:  # pragma: no cover - write(2) returns >0 or raises
                raise OSError(errno.EIO, "short write")
            view = view[n:]


class _suppress_oserror:
    def __enter__(self) -> None:
        return None

    def __exit__(self, tp: object, val: object, tb: object) -> bool:
        return isinstance(val, OSError)


def _fsync_dir(d: str) -> None:
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append(path: str, record: dict[str, Any], **kw: Any) -> None:
    """One-shot append (open, lock, write, sync, close): what the lease hook does."""
    with EventWriter(path, **kw) as w:
        w.append(record)
