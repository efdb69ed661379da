"""The admin's view of one miner: the state directory's values, normalized, plus derived ones.

A *miner* here is a plain ``dict`` (fast to build for 5,000 miners) with the keys of
:data:`FIELDS`. Values come from ``miner.json`` in the state directory (docs/state.md);
missing values are ``None``. :func:`normalize` turns a raw state record into that shape.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from typing import Any

#: field -> "num" | "str" (for --where, --sort and JSON output)
FIELDS: dict[str, str] = {
    "name": "str",
    "mac": "str",
    "ip": "str",
    "hostname": "str",
    "rack": "str",
    "shelf": "str",
    "position": "str",
    "location": "str",
    "make": "str",
    "model": "str",
    "model_expected": "str",
    "firmware": "str",
    "vendor_class": "str",
    "state": "str",
    "health": "str",
    "hashrate": "num",
    "hashrate_avg": "num",
    "nominal": "num",
    "hashrate_pct": "num",
    "temp_max": "num",
    "fans": "str",
    "fan_min": "num",
    "pool": "str",
    "pool_user": "str",
    "uptime": "num",
    "hw_errors": "num",
    "first_seen": "num",
    "last_seen": "num",
    "last_poll": "num",
    "last_error": "str",
    "lease": "str",
    "lease_expires": "num",
    "age": "num",
}

ALIASES: dict[str, str] = {
    "temp": "temp_max",
    "pct": "hashrate_pct",
    "ths": "hashrate",
    "hash": "hashrate",
    "fan": "fan_min",
    "seen": "age",
    "loc": "location",
    "fw": "firmware",
}

_NUMERIC = frozenset(k for k, t in FIELDS.items() if t == "num")
_COPY_STR = tuple(k for k, t in FIELDS.items() if t == "str" and k not in ("location", "health", "fans"))


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return None if isinstance(v, float) and not math.isfinite(v) else v
    try:
        f = float(str(v).strip())
    except ValueError:
        return None
    if not math.isfinite(f):
        return None
    return int(f) if f.is_integer() and "." not in str(v) else f


def _fans(v: Any) -> list[int]:
    if v is None:
        return []
    if type(v) is list and all(type(x) is int for x in v):
        return v
    items = v if isinstance(v, list) else str(v).split()
    out: list[int] = []
    for x in items:
        n = _num(x)
        if n is not None:
            out.append(int(n))
    return out


_NUM_KEYS = tuple(k for k in _NUMERIC if k not in ("fan_min", "age"))
_INF = (math.inf, -math.inf)


def normalize(raw: Mapping[str, Any], now: float) -> dict[str, Any]:
    """A state record (``miner.json`` contents) -> the admin's miner dictionary.

    Hot path (5,000 miners per ``minectl status``): typed values pass straight through."""
    g = raw.get
    m: dict[str, Any] = {}
    for k in _COPY_STR:
        v = g(k)
        m[k] = None if v is None or v == "" else (v if type(v) is str else str(v))
    for k in _NUM_KEYS:
        v = g(k)
        t = type(v)
        if v is None:
            m[k] = None
        elif t is int or (t is float and v == v and v not in _INF):
            m[k] = v
        else:
            m[k] = _num(v)
    fans = _fans(g("fans"))
    m["fans"] = fans
    m["fan_min"] = min(fans) if fans else None
    if m["hashrate_pct"] is None and m["hashrate"] is not None and m["nominal"]:
        m["hashrate_pct"] = round(100.0 * m["hashrate"] / m["nominal"], 1)
    mac = m["mac"]
    if mac:
        m["mac"] = mac.lower()
    r, sh, pos = m["rack"], m["shelf"], m["position"]
    m["location"] = "-".join(x for x in (r, sh, pos) if x) if (r or sh or pos) else None
    seen = m["last_seen"]
    m["age"] = None if seen is None else max(0, int(now - seen))
    if not m["state"]:
        m["state"] = "new"
    return m


def location(m: Mapping[str, Any]) -> str | None:
    parts = [m.get("rack"), m.get("shelf"), m.get("position")]
    if not any(parts):
        return None
    return "-".join(str(p) for p in parts if p)


def label(m: Mapping[str, Any]) -> str:
    """The name a person knows the miner by: inventory name, else hostname, else IP, else MAC."""
    return m.get("name") or m.get("hostname") or m.get("ip") or m.get("mac") or "?"


def ip_key(ip: str | None) -> int:
    """A dotted IPv4 address as a number for sorting (no address last, a malformed one before it)."""
    if not ip:
        return 1 << 33
    parts = ip.split(".")
    if len(parts) == 4 and all(p.isascii() and p.isdigit() and len(p) <= 3 for p in parts):
        a, b, c, d = (int(p) for p in parts)
        if max(a, b, c, d) <= 255:
            return a << 24 | b << 16 | c << 8 | d
    return 1 << 32


_CHUNKS = re.compile(r"([0-9]+)")


@functools.lru_cache(maxsize=1 << 16)
def _natural(s: str) -> tuple[tuple[int, Any], ...]:
    return tuple((0, int(c)) if "0" <= c[0] <= "9" else (1, c.lower()) for c in _CHUNKS.split(s) if c)


def natural_key(s: str | None) -> tuple[Any, ...]:
    """``R2`` before ``R10``: digits compare as numbers (racks, shelves and positions repeat:
    cached)."""
    if s is None:
        return ((2, ""),)
    return _natural(s)
