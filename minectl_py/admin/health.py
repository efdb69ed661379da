"""Health of one miner, decided from its state values only (no I/O).

Levels, best to worst: ``ok``, ``new`` (leased, never polled), ``warn``, ``bad``, ``offline``.
:func:`classify` returns the level and the reasons, in the words ``minectl show`` prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LEVELS = ("ok", "new", "warn", "bad", "offline")
RANK = {lvl: i for i, lvl in enumerate(LEVELS)}


@dataclass(frozen=True, slots=True)
class Thresholds:
    pct_warn: float = 90.0  # hashrate below this percent of nominal: warn
    pct_bad: float = 50.0  # below this: bad
    temp_warn: float = 85.0  # hottest board/chip at or above (°C): warn (chips run ~75-83 °C)
    temp_bad: float = 95.0  # at or above: bad
    stale_s: int = 600  # online but no poll/lease news for this long: warn


DEFAULT = Thresholds()


def classify(m: Mapping[str, Any], t: Thresholds = DEFAULT) -> tuple[str, list[str]]:
    state = m.get("state") or "new"
    if state == "offline":
        return "offline", ["offline (lease released or expired)"]
    if state == "new":
        return "new", ["leased, never polled"]
    if state == "expected":
        return "offline", ["in the inventory, never seen on the network"]
    reasons: list[tuple[str, str]] = []
    if state == "failing":
        why = m.get("last_error") or "no answer"
        reasons.append(("bad", f"polls failing: {why}"))
    pct = m.get("hashrate_pct")
    if pct is not None:
        if pct < t.pct_bad:
            reasons.append(("bad", f"hashrate {pct:.0f}% of nominal (< {t.pct_bad:.0f}%)"))
        elif pct < t.pct_warn:
            reasons.append(("warn", f"hashrate {pct:.0f}% of nominal (< {t.pct_warn:.0f}%)"))
    temp = m.get("temp_max")
    if temp is not None:
        if temp >= t.temp_bad:
            reasons.append(("bad", f"temperature {temp:.0f} °C (>= {t.temp_bad:.0f})"))
        elif temp >= t.temp_warn:
            reasons.append(("warn", f"temperature {temp:.0f} °C (>= {t.temp_warn:.0f})"))
    fans = m.get("fans") or []
    if state == "online" and any(f == 0 for f in fans):
        reasons.append(("bad", "a fan reports 0 rpm"))
    age = m.get("age")
    if state == "online" and age is not None and age > t.stale_s:
        reasons.append(("warn", f"no news for {age // 60} min"))
    if not reasons:
        return "ok", []
    level = max((lvl for lvl, _ in reasons), key=RANK.__getitem__)
    return level, [r for _, r in reasons]


def level(m: Mapping[str, Any], t: Thresholds = DEFAULT) -> str:
    return classify(m, t)[0]
