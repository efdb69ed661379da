"""Rebuilding the rule state from the site log, and following the live log between cycles.

Only four record types matter (``rule``, ``alert``, ``silence``, ``lease``); lines are
pre-filtered on their bytes, so replaying a day of poll records costs little more than reading
it. The service writes a checkpoint (the whole state in one ``rule`` record) every hour, and
replay goes back only to the newest one (at most ``lookback``, default 7 days).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from typing import Any

from minectl_py.events.reader import BadRecord, ReadStats, _split_records, classify, iter_lines, open_binary, printable
from minectl_py.events.segments import log_set
from minectl_py.rules.state import RuleState

WANTED = (b'"cmd":"rule"', b'"cmd":"alert"', b'"cmd":"silence"', b'"cmd":"lease"')
_DAY = re.compile(r"-(\d{8})(?:-\d+)?\.[^/]*$")


def _wanted(line: bytes) -> bool:
    return any(w in line for w in WANTED)


def records(stream: Any, name: str, stats: ReadStats) -> Iterator[dict[str, Any]]:
    """The wanted records of one stream; bad ones are counted with file and line."""
    lineno = 0
    for raw, complete in iter_lines(stream):
        lineno += 1
        if not _wanted(raw):
            continue
        for text in _split_records(raw):
            rec, reason = classify(text)
            if rec is None:
                if complete:  # a last line without LF is a record still being written
                    stats.add_bad(BadRecord(name, lineno, reason or "bad", printable(text)))
                continue
            stats.records += 1
            yield rec


def files_since(live: str, since_ms: int) -> list[str]:
    """The log's files that may hold records at or after ``since_ms`` (by their day in the name)."""
    day = time.strftime("%Y%m%d", time.gmtime(since_ms / 1000))
    out = []
    for p in log_set(live):
        m = _DAY.search(os.path.basename(p))
        if m and m.group(1) < day:
            continue
        out.append(p)
    return out


def rebuild(live: str, now_ms: int, lookback_ms: int = 7 * 86_400_000, stats: ReadStats | None = None) -> RuleState:
    """The rule state as of ``now_ms``: files are read newest first until one holds a
    checkpoint (the service writes one an hour), at most ``lookback_ms`` back; then the
    records from the newest checkpoint on are folded in order."""
    stats = stats if stats is not None else ReadStats()
    since = now_ms - lookback_ms
    chunks: list[list[dict[str, Any]]] = []
    for path in reversed(files_since(live, since)):
        recs = []
        stream = open_binary(path)
        try:
            for rec in records(stream, path, stats):
                t = rec.get("created_at_ms")
                if isinstance(t, str) and t.isdigit() and since <= int(t) <= now_ms:
                    recs.append(rec)
        finally:
            stream.close()
        cps = [i for i, r in enumerate(recs) if r.get("cmd") == "rule" and r.get("decision") == "checkpoint"]
        if cps:
            chunks.append(recs[cps[-1] :])
            break
        chunks.append(recs)
    st = RuleState()
    for recs in reversed(chunks):
        st.apply_all(recs)
    st.prune(now_ms)
    return st


class Tail:
    """New records appended to the live log since the last call (across a daily rotation)."""

    def __init__(self, live: str, stats: ReadStats | None = None) -> None:
        self.live = live
        self.stats = stats if stats is not None else ReadStats()
        self._f: Any = None
        self._ino = -1
        self._rest = b""

    def start_at_end(self) -> None:
        """Skip what is already there (the replay has read it)."""
        try:
            f = open(self.live, "rb")  # noqa: SIM115 - kept open between calls
        except FileNotFoundError:
            return
        f.seek(0, os.SEEK_END)
        self._f, self._ino = f, os.fstat(f.fileno()).st_ino

    def read(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self._f is not None:
            out.extend(self._drain())
        try:
            ino = os.stat(self.live).st_ino
        except FileNotFoundError:
            return out
        if ino != self._ino:  # rotated (or first time): finish the old file, open the new one
            if self._f is not None:
                self._f.close()
            self._f = open(self.live, "rb")  # noqa: SIM115
            self._ino = os.fstat(self._f.fileno()).st_ino
            self._rest = b""
            out.extend(self._drain())
        return out

    def _drain(self) -> Iterator[dict[str, Any]]:
        data = self._rest + self._f.read()
        if not data:
            return
        cut = data.rfind(b"\n") + 1
        self._rest = data[cut:]
        for raw in data[:cut].split(b"\n"):
            if not raw or not _wanted(raw):
                continue
            for text in _split_records(raw.rstrip(b"\r")):
                rec, reason = classify(text)
                if rec is None:
                    self.stats.add_bad(BadRecord(self.live, 0, reason or "bad", printable(text)))
                    continue
                yield rec

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
