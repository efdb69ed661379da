"""A simulated site for the rules tests, on 127.50.0.0/16 (the block reserved for them):
simulated miners, a lease for each in the event log, and the real poller (``minectl poll
--once``) filling the state directory the rules service reads."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from minectl_py.events.reader import EventReader
from minectl_py.events.writer import EventWriter
from minectl_py.sim import FleetThread
from tests import admin_site
from tests.conftest import run_minectl
from tests.simfleet import lease_record
from tests.simfleet import start_fleet as _start_fleet

try:  # the state projection (lease hook / poller write the state directory through it)
    from minectl_py.state import project as _project  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - until minectl_py.state lands
    _project = None


def start_fleet(personalities: list[str], *, ssh: bool = False, http: bool = False) -> FleetThread:
    return _start_fleet(personalities, ssh=ssh, http=http, block="127.50", thirds=(1, 250), restart_seconds=0.3)


class SimSite:
    """Miners, the event log and the state directory of one test."""

    def __init__(self, fleet: FleetThread, root: Path) -> None:
        self.fleet = fleet
        self.root = root
        self.events = root / "events" / "events.log"
        self.state = root / "state"
        (root / "events").mkdir(parents=True, exist_ok=True)
        self.state.mkdir(parents=True, exist_ok=True)
        self.env = {
            "MINECTL_EVENTS": str(self.events),
            "MINECTL_STATE_DIR": str(self.state),
            "MINECTL_CONFIG_DIR": str(root),
            "MINECTL_NODENAME": "test-controller",
        }
        self.show = {ip: fleet.show(ip) for ip in fleet.addresses}
        leases = [lease_record(ip, s) for ip, s in self.show.items()]
        with EventWriter(str(self.events)) as w:
            w.append_many(leases)
        self._project(leases)

    @property
    def ips(self) -> list[str]:
        return self.fleet.addresses

    def mac(self, i: int) -> str:
        return self.show[self.ips[i]]["mac"]

    def _project(self, new: list[dict[str, Any]]) -> None:
        if _project is not None:
            _project.apply_many(str(self.state), new)
        else:  # pragma: no cover - the admin tests' stand-in, over the whole log
            recs = EventReader([str(self.events)], types=("lease", "poll", "poll_fail"))
            site = admin_site.Site(records=[r for r in recs if r.get("mac")])
            admin_site.apply(str(self.state), site)

    def poll(self) -> None:
        """One real poll of every miner (targets from the state directory)."""
        p = run_minectl("poll", "--once", "--timeout", "3", "--connect-timeout", "1", env=self.env)
        assert p.returncode in (0, 1), p.stderr.decode()
        if _project is None:  # pragma: no cover - the poller could not project
            self._project([])

    def wait_up(self, i: int, timeout: float = 10.0) -> None:
        """Until miner ``i`` answers again after a restart or reboot."""
        ip = self.ips[i]
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            s = self.fleet.show(ip)
            if not s["dark"] and s["uptime_s"] is not None and s["uptime_s"] >= 0 and not s["api_down"]:
                time.sleep(0.4)  # restart_seconds
                return
            time.sleep(0.1)
        raise AssertionError(f"{ip} did not come back")

    def credentials(self, text: str) -> str:
        p = self.root / "credentials.yml"
        p.write_text(text)
        os.chmod(p, 0o600)
        return str(p)
