"""At boot: bring the state directory up to the event log after a power cut.

The event log is ``fdatasync``ed by every writer; the state directory is not. A power cut of
the machine (not just of a process, which the undo journal covers: ``state/journal.py``) can
therefore lose the last seconds of state writes, or leave some of them as empty or old files,
while the log kept the records. ``minectl state repair`` (the ``minectl-state-recover``
unit, before dnsmasq and the poller) does three things:

1. recovers a journal a killed writer left (as every writer would);
2. a cheap check: the records of the log's last ``window`` (default 10 minutes before its
   newest record; the kernel writes dirty data back within ~30 s, so older writes reached
   the disk) are read from the end of the newest segments, and for each miner they touch
   the state must hold their effect: projecting the miner's last record again changes
   nothing (each record sets values: projecting it twice equals projecting it once), every
   value file says what ``miner.json`` says, no value file is missing or extra, and its
   ``by-ip/`` and ``by-name/`` links exist;
3. when the check finds the state behind (or ``--full`` finds any difference from a full
   replay), replays the whole log into ``<state>/.rebuild-PID`` and swaps its ``miners``,
   ``by-ip`` and ``by-name`` in, one ``renameat2`` exchange each, under the state lock (the
   state directory itself, its mode and its lock stay: writers waiting meanwhile go on in
   the rebuilt parts).

Pure parts (:func:`problems`) take values, not paths; I/O is in :func:`tail_records` and
:func:`repair`.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import Any

from minectl_py.events.reader import classify, record_time_ms
from minectl_py.state import project
from minectl_py.state.compare import diff, snapshot
from minectl_py.state.files import read_link
from minectl_py.state.values import (
    BY_IP,
    BY_NAME,
    MINER_JSON,
    MINERS,
    PROJECTED,
    encode_json,
    encode_value,
    link_ip,
    link_name,
    reduce,
)

#: How far back from the newest record the cheap check looks (ms).
WINDOW_MS = 10 * 60 * 1000
#: At most this many bytes of log are read for the check (then the window is cut short).
MAX_TAIL_BYTES = 256 << 20
_BLOCK = 1 << 20


@dataclass
class Outcome:
    """What ``repair`` found and did."""

    state_dir: str
    journal: dict[str, int] | None = None
    records_checked: int = 0
    miners_checked: int = 0
    problems: list[str] = field(default_factory=list)
    rebuilt: bool = False
    rebuild: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "state_dir": self.state_dir,
            "journal_recovered": self.journal is not None,
            "journal": self.journal,
            "records_checked": self.records_checked,
            "miners_checked": self.miners_checked,
            "behind": bool(self.problems),
            "problems": self.problems[:50],
            "problem_count": len(self.problems),
            "rebuilt": self.rebuilt,
            "rebuild": self.rebuild,
        }


# ------------------------------------------------------------------------ reading the tail
def _parse(buf: bytes, whole: bool) -> list[dict[str, Any]]:
    """Records in ``buf`` (the end of a segment); the first piece is dropped unless ``whole``
    (it may be the end of a record that started before the buffer)."""
    parts = buf.split(b"\x1e")
    if not whole:
        parts = parts[1:]
    out = []
    for p in parts:
        text = p.strip(b" \t\r\n")
        if not text:
            continue
        rec, _ = classify(text)
        if rec is not None:
            out.append(rec)
    return out


def _times(recs: list[dict[str, Any]]) -> list[int]:
    return [t for t in (record_time_ms(r) for r in recs) if t is not None]


def _tail_of(
    path: str, cutoff: int | None, window_ms: int, budget: int
) -> tuple[list[dict[str, Any]], bool, int, int | None]:
    """The records at the end of one plain segment back to ``cutoff`` (ms; None: the newest
    record's time minus ``window_ms``), reading at most ``budget`` bytes. Returns (records,
    the whole file was read, bytes read, cutoff)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        n = min(size, _BLOCK, budget)
        while True:
            f.seek(size - n)
            recs = _parse(f.read(n), n >= size)
            times = _times(recs)
            if cutoff is None and times:
                cutoff = max(times) - window_ms
            if n >= size or n >= budget or (cutoff is not None and times and times[0] < cutoff):
                return recs, n >= size, n, cutoff
            n = min(size, n * 2, budget)


def tail_records(paths: list[str], window_ms: int = WINDOW_MS, max_bytes: int = MAX_TAIL_BYTES) -> list[dict[str, Any]]:
    """The records of the log's last ``window_ms`` (from its newest record), oldest first.
    ``paths`` is the log set, oldest first; compressed segments are not read (they are days
    old)."""
    out: list[dict[str, Any]] = []
    cutoff: int | None = None
    budget = max_bytes
    for path in reversed(paths):
        if path.endswith(".gz") or budget <= 0 or not os.path.exists(path):
            break
        recs, whole, used, cutoff = _tail_of(path, cutoff, window_ms, budget)
        budget -= used
        out[:0] = recs
        times = _times(recs)
        if not whole or (cutoff is not None and times and times[0] < cutoff):
            break
    if cutoff is None:
        return out
    return [r for r in out if (record_time_ms(r) or cutoff) >= cutoff]


# ------------------------------------------------------------------------------ the check
def _files(d: str) -> dict[str, bytes] | None:
    try:
        names = [e.name for e in os.scandir(d) if not e.name.startswith(".")]
    except FileNotFoundError:
        return None
    out = {}
    for n in names:
        try:
            with open(os.path.join(d, n), "rb") as f:
                out[n] = f.read()
        except (FileNotFoundError, IsADirectoryError):
            continue
    return out


def problems(
    last: dict[str, dict[str, Any]],
    values: dict[str, dict[str, Any]],
    files: dict[str, dict[str, bytes] | None],
    links: dict[str, str | None],
) -> list[str]:
    """What shows the state behind the log (pure). ``last``: each miner's last record in the
    window; ``values``: its ``miner.json`` ({} if none or unreadable); ``files``: its folder's
    files (None: no folder); ``links``: ``"by-ip/X"`` -> target."""
    out = []
    for mac, rec in sorted(last.items()):
        cur = values.get(mac, {})
        try:
            new = reduce(cur, rec, mac)
        except (ValueError, TypeError):
            continue
        rid = rec.get("id", "?")
        have = files.get(mac)
        if new is None:
            if have is not None:
                out.append(f"{mac}: the folder is still there after record {rid} removed it")
            continue
        if have is None:
            out.append(f"{mac}: no folder, but record {rid} is about it")
            continue
        if new != cur:
            keys = sorted(k for k in set(new) | set(cur) if new.get(k) != cur.get(k))
            out.append(f"{mac}: miner.json does not hold record {rid} ({', '.join(keys[:6])})")
            continue
        want = {k: encode_value(k, v) for k, v in cur.items()}
        want[MINER_JSON] = encode_json(cur)
        for k in sorted(set(want) | set(have)):
            if want.get(k) != have.get(k):
                what = "missing" if k not in have else "extra" if k not in want else "differs from miner.json"
                out.append(f"{mac}: {k} {what}")
        target = f"../{MINERS}/{mac}"
        for sub, name in ((BY_IP, link_ip(cur)), (BY_NAME, link_name(cur))):
            if name and links.get(f"{sub}/{name}") is None:
                out.append(f"{mac}: no {sub}/{name} link (want {target})")
    return out


def check(state_dir: str, records: list[dict[str, Any]]) -> tuple[list[str], int]:
    """Run :func:`problems` on the directory (under the caller's lock). Returns (problems,
    miners checked)."""
    site = project.site_for(state_dir)
    last: dict[str, dict[str, Any]] = {}
    for rec in records:
        if rec.get("cmd") in PROJECTED:
            mac = project.miner_of(site, rec)
            if mac:
                last[mac] = rec
    values, files, links = {}, {}, {}
    for mac in last:
        d = os.path.join(site.miners, mac)
        files[mac] = _files(d)
        vals = values[mac] = project.load_values(site, mac)
        for sub, name in ((BY_IP, link_ip(vals)), (BY_NAME, link_name(vals))):
            if name and "/" not in name:
                links[f"{sub}/{name}"] = read_link(os.path.join(site.root, sub, name))
    return problems(last, values, files, links), len(last)


# ------------------------------------------------------------------------------- repair
#: The parts of a state directory a rebuild replaces (one exchange each).
PARTS = (MINERS, BY_IP, BY_NAME)
_SCRATCH = ".rebuild-"


def _clear_leftovers(state_dir: str) -> None:
    for e in os.scandir(state_dir):
        if e.name.startswith(_SCRATCH) and e.is_dir(follow_symlinks=False):
            shutil.rmtree(e.path, ignore_errors=True)


def _rebuild_scratch(state_dir: str, paths: list[str] | None) -> tuple[str, dict[str, Any]]:
    """Replay the log into ``<state>/.rebuild-PID`` (a dot name: readers skip it)."""
    from minectl_py.state import cli as state_cli

    tmp = os.path.join(os.path.abspath(state_dir), f"{_SCRATCH}{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    return tmp, state_cli.rebuild(paths, tmp)


def _swap_in(state_dir: str, tmp: str) -> None:
    """Exchange the rebuilt ``miners``, ``by-ip`` and ``by-name`` with the live ones (the
    caller holds the state lock). The state directory itself stays (its mode, owner and lock
    file); a crash half way leaves parts of both, which the next check finds (and
    ``.rebuild-*`` is cleared at the next start)."""
    from minectl_py.state import swapdir

    live = os.path.abspath(state_dir)
    if os.geteuid() == 0:  # by hand as root: the service user must go on writing it
        st = os.stat(live)
        for d, dirs, fls in os.walk(tmp):
            for n in [d] + [os.path.join(d, x) for x in dirs + fls]:
                os.lchown(n, st.st_uid, st.st_gid)
    os.sync()  # the rebuilt parts are on disk before they become the live ones
    exchange = swapdir.exchanger()
    for part in PARTS:
        a, b = os.path.join(tmp, part), os.path.join(live, part)
        os.makedirs(b, mode=0o755, exist_ok=True)
        if exchange is None or not exchange(a, b):
            os.rename(b, os.path.join(tmp, f"{part}.old"))
            os.rename(a, b)
    dfd = os.open(live, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    project.forget_cache(live)
    project.forget_cache(tmp)
    shutil.rmtree(tmp, ignore_errors=True)


def replace_with_rebuild(state_dir: str, paths: list[str] | None) -> dict[str, Any]:
    """Replay the log beside the live parts and swap them in (the caller holds the lock)."""
    tmp, res = _rebuild_scratch(state_dir, paths)
    _swap_in(state_dir, tmp)
    return res


def repair(
    state_dir: str,
    paths: list[str],
    *,
    window_ms: int = WINDOW_MS,
    full: bool = False,
    dry_run: bool = False,
) -> Outcome:
    """Recover, check, and rebuild when behind (see the module's text). ``paths``: the log
    set, oldest first. ``dry_run``: check only."""
    out = Outcome(state_dir)
    if not os.path.isdir(state_dir):
        if not any(os.path.exists(p) for p in paths):
            return out  # a new controller: nothing written yet
        out.problems.append(f"{state_dir}: no state directory, but the log has records")
        if not dry_run:
            os.makedirs(state_dir, mode=0o750)
            with project.StateLock(state_dir):
                out.rebuild, out.rebuilt = replace_with_rebuild(state_dir, paths), True
        return out
    if not dry_run:
        _clear_leftovers(state_dir)
        out.journal = project.recover(state_dir)
    site = project.site_for(state_dir)
    with project.StateLock(site.root):
        if full and not dry_run:  # one replay: compared, then swapped in if different
            tmp, res = _rebuild_scratch(state_dir, paths)
            out.problems = diff(snapshot(state_dir), snapshot(tmp))
            if out.problems:
                _swap_in(state_dir, tmp)
                out.rebuild, out.rebuilt = res, True
            else:
                shutil.rmtree(tmp, ignore_errors=True)
            return out
        if full:
            out.problems = _full_diff(state_dir, paths)
        else:
            recs = tail_records(paths, window_ms)
            out.records_checked = len(recs)
            out.problems, out.miners_checked = check(state_dir, recs)
        if out.problems and not dry_run:
            out.rebuild, out.rebuilt = replace_with_rebuild(state_dir, paths), True
    return out


def _full_diff(state_dir: str, paths: list[str]) -> list[str]:
    """Differences from a replay into a temporary directory (changes nothing)."""
    import tempfile

    from minectl_py.state import cli as state_cli

    with tempfile.TemporaryDirectory(prefix="minectl-repair-") as tmp:
        into = os.path.join(tmp, "state")
        state_cli.rebuild(paths, into)
        return diff(snapshot(state_dir), snapshot(into))
