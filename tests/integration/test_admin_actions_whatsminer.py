"""minectl actions on Whatsminers (btminer) over their token API against the simulator:
``get_token``, then each write command signed and AES-encrypted with the admin password from
the credentials file; the firmware's answers for a wrong password and a write API that is off;
the audit trail of each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import admin_sim
from tests.conftest import run_minectl
from tests.simfleet import wait_for

pytestmark = pytest.mark.integration

FLEET = ["btminer", "btminer", "btminer", "btminer"]
CREDS = "families:\n  whatsminer:\n    api: {password: admin}\n"


sim = admin_sim.fleet_fixture(FLEET, http=False, ssh=False)


@pytest.fixture
def env(sim, tmp_path):
    fleet, base = sim
    for ip in fleet.addresses:
        fleet.clear(ip)
        fleet.call(lambda ip=ip: setattr(fleet.fleet.miner(ip), "write_access", True))
    for ip in fleet.addresses:
        assert wait_for(lambda ip=ip: not fleet.show(ip)["dark"], timeout=20)
    return admin_sim.site_env(base, tmp_path, CREDS)


act = admin_sim.act


audit = admin_sim.audit


def show(fleet, name):
    return fleet.show(fleet.addresses[int(name.split("-")[1]) - 1])


def test_dry_run_names_the_token_api_commands(env):
    r = run_minectl("restart", "sim-1", "--dry-run", env=env)
    assert r.returncode == 0 and b"whatsminer" in r.stdout and b"api restart_btminer" in r.stdout


def test_reboot_and_restart_over_the_token_api(sim, env):
    fleet, _ = sim
    before = {n: (show(fleet, n)["reboots"], show(fleet, n)["restarts"]) for n in ("sim-1", "sim-2")}
    code, res = act(env, "reboot", "sim-1")
    assert code == 0, res
    assert res["sim-1"]["result"] == "ok" and res["sim-1"]["transport"] == "api"
    assert res["sim-1"]["tried"] == ["api:ok"] and "reboot" in res["sim-1"]["detail"]
    assert wait_for(lambda: show(fleet, "sim-1")["reboots"] == before["sim-1"][0] + 1)
    code, res = act(env, "restart", "sim-2")
    assert code == 0 and res["sim-2"]["tried"] == ["api:ok"]
    assert wait_for(lambda: show(fleet, "sim-2")["restarts"] == before["sim-2"][1] + 1)
    assert show(fleet, "sim-2")["reboots"] == before["sim-2"][0]  # a restart is not a reboot
    recs = audit(env)
    assert [(r["action"], r["name"], r["result"], r["transport"], r["family"]) for r in recs] == [
        ("reboot", "sim-1", "ok", "api", "whatsminer"),
        ("restart", "sim-2", "ok", "api", "whatsminer"),
    ]
    assert "admin" not in json.dumps(recs)  # the password is never recorded


def test_locate_on_and_off(sim, env):
    fleet, _ = sim
    code, res = act(env, "locate", "on", "sim-3")
    assert code == 0 and res["sim-3"]["transport"] == "api"
    assert show(fleet, "sim-3")["led"] is True
    code, res = act(env, "locate", "off", "sim-3")
    assert code == 0 and show(fleet, "sim-3")["led"] is False


def test_pools_set_show_and_switch(sim, env):
    fleet, _ = sim
    code, res = act(
        env,
        "pools",
        "set",
        "sim-4",
        "--pool",
        "stratum+tcp://wm.example:3333,acct.{name},secretpw",
        "--pool",
        "stratum+tcp://wm-backup.example:3333,acct.{name}",
    )
    assert code == 0, res
    pools = show(fleet, "sim-4")["pools"]
    assert [(p["url"], p["user"]) for p in pools] == [
        ("stratum+tcp://wm.example:3333", "acct.sim-4"),
        ("stratum+tcp://wm-backup.example:3333", "acct.sim-4"),
    ]
    code, res = act(env, "pools", "show", "sim-4")
    assert code == 0 and [p["url"] for p in res["sim-4"]["pools"]] == [p["url"] for p in pools]
    code, res = act(env, "pools", "switch", "1", "sim-4")
    assert code == 1 and res["sim-4"]["result"] == "unsupported" and "pools set" in res["sim-4"]["detail"]
    assert "secretpw" not in Path(env["MINECTL_EVENTS"]).read_text()


def test_wrong_password_is_auth_and_nothing_happens(sim, tmp_path):
    fleet, base = sim
    env = admin_sim.site_env(base, tmp_path, CREDS.replace("admin", "wrong"))
    before = show(fleet, "sim-1")["reboots"]
    code, res = act(env, "reboot", "sim-1")
    assert code == 1
    r = res["sim-1"]
    assert r["result"] == "auth" and "wrong Whatsminer admin password" in r["detail"]
    assert r["tried"] == ["api:auth", "ssh:nocred"]  # the SSH fallback has no credentials (nor a port)
    assert r["attempts"] == 1  # auth is not retried
    assert show(fleet, "sim-1")["reboots"] == before
    rec = audit(env)[0]
    assert rec["result"] == "auth" and rec["tried"] == ["api:auth", "ssh:nocred"] and rec["user"]


def test_write_api_off_is_denied(sim, env):
    fleet, _ = sim
    ip = fleet.addresses[1]
    fleet.call(lambda: setattr(fleet.fleet.miner(ip), "write_access", False))
    before = fleet.show(ip)["restarts"]
    code, res = act(env, "restart", "sim-2")
    assert code == 1 and res["sim-2"]["result"] == "denied"
    assert "can't access write cmd" in res["sim-2"]["detail"] and "WhatsMinerTool" in res["sim-2"]["detail"]
    assert fleet.show(ip)["restarts"] == before
    assert audit(env)[0]["result"] == "denied"


def test_no_password_configured_is_nocred(sim, tmp_path):
    _, base = sim
    env = admin_sim.site_env(base, tmp_path, "default: {}\n")
    code, res = act(env, "locate", "on", "sim-3")
    assert code == 1 and res["sim-3"]["result"] == "nocred" and "families: whatsminer" in res["sim-3"]["detail"]


def test_dying_and_hanging_whatsminers_beside_healthy_ones(sim, env):
    fleet, _ = sim
    fleet.fault(fleet.addresses[0], "dying")  # closes get_token without a word: nothing was sent
    fleet.fault(fleet.addresses[1], "hanging", hold=30)
    code, res = act(env, "locate", "on", "sim-1", "sim-2", "sim-3", "--timeout", "1.5", "--retries", "1")
    assert code == 1
    assert res["sim-1"]["result"] == "unreachable" and "nothing was sent" in res["sim-1"]["detail"]
    assert res["sim-1"]["attempts"] == 2  # nothing reached the miner: safe to try again
    assert res["sim-2"]["result"] == "unreachable" and res["sim-2"]["attempts"] == 2
    assert res["sim-3"]["result"] == "ok" and show(fleet, "sim-3")["led"] is True
    assert {r["name"]: r["result"] for r in audit(env)} == {
        "sim-1": "unreachable",
        "sim-2": "unreachable",
        "sim-3": "ok",
    }


def test_whatsminer_dying_after_the_signed_command_is_lost_not_repeated(sim, env):
    fleet, _ = sim
    ip = fleet.addresses[3]
    fleet.fault(ip, "dying", spare="get_token")  # a token, then silence on the signed reboot
    before = fleet.show(ip)["reboots"]
    code, res = act(env, "reboot", "sim-4", "sim-3", "--retries", "2")
    assert code == 1
    r = res["sim-4"]
    assert (r["result"], r["transport"], r["attempts"], r["tried"]) == ("lost", "api", 1, ["api:lost"])
    assert "may have acted" in r["detail"] or "went away" in r["detail"]
    assert res["sim-3"]["result"] == "ok"  # the other miner of the batch is unaffected
    assert fleet.show(ip)["reboots"] == before
    assert {x["name"]: x["result"] for x in audit(env)} == {"sim-4": "lost", "sim-3": "ok"}
