"""``minectl status/show/summary/map`` and the action safety rails, run as an admin would:
in a subprocess, and in a pseudo-terminal where colour, prompts and progress matter."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests import admin_site
from tests.admin_pty import run_in_pty
from tests.conftest import run_minectl


@pytest.fixture
def adm(tmp_path: Path) -> tuple[dict[str, str], admin_site.Site]:
    state = tmp_path / "state"
    site = admin_site.generate(120, ip_base="127.74", ip_start=250 * 200, hostile=True)
    admin_site.apply(str(state), site)
    (tmp_path / "events").mkdir()
    (tmp_path / "etc").mkdir()
    env = {
        "MINECTL_STATE_DIR": str(state),
        "MINECTL_EVENTS": str(tmp_path / "events" / "events.log"),
        "MINECTL_CONFIG_DIR": str(tmp_path / "etc"),
        "MINECTL_NODENAME": "test-controller",
    }
    return env, site


def js(env, *args):
    r = run_minectl(*args, "--json", env=env)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)


def test_status_lists_every_miner_with_what_went_in(adm):
    env, site = adm
    rows = js(env, "status")
    assert len(rows) == len(site.miners)
    by_mac = {r["mac"]: r for r in rows}
    for m in site.miners:
        r = by_mac[m.mac]
        assert r["ip"] == m.ip and r["name"] == m.name and r["rack"] == m.rack
        if m.kind in ("ok", "slow", "hot"):
            assert r["state"] == "online"
            assert r["hashrate"] == pytest.approx(m.hashrate, abs=0.01)
            assert r["hashrate_pct"] == pytest.approx(100 * m.hashrate / m.nominal, abs=0.1)
        want = {"ok": "ok", "slow": None, "hot": "bad", "failing": "bad", "offline": "offline", "new": "new"}[m.kind]
        if want:
            assert r["health"] == want, (m, r)
    # default order: rack, shelf, position in natural order
    assert [r["name"] for r in rows[:3]] == ["r1-s1-p1", "r1-s1-p2", "r1-s1-p3"]


def test_status_filters_sort_and_exit_codes(adm):
    env, site = adm
    rows = js(env, "status", "--where", "hashrate_pct<80 and state=online", "--sort", "-temp")
    slow = {m.mac for m in site.by_kind("slow")}
    assert {r["mac"] for r in rows} == slow
    temps = [r["temp_max"] for r in rows]
    assert temps == sorted(temps, reverse=True)
    rows = js(env, "ls", "--rack", "R2", "--state", "offline")
    assert {r["mac"] for r in rows} == {m.mac for m in site.by_kind("offline") if m.rack == "R2"}
    r = run_minectl("status", "no-such-miner", env=env)
    assert r.returncode == 3 and b"matches no miner" in r.stderr
    r = run_minectl("status", "--where", "temp<<3", env=env)
    assert r.returncode == 2 and b"column 6" in r.stderr
    r = run_minectl("status", "--sort", "colour", env=env)
    assert r.returncode == 2 and b"unknown field" in r.stderr


def test_status_table_escapes_miner_strings(adm):
    env, _ = adm
    r = run_minectl("status", "--columns", "name,firmware,pool", "--color", "always", env=env)
    assert r.returncode == 0
    text = r.stdout.decode()
    assert "\x1b]0" not in text and "\x1b[2J" not in text and "\u202e" not in text
    # the state projection cleans miner strings before they are stored (docs/state.md)
    assert "bmminer 1.0.0" in text and "[31m  " not in text
    r = run_minectl("show", "r1-s1-p1", "--events", "0", env=env)
    text = r.stdout.decode()
    assert "pool.example:3333" in text and "pwned" not in text and "\x1b" not in text
    # colours appear only as our own SGR codes
    import re

    assert set(re.findall(r"\x1b\[[0-9;]*m", text)) <= {
        "\x1b[0m",
        "\x1b[1m",
        "\x1b[31;1m",
        "\x1b[33m",
        "\x1b[90m",
        "\x1b[36m",
    }


def test_summary_and_map_and_show(adm):
    env, site = adm
    s = js(env, "summary")
    assert s["miners"] == 120
    online = [m for m in site.miners if m.kind in ("ok", "slow", "hot")]
    assert s["hashrate_ths"] == pytest.approx(sum(m.hashrate for m in online), abs=0.1)
    assert s["states"]["offline"] == len(site.by_kind("offline"))
    assert s["states"]["new"] == len(site.by_kind("new"))
    g = js(env, "map", "--by", "temp")
    cells = {(r["rack"], c["shelf"], c["position"]): c for r in g["racks"] for c in r["cells"]}
    for m in site.by_kind("hot"):
        assert cells[(m.rack, m.shelf, m.position)]["level"] == "bad"
    for m in site.by_kind("offline"):
        assert cells[(m.rack, m.shelf, m.position)]["text"] == "--"
    one = site.by_kind("hot")[0]
    d = js(env, "show", one.name)
    assert d["miner"]["mac"] == one.mac and d["health"] == "bad"
    assert any("temperature" in r for r in d["reasons"])
    r = run_minectl("show", "r1-*", env=env)
    assert r.returncode == 2 and b"matches 50 miners" in r.stderr


def test_show_lists_recent_events_of_that_miner(adm):
    env, site = adm
    from minectl_py.events.writer import EventWriter

    w = EventWriter(env["MINECTL_EVENTS"], fsync=False, rotate=False)
    w.append_many(site.records)
    w.close()
    m = site.by_kind("offline")[0]
    d = js(env, "show", m.ip, "--events", "10")
    assert [e["cmd"] for e in d["events"]] == ["inventory", "lease", "poll", "lease"]
    assert all(e.get("mac") == m.mac for e in d["events"])
    r = run_minectl("show", m.name, env=env)
    assert b"lease del" in r.stdout and b"Recent events (4)" in r.stdout


def test_pty_status_colours_by_health_and_counts(adm):
    env, site = adm
    code, screen = run_in_pty(["status", "--columns", "name,hashrate_pct,temp_max,state"], env)
    assert code == 0
    hot = site.by_kind("hot")[0].name
    line = next(x for x in screen.splitlines() if hot in x)
    assert line.startswith("\x1b[31;1m")  # red: bad
    offline = site.by_kind("offline")[0].name
    assert next(x for x in screen.splitlines() if offline in x).startswith("\x1b[90m")  # grey
    assert "120 miners:" in screen
    code, plain = run_in_pty(["status"], {**env, "NO_COLOR": "1"})
    assert code == 0 and "\x1b[3" not in plain


def test_pty_map_draws_racks_side_by_side(adm):
    env, _ = adm
    code, screen = run_in_pty(["map"], env, cols=120)
    assert code == 0
    first = screen.splitlines()[0]
    assert "R1" in first and "R2" in first  # two racks fit in 120 columns
    assert "\x1b[32m" in screen and "cells: hashrate % of nominal" in screen


def test_action_needs_targets_and_refuses_without_terminal(adm):
    env, _ = adm
    r = run_minectl("reboot", env=env)
    assert r.returncode == 2 and b"name the miners" in r.stderr
    r = run_minectl("reboot", "--rack", "R1", "--dry-run", env=env)
    assert r.returncode == 0 and b"would act on 50 miners" in r.stdout and b"http reboot then ssh run" in r.stdout
    _creds(env)
    r = run_minectl("reboot", "--rack", "R1", env=env)
    assert r.returncode == 2 and b"--yes" in r.stderr
    assert not os.path.exists(env["MINECTL_EVENTS"])  # nothing done, nothing recorded


def _creds(
    env,
    text="default:\n  ssh: {user: root, password: pw}\n  api: {password: pw}\nports: {api: 4028, http: 80, ssh: 22}\n",
    mode=0o600,
):
    p = Path(env["MINECTL_CONFIG_DIR"]) / "credentials.yml"
    p.write_text(text)
    os.chmod(p, mode)
    return p


def test_credentials_file_must_be_private(adm):
    env, _ = adm
    _creds(env, mode=0o640)
    r = run_minectl("restart", "r1-s1-p1", env=env)
    assert r.returncode == 4 and b"readable by group or others" in r.stderr and b"chmod 600" in r.stderr


def test_pty_confirmation_no_then_yes_with_progress(adm):
    env, site = adm
    _creds(env)
    args = ["restart", "--rack", "R3", "--timeout", "1", "--retries", "0"]
    code, screen = run_in_pty(args, env, answers={"[y/N]": "n\n"})
    assert code == 2 and "restart 20 miners (R3: 20)? [y/N]" in screen and "not confirmed" in screen
    assert not os.path.exists(env["MINECTL_EVENTS"])
    code, screen = run_in_pty(args, env, answers={"[y/N]": "y\n"})
    # nothing listens on 127.74.200.x: every miner is unreachable, reported and audited
    assert code == 1, screen
    assert "restart: 0 of 20 ok; 20 unreachable" in screen
    assert "[" in screen and "20/20" in screen  # the progress bar was drawn on the terminal
    recs = [json.loads(x.lstrip("\x1e")) for x in Path(env["MINECTL_EVENTS"]).read_text().split("\n") if x]
    assert len(recs) == 20 and {r["result"] for r in recs} == {"unreachable"}
    assert {r["target"] for r in recs} == {m.ip for m in site.miners if m.rack == "R3"}
    assert all(r["user"] == "root" and r["action"] == "restart" for r in recs)
    assert len({r["batch"] for r in recs}) == 1
