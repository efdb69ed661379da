"""Decompression in a second thread: the reader parses while zlib inflates the next chunks.

zlib releases the GIL while it inflates, so on a machine with a free core reading a gzip
file costs little more than parsing it. The bytes are exactly those of the wrapped stream
(the same :class:`~minectl_py.events.reader.GzipStream`), so results do not change.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import Any

from minectl_py.events.gzipstream import GzipStream

#: Chunks decompressed ahead (each up to a few MiB of text).
DEPTH = 4


class ReadAhead(GzipStream):
    """``read()`` chunks of ``stream`` produced by a daemon thread; ``truncated`` is the
    wrapped stream's, valid once ``read()`` has returned ``b""``. A :class:`GzipStream` to its
    users (``isinstance`` checks keep working)."""

    def __init__(self, stream: Any) -> None:  # GzipStream.__init__ not called: `stream` does the work
        self.stream = stream
        self._q: queue.Queue[bytes | BaseException] = queue.Queue(DEPTH)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, name="minectl-readahead", daemon=True)
        self._done = False
        self._t.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                data = self.stream.read()
                self._q.put(data)
                if not data:
                    return
        except BaseException as e:  # handed to the reader's thread
            self._q.put(e)

    def read(self, n: int = -1) -> bytes:
        if self._done:
            return b""
        item = self._q.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        if not item:
            self._done = True
        return item

    @property  # type: ignore[override]
    def truncated(self) -> bool:
        return bool(getattr(self.stream, "truncated", False))

    def close(self) -> None:
        self._stop.set()
        while self._t.is_alive():  # unblock a put() waiting for room
            with contextlib.suppress(queue.Empty):
                self._q.get(timeout=0.05)
        self.stream.close()
