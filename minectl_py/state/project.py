"""Projecting events into the state directory (layout in docs/state.md): the I/O edge.

What a record does to a miner's values is pure and lives in ``minectl_py.state.values``
(:func:`~minectl_py.state.values.reduce`); how one file or folder is replaced atomically is in
``minectl_py.state.files``. Here:

* :func:`apply` / :func:`apply_many` - resolve the miner, reduce, and write only the files
  whose values changed (temp file + ``rename`` in the same folder), then ``miner.json``, then
  the ``by-ip/`` and ``by-name/`` links. Long-running writers (the poller, ``state rebuild``,
  ``inventory apply``) call :func:`use_exchange` first: they then update a miner's hidden shadow
  copy (``.<mac>.alt``) in place and swap it with the live folder in one ``renameat2`` exchange
  (``minectl_py.state.swapdir``), so readers see a whole folder, old or new. Every chunk is
  journalled first (``minectl_py.state.journal``) so a writer killed half way is undone and
  re-applied by the next one. Current values come from a per-process cache that is
  checked against ``miner.json``'s inode and mtime, so a poller applying 10,000 records per
  cycle reads nothing it wrote itself.
* :func:`record_and_apply` - append records to the event log and project them under the
  state lock, so the log's order is the order in which the state was changed (what makes a
  replay equal the live directory when the hook and the poller write at the same time).

Standard library only and import-cheap (the lease hook uses it): no ``json`` (see
``minectl_py.fastjson``), no ``re``, no ``typing`` at run time.
"""

from __future__ import annotations

import fcntl
import os

from minectl_py import fastjson
from minectl_py.state import journal as jnl
from minectl_py.state import sanitize as san
from minectl_py.state.files import create_folder, read_link, remove_file, replace_file, spread_folders
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

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

LOCK = ".lock"
#: Records projected per hold of the state lock (so the lease hook never waits long).
CHUNK = 256


class Site:
    """Per state directory: cache of miner values keyed by MAC, checked against miner.json."""

    __slots__ = ("cache", "miners", "root", "shadow")

    def __init__(self, root: str) -> None:
        self.root = root
        self.miners = os.path.join(root, MINERS)
        self.cache: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}
        #: what each miner's shadow folder holds (``minectl_py.state.swapdir``)
        self.shadow: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}
        for d in (self.miners, os.path.join(root, BY_IP), os.path.join(root, BY_NAME)):
            os.makedirs(d, mode=0o755, exist_ok=True)
        spread_folders(self.miners)


_SITES: dict[str, Site] = {}


def site_for(state_dir: str) -> Site:
    """The (cached) :class:`Site` of a state directory, its folders made if missing."""
    root = os.path.abspath(state_dir)
    s = _SITES.get(root)
    if s is None or not os.path.isdir(s.miners):
        s = _SITES[root] = Site(root)
    return s


def load_values(site: Site, mac: str) -> dict[str, Any]:
    """A miner's current values (``miner.json``, cached by inode, mtime and size); ``{}``
    for none or a damaged file."""
    path = os.path.join(site.miners, mac, MINER_JSON)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        site.cache.pop(mac, None)
        return {}
    key = (st.st_ino, st.st_mtime_ns, st.st_size)
    hit = site.cache.get(mac)
    if hit is not None and hit[0] == key:
        return hit[1]
    try:
        with open(path, "rb") as f:
            vals = fastjson.loads(f.read())
    except (OSError, ValueError, UnicodeDecodeError):
        vals = None
    if not isinstance(vals, dict):
        vals = {}  # damaged by hand: rewrite every file from the next record on
    site.cache[mac] = (key, vals)
    return vals


#: The undo journal of the chunk being projected (``None``: not journalled; see state/journal.py).
_journal: jnl.Journal | None = None

#: ``renameat2(RENAME_EXCHANGE)`` through ctypes (``minectl_py.state.swapdir``), set up by
#: :func:`use_exchange` in long-running writers (the poller); the lease hook does without
#: (importing ctypes costs more than it saves).
_exchange: Callable[[str, str], bool] | None = None
_swapdir: Any = None


def use_exchange() -> bool:
    """Long-running writers: update a miner with one folder swap (``swapdir``), and replace
    single files with one ``renameat2(RENAME_EXCHANGE)`` instead of link + 2 renames."""
    global _exchange, _swapdir
    if _exchange is not None:
        return True
    try:
        from minectl_py.state import swapdir
    except ImportError:
        return False
    fn = swapdir.exchanger()
    if fn is None:
        return False
    _swapdir, _exchange = swapdir, fn
    return True


def write_file(d: str, name: str, data: bytes) -> os.stat_result:
    """Replace ``d/name`` atomically (:func:`~minectl_py.state.files.replace_file`), with one
    ``renameat2`` exchange once :func:`use_exchange` is on."""
    return replace_file(d, name, data, _exchange)


def _relink(site: Site, sub: str, mac: str, old: str | None, new: str | None, weak: bool = False) -> None:
    d = os.path.join(site.root, sub)
    target = f"../{MINERS}/{mac}"
    if old and old != new and read_link(os.path.join(d, old)) == target:
        if _journal is not None:
            _journal.link(sub, old, target)
        remove_file(os.path.join(d, old))
    if not new:
        return
    path = os.path.join(d, new)
    cur = read_link(path)
    if cur == target:
        return
    if weak and cur and cur.startswith(f"../{MINERS}/"):
        # A hostname never takes a name that another miner holds from the inventory.
        other = load_values(site, cur[len(MINERS) + 4 :])
        if other.get("name") == new:
            return
    if _journal is not None:
        _journal.link(sub, new, cur)
    if cur is None:
        try:
            os.symlink(target, path)
            return
        except FileExistsError:  # appeared meanwhile (or a dangling entry): replace below
            pass
    tmp = os.path.join(d, f".{new}.tmp")
    remove_file(tmp)
    os.symlink(target, tmp)
    os.rename(tmp, path)


def _store(site: Site, mac: str, cur: dict[str, Any], new: dict[str, Any] | None) -> None:
    d = os.path.join(site.miners, mac)
    if new == cur:
        return
    if _journal is not None:
        _journal.miner(mac, dict(cur) if os.path.lexists(d) else None)
    if new is None:
        _relink(site, BY_IP, mac, link_ip(cur), None)
        _relink(site, BY_NAME, mac, link_name(cur), None)
        site.cache.pop(mac, None)
        site.shadow.pop(mac, None)
        for folder in (d, os.path.join(site.miners, f".{mac}.alt")):
            try:
                for e in os.scandir(folder):
                    os.unlink(e.path)
                os.rmdir(folder)
            except FileNotFoundError:
                pass
        return
    if not cur and create_folder(site.miners, d, new):
        site.cache.pop(mac, None)
    else:
        _update(site, mac, d, cur, new)
    oi, ni = link_ip(cur), link_ip(new)
    if oi != ni:
        _relink(site, BY_IP, mac, oi, ni)
    on, nn = link_name(cur), link_name(new)
    if on != nn or (cur.get("name") != new.get("name")):
        _relink(site, BY_NAME, mac, on, nn, weak=not new.get("name"))


def _update(site: Site, mac: str, d: str, cur: dict[str, Any], new: dict[str, Any]) -> None:
    if not cur:
        os.makedirs(d, mode=0o755, exist_ok=True)
    elif _swapdir is not None and _exchange is not None:
        hit = site.cache.get(mac)
        live_key = hit[0] if hit is not None and hit[1] is cur else None
        done = _swapdir.update(
            site.miners, mac, live_key, cur, new, site.shadow.get(mac), encode_value, encode_json, _exchange
        )
        if done is not None:
            site.cache[mac] = (done[0], new)
            if done[1] is None:
                site.shadow.pop(mac, None)
            else:
                site.shadow[mac] = done[1]
            return
        site.shadow.pop(mac, None)
    for k, v in new.items():
        if cur.get(k) != v or k not in cur:
            replace_file(d, k, encode_value(k, v), _exchange)
    for k in cur:
        if k not in new:
            remove_file(os.path.join(d, k))
    st = replace_file(d, MINER_JSON, encode_json(new), _exchange)
    site.cache[mac] = ((st.st_ino, st.st_mtime_ns, st.st_size), new)


def miner_of(site_or_dir: Site | str, rec: dict[str, Any]) -> str | None:
    """The MAC a record is about: its ``mac`` field, else the ``by-ip/`` link of its ``ip``,
    else (poll only) the MAC the miner itself reports."""
    site = site_or_dir if isinstance(site_or_dir, Site) else site_for(site_or_dir)
    mac = san.mac(rec.get("mac"))
    if mac or rec.get("cmd") in ("lease", "inventory"):
        return mac
    ip = san.ipv4(rec.get("ip"))
    if ip:
        target = read_link(os.path.join(site.root, BY_IP, ip))
        if target and target.startswith(f"../{MINERS}/"):
            m = san.mac(target[len(MINERS) + 4 :])
            if m:
                return m
    m = rec.get("miner")
    return san.mac(m.get("mac")) if isinstance(m, dict) else None


def _apply_locked(site: Site, rec: dict[str, Any]) -> bool:
    if not isinstance(rec, dict) or rec.get("cmd") not in PROJECTED:
        return False
    mac = miner_of(site, rec)
    if mac is None:
        return False
    cur = load_values(site, mac)
    try:
        new = reduce(cur, rec, mac)
    except (ValueError, TypeError):
        return False
    _store(site, mac, cur, new)
    return True


def apply_journalled(site: Site, journal: jnl.Journal, records: Iterable[dict[str, Any]]) -> None:
    """Project ``records`` under ``journal`` (the state lock held): recovery's redo
    (``state/journal.py``), itself journalled so a crash during it is recovered alike."""
    global _journal
    prev = _journal
    _journal = journal
    try:
        for rec in records:
            _apply_locked(site, rec)
    finally:
        _journal = prev


class StateLock:
    """The state lock (``flock`` on ``<state>/.lock``): every writer holds it while it changes
    the directory."""

    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, LOCK)
        self.fd = -1

    def __enter__(self) -> StateLock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing drops the flock


def apply(state_dir: str, record: dict[str, Any]) -> bool:
    """Project one record. Returns False if the record does not change the state directory
    (other type, no known miner, malformed)."""
    site = site_for(state_dir)
    with StateLock(site.root):
        return _apply_locked(site, record)


def apply_many(state_dir: str, records: Iterable[dict[str, Any]]) -> int:
    """Project records in order; returns how many changed a miner. The state lock is taken
    per chunk of :data:`CHUNK` records."""
    return record_and_apply(state_dir, records, None)


def record_and_apply(
    state_dir: str,
    records: Iterable[dict[str, Any]],
    append: Callable[[list[dict[str, Any]]], object] | None,
    *,
    swap: bool = True,
    log: str | None = None,
) -> int:
    """Append ``records`` to the event log with ``append`` (e.g. ``EventWriter.append_many``)
    and project them, chunk by chunk, under the state lock: the log's order is the order in
    which the state changed. If ``append`` raises, that chunk is not projected. ``swap=False``
    keeps ctypes out (the lease hook, which writes a dozen files at most).

    With ``append``, each chunk is journalled (``state/journal.py``): a writer killed half way
    is undone and redone by the next one, so the directory stays the log's projection.
    ``log`` is the live log's path (default: ``append``'s writer's ``path``), which recovery
    reads. A journal left by a crash is recovered first, with or without ``append``."""
    global _journal
    site = site_for(state_dir)
    if swap:
        use_exchange()
    if log is None:
        log = getattr(getattr(append, "__self__", None), "path", None)
    n = 0
    chunk: list[dict[str, Any]] = []
    it = iter(records)
    while True:
        chunk.clear()
        for rec in it:
            chunk.append(rec)
            if len(chunk) >= CHUNK:
                break
        if not chunk:
            return n
        with StateLock(site.root):
            j = jnl.Journal(site.root)
            try:
                with _where(site.root):
                    if j.pending():
                        jnl.recover(site, j)
                    if append is None:
                        for rec in chunk:
                            n += _apply_locked(site, rec)
                        continue
                    j.begin(log, [r.get("id") for r in chunk if isinstance(r, dict)])
                append(chunk)  # its errors name the log
                _journal = j
                try:
                    with _where(site.root):
                        for rec in chunk:
                            n += _apply_locked(site, rec)
                        j.done()  # not on an error: the next writer recovers the chunk
                finally:
                    _journal = None
            finally:
                j.close()


class _where:
    """Re-raise an OSError of the state directory with its path in the message (a disk-full
    ``write`` names no file): ``cannot update the state directory /x: No space left...``."""

    def __init__(self, root: str) -> None:
        self.root = root

    def __enter__(self) -> None:
        return None

    def __exit__(self, tp: object, e: object, tb: object) -> bool:
        if isinstance(e, OSError) and not (e.strerror or "").startswith("cannot update the state directory"):
            what = f"{e.strerror or e}" + (f" ({e.filename})" if e.filename else "")
            raise OSError(e.errno, f"cannot update the state directory {self.root}: {what}") from e
        return False


def recover(state_dir: str) -> dict[str, int] | None:
    """Recover a chunk a dead writer left half projected (see ``state/journal.py``), under
    the state lock. Returns the counts, or ``None`` when there was nothing to recover."""
    site = site_for(state_dir)
    with StateLock(site.root):
        j = jnl.Journal(site.root)
        try:
            return jnl.recover(site, j) if j.pending() else None
        finally:
            j.close()


def forget_cache(state_dir: str | None = None) -> None:
    """Drop cached values (tests; a long-running process after the directory was replaced)."""
    if state_dir is None:
        _SITES.clear()
    else:
        _SITES.pop(os.path.abspath(state_dir), None)
