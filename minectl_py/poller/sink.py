"""Where poll records go: the event log and the state directory, in batches.

The one place the poller writes. With the state projection available
(``minectl_py.state.project.record_and_apply``) a batch is appended to the log and projected
under the state lock, so the log's order is the state's order; the projection writes only
the files whose values changed. Each record is written whole (one ``write`` under the log's
lock): a SIGTERM between batches never leaves a torn record or a half-written state file.
"""

from __future__ import annotations

import logging
from typing import Any

from minectl_py.events.writer import EventWriter

log = logging.getLogger("minectl.poll")


def describe(e: OSError) -> str:
    """``reason (path)`` for an OSError, whatever raised it."""
    text = e.strerror or str(e)
    if e.filename and str(e.filename) not in text:
        text += f": {e.filename}"
    return text


class Sink:
    def __init__(self, events_path: str | None, state_dir: str | None, *, fsync: bool = True) -> None:
        self.writer = EventWriter(events_path, fsync=fsync) if events_path else None
        self.state_dir = state_dir
        self.project: Any = None
        if state_dir:
            try:
                from minectl_py.state import project

                self.project = project
            except ImportError:
                log.warning("state projection not available: the state directory is not updated")
        self.records = 0
        self.errors = 0
        self.lost = 0
        self.last_error = ""

    def commit(self, records: list[dict[str, Any]]) -> None:
        """Write a batch. A write that fails (disk full, permissions) is logged as an error
        naming the path and counted in ``errors``; the poller goes on (the next batch is tried
        afresh, and a batch left half projected is recovered by the next writer)."""
        if not records:
            return
        append = self.writer.append_many if self.writer else None
        try:
            if self.project is not None and self.state_dir:
                self.project.record_and_apply(self.state_dir, records, append)
            elif append is not None:
                append(records)
        except OSError as e:
            self.errors += 1
            self.lost += len(records)
            self.last_error = describe(e)
            log.error("cannot record %d poll results: %s", len(records), self.last_error)
            return
        self.records += len(records)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
