"""Comparing two state directories: what ``minectl state diff`` and the rebuild tests use.

A snapshot maps each relative path to ``("file", bytes)`` or ``("link", target)``; dot files
(writers' scratch files, the lock) are left out. Two directories are equal when their
snapshots are.
"""

from __future__ import annotations

import os

Snapshot = dict[str, tuple[str, bytes | str]]


def snapshot(root: str) -> Snapshot:
    out: Snapshot = {}
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        rel = os.path.relpath(d, root)
        for name in sorted(files + [x for x in os.listdir(d) if os.path.islink(os.path.join(d, x))]):
            if name.startswith("."):
                continue
            p = os.path.join(d, name)
            key = os.path.normpath(os.path.join(rel, name))
            if os.path.islink(p):
                out[key] = ("link", os.readlink(p))
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    out[key] = ("file", f.read())
    return out


def diff(a: Snapshot, b: Snapshot, limit: int = 50) -> list[str]:
    """Human-readable differences (at most ``limit`` lines, then a count)."""
    lines: list[str] = []
    n = 0
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if va == vb:
            continue
        n += 1
        if len(lines) >= limit:
            continue
        if va is None:
            lines.append(f"only in second: {k}")
        elif vb is None:
            lines.append(f"only in first:  {k}")
        else:
            lines.append(f"differs: {k}: {_show(va)} != {_show(vb)}")
    if n > len(lines):
        lines.append(f"... {n - len(lines)} more differences")
    return lines


def _show(v: tuple[str, bytes | str]) -> str:
    kind, val = v
    text = val.decode("utf-8", "replace") if isinstance(val, bytes) else val
    text = text.strip()
    return f"{kind} {text[:60]!r}"
