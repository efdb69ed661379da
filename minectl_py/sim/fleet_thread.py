"""A simulated fleet run from synchronous code (tests, scripts): its own thread and event loop.

    with run_fleet_in_thread(spec) as fleet:
        fleet.addresses; fleet.fault(ip, "dead"); fleet.show(ip)

Every method hands the call to the fleet's loop and waits for it, so they are thread-safe.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from minectl_py.sim.fleet import Fleet
from minectl_py.sim.spec import FleetSpec


class FleetThread:
    """A fleet running in its own thread and event loop; methods are thread-safe."""

    def __init__(self, spec: FleetSpec) -> None:
        self.spec = spec
        self.fleet = Fleet(spec)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="minectl-sim", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.fleet.start())
        except BaseException as e:
            self._error = e
            self._ready.set()
            self.loop.close()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.fleet.stop())
        self.loop.close()

    def start(self) -> FleetThread:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def call(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        fut: Any = asyncio.run_coroutine_threadsafe(_call(fn, *args, **kw), self.loop)
        return fut.result(timeout=30)

    @property
    def addresses(self) -> list[str]:
        return self.fleet.addresses

    def fault(self, ip: str, name: str, **params: Any) -> dict[str, Any]:
        return self.call(self.fleet.fault, ip, name, **params)

    def clear(self, ip: str, name: str | None = None) -> dict[str, Any]:
        return self.call(self.fleet.clear, ip, name)

    def show(self, ip: str) -> dict[str, Any]:
        return self.call(self.fleet.show, ip)

    def reboot(self, ip: str, seconds: float | None = None) -> None:
        self.call(lambda: self.fleet.reboot(self.fleet.miner(ip), seconds))

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=30)

    def __enter__(self) -> FleetThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _call(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    return fn(*args, **kw)


def run_fleet_in_thread(spec: FleetSpec) -> FleetThread:
    """Start a fleet in a background thread; use as a context manager to stop it."""
    return FleetThread(spec).start()
