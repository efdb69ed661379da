"""The rack map (pure): racks -> shelves -> positions -> one cell per miner.

A cell shows a short value (hashrate % or °C) and a level that picks its colour. Racks,
shelves and positions come from the inventory (``rack``, ``shelf``, ``position``); miners
without all three are counted apart so nobody is silently missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from minectl_py.admin.fields import natural_key
from minectl_py.admin.health import DEFAULT, Thresholds

CELL = 4  # characters per cell, including one space


@dataclass(frozen=True, slots=True)
class Cell:
    text: str  # at most CELL - 1 characters
    level: str  # ok | warn | bad | offline | new | none


@dataclass(slots=True)
class Rack:
    name: str
    shelves: list[str] = field(default_factory=list)
    positions: list[str] = field(default_factory=list)
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)


def cell_for(m: Mapping[str, Any], metric: str, t: Thresholds = DEFAULT) -> Cell:
    state = m.get("state")
    if state in ("offline", "expected"):
        return Cell("--", "offline")
    if state == "failing":
        return Cell("!!", "bad")
    if state == "new" or state is None:
        return Cell("..", "new")
    if metric == "temp":
        v = m.get("temp_max")
        if v is None:
            return Cell("?", "none")
        lvl = "bad" if v >= t.temp_bad else "warn" if v >= t.temp_warn else "ok"
    else:
        v = m.get("hashrate_pct")
        if v is None:
            return Cell("?", "none")
        lvl = "bad" if v < t.pct_bad else "warn" if v < t.pct_warn else "ok"
    return Cell(str(min(999, max(0, round(v)))), lvl)


def build(miners: Iterable[Mapping[str, Any]], metric: str = "pct") -> tuple[list[Rack], int]:
    """Racks in natural order and the number of miners with no full location."""
    racks: dict[str, Rack] = {}
    unplaced = 0
    for m in miners:
        r, s, p = m.get("rack"), m.get("shelf"), m.get("position")
        if not (r and s and p):
            unplaced += 1
            continue
        rack = racks.get(r)
        if rack is None:
            rack = racks[r] = Rack(r)
        c = cell_for(m, metric)
        old = rack.cells.get((s, p))
        if old is not None:  # two miners claim one slot: show it, worst wins
            c = Cell("x2", "bad")
        rack.cells[(s, p)] = c
    for rack in racks.values():
        rack.shelves = sorted({s for s, _ in rack.cells}, key=natural_key)
        rack.positions = sorted({p for _, p in rack.cells}, key=natural_key)
    return [racks[k] for k in sorted(racks, key=natural_key)], unplaced
