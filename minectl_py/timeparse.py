"""Times and durations as people type them: ``1h``, ``90s``, ``2026-11-27T10:00``, epoch ms."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

_DUR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d|w)?\s*$")
_UNIT_MS = {
    "ms": 1,
    "s": 1000,
    None: 1000,
    "m": 60_000,
    "min": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
}


def parse_duration_ms(text: str) -> int:
    """``'90s'`` -> 90000. A bare number is seconds. Raises ValueError naming the input."""
    m = _DUR.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 10m, 2h, 1d)")
    return int(float(m.group(1)) * _UNIT_MS[m.group(2)])


def parse_time_ms(text: str, now_ms: int | None = None) -> int:
    """An absolute time in epoch ms from: epoch ms (13+ digits), epoch seconds (10 digits),
    ISO 8601 (``2026-11-27``, ``2026-11-27T10:00``, with or without zone; UTC if none),
    the seed's ``20180704T143646-0700``, or a duration meaning that long ago (``1h``)."""
    s = text.strip()
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    if s.isdigit():
        n = int(s)
        return n if len(s) >= 12 else n * 1000
    if s == "now":
        return now
    if _DUR.match(s) and not s.replace(".", "").isdigit():
        return now - parse_duration_ms(s)
    for fmt in ("%Y%m%dT%H%M%S%z", "%Y%m%dT%H%M%S"):
        try:
            dt = datetime.strptime(s, fmt)
            break
        except ValueError:
            dt = None
    if dt is None:
        try:
            dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"not a time: {text!r} (use epoch ms, 2026-11-27T10:00[Z], or an age like 1h)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def format_ms(ms: int) -> str:
    """Epoch ms as ISO 8601 UTC with seconds: ``2026-11-27T20:39:53Z``."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
