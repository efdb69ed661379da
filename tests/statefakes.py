"""Realistic record generators for state tests: leases as the hook writes them, poll results
per docs/miners.md for the firmware families the poller meets."""

from __future__ import annotations

import random
from typing import Any

from minectl_py.events import record

MODELS = [
    ("Bitmain", "Antminer S9", "bmminer 2.0.0", 13.5, 3, 63),
    ("Bitmain", "Antminer S19", "bmminer 1.0.0", 95.0, 3, 76),
    ("MicroBT", "Whatsminer M30S", "btminer 2.1.3", 88.0, 3, 148),
    ("Braiins", "Antminer S9", "bosminer 0.9.0", 14.0, 3, 63),
]


def mac_of(i: int) -> str:
    return "02:00:{:02x}:{:02x}:{:02x}:{:02x}".format(*(i.to_bytes(4, "big")))


def lease(action: str, mac: str, ip: str, at_ms: int, hostname: str | None = None, **kw: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"action": action, "mac": mac, "ip": ip}
    if hostname is not None:
        fields["hostname"] = hostname
        fields["supplied_hostname"] = hostname
    if action != "del":
        fields["expires"] = at_ms // 1000 + 3600
    fields.update(kw)
    return record.make("lease", "test-controller", fields, at_ms=at_ms)


def miner_dict(rng: random.Random, kind: int, mac: str | None = None) -> dict[str, Any]:
    make, model, fw, nominal, nboards, chips = MODELS[kind % len(MODELS)]
    boards = []
    for b in range(nboards):
        failed = rng.random() < 0.05
        bh = 0.0 if failed else round(nominal / nboards * rng.uniform(0.85, 1.05), 3)
        boards.append(
            {
                "index": b,
                "hashrate_ths": bh,
                "temp_board": round(rng.uniform(55, 75), 1),
                "temp_chip": round(rng.uniform(65, 90), 1),
                "chips": 0 if failed else chips,
                "chips_expected": chips,
                "status": "failed" if failed else "ok",
            }
        )
    h = round(sum(b["hashrate_ths"] for b in boards), 3)
    pools = [
        {
            "index": i,
            "url": f"stratum+tcp://pool{i}.example.com:3333",
            "user": f"site1.w{rng.randrange(1000)}",
            "status": "alive",
            "active": i == 0,
            "priority": i,
            "accepted": rng.randrange(100000),
            "rejected": rng.randrange(100),
        }
        for i in range(3)
    ]
    return {
        "make": make,
        "model": model,
        "firmware": fw,
        "mac": mac,
        "hashrate_ths": h,
        "hashrate_avg_ths": round(h * rng.uniform(0.97, 1.03), 3),
        "nominal_ths": nominal if rng.random() > 0.1 else None,
        "boards": boards,
        "temp_max": max(b["temp_chip"] for b in boards),
        "fans": [rng.randrange(3000, 6000, 60) for _ in range(2 if kind % 2 else 4)],
        "pools": pools,
        "uptime_s": rng.randrange(10**6),
        "hw_errors": rng.randrange(500),
        "errors": [],
    }


def poll(rng: random.Random, ip: str, at_ms: int, kind: int = 0, mac: str | None = None) -> dict[str, Any]:
    return record.make(
        "poll",
        "test-controller",
        {
            "ip": ip,
            "mac": mac,
            "elapsed_ms": rng.randrange(5, 400),
            "digest": f"{rng.getrandbits(256):064x}",
            "miner": miner_dict(rng, kind, mac),
        },
        at_ms=at_ms,
    )


def poll_fail(ip: str, at_ms: int, reason: str = "timeout", mac: str | None = None) -> dict[str, Any]:
    return record.make(
        "poll_fail",
        "test-controller",
        {"ip": ip, "mac": mac, "reason": reason, "detail": "", "elapsed_ms": 3000},
        at_ms=at_ms,
    )
