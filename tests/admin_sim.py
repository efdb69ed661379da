"""Simulated miners for the admin tests, on 127.74.0.0/16 (the block reserved for minectl's
admin tests), and a state directory that describes them as the site would: a lease for each,
then a real poll over the API, both projected into the state directory."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from minectl_py.events.record import make
from minectl_py.sim import FleetThread
from tests import admin_site
from tests.simfleet import lease_record, start_fleet

BLOCK = "127.74"


def start(personalities: list[str], *, http: bool = True, ssh: bool = True, **kw: Any) -> FleetThread:
    """One simulated miner per entry (``"s19"``, ``"cgminer:hot"``) on 127.74.<third>.1.. ."""
    return start_fleet(personalities, http=http, ssh=ssh, block=BLOCK, thirds=(1, 200), restart_seconds=0.3, **kw)


async def _poll_all(ips: list[str]) -> list[Any]:
    from minectl_py.miner.poll import poll_miner

    return await asyncio.gather(*(poll_miner(ip) for ip in ips))


def records_for(fleet: FleetThread, racks: int = 1) -> list[dict[str, Any]]:
    """A lease and a real poll record per simulated miner, as the hook and poller write them."""
    recs = []
    ips = fleet.addresses
    shows = {ip: fleet.show(ip) for ip in ips}
    for ip in ips:
        recs.append(lease_record(ip, shows[ip]))
    for res in asyncio.run(_poll_all(ips)):
        mac = shows[res.ip]["mac"]
        if res.ok:
            poll = {"ip": res.ip, "mac": mac, "elapsed_ms": res.elapsed_ms, "digest": res.digest}
            poll["miner"] = res.data.to_dict()
            recs.append(make("poll", "test-controller", poll))
        else:
            fail = {"ip": res.ip, "mac": mac, "reason": res.reason, "detail": res.detail}
            recs.append(make("poll_fail", "test-controller", fail))
    return recs


def state_for(fleet: FleetThread, state_dir: Path) -> None:
    """Inventory (names sim-1.. on rack S1), leases and real polls, projected into ``state_dir``."""
    site = admin_site.Site()
    for i, ip in enumerate(fleet.addresses):
        s = fleet.show(ip)
        inv = {"action": "set", "mac": s["mac"], "name": f"sim-{i + 1}", "rack": "S1", "shelf": "1"}
        inv.update(position=str(i + 1), model=s["model"])
        site.records.append(make("inventory", "test-controller", inv))
    site.records += records_for(fleet)
    admin_site.apply(str(state_dir), site)


@contextmanager
def running(personalities: list[str], base: Path, **kw: Any) -> Iterator[FleetThread]:
    """A fleet (see :func:`start`) with its state directory in ``base/state``; stopped after."""
    fleet = start(personalities, **kw)
    try:
        state_for(fleet, base / "state")
        yield fleet
    finally:
        fleet.stop()


def fleet_fixture(personalities: list[str], **kw: Any) -> Any:
    """A module-scoped pytest fixture: ``(fleet, base)`` of :func:`running` for one test file."""
    import pytest

    @pytest.fixture(scope="module")
    def sim(tmp_path_factory: Any) -> Iterator[tuple[FleetThread, Path]]:
        base = tmp_path_factory.mktemp("adm-sim")
        with running(personalities, base, **kw) as fleet:
            yield fleet, base

    return sim


def fresh_env(sim: tuple[Any, Path], tmp: Path, creds: str) -> dict[str, str]:
    """Every miner of a module's fleet (``fleet_fixture``) cleared of faults, and the
    environment of a ``minectl`` run against it (:func:`site_env`)."""
    fleet, base = sim
    for ip in fleet.addresses:
        fleet.clear(ip)
    return site_env(base, tmp, creds)


def site_env(base: Path, tmp: Path, creds: str) -> dict[str, str]:
    """The environment of one ``minectl`` run: the fleet's state directory (in ``base``), and a
    private event log and root-only credentials file (``creds``, YAML) in ``tmp``."""
    (tmp / "events").mkdir(exist_ok=True)
    cred = tmp / "credentials.yml"
    cred.write_text(creds)
    os.chmod(cred, 0o600)
    return {
        "MINECTL_STATE_DIR": str(base / "state"),
        "MINECTL_EVENTS": str(tmp / "events" / "events.log"),
        "MINECTL_CONFIG_DIR": str(tmp),
        "MINECTL_NODENAME": "test-controller",
    }


def audit(env: dict[str, str]) -> list[dict[str, Any]]:
    """The records of the run's event log (the audit trail), oldest first."""
    p = Path(env["MINECTL_EVENTS"])
    return [json.loads(x.lstrip("\x1e")) for x in p.read_text().split("\n") if x] if p.exists() else []


def act(env: dict[str, str], *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    """``minectl ARGS --json`` (``--timeout 5`` unless given; options go before an ``exec``'s
    ``--``) -> (exit code, results by miner name). Exit codes other than 0/1 fail the test."""
    from tests.conftest import run_minectl

    opts = ("--json",) if "--timeout" in args else ("--json", "--timeout", "5")
    i = args.index("--") if "--" in args else len(args)
    r = run_minectl(*args[:i], *opts, *args[i:], env=env)
    assert r.returncode in (0, 1), r.stderr.decode()
    return r.returncode, {x["name"]: x for x in json.loads(r.stdout)["results"]}
