"""Starting simulated fleets from tests: each on a random /24 of 127.20.0.0/16 (the block
reserved for the miners area), retried if another concurrent test run holds the addresses."""

from __future__ import annotations

import random

from minectl_py.sim import FleetError, FleetSpec, FleetThread, MinerSpec, finish, run_fleet_in_thread


def start_fleet(personalities: list[str], *, http: bool = False, ssh: bool = False, **kw: object) -> FleetThread:
    """A fleet with one miner per entry of ``personalities`` (``"s19"`` or ``"s19:hot,slow"``)."""
    last: Exception | None = None
    for _ in range(20):
        third = random.randrange(1, 100)
        miners = []
        for i, p in enumerate(personalities):
            name, _, faults = p.partition(":")
            ms = MinerSpec(ip=f"127.20.{third}.{i + 1}", personality=name)
            ms.faults = {f: {} for f in faults.split(",") if f}
            miners.append(ms)
        spec = FleetSpec(miners=miners, seed=third, http_port=None, ssh_port=None, reboot_seconds=1.0)
        spec.restart_seconds = 0.5
        if http:
            spec.http_port = 80
        if ssh:
            spec.ssh_port = 22
        for k, v in kw.items():
            setattr(spec, k, v)
        try:
            return run_fleet_in_thread(finish(spec))
        except (FleetError, OSError) as e:
            last = e
    raise RuntimeError(f"could not start a simulated fleet: {last}")


def wait_for(cond, timeout: float = 10.0, step: float = 0.05) -> bool:
    """Poll ``cond()`` until true (the machine may be busy: no fixed sleeps in assertions)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())
