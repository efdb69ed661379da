"""A generated mine site for the admin tests and benchmarks.

Builds lease and poll records (as the lease hook and the poller write them) for a grid of
racks, applies them with the state projection, and returns what it made so tests can
compare what ``minectl`` shows with what went in.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

from minectl_py.events.record import make
from minectl_py.state.project import apply_many

MODELS = (
    ("Bitmain", "Antminer S19 Pro", "bmminer 1.0.0", 110.0),
    ("Bitmain", "Antminer S9", "bmminer 2.0.0", 13.5),
    ("MicroBT", "Whatsminer M30S", "btminer 2.0.1", 86.0),
)


@dataclass
class SiteMiner:
    mac: str
    ip: str
    name: str
    rack: str
    shelf: str
    position: str
    kind: str  # ok | slow | hot | failing | offline | new
    model: str
    nominal: float
    hashrate: float | None = None
    temp: float | None = None


@dataclass
class Site:
    miners: list[SiteMiner] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def by_kind(self, kind: str) -> list[SiteMiner]:
        return [m for m in self.miners if m.kind == kind]


def mac_of(i: int) -> str:
    return "02:30:" + ":".join(f"{(i >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))


def ip_of(i: int, base: str = "10.30") -> str:
    return f"{base}.{i // 250}.{i % 250 + 1}"


def generate(
    n: int,
    *,
    racks: int | None = None,
    shelves: int = 5,
    positions: int = 10,
    seed: int = 7,
    now: float | None = None,
    kinds: dict[int, str] | None = None,
    ip_base: str = "10.30",
    ip_start: int = 0,
    hostile: bool = False,
) -> Site:
    """``n`` miners on racks of ``shelves x positions``; every 10th slow, every 17th hot, every
    23rd failing, every 29th offline, every 31st new (unless ``kinds`` says otherwise)."""
    rnd = random.Random(seed)
    now = time.time() if now is None else now
    t_ms = int(now * 1000) - 60_000
    site = Site()
    per_rack = shelves * positions
    for i in range(n):
        make_, model, fw, nominal = MODELS[i % len(MODELS)]
        r, rest = divmod(i, per_rack)
        sh, pos = divmod(rest, positions)
        kind = (kinds or {}).get(i) or (
            "new"
            if i % 31 == 30
            else "offline"
            if i % 29 == 28
            else "failing"
            if i % 23 == 22
            else "hot"
            if i % 17 == 16
            else "slow"
            if i % 10 == 9
            else "ok"
        )
        m = SiteMiner(
            mac=mac_of(i),
            ip=ip_of(i + ip_start, ip_base),
            name=f"r{r + 1}-s{sh + 1}-p{pos + 1}",
            rack=f"R{r + 1}",
            shelf=str(sh + 1),
            position=str(pos + 1),
            kind=kind,
            model=model,
            nominal=nominal,
        )
        site.miners.append(m)
        inv = {"action": "set", "mac": m.mac, "name": m.name, "rack": m.rack, "shelf": m.shelf}
        inv.update(position=m.position, model=model)
        site.records.append(make("inventory", "test-controller", inv, at_ms=t_ms - 1000))
        lease = {"action": "add", "mac": m.mac, "ip": m.ip, "hostname": m.name, "expires": int(now) + 3600}
        site.records.append(make("lease", "test-controller", lease, at_ms=t_ms))
        if kind == "new":
            continue
        if kind in ("ok", "slow", "hot", "offline"):
            pct = rnd.uniform(40, 70) if kind == "slow" else rnd.uniform(95, 103)
            m.hashrate = round(nominal * pct / 100, 2)
            m.temp = rnd.uniform(96, 104) if kind == "hot" else rnd.uniform(55, 75)
            miner = {
                "make": make_,
                "model": model,
                "firmware": fw + ("\u202e\x1b[31m" if hostile else ""),
                "mac": m.mac,
                "hashrate_ths": m.hashrate,
                "hashrate_avg_ths": m.hashrate,
                "nominal_ths": nominal,
                "boards": [],
                "temp_max": round(m.temp, 1),
                "fans": [5400, 5460, 5520, 5580],
                "pools": [
                    {
                        "index": 0,
                        "url": "stratum+tcp://pool.example:3333" + ("\x1b]0;pwned\x07\x1b[2J" if hostile else ""),
                        "user": f"site.{m.name}",
                        "status": "alive",
                        "active": True,
                        "priority": 0,
                        "accepted": 10,
                        "rejected": 0,
                    }
                ],
                "uptime_s": 3600 * 5 + i,
                "hw_errors": 3,
                "errors": [],
            }
            poll = {"ip": m.ip, "mac": m.mac, "elapsed_ms": 12, "digest": "0" * 64, "miner": miner}
            site.records.append(make("poll", "test-controller", poll, at_ms=t_ms + 1000))
        if kind == "failing":
            fail = {"ip": m.ip, "mac": m.mac, "reason": "timeout", "detail": "no reply in 5 s", "elapsed_ms": 5000}
            site.records.append(make("poll_fail", "test-controller", fail, at_ms=t_ms + 1000))
        if kind == "offline":
            rel = {"action": "del", "mac": m.mac, "ip": m.ip, "hostname": m.name}
            site.records.append(make("lease", "test-controller", rel, at_ms=t_ms + 2000))
    return site


def inventory(site: Site) -> list[dict[str, str]]:
    return [
        {"mac": m.mac, "ip": m.ip, "name": m.name, "rack": m.rack, "shelf": m.shelf, "position": m.position}
        for m in site.miners
    ]


def apply(state_dir: str, site: Site) -> None:
    """Project the site's records (and its inventory) into ``state_dir`` with the real projection."""
    os.makedirs(state_dir, exist_ok=True)
    apply_many(state_dir, site.records)
