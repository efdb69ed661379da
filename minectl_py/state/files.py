"""Writing the state directory's files and folders so that a reader never sees half of one.

I/O primitives of ``minectl_py.state.project`` (which decides what to write):

* :func:`replace_file` - one value file replaced by ``rename`` (or one ``renameat2`` exchange),
  reusing the replaced inode as the next temp file;
* :func:`create_folder` - a new miner's folder written whole beside its place, then renamed in;
* :func:`spread_folders` - ``chattr +T`` on ``miners/`` (ext4 places each miner folder in a
  block group with room);
* :func:`remove_file` and :func:`read_link`, which take a missing entry as normal.

Standard library only and import-cheap (the lease hook uses it): no ``contextlib``.
"""

from __future__ import annotations

import fcntl
import os

from minectl_py.state.values import MINER_JSON, encode_json, encode_value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: ``FS_IOC_GETFLAGS`` / ``FS_IOC_SETFLAGS`` (linux/fs.h, 64-bit) and ``FS_TOPDIR_FL`` (``chattr +T``)
GETFLAGS, SETFLAGS, TOPDIR_FL = 0x80086601, 0x40086602, 0x00020000


def spread_folders(path: str) -> bool:
    """Mark ``miners/`` as a top of hierarchies for ext4's Orlov allocator (``chattr +T``):
    each miner folder made in it is then placed in a block group with room (fewest folders,
    above-average free inodes) instead of beside its parent, and the folder's files get their
    inodes there. Without it every folder lands in the parent's crowded group, where each new
    inode can cost a scan of the group (on a journal-less ext4, ext4 skips inodes freed in the
    last minutes one by one: 0.5 ms per file created, measured, against 27 us with the flag;
    docs/state.md). Best effort: False where the filesystem or permissions do not allow it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        flags = int.from_bytes(fcntl.ioctl(fd, GETFLAGS, bytes(4)), "little", signed=True)
        if not flags & TOPDIR_FL:
            fcntl.ioctl(fd, SETFLAGS, (flags | TOPDIR_FL).to_bytes(4, "little", signed=True))
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def replace_file(d: str, name: str, data: bytes, exchange: Callable[[str, str], bool] | None = None) -> os.stat_result:
    """Replace ``d/name`` atomically, reusing inodes.

    The new value goes into ``.name.tmp`` which replaces ``name`` by ``rename``. Creating an
    inode costs ~0.7 ms on the controller's ext4 while link/rename/truncate cost ~20 us, so
    the replaced inode is kept (hard link ``.name.old`` taken first) as the next ``.name.tmp``
    (unless it is linked elsewhere too: a value shared with the shadow folder). With
    ``exchange`` (``renameat2(RENAME_EXCHANGE)``, see ``minectl_py.state.swapdir``) the temp
    file and ``name`` swap places in one call instead.
    (A reader that opened ``name`` and waits a whole update before reading could see the
    value after next; every reader here opens and reads at once.)
    """
    tmp = os.path.join(d, f".{name}.tmp")
    dest = os.path.join(d, name)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CLOEXEC)
        if os.fstat(fd).st_nlink > 1:
            # also a value of the shadow folder (swapdir shares unchanged values by hard
            # links): never written in place, a new inode instead
            os.close(fd)
            os.unlink(tmp)
            raise FileNotFoundError
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
    if exchange is not None and exchange(tmp, dest):
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


def remove_file(path: str) -> None:  # no contextlib: import-cheap
    try:  # noqa: SIM105
        os.unlink(path)
    except FileNotFoundError:
        pass


def read_link(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def create_folder(miners: str, d: str, new: dict[str, Any]) -> bool:
    """A new miner (folder ``d`` in ``miners``): its files written straight into
    ``.<mac>.new``, then the folder renamed into place (readers see no folder or a whole one;
    no per-file temp + rename). False if ``d`` is already there."""
    if os.path.lexists(d):
        return False
    tmpd = os.path.join(miners, f".{os.path.basename(d)}.new")
    if os.path.lexists(tmpd):  # left by a crash
        for e in os.scandir(tmpd):
            os.unlink(e.path)
    else:
        os.mkdir(tmpd, 0o755)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    for k, v in new.items():
        fd = os.open(os.path.join(tmpd, k), flags, 0o644)
        try:
            os.write(fd, encode_value(k, v))
        finally:
            os.close(fd)
    fd = os.open(os.path.join(tmpd, MINER_JSON), flags, 0o644)
    try:
        os.write(fd, encode_json(new))
    finally:
        os.close(fd)
    os.rename(tmpd, d)
    return True
