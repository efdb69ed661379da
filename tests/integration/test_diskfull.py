"""Disk full: the lease hook and the poller on a small tmpfs that is filled up, at several
levels of "almost full". Each must fail loudly (exit code, a stderr line naming the path and
the reason), leave nothing torn (the log parses with no bad record; every state file is a
whole value), and recover once space returns (the next writes land; the rebuild from the log
equals the live directory)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minectl_py import hook_launcher
from minectl_py.events import record
from minectl_py.events.writer import EventWriter
from minectl_py.state import project
from tests.conftest import ROOT
from tests.integration.test_powerloss import _fleet
from tests.powerloss import Tmpfs, check_site, half_files, journal_pending, read_log

pytestmark = pytest.mark.integration

#: Bytes left free when a writer runs: none, less than a page, a few pages, a few dozen, and
#: room. Measured on this fixture: a hook call takes ~36 KiB and a poll of the 12 miners ~60 KiB
#: net (up to ~135 KiB when a new miner's first shadow folder is made) plus its transient
#: temporary files and journal, so only the last level (1 MiB) is sure to be room: 128 KiB was
#: enough on one machine and not on another (CI failed on it).
LEFT = [0, 1000, 2 * 4096, 4 * 4096, 6 * 4096, 10 * 4096, 16 * 4096, 32 * 4096, 256 * 4096]


def fill(fs: Path, leave: int) -> Path:
    """Fill ``fs`` up to ``leave`` bytes of free space with one file."""
    filler = fs / "filler"
    with open(filler, "ab") as f:
        block = b"\0" * (1 << 16)
        while True:
            st = os.statvfs(fs)
            free = st.f_bavail * st.f_frsize
            if free <= leave:
                break
            try:
                f.write(block[: max(4096, min(len(block), free - leave))])
                f.flush()
            except OSError as e:
                assert e.errno == errno.ENOSPC
                break
    return filler


@pytest.fixture
def site(tmp_path):
    fleet = _fleet(12)
    try:
        with Tmpfs(tmp_path / "fs", "24m") as fs:  # room for the rebuild check beside the site
            state, log = fs / "state", fs / "ev" / "events.log"
            hook = tmp_path / "lease-hook"  # the program itself is not on the full disk
            hook_launcher.write(
                str(hook), hook_launcher.render(root=str(ROOT), events=str(log), state_dir=str(state), nodename="c")
            )
            project.forget_cache()
            leases = [
                record.make("lease", "c", {"action": "add", "mac": fleet.show(ip)["mac"], "ip": ip, "hostname": "m"})
                for ip in fleet.addresses
            ]
            with EventWriter(str(log)) as w:
                project.record_and_apply(str(state), leases, w.append_many)
            env = {**os.environ, "PYTHONPATH": str(ROOT), "MINECTL_EVENTS": str(log), "MINECTL_STATE_DIR": str(state)}
            yield fs, hook, state, log, env
    finally:
        fleet.stop()


def _hook(hook: Path, i: int) -> subprocess.CompletedProcess[str]:
    args = ["add", f"02:77:00:00:{i // 256:02x}:{i % 256:02x}", f"10.77.{i // 250}.{i % 250 + 1}", f"new-{i}"]
    env = {"PATH": "/usr/bin:/bin", "DNSMASQ_VENDOR_CLASS": "bmminer" * 50}
    return subprocess.run([str(hook), *args], env=env, capture_output=True, text=True, timeout=60)


def _poll(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "minectl_py", "poll", "--once", "--connect-timeout", "0.5", "--timeout", "2"]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


def _whole(state: Path, log: Path) -> int:
    """What must hold even while the disk is full: no torn record, every file a whole value."""
    recs, stats = read_log(log)
    assert stats.bad == 0, stats.samples
    problems = [p for p in half_files(state) if "disagree" not in p and "is not miner.json" not in p]
    assert not problems, problems
    for d in (state / "miners").iterdir():
        if d.name.startswith("."):  # a new miner's folder being written: scratch, never read
            continue
        for f in d.iterdir():
            if not f.name.startswith(".") and f.is_file():
                data = f.read_bytes()
                assert data.endswith(b"\n") and data.count(b"\n") == 1, f"{f}: {data[:60]!r}"
    return len(recs)


def test_disk_full_fails_loudly_and_recovers(site):
    fs, hook, state, log, env = site
    figures = []
    first_hook_error = ""
    i = 0
    for leave in LEFT:
        before = len(read_log(log)[0])
        filler = fill(fs, leave)
        i += 1
        h = _hook(hook, i)
        p = _poll(env)
        failed = []
        if h.returncode != 0:
            assert h.returncode == 1, h.stderr
            assert "No space left on device" in h.stderr and str(fs) in h.stderr, h.stderr
            failed.append("hook")
            first_hook_error = first_hook_error or h.stderr.strip()
        if p.returncode == 4:
            assert "No space left on device" in p.stderr and str(fs) in p.stderr, p.stderr
            failed.append("poller")
        else:
            assert p.returncode in (0, 1), p.stderr
        kept = _whole(state, log)
        half = journal_pending(state)  # the log took the record, the state directory did not
        assert kept >= before  # nothing stored was lost
        filler.unlink()  # space returns
        i += 1
        h2 = _hook(hook, i)
        assert h2.returncode == 0, h2.stderr
        p2 = _poll(env)
        assert p2.returncode in (0, 1), p2.stderr  # the garbage-answering miners fail their polls
        fig = check_site(state, log)
        assert fig["records"] > kept
        figures.append(
            f"{leave} B free: {'+'.join(failed) or 'none'} failed, {kept} records kept"
            + (", state left to the journal" if half else "")
        )
    # with no space at all both must have failed; with 1 MiB of room both succeed
    assert figures[0].split(": ")[1].startswith("hook+poller failed"), figures
    assert figures[-1].split(": ")[1].startswith("none failed"), figures
    print("disk full: " + "; ".join(figures))
    print("hook said: " + first_hook_error)
