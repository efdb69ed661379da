"""A miner's *facts*: what rule conditions can test, built from its state-directory record.

The state directory (docs/state.md) gives one record per miner (``miner.json``); values may
be typed JSON or the text of the small files. :func:`facts` normalizes them (numbers become
floats, missing or unparsable values ``None``) and adds derived values:

* ``fan_min``, ``fan_max``, ``fan_count``, ``fans_zero`` from ``fans`` (rpm list or text);
* ``age`` (seconds since ``last_seen``) and ``poll_age`` (since ``last_poll``);
* ``lease_changes_1h``: lease events (add/del, and ``old`` that changed the IP) for this
  MAC in the last hour, from the recent events the service keeps;
* ``rule_actions_1h``: actions rules took on this miner in the last hour.

Miner-supplied strings stay strings; nothing here interprets them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: Numeric facts (floats or None).
NUMERIC: frozenset[str] = frozenset(
    {
        "hashrate",
        "hashrate_avg",
        "nominal",
        "hashrate_pct",
        "temp_max",
        "fan_min",
        "fan_max",
        "fan_count",
        "fans_zero",
        "uptime",
        "hw_errors",
        "first_seen",
        "last_seen",
        "last_poll",
        "lease_expires",
        "age",
        "poll_age",
        "boards_failed",
        "lease_changes_1h",
        "rule_actions_1h",
    }
)
#: Text facts (strings or None).
TEXT: frozenset[str] = frozenset(
    {
        "mac",
        "ip",
        "hostname",
        "name",
        "rack",
        "shelf",
        "position",
        "model",
        "model_expected",
        "make",
        "firmware",
        "vendor_class",
        "state",
        "pool",
        "pool_user",
        "lease",
        "last_error",
    }
)
FIELDS: frozenset[str] = NUMERIC | TEXT

#: The values ``state`` takes (docs/state.md).
STATES = ("new", "online", "failing", "offline")


def num(v: Any) -> float | None:
    """A finite float from a number or numeric text, else None (bools are not numbers)."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        f = float(v)
    elif isinstance(v, str):
        try:
            f = float(v.strip())
        except ValueError:
            return None
    else:
        return None
    return f if math.isfinite(f) else None


def _fans(v: Any) -> list[float]:
    if isinstance(v, str):
        v = v.split()
    if not isinstance(v, list):
        return []
    out = []
    for x in v:
        f = num(x)
        if f is not None:
            out.append(f)
    return out


def facts(
    rec: Mapping[str, Any],
    now_s: float,
    lease_changes_1h: int = 0,
    rule_actions_1h: int = 0,
) -> dict[str, Any]:
    """The facts of one miner from its state record at time ``now_s`` (epoch seconds)."""
    f: dict[str, Any] = {}
    for k in TEXT:
        v = rec.get(k)
        if v is None or v == "":
            f[k] = None
        else:
            f[k] = v if isinstance(v, str) else str(v)
    for k in ("hashrate", "hashrate_avg", "nominal", "hashrate_pct", "temp_max", "uptime", "hw_errors"):
        f[k] = num(rec.get(k))
    for k in ("first_seen", "last_seen", "last_poll", "lease_expires"):
        f[k] = num(rec.get(k))
    if f["mac"] is not None:
        f["mac"] = f["mac"].lower()
    if f["hashrate_pct"] is None and f["hashrate"] is not None and f["nominal"]:
        f["hashrate_pct"] = round(100.0 * f["hashrate"] / f["nominal"], 1)
    fans = _fans(rec.get("fans"))
    f["fans"] = fans
    f["fan_count"] = float(len(fans)) if fans or "fans" in rec else None
    f["fan_min"] = min(fans) if fans else None
    f["fan_max"] = max(fans) if fans else None
    f["fans_zero"] = float(sum(1 for x in fans if x <= 0)) if fans else None
    boards = rec.get("boards")
    if isinstance(boards, list):
        f["boards_failed"] = float(sum(1 for b in boards if isinstance(b, Mapping) and b.get("status") == "failed"))
    else:
        f["boards_failed"] = num(rec.get("boards_failed"))
    f["age"] = None if f["last_seen"] is None else max(0.0, now_s - f["last_seen"])
    f["poll_age"] = None if f["last_poll"] is None else max(0.0, now_s - f["last_poll"])
    f["lease_changes_1h"] = float(lease_changes_1h)
    f["rule_actions_1h"] = float(rule_actions_1h)
    return f


def refresh(f: dict[str, Any], now_s: float, lease_changes_1h: float, rule_actions_1h: float) -> None:
    """Update the time-dependent facts of an unchanged record (cheaper than :func:`facts`)."""
    last_seen, last_poll = f["last_seen"], f["last_poll"]
    f["age"] = None if last_seen is None else max(0.0, now_s - last_seen)
    f["poll_age"] = None if last_poll is None else max(0.0, now_s - last_poll)
    f["lease_changes_1h"] = lease_changes_1h
    f["rule_actions_1h"] = rule_actions_1h
