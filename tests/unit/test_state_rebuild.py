"""The state directory is a projection: replaying the log gives the live directory back."""

from __future__ import annotations

import json
import random
import subprocess

from minectl_py.events import record
from minectl_py.events.writer import EventWriter
from minectl_py.state import compare, project
from tests.conftest import ROOT, run_minectl
from tests.statefakes import lease, mac_of, poll, poll_fail

T0 = 1_790_000_000_000


def mixed_run(rng: random.Random, n_miners: int, steps: int):
    """A site's day in records: power-ons, renewals, IP moves, renames, releases, expiries,
    polls good and bad, inventory edits. Yields lists (batches, as the poller writes them)."""
    t = T0
    ips = {i: f"10.77.{i // 200}.{i % 200 + 1}" for i in range(n_miners)}
    names = {i: f"miner{i}" for i in range(n_miners)}
    up: set[int] = set()
    for _ in range(steps):
        t += rng.randrange(1, 5000)
        r = rng.random()
        i = rng.randrange(n_miners)
        mac = mac_of(i)
        if r < 0.15:
            yield [lease("add", mac, ips[i], t, names[i], vendor_class=rng.choice(["bmminer", "btminer", None]))]
            up.add(i)
        elif r < 0.25 and i in up:
            if rng.random() < 0.2:  # moves to another address (sometimes one another miner had)
                ips[i] = f"10.77.9.{rng.randrange(1, 40)}"
            if rng.random() < 0.1:
                names[i] = rng.choice(["antMiner", f"m{i}-b", "../x\x1b[1m"])
            yield [lease("old", mac, ips[i], t, names[i])]
        elif r < 0.3 and i in up:
            yield [lease("del", mac, ips[i], t, names[i])]
            up.discard(i)
        elif r < 0.33:
            inv = {"action": "set", "mac": mac, "name": f"r{i % 5}-s{i % 7}-p{i}", "rack": f"R{i % 5}"}
            if rng.random() < 0.3:
                inv = {"action": "remove", "mac": mac}
            yield [record.make("inventory", "ctl", inv, at_ms=t)]
        else:  # a poll cycle over part of the site: by IP only, as the poller does
            batch = []
            for j in sorted(rng.sample(sorted(up), min(len(up), 20))) if up else []:
                if rng.random() < 0.15:
                    batch.append(poll_fail(ips[j], t, rng.choice(["timeout", "refused", "garbage"])))
                else:
                    batch.append(poll(rng, ips[j], t, kind=j, mac=mac_of(j) if rng.random() < 0.5 else None))
            if batch:
                yield batch


def test_rebuild_equals_live_after_a_long_mixed_run(tmp_path):
    rng = random.Random(4)
    live, log = tmp_path / "live", tmp_path / "ev" / "events.log"
    project.forget_cache()
    n = 0
    with EventWriter(str(log), fsync=False, rotate=False) as w:
        for batch in mixed_run(rng, 40, 700):
            project.record_and_apply(str(live), batch, w.append_many)
            n += len(batch)
            if rng.random() < 0.02:
                project.forget_cache()  # as if another process (the hook) wrote meanwhile
    assert n > 2000
    # a few hook invocations in between, as dnsmasq would run them
    hook = [
        "/usr/bin/python3",
        "-I",
        "-S",
        "-c",
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); from minectl_py.lease_hook import main; sys.exit(main())",
    ]
    env = {"MINECTL_EVENTS": str(log), "MINECTL_STATE_DIR": str(live), "MINECTL_NODENAME": "ctl"}
    for args in (["add", mac_of(500), "10.77.50.1", "late"], ["old", mac_of(3), "10.77.0.4", "miner3"]):
        subprocess.run([*hook, *args], env=env, check=True)
    project.forget_cache()
    assert len([p for p in (live / "miners").iterdir() if not p.name.startswith(".")]) > 20
    r = run_minectl("state", "rebuild", "--events", str(log), "--into", str(tmp_path / "rebuilt"), "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["bad"] == 0 and res["records"] == n + 2
    a, b = compare.snapshot(str(live)), compare.snapshot(str(tmp_path / "rebuilt"))
    assert compare.diff(a, b) == []
    assert any(k.startswith("by-ip/") for k in a) and any(k.startswith("by-name/") for k in a)
    # verify says equal; a changed file is found
    env_state = {"MINECTL_STATE_DIR": str(live), "MINECTL_EVENTS": str(log)}
    assert run_minectl("state", "verify", env=env_state).returncode == 0
    some = next(p for p in (live / "miners").iterdir() if not p.name.startswith("."))  # not a shadow
    (some / "state").write_text("bogus\n")
    r = run_minectl("state", "verify", env=env_state)
    assert r.returncode == 1 and f"miners/{some.name}/state" in r.stdout.decode()


def test_state_cli_ls_show_and_errors(tmp_path):
    s = tmp_path / "st"
    project.forget_cache()
    recs = [lease("add", mac_of(1), "10.77.0.2", T0, "a1"), lease("add", mac_of(2), "10.77.0.3", T0)]
    project.apply_many(str(s), recs)
    env = {"MINECTL_STATE_DIR": str(s)}
    r = run_minectl("state", "ls", env=env)
    assert r.returncode == 0 and b"10.77.0.2" in r.stdout and b"a1" in r.stdout
    rows = json.loads(run_minectl("state", "ls", "--json", env=env).stdout)
    assert [m["mac"] for m in rows] == [mac_of(1), mac_of(2)]
    r = run_minectl("state", "show", "a1", env=env)
    assert r.returncode == 0 and b"10.77.0.2" in r.stdout
    assert run_minectl("state", "show", "nope", env=env).returncode == 3
    r = run_minectl("state", "rebuild", "--events", str(tmp_path / "missing.log"), "--into", str(tmp_path / "x"))
    assert r.returncode == 2 and b"missing.log" in r.stderr
    r = run_minectl("state", "rebuild", "--events", str(tmp_path / "missing.log"), "--into", str(s))
    assert r.returncode == 2
