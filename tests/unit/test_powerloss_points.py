"""Kill -9 at every mutating system call of one chunk's append + projection: after the next
writer's recovery the log parses, no half files, and the rebuild equals the live directory."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from minectl_py.events import record
from minectl_py.events.writer import EventWriter
from minectl_py.state import project
from tests.powerloss import Tmpfs, check_site, crash_at, journal_pending, trace
from tests.statefakes import lease, mac_of, poll
from tests.unit.test_state_rebuild import mixed_run

T1 = 1_790_100_000_000


def _base(tmp: Path) -> tuple[Path, Path]:
    rng = random.Random(9)
    state, log = tmp / "state", tmp / "ev" / "events.log"
    project.forget_cache()
    with EventWriter(str(log), fsync=False, rotate=False) as w:
        for batch in mixed_run(rng, 10, 40):
            project.record_and_apply(str(state), batch, w.append_many)
    return state, log


def _batches() -> dict[str, list[dict]]:
    rng = random.Random(3)
    polls = [poll(rng, f"10.77.0.{i + 1}", T1, kind=i, mac=mac_of(i)) for i in range(3)]
    moves = [
        lease("add", mac_of(20), "10.77.0.3", T1, "antMiner"),  # takes another miner's address
        lease("old", mac_of(1), "10.77.9.9", T1 + 1, "miner1"),  # moves
        lease("del", mac_of(2), "10.77.0.3", T1 + 2, "miner2"),
        record.make("inventory", "ctl", {"action": "set", "mac": mac_of(3), "name": "antMiner"}, at_ms=T1 + 3),
        record.make("inventory", "ctl", {"action": "remove", "mac": mac_of(4)}, at_ms=T1 + 4),
        lease("add", mac_of(21), "10.77.0.50", T1 + 5, "../../etc\x1b[2J"),  # a new folder
    ]
    return {"poll batch": polls, "leases, links, inventory": moves}


def _work(state: Path, log: Path, batch: list[dict]):
    def work() -> None:
        project.forget_cache()
        with EventWriter(str(log), fsync=True, rotate=False) as w:
            project.record_and_apply(str(state), list(batch), w.append_many)

    return work


@pytest.mark.parametrize("name", ["poll batch", "leases, links, inventory"])
def test_kill_at_every_point_of_a_chunk(tmp_path, name):
    """Every crash point of the chunk (and a torn variant of every write) in its own copy."""
    with Tmpfs(tmp_path / "fs", "256m") as fs:
        _every_point(fs, name)


def _every_point(tmp_path: Path, name: str) -> None:
    _base(tmp_path / "base")
    batch = _batches()[name]
    shutil.copytree(tmp_path / "base", tmp_path / "trace", symlinks=True)
    calls = trace(_work(tmp_path / "trace" / "state", tmp_path / "trace" / "ev" / "events.log", batch))
    check_site(tmp_path / "trace" / "state", tmp_path / "trace" / "ev" / "events.log")
    points = [(k, False) for k in range(1, len(calls) + 1)] + [
        (k, True) for k, c in enumerate(calls, 1) if c == "write"
    ]
    recovered = torn = redone = 0
    for k, tear in points:
        run = tmp_path / f"k{k}{'t' if tear else ''}"
        shutil.copytree(tmp_path / "base", run, symlinks=True)
        state, log = run / "state", run / "ev" / "events.log"
        assert crash_at(_work(state, log, batch), k, torn=tear), f"not killed at {k}"
        recovered += journal_pending(state)
        fig = check_site(state, log)
        torn += fig["bad"] > 0
        redone += fig["redone"] > 0
        shutil.rmtree(run)
    assert recovered > len(points) // 2
    assert torn >= 1 and redone > 1
    print(
        f"{name}: {len(points)} kills ({len(calls)} points + torn writes), {recovered} recovered by the journal "
        f"({redone} with records projected again), {torn} left a torn record"
    )
