"""Folder-swap updates (minectl_py.state.swapdir): what a long-running writer leaves behind
equals what the file-by-file writer leaves, whatever the shadow folder held before."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from minectl_py.state import compare, files, project, read, values
from tests.statefakes import lease, mac_of, poll, poll_fail

T0 = 1_790_000_000_000


@pytest.fixture(autouse=True)
def _fresh_cache():
    project.forget_cache()
    yield
    project.forget_cache()


def _ip(i: int) -> str:
    return f"10.77.0.{10 + i}"


def _history(n_miners: int, cycles: int, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    recs = [lease("add", mac_of(i), _ip(i), T0, f"m{i}") for i in range(n_miners)]
    for c in range(1, cycles + 1):
        t = T0 + 60_000 * c
        for i in range(n_miners):
            r = rng.random()
            if r < 0.15:
                recs.append(poll_fail(_ip(i), t, reason=rng.choice(["timeout", "refused"]), mac=mac_of(i)))
            elif r < 0.2:
                recs.append(lease("old", mac_of(i), _ip(i), t, f"m{i}" if rng.random() < 0.5 else None))
            else:
                recs.append(poll(rng, _ip(i), t, kind=i + c, mac=mac_of(i)))
    return recs


def _per_file_reference(root: Path, recs: list[dict]) -> compare.Snapshot:
    """The same records projected by the lease hook's writer (no folder swap)."""
    saved = project._swapdir, project._exchange
    project._swapdir = project._exchange = None
    try:
        project.forget_cache()
        project.record_and_apply(str(root), recs, None, swap=False)
        return compare.snapshot(str(root))
    finally:
        project._swapdir, project._exchange = saved
        project.forget_cache()


def _consistent(d: Path) -> None:
    """Every one-value file says what miner.json says, and no file is missing or extra."""
    js = json.loads((d / "miner.json").read_text())
    got = {p.name: p.read_text() for p in d.iterdir() if not p.name.startswith(".") and p.name != "miner.json"}
    assert got == {k: values.render(k, v) + "\n" for k, v in js.items()}


def test_swap_updates_equal_file_by_file_updates(tmp_path):
    assert project.use_exchange()
    recs = _history(6, 12)
    live = tmp_path / "live"
    project.record_and_apply(str(live), recs, None)
    # the shadows exist (the swap path ran) and readers do not see them
    shadows = [p.name for p in (live / "miners").iterdir() if p.name.startswith(".")]
    assert sorted(shadows) == sorted(f".{mac_of(i)}.alt" for i in range(6))
    assert len(read.load_all(str(live))) == 6
    for i in range(6):
        _consistent(live / "miners" / mac_of(i))
    assert compare.diff(compare.snapshot(str(live)), _per_file_reference(tmp_path / "ref", recs)) == []


def test_other_writers_and_damaged_shadows_are_caught_up(tmp_path):
    """The hook (file by file, another process) changes the live folder; a crash leaves a
    shadow half written with a stray file; the shadow vanishes: the next swap is still right."""
    assert project.use_exchange()
    recs = _history(3, 4, seed=5)
    live = tmp_path / "live"
    st = str(live)
    project.record_and_apply(st, recs, None)
    rng = random.Random(9)
    more: list[dict] = []
    t = T0 + 3_600_000

    def step(rec: dict) -> None:
        more.append(rec)
        project.record_and_apply(st, [rec], None)

    # 1. another process writes file by file (its own cache, no swap)
    hook_rec = lease("old", mac_of(0), _ip(0), t, "renamed")
    more.append(hook_rec)
    _hook(st, hook_rec)
    step(poll(rng, _ip(0), t + 1000, kind=1, mac=mac_of(0)))
    # 2. a writer stopped half way through a shadow: values and miner.json changed, stray file
    shadow = live / "miners" / f".{mac_of(1)}.alt"
    (shadow / "miner.json").write_text('{"mac": "x"}\n')
    (shadow / "hashrate").write_text("999.99\n")
    (shadow / "stray").write_text("left over\n")
    step(poll(rng, _ip(1), t + 2000, kind=2, mac=mac_of(1)))
    step(poll(rng, _ip(1), t + 3000, kind=3, mac=mac_of(1)))
    # 3. the shadow removed by hand
    for p in (live / "miners" / f".{mac_of(2)}.alt").iterdir():
        p.unlink()
    (live / "miners" / f".{mac_of(2)}.alt").rmdir()
    step(poll_fail(_ip(2), t + 4000, mac=mac_of(2)))
    step(poll(rng, _ip(2), t + 5000, kind=4, mac=mac_of(2)))
    for i in range(3):
        _consistent(live / "miners" / mac_of(i))
    assert not (live / "miners" / mac_of(1) / "stray").exists()
    assert compare.diff(compare.snapshot(st), _per_file_reference(tmp_path / "ref", recs + more)) == []


def test_removed_miner_takes_its_shadow_along(tmp_path):
    assert project.use_exchange()
    st = str(tmp_path)
    inv = {"cmd": "inventory", "created_at_ms": str(T0), "mac": mac_of(7), "action": "set", "name": "r1-p1"}
    project.apply(st, inv)
    project.apply(st, dict(inv, created_at_ms=str(T0 + 1000), rack="R1"))
    project.apply(st, dict(inv, created_at_ms=str(T0 + 2000), rack="R2"))
    assert os.path.isdir(tmp_path / "miners" / f".{mac_of(7)}.alt")
    project.apply(st, dict(inv, created_at_ms=str(T0 + 3000), action="remove"))
    assert os.listdir(tmp_path / "miners") == []


def _hook(st: str, rec: dict) -> None:
    """Apply ``rec`` as the lease hook does: another process (own cache), file by file."""
    sites = dict(project._SITES)
    saved = project._swapdir, project._exchange
    project._swapdir = project._exchange = None
    project.forget_cache()
    try:
        project.record_and_apply(st, [rec], None, swap=False)
    finally:
        project._swapdir, project._exchange = saved
        project._SITES.clear()
        project._SITES.update(sites)


def _inodes(d: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_nlink) for p in d.iterdir()}


def test_unchanged_values_are_shared_with_the_shadow_and_changed_ones_are_not(tmp_path):
    """The shadow holds a hard link to each value the live folder has unchanged (one inode,
    one data block for both: make, model, pool, MAC...), its own file for each value that
    changed at the last update; both folders read right."""
    assert project.use_exchange()
    st = str(tmp_path)
    rng = random.Random(4)
    mac = mac_of(1)
    recs = [lease("add", mac, _ip(1), T0, "m1")]
    for c in range(1, 5):
        r = poll(rng, _ip(1), T0 + 60_000 * c, kind=1, mac=mac)
        r["miner"]["nominal_ths"] = 95.0
        recs.append(r)
    for rec in recs:
        project.record_and_apply(st, [rec], None)
    live = tmp_path / "miners" / mac
    alt = tmp_path / "miners" / f".{mac}.alt"
    _consistent(live)
    _consistent(alt)  # the shadow holds the previous update, whole
    li, ai = _inodes(live), _inodes(alt)
    for k in ("mac", "make", "model", "firmware", "nominal", "first_seen", "ip", "hostname"):
        assert li[k][0] == ai[k][0] and li[k][1] == 2, k
    for k in ("miner.json", "last_poll", "last_seen", "uptime"):
        assert li[k][0] != ai[k][0] and li[k][1] == 1 and ai[k][1] == 1, k
    # the shadow's own files (its disk use): every value that differs, and no more than
    # the values that changed at some update (a file written in place stays its own)
    lv, av = (json.loads((d / "miner.json").read_text()) for d in (live, alt))
    own = {k for k, (ino, _n) in ai.items() if li.get(k, (None,))[0] != ino}
    assert {k for k in av if lv.get(k) != av[k]} | {"miner.json"} <= own
    assert len(own) < len(ai)


def test_a_shared_value_is_never_written_in_place(tmp_path):
    """The hook (file by file) reuses a replaced file as its next temporary file, and the
    swap path reuses the shadow's files: neither may write into an inode the other folder
    still shows. ``lease_expires`` is shared (polls do not change it); the hook renews the
    lease three times (X+100, X+200, X): the second write goes through the temporary that
    is the shared inode, the third brings the live value back to what the poller's record of
    the shadow says, so the poll that follows does not rewrite it."""
    assert project.use_exchange()
    st = str(tmp_path)
    rng = random.Random(6)
    mac = mac_of(2)
    t = T0
    recs = [lease("add", mac, _ip(2), t, "m2")]
    for c in range(1, 4):
        recs.append(poll(rng, _ip(2), t + 60_000 * c, kind=2, mac=mac))
    for rec in recs:
        project.record_and_apply(st, [rec], None)
    x = t // 1000 + 3600
    more = [
        lease("old", mac, _ip(2), t + 300_000, "m2", expires=x + 100),
        lease("old", mac, _ip(2), t + 301_000, "m2", expires=x + 200),
        lease("old", mac, _ip(2), t + 302_000, "m2", expires=x),
        lease("del", mac, _ip(2), t + 303_000, "m2"),
        lease("add", mac, _ip(2), t + 304_000, "m2", expires=x),
    ]
    for rec in more:
        _hook(st, rec)
        _consistent(tmp_path / "miners" / mac)
    for c in range(4):
        rec = poll(rng, _ip(2), t + 400_000 + 60_000 * c, kind=2, mac=mac)
        more.append(rec)
        project.record_and_apply(st, [rec], None)
        _consistent(tmp_path / "miners" / mac)
    assert compare.diff(compare.snapshot(st), _per_file_reference(tmp_path / "ref", recs + more)) == []


def test_interleaved_hook_and_poller_equal_the_reference(tmp_path):
    """Random interleaving of the hook's file-by-file writes and the poller's swaps over
    shared values: every step leaves each live folder consistent, the end equals a replay."""
    assert project.use_exchange()
    st = str(tmp_path / "live")
    rng = random.Random(11)
    done: list[dict] = []
    for step in range(160):
        i = rng.randrange(3)
        t = T0 + 1000 * step
        r = rng.random()
        if r < 0.3:
            action = rng.choice(["add", "old", "old", "del"])
            rec = lease(action, mac_of(i), _ip(i), t, rng.choice([f"m{i}", "x", None]))
            _hook(st, rec)
        else:
            if r < 0.9:
                rec = poll(rng, _ip(i), t, kind=i + (step // 40), mac=mac_of(i))
            else:
                rec = poll_fail(_ip(i), t, mac=mac_of(i))
            project.record_and_apply(st, [rec], None)
        done.append(rec)
        _consistent(tmp_path / "live" / "miners" / mac_of(i))
    assert compare.diff(compare.snapshot(st), _per_file_reference(tmp_path / "ref", done)) == []


def test_miner_folders_are_spread_by_the_allocator(tmp_path):
    """``miners/`` carries ext4's top-of-hierarchy flag (chattr +T), so each miner folder
    gets a block group with room (docs/state.md); where the filesystem has no such flag the
    writer goes on without it."""
    probe = tmp_path / "probe"
    probe.mkdir()
    if not files.spread_folders(str(probe)):
        pytest.skip("this filesystem does not take FS_TOPDIR_FL")
    project.apply(str(tmp_path / "st"), lease("add", mac_of(1), _ip(1), T0, "m1"))
    import fcntl

    fd = os.open(tmp_path / "st" / "miners", os.O_RDONLY)
    try:
        flags = int.from_bytes(fcntl.ioctl(fd, files.GETFLAGS, bytes(4)), "little")
    finally:
        os.close(fd)
    assert flags & files.TOPDIR_FL
    assert files.spread_folders(str(tmp_path / "missing")) is False
    (tmp_path / "file").write_text("x")
    assert files.spread_folders(str(tmp_path / "file")) is False
