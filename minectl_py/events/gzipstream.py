"""Decompressing (multi-member) gzip event files chunk by chunk, tolerant of truncation.

The bytes returned do not depend on how the input is chunked, even for a corrupt member, so
a full scan and a seek to a member (the temporal index) see the same text.
"""

from __future__ import annotations

import zlib
from typing import Any, BinaryIO

CHUNK = 1 << 20


class GzipStream:
    """Decompress a (multi-member) gzip stream chunk by chunk.

    Unlike :class:`gzip.GzipFile` it tolerates a truncated last member (a file fluentd is
    still appending to): what decompressed cleanly is returned, then EOF, and
    ``truncated`` is set.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self._d = zlib.decompressobj(wbits=31)
        self._fed = False  # has the current member's decompressor seen input?
        self._eof = False
        self.truncated = False

    def read(self, n: int = CHUNK) -> bytes:
        while not self._eof:
            buf = self.raw.read(CHUNK // 4)
            if not buf:
                self._eof = True
                if self._fed and not self._d.eof:
                    self.truncated = True
                return self._d.flush() if not self._d.eof else b""
            out = self._feed(buf)
            if out:
                return out
        return b""

    def _feed(self, buf: bytes) -> bytes:
        out = []
        while buf:
            if not self._fed:
                buf = buf.lstrip(b"\0")  # zero padding between or after members
                if not buf:
                    break
            self._fed = True
            data, ok = self._inflate(buf)
            out.append(data)
            if not ok or not self._d.eof:
                break
            buf = self._d.unused_data
            self._d = self._new()
            self._fed = False
        return b"".join(out)

    def _new(self) -> Any:
        """A fresh inflater for the next member."""
        return zlib.decompressobj(wbits=31)

    def _inflate(self, buf: bytes) -> tuple[bytes, bool]:
        """``buf`` through the member's inflater: (text, True), or at corrupt data what
        inflated before it and False (the stream then ends, reported as truncated)."""
        saved = self._d.copy()
        try:
            return self._d.decompress(buf), True
        except zlib.error:
            self.truncated = True
            self._eof = True
            return salvage(saved, buf), False

    def close(self) -> None:
        self.raw.close()


def salvage(d: Any, buf: bytes) -> bytes:
    """What ``d`` inflates from ``buf`` before the byte that makes zlib fail.

    ``decompress`` returns nothing when it raises, so how much of a corrupt member survives
    would depend on how the input was chunked; feeding byte by byte makes it exact, so a
    scan from the file's start and a seek to a member give the same records."""
    out = []
    for i in range(len(buf)):
        try:
            out.append(d.decompress(buf[i : i + 1]))
        except zlib.error:
            break
        if d.eof:
            break
    return b"".join(out)


try:  # optional: ISA-L's inflate, 3-4x zlib's speed (the `isal` package)
    from isal import isal_zlib as _isal
except ImportError:  # pragma: no cover - depends on the environment
    _isal = None

HAVE_ISAL = _isal is not None


class FastGzipStream(GzipStream):
    """A :class:`GzipStream` of a seekable file that inflates with ISA-L when it is installed.

    The bytes are exactly :class:`GzipStream`'s: every byte an inflater returns is the
    stream's, so on anything but clean members (corrupt data, a truncated end) the file is
    inflated again from its start with zlib, the bytes already returned are skipped, and
    :class:`GzipStream` (with its salvage of a corrupt member) goes on from there. Reads
    512 KiB of compressed data at a time (about 4 MiB of text per ``read``).
    """

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__(raw)
        self._done = 0  # bytes returned so far
        self._slow: GzipStream | None = None
        if _isal is None:
            self._slow = GzipStream(raw)
        else:
            self._d = self._new()

    def read(self, n: int = CHUNK) -> bytes:
        if self._slow is not None:
            return self._slow.read(n)
        while not self._eof:
            buf = self.raw.read(CHUNK // 2)  # ~4 MiB of text per read
            if not buf:
                self._eof = True
                if self._fed and not self._d.eof:
                    return self._replay()  # truncated: zlib says how much survives
                return b""
            try:
                out = self._feed(buf)
            except _isal.error:  # type: ignore[union-attr]
                return self._replay()
            if out:
                self._done += len(out)
                return out
        return b""

    def _new(self) -> Any:
        return _isal.decompressobj(wbits=31)  # type: ignore[union-attr]

    def _inflate(self, buf: bytes) -> tuple[bytes, bool]:
        return self._d.decompress(buf), True  # an error: read() replays with zlib

    def _replay(self) -> bytes:
        self.raw.seek(0)
        slow = self._slow = GzipStream(self.raw)
        skip = self._done
        while skip > 0:
            data = slow.read()
            if not data:
                return b""
            if len(data) > skip:
                return data[skip:]
            skip -= len(data)
        return slow.read()

    @property  # type: ignore[override]
    def truncated(self) -> bool:
        return self._slow.truncated if self._slow is not None else False

    @truncated.setter
    def truncated(self, value: bool) -> None:  # GzipStream.__init__ sets it
        pass


__all__ = ["HAVE_ISAL", "FastGzipStream", "GzipStream", "salvage"]
