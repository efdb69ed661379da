"""dnsmasq reservations from the inventory: a ``dhcp-hostsdir`` (one file per miner) or one
``dhcp-hostsfile``. Each line is ``MAC[,IP],NAME``: the miner always gets its name (DNS
answers it, forward and reverse) and, when the CSV gives one, its fixed address.

dnsmasq reads new and changed files in a hostsdir by itself (inotify); removals and a
hostsfile need a SIGHUP (``hup``).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable

from minectl_py.inventory.csvfile import Row

PREFIX = "minectl-"


def host_line(row: Row) -> str:
    return f"{row.mac},{row.ip},{row.name}" if row.ip else f"{row.mac},{row.name}"


def _write(path: str, text: str) -> None:
    d, base = os.path.split(path)
    tmp = os.path.join(d, f".{base}.tmp")
    with open(tmp, "w", encoding="ascii") as f:
        f.write(text)
    os.replace(tmp, path)


def write_hostsdir(d: str, rows: Iterable[Row], *, dry_run: bool = False) -> dict[str, int]:
    """One file ``minectl-<mac>`` per miner; files of miners no longer listed are removed
    (only ours: other files in the directory are left alone). Returns counts."""
    want = {f"{PREFIX}{r.mac.replace(':', '')}": host_line(r) + "\n" for r in rows}
    if not dry_run:
        os.makedirs(d, exist_ok=True)
    have = {n for n in os.listdir(d) if n.startswith(PREFIX)} if os.path.isdir(d) else set()
    counts = {"written": 0, "unchanged": 0, "removed": 0}
    for name, text in sorted(want.items()):
        path = os.path.join(d, name)
        try:
            with open(path, encoding="ascii") as f:
                same = f.read() == text
        except (FileNotFoundError, UnicodeDecodeError):
            same = False
        if same:
            counts["unchanged"] += 1
            continue
        counts["written"] += 1
        if not dry_run:
            _write(path, text)
    for name in sorted(have - set(want)):
        counts["removed"] += 1
        if not dry_run:
            os.unlink(os.path.join(d, name))
    return counts


def write_hostsfile(path: str, rows: Iterable[Row], *, dry_run: bool = False) -> dict[str, int]:
    text = "".join(host_line(r) + "\n" for r in rows)
    try:
        with open(path, encoding="ascii") as f:
            same = f.read() == text
    except (FileNotFoundError, UnicodeDecodeError):
        same = False
    if not same and not dry_run:
        _write(path, text)
    return {"written": 0 if same else 1, "unchanged": 1 if same else 0, "removed": 0}


def hup(pidfile: str) -> int:
    """SIGHUP the dnsmasq whose pid is in ``pidfile`` (rereads hosts files). Returns the pid."""
    with open(pidfile, encoding="ascii") as f:
        pid = int(f.read().strip())
    os.kill(pid, signal.SIGHUP)
    return pid
