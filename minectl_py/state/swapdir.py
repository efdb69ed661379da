"""Updating a miner's folder with one directory swap (long-running writers: the poller).

Each miner has two folders: the live ``miners/<mac>`` and its shadow ``miners/.<mac>.alt``
(a dot name: readers never look at it). An update writes the changed values into the shadow
in place (``pwrite`` into existing files: no new inode, no rename per file), then swaps the
two folders with one ``renameat2(RENAME_EXCHANGE)``. A reader sees the old folder or the new
one, never a mix; a crash leaves the live folder whole (the shadow may be half written, and
is made whole again before its next use).

The writer remembers what the shadow holds: the values it had while it was live, keyed by
its ``miner.json``'s (inode, mtime, size). ``miner.json`` is written first in the shadow, so a
writer that stops half way leaves a key nobody knows; an unknown shadow is rewritten whole
(every value, stray files removed). Per update the cost is one ``open`` + ``pwrite`` +
``close`` per changed value, one ``fstat`` and one ``stat``, and one rename: on this
controller's ext4 about a third of a temp file + ``rename`` per value.

Readers that keep a folder open (a shell ``cd``-ed into a miner folder) see it turn into the
shadow at the next update and change in place at the one after: read by path, not from a
kept working directory.

Standard library only; ``ctypes`` is imported here, never on the lease hook's path.
"""

from __future__ import annotations

import ctypes
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

Key = tuple[int, int, int]
_FLAGS = os.O_WRONLY | os.O_CLOEXEC


def exchanger() -> Callable[[str, str], bool] | None:
    """``exchange(a, b)``: swap two paths atomically (``renameat2(RENAME_EXCHANGE)``); None
    where the C library lacks it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2

    def exchange(a: str, b: str) -> bool:
        return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0

    return exchange


def shadow_path(miners: str, mac: str) -> str:
    return os.path.join(miners, f".{mac}.alt")


def key_of(st: os.stat_result) -> Key:
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _new(dfd: int, name: str, data: bytes) -> os.stat_result | None:
    """Create ``name`` (a new inode) holding ``data``; an entry in the way is replaced."""
    try:
        fd = os.open(name, _FLAGS | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=dfd)
    except FileExistsError:
        os.unlink(name, dir_fd=dfd)
        fd = os.open(name, _FLAGS | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=dfd)
    try:
        os.write(fd, data)
        return os.fstat(fd) if name == "miner.json" else None
    finally:
        os.close(fd)


def _link(dfd: int, live: str, name: str) -> bool:
    """Hard-link the live folder's ``name`` into the shadow (no new inode, no data block);
    False if the live folder lacks it (changed by hand)."""
    try:
        os.link(os.path.join(live, name), name, dst_dir_fd=dfd)
    except FileExistsError:
        os.unlink(name, dir_fd=dfd)
        return _link(dfd, live, name)
    except FileNotFoundError:
        return False
    return True


def _put(dfd: int, name: str, data: bytes, old_len: int, live: str | None = None) -> os.stat_result | None:
    """Overwrite ``name`` in place (create it if missing); cut it when the value shrank.
    ``old_len`` < 0: unknown length, ask the file. A file linked elsewhere too (a value
    shared with the live folder) is never written in place: it is replaced by a link to the
    live folder's file (``live`` given: the live value is the one wanted) or a new file.
    Never truncates to zero first (ext4 would flush on close: auto_da_alloc)."""
    try:
        fd = os.open(name, _FLAGS, dir_fd=dfd)
    except FileNotFoundError:
        if live is not None and _link(dfd, live, name):
            return None
        return _new(dfd, name, data)
    try:
        st = os.fstat(fd)
        if st.st_nlink > 1:
            os.close(fd)
            fd = -1
            os.unlink(name, dir_fd=dfd)
            if live is not None and _link(dfd, live, name):
                return None
            return _new(dfd, name, data)
        os.pwrite(fd, data, 0)
        if old_len < 0:
            old_len = st.st_size
        if old_len > len(data):
            os.ftruncate(fd, len(data))
        return os.fstat(fd) if name == "miner.json" else None
    finally:
        if fd >= 0:
            os.close(fd)


def update(
    miners: str,
    mac: str,
    live_key: Key | None,
    cur: dict[str, Any],
    new: dict[str, Any],
    known: tuple[Key, dict[str, Any]] | None,
    encode: Callable[[str, Any], bytes],
    encode_json: Callable[[dict[str, Any]], bytes],
    exchange: Callable[[str, str], bool],
) -> tuple[Key, tuple[Key, dict[str, Any]] | None] | None:
    """Write ``new`` into the shadow and swap it live. ``cur`` are the live values and
    ``live_key`` their ``miner.json`` key; ``known`` what this writer last left in the shadow.

    A value the shadow lacks or must change, and that the live folder already holds, is
    hard-linked from the live folder instead of written (shared: never written in place
    afterwards, see :func:`_put`); so values that do not change between polls (make, model,
    pool, MAC...) have one inode for both folders, and a new fleet's second cycle creates
    only the files of the values that change.

    Returns (the new live ``miner.json`` key, what the shadow now holds), or None when the
    swap is impossible (the caller then writes file by file)."""
    alt = shadow_path(miners, mac)
    live = os.path.join(miners, mac)
    try:
        akey: Key | None = key_of(os.stat(os.path.join(alt, "miner.json")))
    except (FileNotFoundError, NotADirectoryError):
        akey = None
    old = known[1] if akey is not None and known is not None and known[0] == akey else None
    fresh = False
    try:
        dfd = os.open(alt, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        os.mkdir(alt, 0o755)
        dfd = os.open(alt, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fresh = True
    try:
        # miner.json first: a writer stopped half way leaves a shadow whose key nobody knows.
        # miner.json is never shared (it changes with every update).
        if fresh:
            st = _new(dfd, "miner.json", encode_json(new))
            for k, v in new.items():
                if not (k in cur and cur[k] == v and _link(dfd, live, k)):
                    _new(dfd, k, encode(k, v))
        elif old is None:
            st = _put(dfd, "miner.json", encode_json(new), -1)
            for name in os.listdir(dfd):
                if name[0] != "." and name != "miner.json" and name not in new:
                    os.unlink(name, dir_fd=dfd)
            for k, v in new.items():
                _put(dfd, k, encode(k, v), -1, live if k in cur and cur[k] == v else None)
        else:
            st = _put(dfd, "miner.json", encode_json(new), -1)
            for k, v in new.items():
                if k in old:
                    if old[k] != v:  # in place if the shadow's own file, else re-linked or new
                        data = encode(k, v)
                        _put(dfd, k, data, len(encode(k, old[k])), live if k in cur and cur[k] == v else None)
                elif not (k in cur and cur[k] == v and _link(dfd, live, k)):
                    _new(dfd, k, encode(k, v))
            for k in old:
                if k not in new:
                    try:  # noqa: SIM105
                        os.unlink(k, dir_fd=dfd)
                    except FileNotFoundError:
                        pass
    finally:
        os.close(dfd)
    if not exchange(alt, live):
        return None
    assert st is not None
    return key_of(st), ((live_key, cur) if live_key is not None else None)
