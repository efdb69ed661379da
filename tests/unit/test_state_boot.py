"""A power cut of the machine: the log kept records whose state writes never reached the disk.
``minectl state repair`` (the minectl-state-recover unit at boot) finds the state behind and
rebuilds it; on a consistent directory it changes nothing."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest

from minectl_py.events.writer import EventWriter
from minectl_py.state import boot, compare, project
from tests.conftest import run_minectl
from tests.statefakes import lease, mac_of
from tests.unit.test_state_rebuild import mixed_run


def _site(tmp_path: Path, steps: int = 260, cut: int = 0) -> tuple[Path, Path, Path | None]:
    """A site from mixed_run (about 1,000 records over ~10 minutes). With ``cut``, a copy of
    the state directory is taken before the last ``cut`` batches: what reached the disk."""
    rng = random.Random(11)
    live, log = tmp_path / "state", tmp_path / "events" / "events.log"
    disk = tmp_path / "disk" if cut else None
    project.forget_cache()
    batches = list(mixed_run(rng, 30, steps))
    with EventWriter(str(log), fsync=False, rotate=False) as w:
        for i, batch in enumerate(batches):
            if disk is not None and i == len(batches) - cut:
                shutil.copytree(live, disk, symlinks=True)
            project.record_and_apply(str(live), batch, w.append_many)
    project.forget_cache()
    return live, log, disk


def _repair(live: Path, log: Path, *args: str):
    env = {"MINECTL_STATE_DIR": str(live), "MINECTL_EVENTS": str(log)}
    r = run_minectl("state", "repair", "--json", *args, env=env)
    return r, (json.loads(r.stdout) if r.stdout.strip() else {})


def _verify(live: Path, log: Path) -> list[str]:
    """What ``minectl state verify`` compares: the live directory and a replay of the log."""
    project.forget_cache()
    return boot._full_diff(str(live), [str(log)])


def _power_cut(live: Path, disk: Path) -> None:
    """Swap what reached the disk in for the live directory (the lost state writes)."""
    shutil.rmtree(live)
    disk.rename(live)


def test_a_consistent_directory_is_left_alone(tmp_path):
    live, log, _ = _site(tmp_path)
    before = compare.snapshot(str(live))
    ino = os.stat(live).st_ino
    r, res = _repair(live, log)
    assert r.returncode == 0, r.stderr
    assert res["behind"] is False and res["rebuilt"] is False, res["problems"]
    assert res["records_checked"] > 100 and res["miners_checked"] > 10, res
    assert os.stat(live).st_ino == ino and compare.snapshot(str(live)) == before


@pytest.mark.parametrize("cut", [1, 12])
def test_lost_state_writes_are_found_and_rebuilt(tmp_path, cut):
    """The state directory as of ``cut`` batches ago, the log complete: behind, rebuilt,
    and then equal to a replay of the log."""
    live, log, disk = _site(tmp_path, cut=cut)
    assert disk is not None
    assert compare.diff(compare.snapshot(str(disk)), compare.snapshot(str(live))), "the cut lost nothing"
    _power_cut(live, disk)
    assert _verify(live, log), "the power cut left the state equal to the log"
    chk, res = _repair(live, log, "--check")
    assert chk.returncode == 1 and res["behind"] and not res["rebuilt"], res
    assert _verify(live, log), "--check changed something"
    r, res = _repair(live, log)
    assert r.returncode == 0, r.stderr
    assert res["behind"] and res["rebuilt"] and res["rebuild"]["bad"] == 0, res
    assert _verify(live, log) == []  # rebuild == live
    assert oct(os.stat(live).st_mode & 0o7777) == oct(0o755)  # the live directory's mode kept
    assert not [p for p in live.iterdir() if p.name.startswith(".rebuild-")], "scratch directories left"
    r, res = _repair(live, log)
    assert r.returncode == 0 and not res["behind"] and not res["rebuilt"], res


def _last_lease_miner(live: Path, log: Path) -> str:
    """A miner whose last record is a lease add at the end of the log (written by the hook path)."""
    mac = mac_of(777)
    with EventWriter(str(log), fsync=False, rotate=False) as w:
        t = int(json.loads(log.read_bytes().rsplit(b"\x1e", 1)[1])["created_at_ms"]) + 1000
        project.record_and_apply(str(live), [lease("add", mac, "10.77.77.7", t, "late-one")], w.append_many)
    project.forget_cache()
    return mac


DAMAGES = [
    "empty value file",
    "old miner.json",
    "missing folder",
    "missing by-ip link",
    "missing by-name link",
    "extra",
]


@pytest.mark.parametrize("damage", DAMAGES)
def test_each_kind_of_lost_write_is_found(tmp_path, damage):
    live, log, _ = _site(tmp_path, steps=120)
    mac = _last_lease_miner(live, log)
    d = live / "miners" / mac
    if damage == "empty value file":
        (d / "ip").write_bytes(b"")  # delayed allocation: the inode reached the disk, the data did not
    elif damage == "old miner.json":
        vals = json.loads((d / "miner.json").read_text())
        vals["ip"] = "10.77.0.1"
        (d / "miner.json").write_text(json.dumps(vals, sort_keys=True) + "\n")
    elif damage == "missing folder":
        shutil.rmtree(d)
    elif damage == "missing by-ip link":
        (live / "by-ip" / "10.77.77.7").unlink()
    elif damage == "missing by-name link":
        (live / "by-name" / "late-one").unlink()
    else:
        (d / "pool").write_text("stratum+tcp://old\n")
    r, res = _repair(live, log, "--check")
    assert r.returncode == 1 and any(p.startswith(mac) for p in res["problems"]), res
    r, res = _repair(live, log)
    assert r.returncode == 0 and res["rebuilt"], res
    assert _verify(live, log) == []


def test_a_journal_is_recovered_first(tmp_path):
    """A killed writer's journal (process death) and lost writes (power) at once."""
    from tests.powerloss import crash_at

    live, log, disk = _site(tmp_path, steps=120, cut=2)
    assert disk is not None
    _power_cut(live, disk)
    mac = mac_of(900)
    t = int(json.loads(log.read_bytes().rsplit(b"\x1e", 1)[1])["created_at_ms"]) + 1000

    def work() -> None:
        with EventWriter(str(log), fsync=False, rotate=False) as w:
            project.record_and_apply(str(live), [lease("add", mac, "10.77.90.1", t, "killed")], w.append_many)

    assert crash_at(work, 9)  # after the log append, in the middle of the projection
    r, res = _repair(live, log)
    assert r.returncode == 0 and res["journal_recovered"] and res["rebuilt"], res
    assert _verify(live, log) == [] and (live / "miners" / mac).is_dir()


def test_full_finds_what_the_window_does_not(tmp_path):
    live, log, _ = _site(tmp_path, steps=120)
    r, res = _repair(live, log, "--window", "1s")
    assert r.returncode == 0 and not res["rebuilt"]
    # damage a miner whose last record is older than the window (not a power cut's doing)
    old = sorted(p for p in (live / "miners").iterdir() if not p.name.startswith("."))[0]
    (old / "miner.json").write_text("{}\n")
    r, res = _repair(live, log, "--window", "1s", "--check")
    assert r.returncode == 0, res  # outside the window: the cheap check does not look
    r, res = _repair(live, log, "--full")
    assert r.returncode == 0 and res["behind"] and res["rebuilt"], res
    assert _verify(live, log) == []


def test_a_new_controller_and_a_lost_state_directory(tmp_path):
    live, log = tmp_path / "state", tmp_path / "events" / "events.log"
    r, res = _repair(live, log)
    assert r.returncode == 0 and not res["behind"] and not live.exists()  # nothing written yet
    live, log, _ = _site(tmp_path, steps=60)
    shutil.rmtree(live)
    r, res = _repair(live, log)
    assert r.returncode == 0 and res["rebuilt"], res
    assert _verify(live, log) == []


def test_bad_window_is_a_usage_error(tmp_path):
    r = run_minectl("state", "repair", "--window", "soon", env={"MINECTL_STATE_DIR": str(tmp_path)})
    assert r.returncode == 2 and b"not a duration: 'soon'" in r.stderr


def test_a_writer_waiting_during_the_repair_writes_into_the_rebuilt_directory(tmp_path):
    """A writer (here: a lease, as the hook writes it) blocked on the state lock while repair
    swaps the rebuilt parts in goes on in them: its record is in the log and the state."""
    import threading
    import time

    live, log, disk = _site(tmp_path, steps=60, cut=2)
    assert disk is not None
    _power_cut(live, disk)
    mac = mac_of(4321)
    t_ms = int(json.loads(log.read_bytes().rsplit(b"\x1e", 1)[1])["created_at_ms"]) + 1000
    held = project.StateLock(str(live)).__enter__()  # what repair holds while it checks
    lock_ino = os.fstat(held.fd).st_ino

    def writer() -> None:
        with EventWriter(str(log), fsync=False, rotate=False) as w:
            project.record_and_apply(str(live), [lease("add", mac, "10.77.43.21", t_ms, "waiter")], w.append_many)

    th = threading.Thread(target=writer)
    th.start()
    for _ in range(500):  # until the kernel shows the writer waiting on the state lock
        if any("->" in ln and f":{lock_ino} " in ln for ln in Path("/proc/locks").read_text().splitlines()):
            break
        time.sleep(0.01)
    else:
        raise AssertionError("the writer never waited on the state lock")
    boot.replace_with_rebuild(str(live), [str(log)])
    held.__exit__()
    th.join(30)
    assert (live / "miners" / mac / "hostname").read_text() == "waiter\n"
    assert (live / "by-ip" / "10.77.43.21").is_symlink()
    assert _verify(live, log) == []


def test_tail_records_reads_only_the_window(tmp_path):
    _, log, _ = _site(tmp_path, steps=260)
    all_recs = [json.loads(x) for x in log.read_bytes().split(b"\x1e") if x.strip()]
    newest = max(int(r["created_at_ms"]) for r in all_recs)
    got = boot.tail_records([str(log)], window_ms=60_000)
    want = [r for r in all_recs if int(r["created_at_ms"]) >= newest - 60_000]
    assert [r["id"] for r in got] == [r["id"] for r in want] and 0 < len(got) < len(all_recs)
