"""``--sort`` specs: ``temp``, ``-hashrate_pct``, ``rack,position`` (``-`` = descending).

Missing values sort last in either direction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from minectl_py.admin.fields import ALIASES, FIELDS, ip_key, natural_key
from minectl_py.admin.fleet import default_order
from minectl_py.admin.health import RANK

Key = Callable[[Mapping[str, Any]], Any]


def _key(name: str) -> Key:
    if name == "ip":
        return lambda m: ip_key(m.get("ip"))
    if name == "health":
        return lambda m: RANK.get(m.get("health") or "", 99)
    if name == "location":
        return default_order
    if FIELDS[name] == "num":
        return lambda m: m.get(name)
    return lambda m: natural_key(m.get(name))


def parse_sort(spec: str) -> list[tuple[str, bool]]:
    """``"-temp,name"`` -> ``[("temp_max", True), ("name", False)]``; ValueError names a bad key."""
    out = []
    for part in spec.split(","):
        p = part.strip()
        if not p:
            continue
        desc = p.startswith("-")
        name = p.lstrip("-+").lower()
        name = ALIASES.get(name, name)
        if name not in FIELDS:
            raise ValueError(f"--sort {part!r}: unknown field; fields: {', '.join(sorted(FIELDS))}")
        out.append((name, desc))
    if not out:
        raise ValueError("--sort: empty")
    return out


def sort_miners(miners: list[dict[str, Any]], spec: str | None) -> list[dict[str, Any]]:
    """Stable multi-key sort; the default is rack / shelf / position / name."""
    out = sorted(miners, key=default_order)
    if not spec:
        return out
    for name, desc in reversed(parse_sort(spec)):
        k = _key(name)
        present = [m for m in out if m.get(name) is not None or name in ("ip", "health", "location")]
        missing = [m for m in out if not (m.get(name) is not None or name in ("ip", "health", "location"))]
        present.sort(key=k, reverse=desc)
        out = present + missing
    return out
