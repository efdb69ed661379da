"""Turning values into what a person reads: safe text, numbers, durations, colour, tables.

Every string that reaches the terminal goes through :func:`safe` first: miner-supplied text
(hostnames, pool URLs, firmware names, error messages) may hold escape sequences, control
characters or bidirectional overrides; they are shown as visible ``\\xNN`` / ``\\uNNNN``.
"""

from __future__ import annotations

import os
import time
import unicodedata
from collections.abc import Sequence
from typing import Any, TextIO

RESET = "\x1b[0m"
COLOURS = {
    "ok": "\x1b[32m",  # green
    "new": "\x1b[36m",  # cyan
    "warn": "\x1b[33m",  # yellow
    "bad": "\x1b[31;1m",  # bold red
    "offline": "\x1b[90m",  # grey
    "head": "\x1b[1m",  # bold
    "dim": "\x1b[2m",
}
_BIDI = frozenset(range(0x202A, 0x202F)) | frozenset(range(0x2066, 0x206A)) | {0x200E, 0x200F, 0x061C}


def safe(value: Any, limit: int = 0) -> str:
    """Terminal-safe text: non-printable and bidi-control characters become escapes.

    ``limit`` > 0 truncates to that many characters with a trailing ``…``.
    """
    s = "" if value is None else str(value)
    if not s.isprintable() or any(ord(c) in _BIDI for c in s):
        out = []
        for c in s:
            o = ord(c)
            if o in _BIDI or not c.isprintable():
                out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
            else:
                out.append(c)
        s = "".join(out)
    if limit and len(s) > limit:
        s = s[: max(1, limit - 1)] + "…"
    return s


def width(s: str) -> int:
    """Display width in terminal cells (wide CJK = 2, combining marks = 0)."""
    if s.isascii():
        return len(s)
    w = 0
    for c in s:
        if unicodedata.combining(c):
            continue
        w += 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
    return w


def pad(s: str, n: int, right: bool = False) -> str:
    gap = n - width(s)
    if gap <= 0:
        return s
    return " " * gap + s if right else s + " " * gap


def use_colour(stream: TextIO, mode: str = "auto") -> bool:
    """``always``/``never``/``auto`` (auto: a TTY, ``NO_COLOR`` unset, ``TERM`` not ``dumb``)."""
    if mode == "always":
        return True
    if mode == "never":
        return False
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def paint(s: str, colour: str | None, on: bool) -> str:
    if not on or not colour:
        return s
    code = COLOURS.get(colour, colour)
    return f"{code}{s}{RESET}"


def num(v: Any, digits: int = 1, dash: str = "-") -> str:
    if v is None:
        return dash
    if isinstance(v, (int, float)):
        if isinstance(v, int) or digits == 0:
            return f"{v:.0f}"
        return f"{v:.{digits}f}"
    return safe(v)


def duration(seconds: Any) -> str:
    """``93784`` -> ``1d2h``; compact, for uptime and age columns."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 0:
        s = 0
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"


def ago(epoch: Any, now: float | None = None) -> str:
    if epoch is None:
        return "-"
    now = time.time() if now is None else now
    return duration(max(0, now - float(epoch))) + " ago"


def when(epoch: Any) -> str:
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(epoch)))


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right: Sequence[bool] = (),
    colours: Sequence[str | None] = (),
    colour: bool = False,
    sep: str = "  ",
) -> str:
    """Rows of already-safe strings as aligned columns; ``colours[i]`` paints row ``i``."""
    n = len(headers)
    widths = [width(h) for h in headers]
    for r in rows:
        for i in range(n):
            w = width(r[i])
            if w > widths[i]:
                widths[i] = w
    al = list(right) + [False] * (n - len(right))
    out = [paint(sep.join(pad(headers[i], widths[i], al[i]) for i in range(n)).rstrip(), "head", colour)]
    for j, r in enumerate(rows):
        line = sep.join(pad(r[i], widths[i], al[i]) for i in range(n)).rstrip()
        c = colours[j] if j < len(colours) else None
        out.append(paint(line, c, colour and c not in (None, "ok")))
    return "\n".join(out)
