"""The normalized miner data model (docs/miners.md): the same fields whatever the firmware."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
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
        return asdict(self)

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
