"""The audit trail: one ``action`` event per miner and result, naming the Unix user."""

from __future__ import annotations

import os
from typing import Any

from minectl_py import config
from minectl_py.admin.engine import Result
from minectl_py.admin.plan import family
from minectl_py.admin.transports import short
from minectl_py.events.record import make, new_id


class Audit:
    """Collects action records and appends them to the site log in batches (durable)."""

    def __init__(self, action: str, params: dict[str, Any], user: str, path: str | None = None) -> None:
        self.action = action
        self.params = params
        self.user = user
        self.batch = new_id()
        self.path = path or config.events_path()
        self.node = config.nodename()
        self.pending: list[dict[str, Any]] = []
        self.written = 0
        self._writer: Any = None

    def check_writable(self) -> None:
        """Raise PermissionError when the log cannot be appended to (we refuse to act unaudited)."""
        d = os.path.dirname(self.path) or "."
        target = self.path if os.path.exists(self.path) else d
        if not os.path.isdir(d):
            raise PermissionError(f"the event log's directory {d} does not exist: cannot write the audit trail")
        if not os.access(target, os.W_OK):
            raise PermissionError(f"cannot append to the event log {self.path}: acting needs the audit trail")

    def record(self, r: Result) -> dict[str, Any]:
        m = r.miner
        o = r.outcome
        fields: dict[str, Any] = {
            "user": self.user,
            "uid": os.getuid(),
            "action": self.action,
            "target": m.get("ip") or "",
            "mac": m.get("mac"),
            "name": m.get("name") or m.get("hostname"),
            "result": o.result,
            "detail": short(o.detail, 300),
            "transport": o.transport,
            "params": self.params or None,
            "batch": self.batch,
            "family": family(m),
            "attempts": r.attempts,
            "elapsed_ms": r.elapsed_ms,
            "tried": o.tried or None,
        }
        rec = make("action", self.node, {k: v for k, v in fields.items() if v is not None})
        self.pending.append(rec)
        return rec

    def flush(self) -> None:
        if not self.pending:
            return
        from minectl_py.events.writer import EventWriter

        if self._writer is None:
            self._writer = EventWriter(self.path)
        recs, self.pending = self.pending, []
        self._writer.append_many(recs)
        self.written += len(recs)

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.close()
