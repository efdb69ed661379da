"""minectl actions over the cgminer API against the simulator: success, denied firmware,
timeouts, dead miners, miners that die mid-action, and the audit trail of each."""

from __future__ import annotations

import json

import pytest

from tests import admin_sim

pytestmark = pytest.mark.integration

FLEET = ["cgminer", "cgminer", "cgminer", "s19", "s9", "bosminer", "btminer", "cgminer"]


sim = admin_sim.fleet_fixture(FLEET, http=False, ssh=False)


@pytest.fixture
def env(sim, tmp_path):
    return admin_sim.fresh_env(sim, tmp_path, "default: {}\n")


act = admin_sim.act


audit = admin_sim.audit


def ip_of(fleet, name):
    return fleet.addresses[int(name.split("-")[1]) - 1]


def test_restart_over_api_where_allowed_and_denied_where_stock(sim, env):
    fleet, _ = sim
    before = {ip: fleet.show(ip)["restarts"] for ip in fleet.addresses}
    code, res = act(env, "restart", "sim-1", "sim-4", "sim-6", "--timeout", "2")
    assert code == 1  # the stock S19 cannot be restarted without HTTP/SSH credentials
    assert res["sim-1"]["result"] == "ok" and res["sim-1"]["transport"] == "api"
    assert res["sim-6"]["result"] == "ok" and res["sim-6"]["transport"] == "api"  # Braiins allows it
    assert res["sim-4"]["tried"][0] == "api:denied" and res["sim-4"]["result"] != "ok"
    after = {ip: fleet.show(ip)["restarts"] for ip in fleet.addresses}
    assert after[ip_of(fleet, "sim-1")] == before[ip_of(fleet, "sim-1")] + 1
    assert after[ip_of(fleet, "sim-4")] == before[ip_of(fleet, "sim-4")]  # denied: nothing happened
    recs = audit(env)
    assert {r["name"]: r["result"] for r in recs} == {k: v["result"] for k, v in res.items()}
    assert all(r["cmd"] == "action" and r["user"] == "root" and r["action"] == "restart" for r in recs)


def test_pools_show_set_switch(sim, env):
    fleet, _ = sim
    code, res = act(env, "pools", "show", "sim-2")
    assert code == 0 and [p["url"] for p in res["sim-2"]["pools"]] == [
        p["url"] for p in fleet.show(ip_of(fleet, "sim-2"))["pools"]
    ]
    code, res = act(
        env,
        "pools",
        "set",
        "sim-2",
        "--pool",
        "stratum+tcp://new.example:3333,acct.{name},x",
        "--pool",
        "stratum+tcp://backup.example:3333,acct.{name}",
        "--yes",
    )
    assert code == 0, res
    pools = fleet.show(ip_of(fleet, "sim-2"))["pools"]
    assert [(p["url"], p["user"]) for p in pools] == [
        ("stratum+tcp://new.example:3333", "acct.sim-2"),
        ("stratum+tcp://backup.example:3333", "acct.sim-2"),
    ]
    assert pools[0]["active"]
    code, res = act(env, "pools", "switch", "1", "sim-2")
    assert code == 0
    active = [p["url"] for p in fleet.show(ip_of(fleet, "sim-2"))["pools"] if p["active"]]
    assert active == ["stratum+tcp://backup.example:3333"]
    rec = next(r for r in audit(env) if r["action"] == "pools_set")
    assert rec["params"]["pools"][0]["url"] == "stratum+tcp://new.example:3333" and "password" not in json.dumps(rec)


def test_locate_over_api_on_cgminer(sim, env):
    fleet, _ = sim
    code, res = act(env, "locate", "on", "sim-3")
    assert code == 0 and res["sim-3"]["transport"] == "api"
    assert fleet.show(ip_of(fleet, "sim-3"))["led"] is True


def test_timeouts_dead_and_dying_miners(sim, env):
    fleet, _ = sim
    fleet.fault(ip_of(fleet, "sim-1"), "hanging")
    fleet.fault(ip_of(fleet, "sim-2"), "dead")
    fleet.fault(ip_of(fleet, "sim-3"), "hanging", hold=0.5)  # accepts the request, then goes away
    fleet.fault(ip_of(fleet, "sim-8"), "refusing")
    code, res = act(env, "restart", "sim-1", "sim-2", "sim-3", "sim-8", "--timeout", "1.5", "--retries", "1")
    assert code == 1
    assert res["sim-1"]["result"] == "timeout" and res["sim-1"]["attempts"] == 1  # sent: never repeated
    assert res["sim-2"]["result"] == "unreachable" and res["sim-2"]["attempts"] == 2  # retried
    assert res["sim-3"]["result"] == "lost" and "went away" in res["sim-3"]["detail"]
    assert res["sim-8"]["result"] == "unreachable" and res["sim-8"]["tried"][0] == "api:unreachable"
    recs = {r["name"]: r for r in audit(env)}
    assert recs["sim-2"]["attempts"] == 2 and recs["sim-1"]["result"] == "timeout"


def test_many_at_once_every_result_recorded(env):
    code, res = act(env, "locate", "on", "all", "--yes", "--concurrency", "3")
    assert len(res) == len(FLEET)
    assert len(audit(env)) == len(FLEET)
    assert len({r["batch"] for r in audit(env)}) == 1
    assert code == (0 if all(r["result"] == "ok" for r in res.values()) else 1)
