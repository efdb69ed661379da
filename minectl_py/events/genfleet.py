"""The simulated fleet behind :mod:`minectl_py.events.generate`: models, miners, fault tables."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

#: 2018-07-04T00:00:00-07:00, the day of the seed's sample lines.
DEFAULT_START_MS = 1_530_687_600_000


@dataclass(frozen=True, slots=True)
class Model:
    make: str
    model: str
    firmware: str
    nominal_ths: float
    boards: tuple[int, ...]  # board indexes as the firmware numbers them
    chips: int
    fans: int
    fan_rpm: int
    vendor_class: str
    hostname: str


_S9 = Model("Bitmain", "Antminer S9", "bmminer 2.0.0", 13.5, (6, 7, 8), 63, 2, 5400, "udhcp 1.22.1", "antMiner")
_S19 = Model("Bitmain", "Antminer S19", "bmminer 1.0.0", 95.0, (1, 2, 3), 76, 4, 5700, "udhcp 1.30.1", "Antminer")
_M30S = Model(
    "MicroBT", "Whatsminer M30S", "btminer 2.0.3", 86.0, (0, 1, 2), 148, 2, 6100, "udhcp 1.27.2", "WhatsMiner"
)
_BOS = Model("Braiins", "Antminer S9", "bosminer 0.2.0", 14.0, (6, 7, 8), 63, 2, 4800, "udhcp 1.29.3", "braiins-os")
#: The fleet's mix: (model, share).
MODELS: tuple[tuple[Model, float], ...] = ((_S9, 0.50), (_S19, 0.35), (_M30S, 0.10), (_BOS, 0.05))

POOL_URLS = (
    "stratum+tcp://us-east.stratum.slushpool.com:3333",
    "stratum+tcp://btc.viabtc.com:3333",
    "stratum+tcp://stratum.antpool.com:3333",
)
FAIL_REASONS = (("timeout", 0.6), ("refused", 0.2), ("connect_timeout", 0.1), ("reset", 0.05), ("truncated", 0.05))
FAULTS = (("board", 0.25), ("hot", 0.25), ("fan", 0.15), ("pool", 0.15), ("reboot", 0.15), ("offline", 0.05))


@dataclass(slots=True)
class Miner:
    idx: int
    mac: str
    ip: str
    name: str
    model: Model
    pool_user: str
    phase_ms: int
    lease_phase_s: int
    boot_ms: int
    hw_errors: int = 0
    accepted: int = 0
    rejected: int = 0
    fault: str = ""
    fault_left: int = 0  # polls until the fault clears
    failed_board: int = -1
    active_pool: int = 0
    heat: float = 0.0  # extra degrees from a fault


def pick(rng: random.Random, table: tuple[tuple[Any, float], ...]) -> Any:
    x = rng.random()
    for item, w in table:
        x -= w
        if x < 0:
            return item
    return table[-1][0]


def new_mac(rng: random.Random) -> str:
    # Locally plausible vendor-ish prefixes; lowercase with colons as the docs require.
    b = [0x00, 0x0E, rng.randrange(0x20, 0xF0), rng.randrange(256), rng.randrange(256), rng.randrange(256)]
    return ":".join(f"{x:02x}" for x in b)


def fleet(miners: int, poll_interval_s: int, lease_s: int, start_ms: int, rng: random.Random) -> list[Miner]:
    interval_ms = poll_interval_s * 1000
    out = []
    seen: set[str] = set()
    for i in range(miners):
        mac = new_mac(rng)
        while mac in seen:
            mac = new_mac(rng)
        seen.add(mac)
        model = pick(rng, MODELS)
        rack, slot = divmod(i, 250)
        ip = f"10.{(i // 62500) % 256}.{rack % 250 + 1}.{slot + 2}"
        name = f"r{rack + 1:02d}-{model.hostname.lower()}-{slot + 1:03d}"
        out.append(
            Miner(
                idx=i,
                mac=mac,
                ip=ip,
                name=name,
                model=model,
                pool_user=f"dmg.r{rack + 1:02d}s{slot + 1:03d}",
                phase_ms=(i * interval_ms) // max(miners, 1),
                lease_phase_s=rng.randrange(max(lease_s // 2, 1)),
                boot_ms=start_ms - rng.randrange(3600, 40 * 86400) * 1000,
            )
        )
    return out
