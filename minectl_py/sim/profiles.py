"""Simulated miners: the static profile of each firmware personality and a miner's live state.

A :class:`SimMiner` is plain state (pools, LED, faults, when the mining software started).
:func:`sample` turns it into the readings of one moment (hashrate with noise around the
model's nominal, temperatures, fans, per-board figures), applying the state faults
(hot, low_hashrate, fan_failed, board_failed, sleep). The reply builders in
``replies.py`` render those readings in each firmware's own shapes.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

#: Faults that change how the miner answers on the wire (see docs/simulator.md).
TRANSPORT_FAULTS = frozenset({"dead", "refusing", "slow", "hanging", "dying", "truncated", "garbage", "invalid_json"})
#: Faults that change what the miner reports.
STATE_FAULTS = frozenset({"hot", "low_hashrate", "fan_failed", "board_failed", "reboot_loop", "pool_dead"})
FAULTS = TRANSPORT_FAULTS | STATE_FAULTS


@dataclass(frozen=True, slots=True)
class Profile:
    """What does not change for a personality: identity strings, geometry, access rules."""

    key: str
    make: str
    model: str
    nominal_ths: float
    boards: int
    chips: int  # per board
    fans: int
    software: str  # key in VERSION: CGMiner, BMMiner, BOSminer, ...
    software_version: str
    api_version: str
    description: str  # STATUS Description
    miner_version: str = ""
    compile_time: str = ""
    #: commands answered remotely without W access (None = every read command)
    read_groups: frozenset[str] | None = None
    write_access: bool = False  # stock firmware default for privileged commands
    joinable: bool = True  # `summary+pools` works
    http: str | None = None  # "antminer" (digest CGI) | "bosminer" (web page) | None
    web_user: str = "root"
    web_password: str = "root"
    ssh_user: str | None = None
    ssh_password: str = ""


ANTMINER_S19_GROUPS = frozenset({"stats", "pools", "devs", "summary", "version"})

PROFILES: dict[str, Profile] = {
    "cgminer": Profile(
        key="cgminer",
        make="cgminer",
        model="Generic SHA256 ASIC",
        nominal_ths=14.0,
        boards=3,
        chips=63,
        fans=2,
        software="CGMiner",
        software_version="4.11.1",
        api_version="3.7",
        description="cgminer 4.11.1",
        write_access=True,
        ssh_user="root",
        ssh_password="root",
    ),
    "s9": Profile(
        key="s9",
        make="Bitmain",
        model="Antminer S9",
        nominal_ths=13.5,
        boards=3,
        chips=63,
        fans=2,
        software="BMMiner",
        software_version="2.0.0",
        api_version="3.1",
        description="bmminer 1.0.0",
        miner_version="16.8.1.3",
        compile_time="Fri Nov 17 17:37:49 CST 2017",
        read_groups=ANTMINER_S19_GROUPS | {"noncenum"},
        http="antminer",
        ssh_user="root",
        ssh_password="admin",
    ),
    "s19": Profile(
        key="s19",
        make="Bitmain",
        model="Antminer S19 Pro",
        nominal_ths=110.0,
        boards=3,
        chips=114,
        fans=4,
        software="BMMiner",
        software_version="1.0.0",
        api_version="3.1",
        description="cgminer 1.0.0",
        miner_version="49.0.1.3",
        compile_time="Mon Oct 26 17:55:33 CST 2020",
        read_groups=ANTMINER_S19_GROUPS,
        joinable=False,
        http="antminer",
        ssh_user="miner",
        ssh_password="miner",
    ),
    "btminer": Profile(
        key="btminer",
        make="MicroBT",
        model="Whatsminer M30S",
        nominal_ths=86.0,
        boards=3,
        chips=148,
        fans=2,
        software="btminer",
        software_version="20210322.22.REL",
        api_version="2.0.5",
        description="btminer",
        write_access=True,  # the write API enabled (encrypted commands only; see btminer.py)
        web_user="admin",
        web_password="admin",
    ),
    "bosminer": Profile(
        key="bosminer",
        make="Braiins",
        model="Antminer S19",
        nominal_ths=95.0,
        boards=3,
        chips=76,
        fans=4,
        software="BOSer",
        software_version="boser-buildroot 0.1.0-0ce150e9",
        api_version="3.7",
        description="BOSer boser-buildroot 0.1.0-0ce150e9",
        write_access=True,
        http="bosminer",
        ssh_user="root",
        ssh_password="root",
    ),
}

ALIASES = {"bmminer": "s9", "antminer": "s19", "whatsminer": "btminer", "braiins": "bosminer", "bos": "bosminer"}


def profile(name: str) -> Profile:
    key = ALIASES.get(name.lower(), name.lower())
    try:
        return PROFILES[key]
    except KeyError:
        raise ValueError(f"unknown personality {name!r}; known: {', '.join(PROFILES)}") from None


@dataclass(slots=True)
class SimPool:
    url: str
    user: str
    password: str = "x"
    enabled: bool = True


@dataclass(slots=True)
class Board:
    index: int
    rate_ghs: float
    ideal_ghs: float
    temp_pcb: int
    temp_chip: int
    chips: int
    chips_expected: int
    hw: int
    ok: bool


@dataclass(slots=True)
class Reading:
    """The miner's figures at one moment."""

    now: float
    uptime_s: int
    ghs_5s: float
    ghs_av: float
    ideal_ghs: float
    boards: list[Board]
    fans: list[int]
    accepted: int
    rejected: int
    hw_errors: int
    temp_max: int
    freq: int


@dataclass(slots=True)
class SimMiner:
    """One simulated miner's mutable state. Mutated only from the fleet's event loop."""

    index: int
    ip: str
    mac: str
    profile: Profile
    hostname: str
    serial: str
    pools: list[SimPool]
    seed: int
    faults: dict[str, dict] = field(default_factory=dict)
    write_access: bool = False
    started_at: float = 0.0  # wall time the mining software (re)started
    dark_until: float = 0.0  # rebooting: unreachable until then
    api_down: bool = False  # after `quit`: port 4028 closed until a reboot
    led: bool = False
    led_until: float = 0.0  # 0 = no automatic end
    sleeping: bool = False  # Antminer work mode 1
    reboots: int = 0
    restarts: int = 0
    web_password: str = ""
    ssh_password: str = ""
    rng: random.Random = field(default_factory=random.Random)
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.profile.key

    def active_pool(self) -> int | None:
        for i, p in enumerate(self.pools):
            if p.enabled and not self.pool_dead(i):
                return i
        return None

    def pool_dead(self, i: int) -> bool:
        return "pool_dead" in self.faults or "invalid" in self.pools[i].url

    def led_on(self, now: float) -> bool:
        if self.led and self.led_until and now >= self.led_until:
            self.led = False
            self.led_until = 0.0
        return self.led

    def uptime(self, now: float) -> int:
        return max(0, int(now - self.started_at))

    def snapshot(self, now: float | None = None) -> dict:
        """What the control API shows: observable state for tests and admins."""
        now = time.time() if now is None else now
        return {
            "ip": self.ip,
            "mac": self.mac,
            "personality": self.key,
            "model": self.profile.model,
            "hostname": self.hostname,
            "faults": sorted(self.faults),
            "dark": self.dark_until > 0,  # until the fleet has reopened the listeners
            "api_down": self.api_down,
            "uptime_s": self.uptime(now),
            "led": self.led_on(now),
            "sleeping": self.sleeping,
            "reboots": self.reboots,
            "restarts": self.restarts,
            "write_access": self.write_access,
            "pools": [
                {"url": p.url, "user": p.user, "enabled": p.enabled, "active": i == self.active_pool()}
                for i, p in enumerate(self.pools)
            ],
        }


def sample(m: SimMiner, now: float) -> Reading:
    """The miner's readings now: noise around nominal, shaped by the state faults."""
    p = m.profile
    rng = m.rng
    up = m.uptime(now)
    ideal_board = p.nominal_ths * 1000.0 / p.boards
    factor = 0.0 if m.sleeping else (0.45 if "low_hashrate" in m.faults else 1.0)
    if up < 20 and not m.sleeping:  # warming up after a (re)start
        factor *= up / 20.0
    hot = "hot" in m.faults
    boards: list[Board] = []
    for b in range(p.boards):
        failed = "board_failed" in m.faults and b == p.boards - 1
        rate = 0.0 if failed else ideal_board * factor * (1.0 + rng.gauss(0.0, 0.015))
        base = 0 if failed else (88 if hot else 58) + (m.seed + b * 7) % 9
        boards.append(
            Board(
                index=b,
                rate_ghs=max(0.0, rate),
                ideal_ghs=ideal_board,
                temp_pcb=base,
                temp_chip=base + (14 if base else 0) + (rng.randint(0, 3) if base else 0),
                chips=0 if failed else p.chips,
                chips_expected=p.chips,
                hw=0 if failed else up // 97 + (m.seed + b) % 5,
                ok=not failed,
            )
        )
    ghs = sum(b.rate_ghs for b in boards)
    avg = 0.0 if up == 0 else p.nominal_ths * 1000.0 * factor * (0.995 + (m.seed % 10) / 1000.0)
    if "board_failed" in m.faults:
        avg = avg * (p.boards - 1) / p.boards
    fan_base = 1500 if m.sleeping else (6000 if hot else 4800)
    fans = [fan_base + (m.seed * 37 + i * 120) % 400 + rng.randint(-40, 40) for i in range(p.fans)]
    if "fan_failed" in m.faults:
        fans[0] = 0
    accepted = up // 11 if m.active_pool() is not None and factor > 0 else 0
    return Reading(
        now=now,
        uptime_s=up,
        ghs_5s=ghs,
        ghs_av=avg,
        ideal_ghs=p.nominal_ths * 1000.0,
        boards=boards,
        fans=fans,
        accepted=accepted,
        rejected=accepted // 400,
        hw_errors=sum(b.hw for b in boards),
        temp_max=max(b.temp_chip for b in boards),
        freq=550 if p.key == "s9" else 525,
    )
