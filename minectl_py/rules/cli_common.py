"""What the watchdog's commands (``minectl rules``, ``alerts``, ``silence``) share: exit
codes, the rules file's default path, argument types, and how they print a message or a
miner-supplied string."""

from __future__ import annotations

import argparse
import os
import pwd
import sys
from typing import Any

from minectl_py import config
from minectl_py.events import record
from minectl_py.timeparse import parse_duration_ms, parse_time_ms

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_NOMATCH, EXIT_PERM = 0, 1, 2, 3, 4


def default_rules() -> str:
    return os.environ.get("MINECTL_RULES") or os.path.join(config.config_dir(), "rules.yml")


def user() -> str:
    """Who runs the command (recorded in ``silence`` events)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def err(prog: str, msg: str) -> None:
    print(f"{prog}: {msg}", file=sys.stderr)


def duration_ms(text: str) -> int:
    """An argument type: a duration (``30m``, ``2h``) in ms."""
    try:
        return parse_duration_ms(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def time_ms(text: str) -> int:
    """An argument type: a time or a duration back from now (``24h``), in epoch ms."""
    try:
        return parse_time_ms(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def start_ms(text: str) -> int:
    """An argument type: a time, or ``+DURATION`` from now, in epoch ms."""
    t = text.strip()
    try:
        if t.startswith("+"):
            return record.now_ms() + parse_duration_ms(t[1:])
        return parse_time_ms(t)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def safe(v: Any, limit: int = 80) -> str:
    """A (miner-supplied) value for a terminal: unprintable characters as ``?``, cut to ``limit``."""
    s = "" if v is None else str(v)
    return "".join(ch if ch.isprintable() else "?" for ch in s)[:limit]


def format_age(ms: int) -> str:
    """A span for a table column: ``90s``, ``45m``, ``5h``, ``3d``."""
    s = max(0, ms // 1000)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"
