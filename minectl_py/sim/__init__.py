"""The miner simulator: a fleet of simulated ASIC miners speaking the real protocols.

See docs/simulator.md. Embedding from tests: :func:`run_fleet_in_thread` or ``async with Fleet(spec)``.
"""

from minectl_py.sim.fleet import Fleet, FleetError
from minectl_py.sim.fleet_thread import FleetThread, run_fleet_in_thread
from minectl_py.sim.spec import FleetSpec, MinerSpec, SpecError, finish, from_flags

__all__ = [
    "Fleet",
    "FleetError",
    "FleetSpec",
    "FleetThread",
    "MinerSpec",
    "SpecError",
    "finish",
    "from_flags",
    "run_fleet_in_thread",
]
