"""Compaction of old rotated segments: gzip in many members, so they stay seekable.

``minectl events compact`` turns each rotated plain segment ``events-YYYYMMDD[-N].log``
whose day is at least ``--older-than`` days ago (default 2, so followers are long done
with it) into ``events-YYYYMMDD[-N].log.gz``:

* one gzip member per ~``--member-mb`` MiB of text (default 2), cut at line ends, so the
  temporal index can seek to any member (a single-member gzip can only be read whole);
* written to a temporary file, fsynced, checked (the decompressed text has the CRC-32 of
  the original), renamed over, then the plain segment is removed; mode, owner and group
  are copied from the plain segment; the index of the new file is built right away;
* while both exist for a moment, readers use the plain one (see ``segments``).

The live file is never touched. Running it again only compacts what is left.
"""

from __future__ import annotations

import os
import time
import zlib
from typing import Any

from minectl_py.events.reader import GzipStream
from minectl_py.events.segments import segments

MEMBER_BYTES = 2 << 20
_CHUNK = 1 << 20


def segment_day(path: str) -> str | None:
    """``.../events-20261127-1.log`` -> ``20261127``."""
    base = os.path.basename(path)
    for part in base.split("-")[1:]:
        day = part[:8]
        if len(day) == 8 and day.isdigit():
            return day
    return None


def gzip_members(src: str, dst: str, member_bytes: int = MEMBER_BYTES, level: int = 6) -> tuple[int, int]:
    """Compress ``src`` to ``dst`` with a new member after ~``member_bytes`` of text (at a line
    end). Returns ``(crc32 of the text, members)``."""
    crc = 0
    members = 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        z: Any = None
        in_member = 0
        while data := fin.read(_CHUNK):
            crc = zlib.crc32(data, crc)
            start = 0
            while start < len(data):
                if z is None:
                    z = zlib.compressobj(level, zlib.DEFLATED, 31)
                    members += 1
                p = start + max(member_bytes - in_member, 1) - 1
                cut = data.find(b"\n", p) if p < len(data) else -1
                if cut < 0:
                    fout.write(z.compress(data[start:]))
                    in_member += len(data) - start
                    break
                fout.write(z.compress(data[start : cut + 1]))
                fout.write(z.flush())
                z, in_member, start = None, 0, cut + 1
        if z is not None:
            fout.write(z.flush())
        fout.flush()
        os.fsync(fout.fileno())
    return crc, members


def _gunzip_crc(path: str) -> tuple[int, bool]:
    crc = 0
    with open(path, "rb") as f:
        g = GzipStream(f)
        while data := g.read():
            crc = zlib.crc32(data, crc)
        return crc, g.truncated


def compact_segment(path: str, member_bytes: int = MEMBER_BYTES) -> dict[str, Any]:
    """Compress one plain segment in place (see the module docstring). Returns a summary."""
    st = os.stat(path)
    dst = path + ".gz"
    tmp = f"{dst}.tmp{os.getpid()}"
    try:
        crc, members = gzip_members(path, tmp, member_bytes)
        check, broken = _gunzip_crc(tmp)
        if broken or check != crc:
            raise OSError(f"compressed copy of {path} does not match the original; left it alone")
        os.chmod(tmp, st.st_mode & 0o7777)
        if os.geteuid() == 0:
            os.chown(tmp, st.st_uid, st.st_gid)
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    os.unlink(path)
    d, base = os.path.split(path)
    side = os.path.join(d, f".{base}.idx")
    if os.path.exists(side):
        os.unlink(side)
    _fsync_dir(d or ".")
    from minectl_py.events import index

    with open(dst, "rb") as f:
        idx, _ = index.ensure(dst, f, force=True)
    return {
        "segment": path,
        "compressed": dst,
        "bytes": st.st_size,
        "gzip_bytes": os.path.getsize(dst),
        "members": members,
        "index_blocks": len(idx.blocks),
    }


def _fsync_dir(d: str) -> None:
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def compact(
    live: str, older_than_days: float = 2, member_bytes: int = MEMBER_BYTES, now: float | None = None
) -> list[dict[str, Any]]:
    """Compact every plain rotated segment of ``live`` whose day (UTC) is at least
    ``older_than_days`` before ``now``."""
    cutoff = time.strftime("%Y%m%d", time.gmtime((time.time() if now is None else now) - older_than_days * 86400))
    out = []
    for seg in segments(live):
        day = segment_day(seg)
        if seg.endswith(".gz") or day is None or day > cutoff:
            continue
        out.append(compact_segment(seg, member_bytes))
    return out
