"""Starting simulated fleets from tests: the one helper every area's tests use.

Each area keeps to its own loopback block (``block``: ``127.20`` the miners area, ``127.50``
the rules tests, ``127.74`` the admin tests); a fleet takes a random /24 of it (or ``third``)
and is retried on another one if a concurrent test run holds the addresses."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from minectl_py.events.record import make
from minectl_py.sim import FleetError, FleetSpec, FleetThread, MinerSpec, finish, run_fleet_in_thread


def miner_specs(personalities: Sequence[str], block: str, third: int) -> list[MinerSpec]:
    """One miner per entry (``"s19"`` or ``"s19:hot,slow"``) on ``block.third.1`` onwards
    (250 a /24, continuing on the next one)."""
    miners = []
    for i, p in enumerate(personalities):
        name, _, faults = p.partition(":")
        ms = MinerSpec(ip=f"{block}.{third + i // 250}.{i % 250 + 1}", personality=name)
        ms.faults = {f: {} for f in faults.split(",") if f}
        miners.append(ms)
    return miners


def start_fleet(
    personalities: Sequence[str],
    *,
    http: bool = False,
    ssh: bool = False,
    block: str = "127.20",
    thirds: tuple[int, int] = (1, 100),
    third: int | None = None,
    restart_seconds: float = 0.5,
    reboot_seconds: float = 1.0,
    **kw: object,
) -> FleetThread:
    """A fleet with one miner per entry of ``personalities``; ``kw`` sets other
    :class:`~minectl_py.sim.FleetSpec` fields. ``third`` pins the /24 (no retry elsewhere)."""
    last: Exception | None = None
    for _ in range(1 if third is not None else 20):
        t = third if third is not None else random.randrange(*thirds)
        spec = FleetSpec(miners=miner_specs(personalities, block, t), seed=t, reboot_seconds=reboot_seconds)
        spec.restart_seconds = restart_seconds
        spec.http_port = 80 if http else None
        spec.ssh_port = 22 if ssh else None
        for k, v in kw.items():
            setattr(spec, k, v)
        try:
            return run_fleet_in_thread(finish(spec))
        except (FleetError, OSError) as e:
            last = e
    raise RuntimeError(f"could not start a simulated fleet on {block}.0.0/16: {last}")


def wait_for(cond: Callable[[], object], timeout: float = 10.0, step: float = 0.05) -> bool:
    """Poll ``cond()`` until true (the machine may be busy: no fixed sleeps in assertions)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


def lease_record(ip: str, show: dict[str, Any]) -> dict[str, Any]:
    """The lease record the DHCP hook writes for a simulated miner (``show``: the fleet's
    :meth:`~minectl_py.sim.FleetThread.show` of it), on node ``test-controller``."""
    fields = {"action": "add", "mac": show["mac"], "ip": ip, "hostname": show["hostname"], "expires": 2_000_000_000}
    return make("lease", "test-controller", fields)
