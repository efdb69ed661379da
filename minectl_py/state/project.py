"""Projecting events into the state directory (layout in docs/state.md).

Pure core, I/O at the edge:

* :func:`reduce` - ``(current values, record) -> new values``: what one ``lease``, ``poll``,
  ``poll_fail`` or ``inventory`` record does to one miner's values. No I/O, no clock: the
  same records give the same directory, live or rebuilt (``minectl state rebuild``).
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

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

MINERS = "miners"
BY_IP = "by-ip"
BY_NAME = "by-name"
MINER_JSON = "miner.json"
LOCK = ".lock"
#: Records projected per hold of the state lock (so the lease hook never waits long).
CHUNK = 256
#: Event types that change the state directory.
PROJECTED = frozenset({"lease", "poll", "poll_fail", "inventory"})
#: Values of ``state``.
STATES = ("expected", "new", "online", "failing", "offline")
#: Fields that come from the site inventory.
INVENTORY_FIELDS = ("name", "rack", "shelf", "position", "model_expected")

_TWO_DECIMALS = frozenset({"hashrate", "hashrate_avg", "nominal"})
_MAX_LIST = 16


# --------------------------------------------------------------------------- pure core
def render(key: str, value: object) -> str:
    """A value as its one-line file shows it (without the newline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.2f}" if key in _TWO_DECIMALS else f"{value:.1f}"
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


def _num(x: object, nd: int) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    f = float(x)
    if f != f or f in (float("inf"), float("-inf")) or abs(f) > 1e12:
        return None
    return round(f, nd)


def _int(x: object) -> int | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, float) and x == x and abs(x) < 1e15:
        x = int(x)
    if not isinstance(x, int) or abs(x) > 10**15:
        return None
    return x


def _seen(new: dict[str, Any], t: int) -> None:
    if "first_seen" not in new:
        new["first_seen"] = t
    if t > new.get("last_seen", -1):
        new["last_seen"] = t


def _set(new: dict[str, Any], key: str, value: object) -> None:
    if value is None:
        new.pop(key, None)
    else:
        new[key] = value


def record_time(rec: dict[str, Any]) -> int:
    """Epoch seconds of a record (``created_at_ms`` // 1000). Raises ValueError if bad."""
    t = rec.get("created_at_ms")
    if isinstance(t, str) and t.isdigit() and len(t) <= 16:
        return int(t) // 1000
    raise ValueError("created_at_ms missing or not digits")


def reduce(cur: dict[str, Any], rec: dict[str, Any], mac: str) -> dict[str, Any] | None:
    """What one record does to one miner's values; ``None`` means the miner folder goes away
    (an inventory entry removed for a miner never seen on the network)."""
    cmd = rec.get("cmd")
    t = record_time(rec)
    new = dict(cur)
    new["mac"] = mac
    if cmd == "lease":
        _lease(new, rec, t)
    elif cmd == "poll":
        _poll(new, rec, t)
    elif cmd == "poll_fail":
        new["last_poll"] = t
        reason = san.text(rec.get("reason"), 64) or "unknown"
        detail = san.text(rec.get("detail"), 160)
        new["last_error"] = f"{reason}: {detail}" if detail else reason
        if new.get("state") != "offline":
            new["state"] = "failing"
    elif cmd == "inventory":
        if rec.get("action") == "remove":
            for k in INVENTORY_FIELDS:
                new.pop(k, None)
            if new.get("state") in ("expected", None):
                return None
        else:
            new["name"] = san.label(rec.get("name"))
            for k in ("rack", "shelf", "position"):
                _set(new, k, san.text(rec.get(k), 32))
            _set(new, "model_expected", san.text(rec.get("model"), 64))
            if new["name"] is None:
                del new["name"]
            if "state" not in new:
                new["state"] = "expected"
    else:
        raise ValueError(f"record type {cmd!r} does not change the state directory")
    return new


def _lease(new: dict[str, Any], rec: dict[str, Any], t: int) -> None:
    action = rec.get("action")
    if action not in ("add", "old", "del"):
        raise ValueError(f"lease action {action!r} is not add, old or del")
    new["lease"] = action
    if action == "del":
        new["state"] = "offline"
        return
    ip = san.ipv4(rec.get("ip"))
    if ip:
        new["ip"] = ip
    # dnsmasq passes the lease's hostname whenever it has one: absent means none.
    _set(new, "hostname", san.label(rec.get("hostname")))
    # Vendor class and client id are only sent on add (and a resumed old): keep otherwise.
    vc = san.text(rec.get("vendor_class"), 64)
    if vc is not None:
        new["vendor_class"] = vc
    cid = san.hexid(rec.get("client_id"))
    if cid is not None:
        new["client_id"] = cid
    exp = _int(rec.get("expires"))
    if exp is not None and exp >= 0:
        new["lease_expires"] = exp
    if new.get("state") in (None, "offline", "expected"):
        new["state"] = "new"
    _seen(new, t)


def _poll(new: dict[str, Any], rec: dict[str, Any], t: int) -> None:
    m = rec.get("miner")
    if not isinstance(m, dict):
        m = {}
    _set(new, "make", san.text(m.get("make"), 32))
    _set(new, "model", san.text(m.get("model"), 64))
    _set(new, "firmware", san.text(m.get("firmware"), 64))
    h = _num(m.get("hashrate_ths"), 2)
    nominal = _num(m.get("nominal_ths"), 2)
    _set(new, "hashrate", h)
    _set(new, "hashrate_avg", _num(m.get("hashrate_avg_ths"), 2))
    _set(new, "nominal", nominal)
    _set(new, "hashrate_pct", round(100.0 * h / nominal, 1) if h is not None and nominal else None)
    _set(new, "temp_max", _num(m.get("temp_max"), 1))
    fans = m.get("fans")
    if isinstance(fans, list):
        fl = [f for f in (_int(x) for x in fans[:_MAX_LIST]) if f is not None]
        _set(new, "fans", fl or None)
    else:
        new.pop("fans", None)
    pool = None
    pools = m.get("pools")
    if isinstance(pools, list):
        for p in pools[:_MAX_LIST]:
            if isinstance(p, dict) and p.get("active") is True:
                pool = p
                break
    _set(new, "pool", san.text(pool.get("url"), 256) if pool else None)
    _set(new, "pool_user", san.text(pool.get("user"), 128) if pool else None)
    _set(new, "uptime", _int(m.get("uptime_s")))
    _set(new, "hw_errors", _int(m.get("hw_errors")))
    boards = m.get("boards")
    if isinstance(boards, list):
        _set(new, "boards", len(boards))
        _set(new, "boards_failed", sum(1 for b in boards if isinstance(b, dict) and b.get("status") == "failed"))
    else:
        new.pop("boards", None)
        new.pop("boards_failed", None)
    if "ip" not in new:
        ip = san.ipv4(rec.get("ip"))
        if ip:
            new["ip"] = ip
    new["last_poll"] = t
    new["last_error"] = ""
    new["state"] = "online"
    _seen(new, t)


def link_ip(vals: dict[str, Any]) -> str | None:
    """The ``by-ip/`` link a miner should hold: its address while its lease is not gone."""
    if vals.get("state") in ("offline", "expected"):
        return None
    return vals.get("ip")


def link_name(vals: dict[str, Any]) -> str | None:
    """The ``by-name/`` link: the inventory name, else the (sanitized) DHCP hostname."""
    return vals.get("name") or vals.get("hostname")


# --------------------------------------------------------------------------- I/O edge
class _Site:
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


_SITES: dict[str, _Site] = {}


def _site(state_dir: str) -> _Site:
    root = os.path.abspath(state_dir)
    s = _SITES.get(root)
    if s is None or not os.path.isdir(s.miners):
        s = _SITES[root] = _Site(root)
    return s


def _load(site: _Site, mac: str) -> dict[str, Any]:
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


def _encode(k: str, v: object) -> bytes:
    return (render(k, v) + "\n").encode("utf-8", "replace")


def _encode_json(vals: dict[str, Any]) -> bytes:
    return fastjson.dumps(vals, sort_keys=True) + b"\n"


def _write(d: str, name: str, data: bytes) -> os.stat_result:
    """Replace ``d/name`` atomically, reusing inodes.

    The new value goes into ``.name.tmp`` which replaces ``name`` by ``rename``. Creating an
    inode costs ~0.7 ms on the controller's ext4 while link/rename/truncate cost ~20 us, so
    the replaced inode is kept (hard link ``.name.old`` taken first) as the next ``.name.tmp``.
    (A reader that opened ``name`` and waits a whole update before reading could see the
    value after next; every reader here opens and reads at once.)
    """
    tmp = os.path.join(d, f".{name}.tmp")
    dest = os.path.join(d, name)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        # Overwrite in place, then cut: truncating to zero first makes ext4 flush on close
        # (auto_da_alloc), which costs milliseconds under load.
        os.pwrite(fd, data, 0)
        st = os.fstat(fd)
        if st.st_size > len(data):
            os.ftruncate(fd, len(data))
            st = os.fstat(fd)
    finally:
        os.close(fd)
    if _exchange is not None and _exchange(tmp, dest):
        return st
    old = os.path.join(d, f".{name}.old")
    try:
        os.link(dest, old)
    except FileNotFoundError:
        old = ""
    except FileExistsError:  # left by a crash: start over
        os.unlink(old)
        os.link(dest, old)
    os.rename(tmp, dest)
    if old:
        os.rename(old, tmp)
    return st


def _unlink(path: str) -> None:  # no contextlib: import-cheap
    try:  # noqa: SIM105
        os.unlink(path)
    except FileNotFoundError:
        pass


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _relink(site: _Site, sub: str, mac: str, old: str | None, new: str | None, weak: bool = False) -> None:
    d = os.path.join(site.root, sub)
    target = f"../{MINERS}/{mac}"
    if old and old != new and _readlink(os.path.join(d, old)) == target:
        if _journal is not None:
            _journal.link(sub, old, target)
        _unlink(os.path.join(d, old))
    if not new:
        return
    path = os.path.join(d, new)
    cur = _readlink(path)
    if cur == target:
        return
    if weak and cur and cur.startswith(f"../{MINERS}/"):
        # A hostname never takes a name that another miner holds from the inventory.
        other = _load(site, cur[len(MINERS) + 4 :])
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
    _unlink(tmp)
    os.symlink(target, tmp)
    os.rename(tmp, path)


def _store(site: _Site, mac: str, cur: dict[str, Any], new: dict[str, Any] | None) -> None:
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
    if not cur and _create(site, d, new):
        site.cache.pop(mac, None)
    else:
        _update(site, mac, d, cur, new)
    oi, ni = link_ip(cur), link_ip(new)
    if oi != ni:
        _relink(site, BY_IP, mac, oi, ni)
    on, nn = link_name(cur), link_name(new)
    if on != nn or (cur.get("name") != new.get("name")):
        _relink(site, BY_NAME, mac, on, nn, weak=not new.get("name"))


def _create(site: _Site, d: str, new: dict[str, Any]) -> bool:
    """A new miner: its files written straight into ``.<mac>.new``, then the folder renamed
    into place (readers see no folder or a whole one; no per-file temp + rename)."""
    if os.path.lexists(d):
        return False
    tmpd = os.path.join(site.miners, f".{os.path.basename(d)}.new")
    if os.path.lexists(tmpd):  # left by a crash
        for e in os.scandir(tmpd):
            os.unlink(e.path)
    else:
        os.mkdir(tmpd, 0o755)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    for k, v in new.items():
        fd = os.open(os.path.join(tmpd, k), flags, 0o644)
        try:
            os.write(fd, (render(k, v) + "\n").encode("utf-8", "replace"))
        finally:
            os.close(fd)
    fd = os.open(os.path.join(tmpd, MINER_JSON), flags, 0o644)
    try:
        os.write(fd, fastjson.dumps(new, sort_keys=True) + b"\n")
    finally:
        os.close(fd)
    os.rename(tmpd, d)
    return True


def _update(site: _Site, mac: str, d: str, cur: dict[str, Any], new: dict[str, Any]) -> None:
    if not cur:
        os.makedirs(d, mode=0o755, exist_ok=True)
    elif _swapdir is not None and _exchange is not None:
        hit = site.cache.get(mac)
        live_key = hit[0] if hit is not None and hit[1] is cur else None
        done = _swapdir.update(
            site.miners, mac, live_key, cur, new, site.shadow.get(mac), _encode, _encode_json, _exchange
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
            _write(d, k, _encode(k, v))
    for k in cur:
        if k not in new:
            _unlink(os.path.join(d, k))
    st = _write(d, MINER_JSON, _encode_json(new))
    site.cache[mac] = ((st.st_ino, st.st_mtime_ns, st.st_size), new)


def miner_of(site_or_dir: _Site | str, rec: dict[str, Any]) -> str | None:
    """The MAC a record is about: its ``mac`` field, else the ``by-ip/`` link of its ``ip``,
    else (poll only) the MAC the miner itself reports."""
    site = site_or_dir if isinstance(site_or_dir, _Site) else _site(site_or_dir)
    mac = san.mac(rec.get("mac"))
    if mac or rec.get("cmd") in ("lease", "inventory"):
        return mac
    ip = san.ipv4(rec.get("ip"))
    if ip:
        target = _readlink(os.path.join(site.root, BY_IP, ip))
        if target and target.startswith(f"../{MINERS}/"):
            m = san.mac(target[len(MINERS) + 4 :])
            if m:
                return m
    m = rec.get("miner")
    return san.mac(m.get("mac")) if isinstance(m, dict) else None


def _apply_locked(site: _Site, rec: dict[str, Any]) -> bool:
    if not isinstance(rec, dict) or rec.get("cmd") not in PROJECTED:
        return False
    mac = miner_of(site, rec)
    if mac is None:
        return False
    cur = _load(site, mac)
    try:
        new = reduce(cur, rec, mac)
    except (ValueError, TypeError):
        return False
    _store(site, mac, cur, new)
    return True


class _Locked:
    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, LOCK)
        self.fd = -1

    def __enter__(self) -> _Locked:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing drops the flock


def apply(state_dir: str, record: dict[str, Any]) -> bool:
    """Project one record. Returns False if the record does not change the state directory
    (other type, no known miner, malformed)."""
    site = _site(state_dir)
    with _Locked(site.root):
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
    site = _site(state_dir)
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
        with _Locked(site.root):
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
    site = _site(state_dir)
    with _Locked(site.root):
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
