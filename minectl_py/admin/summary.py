"""Site totals from the miners' dictionaries (pure): what ``minectl summary`` shows."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from minectl_py.admin.fields import label, natural_key
from minectl_py.admin.health import LEVELS


def summarize(miners: Iterable[Mapping[str, Any]], *, top: int = 5) -> dict[str, Any]:
    ms = list(miners)
    states: Counter[str] = Counter(m.get("state") or "new" for m in ms)
    health: Counter[str] = Counter(m.get("health") or "new" for m in ms)
    hashing = [m for m in ms if m.get("state") == "online" and m.get("hashrate") is not None]
    total = sum(m["hashrate"] for m in hashing)
    # nominal of every miner we know the nominal of, whether hashing or not: the site's capacity
    nominal_all = sum(m["nominal"] for m in ms if m.get("nominal"))
    nominal_online = sum(m["nominal"] for m in hashing if m.get("nominal"))
    racks: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for m in ms:
        racks[m.get("rack") or "-"].append(m)
    rack_rows = []
    for r, rm in racks.items():
        temps = [m["temp_max"] for m in rm if m.get("temp_max") is not None and m.get("state") == "online"]
        hr = sum(m["hashrate"] for m in rm if m.get("state") == "online" and m.get("hashrate") is not None)
        nom = sum(m["nominal"] for m in rm if m.get("nominal"))
        rack_rows.append(
            {
                "rack": r,
                "miners": len(rm),
                "temp_max": max(temps) if temps else None,
                "temp_avg": round(sum(temps) / len(temps), 1) if temps else None,
                "hashrate_ths": round(hr, 2),
                "hashrate_pct": round(100 * hr / nom, 1) if nom else None,
                "problems": sum(1 for m in rm if m.get("health") in ("warn", "bad", "offline")),
            }
        )
    hottest = sorted(
        (r for r in rack_rows if r["temp_max"] is not None), key=lambda r: (-r["temp_avg"], -r["temp_max"])
    )[:top]
    online = [m for m in ms if m.get("state") == "online" and m.get("hashrate_pct") is not None]
    worst = sorted(online, key=lambda m: m["hashrate_pct"])[:top]
    models: Counter[str] = Counter(m.get("model") or m.get("model_expected") or "unknown" for m in ms)
    return {
        "miners": len(ms),
        "hashrate_ths": round(total, 2),
        "nominal_ths": round(nominal_all, 2),
        "nominal_online_ths": round(nominal_online, 2),
        "hashrate_pct": round(100 * total / nominal_all, 1) if nominal_all else None,
        "hashrate_pct_online": round(100 * total / nominal_online, 1) if nominal_online else None,
        "states": {k: states.get(k, 0) for k in ("online", "failing", "offline", "new")},
        "health": {k: health.get(k, 0) for k in LEVELS},
        "racks": len(racks),
        "hottest_racks": hottest,
        "worst_miners": [
            {
                "name": label(m),
                "ip": m.get("ip"),
                "location": m.get("location"),
                "hashrate_pct": m.get("hashrate_pct"),
                "temp_max": m.get("temp_max"),
                "health": m.get("health"),
            }
            for m in worst
        ],
        "unreachable": sorted((label(m) for m in ms if m.get("state") in ("failing", "offline")), key=natural_key)[
            : top * 2
        ],
        "models": dict(models.most_common()),
    }
