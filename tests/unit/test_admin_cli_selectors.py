"""The selectors every command shares, end to end through ``minectl``; credentials never on
the command line; the audit trail naming the person behind sudo."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import run_minectl
from tests.unit.test_admin_cli import _creds, adm, js  # noqa: F401  (adm is a fixture)


def macs(rows):
    return sorted(r["mac"] for r in rows)


def test_every_selector_through_the_cli(adm):  # noqa: F811
    env, site = adm
    ms = site.miners
    ip = {m.ip: m for m in ms}
    first, fifth = ms[0].ip, ms[4].ip
    assert macs(js(env, "status", first)) == [ms[0].mac]
    short_range = f"{first}-{fifth.rsplit('.', 1)[1]}"
    assert macs(js(env, "status", short_range)) == sorted(m.mac for m in ms[:5])
    assert macs(js(env, "status", f"{first}-{fifth}")) == sorted(m.mac for m in ms[:5])
    net = first.rsplit(".", 1)[0] + ".0/24"
    assert macs(js(env, "status", net)) == sorted(m.mac for m in ms if m.ip.startswith(net[:-4]))
    assert macs(js(env, "status", ms[7].mac.upper())) == [ms[7].mac]
    assert macs(js(env, "status", "r2-s1-*")) == sorted(m.mac for m in ms if m.name.startswith("r2-s1-"))
    assert macs(js(env, "status", "rack:R3", "--rack", "R*")) == sorted(m.mac for m in ms if m.rack == "R3")
    # targets add up, options narrow
    rows = js(env, "status", "rack:R1", "rack:R2", "--where", "hashrate_pct<80 and state=online")
    want = [m for m in site.by_kind("slow") if m.rack in ("R1", "R2")]
    assert macs(rows) == sorted(m.mac for m in want) and want
    rows = js(env, "status", "--where", "temp>=95 or state=offline", "--sort", "-temp")
    assert macs(rows) == sorted(m.mac for m in ms if m.kind in ("hot", "offline") and ip[m.ip])


def test_summary_and_map_take_the_same_selectors(adm):  # noqa: F811
    env, site = adm
    s = js(env, "summary", "--rack", "R2")
    assert s["miners"] == sum(1 for m in site.miners if m.rack == "R2")
    g = js(env, "map", "rack:R2")
    assert [r["rack"] for r in g["racks"]] == ["R2"]
    r = run_minectl("map", "rack:R9", env=env)
    assert r.returncode == 3 and b"matches no miner" in r.stderr


@pytest.mark.parametrize("flag", ["--password", "--user", "--key-file", "--credentials"])
def test_no_credentials_on_the_command_line(adm, flag):  # noqa: F811
    env, _ = adm
    r = run_minectl("reboot", "r1-s1-p1", flag, "secret", "--dry-run", env=env)
    assert r.returncode == 2 and b"unrecognized arguments" in r.stderr
    for cmd in (["reboot"], ["restart"], ["locate", "on"], ["pools", "set"], ["exec"]):
        h = run_minectl(*cmd, "--help", env=env)
        assert h.returncode == 0 and b"--password" not in h.stdout and b"credentials.yml" in h.stdout


def test_audit_names_the_person_behind_sudo(adm):  # noqa: F811
    env, _ = adm
    _creds(env)
    r = run_minectl("restart", "r1-s1-p1", "--timeout", "0.5", "--retries", "0", env={**env, "SUDO_USER": "ana"})
    assert r.returncode == 1  # nothing listens there: unreachable, but audited
    (rec,) = [json.loads(x.lstrip("\x1e")) for x in Path(env["MINECTL_EVENTS"]).read_text().split("\n") if x]
    assert rec["user"] == "ana" and rec["uid"] == os.getuid() and rec["result"] == "unreachable"
