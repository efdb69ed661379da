"""Crash recovery for the state directory: an undo journal per chunk of records.

A writer killed (``kill -9``, OOM, a crash) in the middle of :func:`project.record_and_apply`
could leave the log holding records whose projection stopped half way: some of a miner's
files new, ``miner.json`` old, a link not moved. To make ``minectl state rebuild`` equal the
live directory again, every chunk is journalled in ``<state>/.journal`` (a dot file, ignored
by readers and by ``minectl state diff``):

1. a header line, before the chunk is appended to the log: the log's path, its inode and
   size at that moment, and the ids of the chunk's records;
2. before the first change of each miner folder or link in the chunk, its *before image*
   (the miner's values, or ``null`` for no folder; the link's target, or ``null``);
3. when the chunk is projected, the journal is cut to zero length (its inode is reused).

The next writer that takes the state lock and finds a non-empty journal recovers
(:func:`recover`): it restores every before image (undo: the directory is as before the
chunk), terminates a torn last record of the log with a line feed (so every later reader
sees the same records), reads the log from the recorded position and projects again the
chunk's records that reached it whole (redo), then cuts the journal. Recovery is itself
journalled by the same file, so a crash during recovery is recovered the same way.

Scope: process death. A power cut can also lose state writes that were never synced (the
log is ``fdatasync``ed, the state directory is not); ``minectl state verify`` tells, and
``minectl state rebuild`` mends it (docs/security.md).

Standard library and import-cheap (the lease hook journals every lease change).
"""

from __future__ import annotations

import os

from minectl_py import fastjson
from minectl_py.state.values import BY_IP, BY_NAME, MINER_JSON, encode_json, encode_value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

JOURNAL = ".journal"


class Journal:
    """The undo journal of one chunk (used under the state lock)."""

    __slots__ = ("fd", "keys", "path")

    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, JOURNAL)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self.keys: set[str] = set()
        if os.geteuid() == 0:  # root (an admin without sudo -u): the service user must reopen it
            st, dst = os.fstat(self.fd), os.stat(root)
            if (st.st_uid, st.st_gid) != (dst.st_uid, dst.st_gid):
                try:  # noqa: SIM105 - no contextlib here (import cost)
                    os.fchown(self.fd, dst.st_uid, dst.st_gid)
                except OSError:
                    pass

    def pending(self) -> bool:
        return os.fstat(self.fd).st_size > 0

    def _line(self, obj: dict[str, Any]) -> None:
        data = fastjson.dumps(obj) + b"\n"
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def begin(self, log: str | None, ids: list[str]) -> None:
        ino = off = None
        if log:
            try:
                st = os.stat(log)
                ino, off = st.st_ino, st.st_size
            except FileNotFoundError:
                off = 0
        self._line({"log": log, "ino": ino, "off": off, "ids": ids})

    def miner(self, mac: str, before: dict[str, Any] | None) -> None:
        key = "m/" + mac
        if key not in self.keys:
            self.keys.add(key)
            self._line({"m": mac, "v": before})

    def link(self, sub: str, name: str, target: str | None) -> None:
        key = f"{sub}/{name}"
        if key not in self.keys:
            self.keys.add(key)
            self._line({"l": sub, "n": name, "t": target})

    def done(self) -> None:
        os.ftruncate(self.fd, 0)
        self.keys.clear()

    def close(self) -> None:
        os.close(self.fd)


def _entries(path: str) -> list[dict[str, Any]]:
    with open(path, "rb") as f:
        data = f.read()
    out = []
    for line in data.split(b"\n"):
        try:
            obj = fastjson.loads(line)
        except (ValueError, UnicodeDecodeError):
            continue  # a torn last entry: the change it announced never started
        if isinstance(obj, dict):
            out.append(obj)
    return out


def _safe(name: object) -> bool:
    return isinstance(name, str) and bool(name) and "/" not in name and name not in (".", "..")


def _undo(site: Any, entries: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    for e in entries:
        if "m" in e and _safe(e["m"]):
            key = "m/" + e["m"]
            if key in seen:
                continue
            seen.add(key)
            _restore_miner(site, e["m"], e.get("v"))
        elif "l" in e and e["l"] in (BY_IP, BY_NAME) and _safe(e.get("n")):
            key = f"{e['l']}/{e['n']}"
            if key in seen:
                continue
            seen.add(key)
            _restore_link(os.path.join(site.root, e["l"]), e["n"], e.get("t"))
    site.cache.clear()


def _restore_miner(site: Any, mac: str, vals: object) -> None:
    from minectl_py.state import project as p

    d = os.path.join(site.miners, mac)
    tmpd = os.path.join(site.miners, f".{mac}.new")
    for folder in (tmpd, d) if not isinstance(vals, dict) else (tmpd,):
        if os.path.isdir(folder):
            for e in os.scandir(folder):
                os.unlink(e.path)
            os.rmdir(folder)
    if not isinstance(vals, dict):
        return
    os.makedirs(d, mode=0o755, exist_ok=True)
    for k, v in vals.items():
        if _safe(k) and not k.startswith(".") and k != MINER_JSON:
            p.write_file(d, k, encode_value(k, v))
    for e in os.scandir(d):
        if not e.name.startswith(".") and e.name != MINER_JSON and e.name not in vals:
            os.unlink(e.path)
    p.write_file(d, MINER_JSON, encode_json(vals))


def _restore_link(d: str, name: str, target: object) -> None:
    path = os.path.join(d, name)
    try:
        cur: str | None = os.readlink(path)
    except OSError:
        cur = None
    if cur == target:
        return
    if not isinstance(target, str):
        if os.path.lexists(path):
            os.unlink(path)
        return
    tmp = os.path.join(d, f".{name}.tmp")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.rename(tmp, path)


def terminate_log(live: str) -> bool:
    """If the live log's last byte is not a line feed (a writer died mid-record), append one
    under the writers' lock, so the torn record is one bad line for every reader from now on.
    Returns True if a line feed was added."""
    import fcntl

    from minectl_py.events.writer import lock_path

    if not os.path.exists(live):
        return False
    lfd = os.open(lock_path(live), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        fcntl.flock(lfd, fcntl.LOCK_EX)
        fd = os.open(live, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
                return False
            os.write(fd, b"\n")
            os.fdatasync(fd)
            return True
        finally:
            os.close(fd)
    finally:
        os.close(lfd)


def _logged(head: dict[str, Any]) -> list[dict[str, Any]]:
    """The chunk's records that reached the log whole, in log order."""
    from minectl_py.events.reader import EventReader
    from minectl_py.events.segments import log_set

    log, ino, off, ids = head.get("log"), head.get("ino"), head.get("off"), head.get("ids")
    if not isinstance(log, str) or not isinstance(ids, list) or not ids:
        return []
    terminate_log(log)
    files = [f for f in log_set(log) if not f.endswith(".gz")]
    start, offset = None, 0
    for i, f in enumerate(files):
        try:
            if ino is not None and os.stat(f).st_ino == ino:
                start, offset = i, off if isinstance(off, int) else 0
                break
        except FileNotFoundError:
            continue
    if start is None:  # the file went (compacted?): our records went to the live file
        start, offset = len(files) - 1, 0
    want = set(ids)
    out: list[dict[str, Any]] = []
    reader = EventReader([])
    for i in range(max(start, 0), len(files)):
        with open(files[i], "rb") as f:
            if i == start:
                f.seek(offset)
            for rec in reader.read_stream(f, files[i]):
                if rec.get("id") in want:
                    out.append(rec)
                    want.discard(rec.get("id"))
        if not want:
            break
    return out


def recover(site: Any, journal: Journal) -> dict[str, int]:
    """Undo the interrupted chunk's changes and project again what of it reached the log.
    Called with the state lock held. Returns counts (for tests and the log)."""
    from minectl_py.state import project as p

    entries = _entries(journal.path)
    head = entries[0] if entries and "ids" in entries[0] else {}
    _undo(site, entries[1:] if head else entries)
    redo = _logged(head) if head else []
    # Redo under the same journal: a crash now is recovered the same way next time.
    journal.keys = {f"m/{e['m']}" for e in entries if "m" in e} | {f"{e['l']}/{e['n']}" for e in entries if "l" in e}
    p.apply_journalled(site, journal, redo)
    undone = sum(1 for e in entries if "m" in e or "l" in e)
    journal.done()
    return {"undone": undone, "redone": len(redo)}
