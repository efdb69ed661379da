"""Power loss, for real: ``kill -9`` the lease hook (as dnsmasq runs it), the poller (against
simulated miners) and a ``minectl`` action at random moments, many times; after each kill the
site must be consistent (tests/powerloss.py, docs/security.md): the log parses (only torn
records are bad), no half files, and the rebuild from the log equals the live directory.

Bounded here (a few hundred kills); ``./dev chaos`` runs the same with ``MINECTL_CHAOS_SCALE``
(default there 10: thousands of kills) and prints the figures.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time

import pytest

from minectl_py import hook_launcher
from minectl_py.events import record
from minectl_py.events.writer import EventWriter
from minectl_py.state import project
from tests.conftest import ROOT
from tests.powerloss import Tmpfs, check_site, journal_pending, read_log
from tests.simfleet import start_fleet

pytestmark = pytest.mark.integration

SCALE = float(os.environ.get("MINECTL_CHAOS_SCALE", "1"))
SEED = int(os.environ.get("MINECTL_CHAOS_SEED", "76"))
MINERS = 24
HOSTILE = ["../../etc/passwd", "a;rm -rf /", "\x1b]0;pwned\x07x", "$(reboot)", "antMiner", "r1-s1-p1", ".", "-n"]


def _figures(name: str, fig: dict[str, object]) -> None:
    line = f"powerloss {name}: " + ", ".join(f"{k} {v}" for k, v in fig.items())
    print(line)
    out = os.environ.get("MINECTL_CHAOS_REPORT")
    if out:
        with open(out, "a") as f:
            f.write(line + "\n")


def _lease_args(rng: random.Random) -> tuple[list[str], dict[str, str]]:
    i = rng.randrange(MINERS)
    ip = f"10.76.0.{rng.choice([i + 1, rng.randrange(1, 8)])}"  # addresses move and collide
    action = rng.choice(["add", "old", "old", "del"])
    args = [action, f"02:76:00:00:00:{i:02x}", ip]
    if rng.random() < 0.8:
        args.append(rng.choice([f"miner{i}", *HOSTILE]))
    env = {"PATH": "/usr/bin:/bin", "DNSMASQ_LEASE_EXPIRES": str(1_800_000_000 + rng.randrange(9999))}
    if rng.random() < 0.3:
        env["DNSMASQ_VENDOR_CLASS"] = rng.choice(["bmminer", "\x1b[31mred", "x" * 3000])
    return args, env


def test_kill_the_lease_hook_at_random(tmp_path):
    rng = random.Random(SEED)
    with Tmpfs(tmp_path / "fs", "128m") as fs:
        hook, state, log = fs / "lease-hook", fs / "state", fs / "ev" / "events.log"
        hook_launcher.write(
            str(hook), hook_launcher.render(root=str(ROOT), events=str(log), state_dir=str(state), nodename="ctl")
        )
        times = []
        for _ in range(5):  # how long one run takes on this machine now
            args, env = _lease_args(rng)
            t = time.monotonic()
            subprocess.run([str(hook), *args], env=env, check=True)
            times.append(time.monotonic() - t)
        # The kill falls uniformly in [0, span]; span adapts so that about half the runs are
        # killed whatever the machine's load (a finished run shrinks it, a killed one grows it).
        span = statistics.median(times) * 1.3
        runs, killed, pending, torn, done = int(150 * SCALE), 0, 0, 0, len(times)
        for _ in range(runs):
            args, env = _lease_args(rng)
            p = subprocess.Popen([str(hook), *args], env=env, stderr=subprocess.PIPE)
            time.sleep(rng.uniform(0, span))
            p.kill()
            _, err = p.communicate()
            if p.returncode == -9:
                killed += 1
                span *= 1.05
            else:
                assert p.returncode == 0, err
                done += 1
                span *= 0.9
            pending += journal_pending(state)
            fig = check_site(state, log)
            torn = fig["bad"]
        recs, _ = read_log(log)
        assert killed >= runs // 4, f"only {killed} of {runs} runs were killed"
        assert len(recs) >= done  # every run that finished left its record
        _figures(
            "lease hook",
            {"runs": runs, "killed": killed, "mid-chunk (recovered)": pending, "torn": torn, "records": len(recs)},
        )


def _fleet(n: int):
    """``n`` miners of every kind, each seventh answering garbage, on a free 127.76.<100-199>.0/24."""
    kinds = ["s19", "s9", "btminer", "bosminer", "cgminer"]
    personalities = [kinds[i % len(kinds)] + (":garbage" if i % 7 == 0 else "") for i in range(n)]
    return start_fleet(personalities, block="127.76", thirds=(100, 200), restart_seconds=3.0, reboot_seconds=10.0)


@pytest.fixture
def site(tmp_path):
    fleet = _fleet(MINERS)
    try:
        with Tmpfs(tmp_path / "fs", "128m") as fs:
            state, log = fs / "state", fs / "ev" / "events.log"
            leases = [
                record.make("lease", "ctl", {"action": "add", "mac": fleet.show(ip)["mac"], "ip": ip})
                for ip in fleet.addresses
            ]
            project.forget_cache()
            with EventWriter(str(log)) as w:
                project.record_and_apply(str(state), leases, w.append_many)
            env = {**os.environ, "PYTHONPATH": str(ROOT), "MINECTL_EVENTS": str(log), "MINECTL_STATE_DIR": str(state)}
            env["MINECTL_CONFIG_DIR"] = str(fs / "etc")
            (fs / "etc").mkdir()
            (fs / "etc" / "credentials.yml").write_text("default: {}\n")
            (fs / "etc" / "credentials.yml").chmod(0o600)
            yield fleet, state, log, env
    finally:
        fleet.stop()


def _kill_runs(argv_of, env, state, log, runs, lo, hi, rng) -> dict[str, int]:
    killed = pending = 0
    for i in range(runs):
        argv = [sys.executable, "-m", "minectl_py", *argv_of(i)]
        p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(lo, hi))
        p.kill()
        p.wait()
        killed += p.returncode == -9
        pending += journal_pending(state)
        check_site(state, log)
    recs, stats = read_log(log)
    return {"runs": runs, "killed": killed, "mid-chunk (recovered)": pending, "torn": stats.bad, "records": len(recs)}


def test_kill_the_poller_at_random(site):
    _, state, log, env = site
    rng = random.Random(SEED + 1)
    poll = ["poll", "--interval", "0.2", "--jitter", "0", "--connect-timeout", "0.5", "--timeout", "2"]
    fig = _kill_runs(
        lambda i: [*poll, "--batch", str(rng.choice([1, 5, 64, 500]))], env, state, log, int(15 * SCALE), 0.3, 3.5, rng
    )
    polls = sum(1 for r in read_log(log)[0] if r.get("cmd") in ("poll", "poll_fail"))
    assert fig["killed"] >= fig["runs"] * 0.8 and polls > MINERS
    _figures("poller", {**fig, "poll records": polls})


def test_kill_an_action_at_random(site):
    _, state, log, env = site
    rng = random.Random(SEED + 2)
    act = ["pools", "show", "all", "--yes", "-j", "8", "--timeout", "1"]
    fig = _kill_runs(lambda i: act, env, state, log, int(10 * SCALE), 0.3, 3.0, rng)
    actions = sum(1 for r in read_log(log)[0] if r.get("cmd") == "action")
    assert actions > 0
    _figures("action", {**fig, "action records": actions})


def _inventory_csvs(fs, fleet) -> list[str]:
    """Three versions of a site CSV (600 miners, some of them the fleet's): names, racks and
    models change between them and rows come and go, so every apply has chunks to write."""
    macs = [fleet.show(ip)["mac"] for ip in fleet.addresses] + [
        f"02:77:00:00:{i >> 8:02x}:{i & 255:02x}" for i in range(600)
    ]
    paths = []
    for v in range(3):
        rows = ["mac,name,rack,shelf,position,model"]
        for i, mac in enumerate(macs):
            if (i + v) % 5 == 0:
                continue  # not in this version: removed when it is applied
            rows.append(
                f"{mac},r{(i + v) % 9}-s{v}-p{i},R{(i + v) % 9},{v},{i},{['Antminer S19', 'M30S'][(i + v) % 2]}"
            )
        path = fs / f"site-{v}.csv"
        path.write_text("\n".join(rows) + "\n")
        paths.append(str(path))
    return paths


def test_kill_inventory_apply_at_random(site):
    """``minectl inventory apply`` (what the minectl role runs when the site CSV changes) killed
    while it records and projects hundreds of inventory records (several chunks)."""
    fleet, state, log, env = site
    rng = random.Random(SEED + 3)
    csvs = _inventory_csvs(state.parent, fleet)

    def apply(path: str) -> float:
        t = time.monotonic()
        r = subprocess.run(
            [sys.executable, "-m", "minectl_py", "inventory", "apply", "--no-reservations", path],
            env=env,
            capture_output=True,
        )
        assert r.returncode == 0, r.stderr
        return time.monotonic() - t

    # The kill falls uniformly in [0, span]; span starts at 1.3x one run's time here and adapts
    # so that about half the runs are killed whatever the machine's speed (as for the hook).
    span = apply(csvs[2]) * 1.3
    runs, killed, pending = int(12 * SCALE), 0, 0
    for i in range(runs):
        argv = [sys.executable, "-m", "minectl_py", "inventory", "apply", "--no-reservations", csvs[i % 3]]
        p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0, span))
        p.kill()
        _, err = p.communicate()
        if p.returncode == -9:
            killed += 1
            span *= 1.05
        else:
            assert p.returncode == 0, err
            span *= 0.9
        pending += journal_pending(state)
        check_site(state, log)
    fig = {"runs": runs, "killed": killed, "mid-chunk (recovered)": pending, "torn": read_log(log)[1].bad}
    inv = sum(1 for r in read_log(log)[0] if r.get("cmd") == "inventory")
    assert killed >= runs // 4 and inv > 0, fig
    apply(csvs[0])  # a run that is not killed: the state is then the last CSV's
    check_site(state, log)
    names = {p.name for p in (state / "by-name").iterdir() if not p.name.startswith(".")}
    assert {f"r{i % 9}-s0-p{i}" for i in range(1, 40) if i % 5} <= names
    _figures("inventory apply", {**fig, "inventory records": inv})


def test_kill_the_rules_service_at_random(site):
    """``minectl rules run`` killed at random moments: the log stays consistent and a restarted
    service does not raise an alert that is already open (its state is a replay of the log)."""
    _, state, log, env = site
    rng = random.Random(SEED + 4)
    rules = state.parent / "rules.yml"
    rules.write_text(
        "version: 1\nlimits:\n  storm_percent: 100\n  storm_min: 1000\nrules:\n"
        "  - name: new-miner\n    when: state == new\n    for: 0s\n    severity: info\n"
    )
    run = ["rules", "run", "--rules", str(rules), "--interval", "0.2s"]
    fig = _kill_runs(lambda i: run, env, state, log, int(10 * SCALE), 0.5, 3.0, rng)
    # one more cycle, not killed (on a slow machine every killed run may have died starting)
    once = subprocess.run([sys.executable, "-m", "minectl_py", *run, "--once"], env=env, capture_output=True)
    assert once.returncode == 0, once.stderr
    check_site(state, log)
    alerts = [r for r in read_log(log)[0] if r.get("cmd") == "alert"]
    raised = [a for a in alerts if a.get("state") == "raised"]
    assert raised, fig
    open_: dict[tuple, int] = {}
    for a in alerts:
        key = (a.get("rule"), a.get("kind"), a.get("mac"))
        open_[key] = open_.get(key, 0) + (1 if a.get("state") == "raised" else -1)
        assert open_[key] <= 1, f"{key} raised again while open: restarts re-fired it"
    _figures("rules service", {**fig, "alerts raised": len(raised)})
