"""The normalized miner data model (docs/miners.md): the same fields whatever the firmware."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class BoardData:
    index: int
    hashrate_ths: float | None = None
    temp_board: float | None = None
    temp_chip: float | None = None
    chips: int | None = None
    chips_expected: int | None = None
    status: str = "ok"  # ok | failed


@dataclass(slots=True)
class PoolData:
    index: int
    url: str
    user: str
    status: str  # alive | dead | disabled
    active: bool
    priority: int | None = None
    accepted: int | None = None
    rejected: int | None = None


@dataclass(slots=True)
class MinerData:
    make: str
    model: str
    firmware: str
    mac: str | None = None
    hashrate_ths: float | None = None
    hashrate_avg_ths: float | None = None
    nominal_ths: float | None = None
    boards: list[BoardData] = field(default_factory=list)
    temp_max: float | None = None
    fans: list[int] = field(default_factory=list)
    pools: list[PoolData] = field(default_factory=list)
    uptime_s: int | None = None
    hw_errors: int | None = None
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict (hand-written: ``dataclasses.asdict`` deep-copies, 10x slower)."""
        return {
            "make": self.make,
            "model": self.model,
            "firmware": self.firmware,
            "mac": self.mac,
            "hashrate_ths": self.hashrate_ths,
            "hashrate_avg_ths": self.hashrate_avg_ths,
            "nominal_ths": self.nominal_ths,
            "boards": [
                {
                    "index": b.index,
                    "hashrate_ths": b.hashrate_ths,
                    "temp_board": b.temp_board,
                    "temp_chip": b.temp_chip,
                    "chips": b.chips,
                    "chips_expected": b.chips_expected,
                    "status": b.status,
                }
                for b in self.boards
            ],
            "temp_max": self.temp_max,
            "fans": list(self.fans),
            "pools": [
                {
                    "index": p.index,
                    "url": p.url,
                    "user": p.user,
                    "status": p.status,
                    "active": p.active,
                    "priority": p.priority,
                    "accepted": p.accepted,
                    "rejected": p.rejected,
                }
                for p in self.pools
            ],
            "uptime_s": self.uptime_s,
            "hw_errors": self.hw_errors,
            "errors": list(self.errors),
        }

    @property
    def active_pool(self) -> PoolData | None:
        for p in self.pools:
            if p.active:
                return p
        return None


#: nominal figures of known models: model -> (nominal TH/s, boards, chips per board)
KNOWN_MODELS: dict[str, tuple[float, int, int]] = {
    "Antminer S9": (13.5, 3, 63),
    "Antminer S9i": (13.0, 3, 63),
    "Antminer S9j": (14.5, 3, 63),
    "Antminer S17": (56.0, 3, 48),
    "Antminer S19": (95.0, 3, 76),
    "Antminer S19 Pro": (110.0, 3, 114),
    "Antminer S19j Pro": (100.0, 3, 126),
    "Antminer S19 XP": (140.0, 3, 110),
    "Antminer S21": (200.0, 3, 108),
    "Whatsminer M20S": (68.0, 3, 111),
    "Whatsminer M30S": (86.0, 3, 148),
    "Whatsminer M30S+": (100.0, 3, 215),
    "Whatsminer M50": (114.0, 3, 105),
}
