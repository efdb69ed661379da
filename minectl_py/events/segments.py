"""The live log and its rotated daily segments, in order.

``/var/lib/minectl/events/events.log`` is the live file; rotated segments beside it are
``events-YYYYMMDD.log`` (``events-YYYYMMDD-N.log`` if a day rotated more than once), and
may be gzipped (``.log.gz``). Index sidecars (``.idx``) and lock files are not segments.
"""

from __future__ import annotations

import os
import re

from minectl_py import config


def _pattern(live: str) -> re.Pattern[str]:
    base = os.path.basename(live)
    stem, dot, suffix = base.partition(".")
    suf = re.escape(dot + suffix) if dot else ""
    return re.compile(rf"^{re.escape(stem)}-(\d{{8}})(?:-(\d+))?{suf}(\.gz)?$")


def segments(live: str) -> list[str]:
    """Rotated segments of ``live``, oldest first (by day, then rotation number)."""
    d = os.path.dirname(live) or "."
    pat = _pattern(live)
    found: list[tuple[str, int, str]] = []
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return []
    for name in names:
        m = pat.match(name)
        if m:
            found.append((m.group(1), int(m.group(2) or 0), os.path.join(d, name)))
    found.sort()
    plain = {p for _, _, p in found if not p.endswith(".gz")}
    # While compaction swaps a segment for its .gz both exist for a moment: use the plain one.
    return [p for _, _, p in found if not (p.endswith(".gz") and p[:-3] in plain)]


def log_set(live: str | None = None) -> list[str]:
    """Every file of the site log, oldest first: rotated segments, then the live file."""
    live = live or config.events_path()
    out = segments(live)
    if os.path.exists(live):
        out.append(live)
    return out
