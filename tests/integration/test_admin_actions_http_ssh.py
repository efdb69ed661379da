"""minectl actions over the Antminer HTTP digest CGI and SSH against the simulator, with the
fallbacks stock firmware needs, wrong passwords, and the output an admin reads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests import admin_sim
from tests.conftest import run_minectl

pytestmark = pytest.mark.integration

# sim-1 s19, sim-2 s9, sim-3 bosminer, sim-4 cgminer, sim-5 s19, sim-6 s19
FLEET = ["s19", "s9", "bosminer", "cgminer", "s19", "s19"]

CREDS = """\
families:
  antminer:
    http: {user: root, password: root}
  bosminer:
    ssh: {user: root, password: root}
  cgminer:
    ssh: {user: root, password: root}
miners:
  - select: "model:*S9"
    ssh: {user: root, password: admin}
  - select: "model:*S19 Pro"
    ssh: {user: miner, password: miner}
"""


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    fleet = admin_sim.start(FLEET, http=True, ssh=True)
    base = tmp_path_factory.mktemp("adm-http")
    admin_sim.state_for(fleet, base / "state")
    try:
        yield fleet, base
    finally:
        fleet.stop()


def make_env(base: Path, tmp: Path, creds: str = CREDS) -> dict[str, str]:
    (tmp / "events").mkdir(exist_ok=True)
    cred = tmp / "credentials.yml"
    cred.write_text(creds)
    os.chmod(cred, 0o600)
    return {
        "MINECTL_STATE_DIR": str(base / "state"),
        "MINECTL_EVENTS": str(tmp / "events" / "events.log"),
        "MINECTL_CONFIG_DIR": str(tmp),
        "MINECTL_NODENAME": "test-controller",
    }


@pytest.fixture
def env(sim, tmp_path):
    fleet, base = sim
    for ip in fleet.addresses:
        fleet.clear(ip)
    return make_env(base, tmp_path)


def act(env, *args):
    opts = ("--json",) if "--timeout" in args else ("--json", "--timeout", "5")
    if "--" in args:
        i = args.index("--")
        args = (*args[:i], *opts, *args[i:])
    else:
        args = (*args, *opts)
    r = run_minectl(*args, env=env)
    assert r.returncode in (0, 1), r.stderr.decode()
    return r.returncode, {x["name"]: x for x in json.loads(r.stdout)["results"]}


def ip_of(fleet, name):
    return fleet.addresses[int(name.split("-")[1]) - 1]


def show(fleet, name):
    return fleet.show(ip_of(fleet, name))


def eventually(check, seconds=10.0):
    """The simulator acts a moment after it answers (as a real miner does)."""
    import time

    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the simulated miner never showed the change")
        time.sleep(0.1)


def wait_up(fleet, names, seconds=15.0):
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(not show(fleet, n)["dark"] for n in names):
            return
        time.sleep(0.2)
    raise AssertionError(f"{names} did not come back")


def test_reboot_antminers_over_http_and_others_over_ssh(sim, env):
    fleet, _ = sim
    before = {n: show(fleet, n)["reboots"] for n in ("sim-1", "sim-2", "sim-3", "sim-4")}
    code, res = act(env, "reboot", "sim-1", "sim-2", "sim-3", "sim-4")
    assert code == 0, res
    assert {n: r["transport"] for n, r in res.items()} == {
        "sim-1": "http",
        "sim-2": "http",
        "sim-3": "ssh",
        "sim-4": "ssh",
    }
    for n in before:
        eventually(lambda n=n: show(fleet, n)["reboots"] == before[n] + 1)
    wait_up(fleet, list(before))


def test_restart_stock_antminer_falls_back_from_api_to_http(sim, env):
    fleet, _ = sim
    before = show(fleet, "sim-5")["restarts"]
    code, res = act(env, "restart", "sim-5")
    assert code == 0
    assert res["sim-5"]["tried"] == ["api:denied", "http:ok"] and res["sim-5"]["transport"] == "http"
    eventually(lambda: show(fleet, "sim-5")["restarts"] == before + 1)


def test_wrong_http_password_falls_back_to_ssh_or_reports_auth(sim, tmp_path):
    fleet, base = sim
    wrong = CREDS.replace("http: {user: root, password: root}", "http: {user: root, password: nope}")
    env = make_env(base, tmp_path, wrong)
    code, res = act(env, "locate", "on", "sim-6")  # LED: HTTP only on stock Antminer
    assert code == 1 and res["sim-6"]["result"] == "auth" and "401" in res["sim-6"]["detail"]
    assert show(fleet, "sim-6")["led"] is False
    before = show(fleet, "sim-6")["reboots"]
    code, res = act(env, "reboot", "sim-6")
    assert code == 0 and res["sim-6"]["tried"] == ["http:auth", "ssh:ok"]
    eventually(lambda: show(fleet, "sim-6")["reboots"] == before + 1)
    wait_up(fleet, ["sim-6"])
    bad_ssh = wrong.replace("{user: miner, password: miner}", "{user: miner, password: wrong}")
    env = make_env(base, tmp_path, bad_ssh)
    code, res = act(env, "reboot", "sim-6")
    assert code == 1 and res["sim-6"]["result"] == "auth" and res["sim-6"]["tried"] == ["http:auth", "ssh:auth"]


def test_locate_over_http_and_ssh(sim, env):
    fleet, _ = sim
    code, res = act(env, "locate", "on", "sim-1", "sim-3")
    assert code == 0 and res["sim-1"]["transport"] == "http" and res["sim-3"]["transport"] == "ssh"
    eventually(lambda: show(fleet, "sim-1")["led"] and show(fleet, "sim-3")["led"])
    code, _ = act(env, "locate", "off", "sim-1", "sim-3")
    assert code == 0
    eventually(lambda: not show(fleet, "sim-1")["led"] and not show(fleet, "sim-3")["led"])


def test_pools_on_stock_antminer_over_http(sim, env):
    fleet, _ = sim
    wait_up(fleet, ["sim-1"])
    code, res = act(env, "pools", "set", "sim-1", "--pool", "stratum+tcp://new.example:3333,acct.{name},x")
    assert code == 0 and res["sim-1"]["tried"] == ["api:denied", "http:ok"]
    assert [(p["url"], p["user"]) for p in show(fleet, "sim-1")["pools"]] == [
        ("stratum+tcp://new.example:3333", "acct.sim-1")
    ]
    wait_up(fleet, ["sim-2"])
    urls = [p["url"] for p in show(fleet, "sim-2")["pools"]]
    code, res = act(env, "pools", "switch", "2", "sim-2")
    assert code == 0 and res["sim-2"]["transport"] == "http"
    assert [p["url"] for p in show(fleet, "sim-2")["pools"]] == [urls[2], urls[0], urls[1]]


def test_exec_over_ssh_output_and_exit_status(sim, env):
    fleet, _ = sim
    wait_up(fleet, ["sim-4", "sim-3"])
    code, res = act(env, "exec", "sim-4", "sim-3", "--", "hostname")
    assert code == 0
    assert res["sim-4"]["output"].strip() == show(fleet, "sim-4")["hostname"]
    code, res = act(env, "exec", "sim-4", "--", "no-such-tool", "--flag")
    assert code == 1 and res["sim-4"]["result"] == "fail" and res["sim-4"]["exit_status"] == 127
    before = show(fleet, "sim-4")["reboots"]
    r = run_minectl("exec", "sim-4", "--", "echo", "$(reboot)", ";", "reboot", env=env)
    assert r.returncode == 0 and b"$(reboot) ; reboot" in r.stdout  # quoted for the remote shell
    import time

    time.sleep(0.5)  # a reboot would have been scheduled 0.2 s after the command
    assert show(fleet, "sim-4")["reboots"] == before


def test_rebooting_miner_is_unreachable_then_back(sim, env):
    fleet, _ = sim
    fleet.call(fleet.fleet.reboot, fleet.fleet.miner(ip_of(fleet, "sim-5")), 3.0)
    code, res = act(env, "restart", "sim-5", "--retries", "0")
    assert code == 1 and res["sim-5"]["result"] == "unreachable"
    wait_up(fleet, ["sim-5"])
    code, res = act(env, "restart", "sim-5")
    assert code == 0


def test_miners_dying_mid_action_over_http_and_ssh(sim, env):
    """In one batch: an Antminer whose web server sends the headers of its reboot.cgi answer
    and dies, a Braiins and a cgminer whose SSH session drops or never finishes, and a healthy
    S9. Each result says what happened; nothing that may have reached a miner is sent twice; the
    healthy one reboots; every result is audited; the exit code says not all succeeded."""
    fleet, _ = sim
    wait_up(fleet, ["sim-1", "sim-2", "sim-3", "sim-4"])
    fleet.fault(ip_of(fleet, "sim-1"), "dying")
    fleet.fault(ip_of(fleet, "sim-3"), "dying")
    fleet.fault(ip_of(fleet, "sim-4"), "hanging", hold=30)
    before = {n: show(fleet, n)["reboots"] for n in ("sim-1", "sim-2", "sim-3", "sim-4")}
    r = run_minectl("reboot", "sim-1", "sim-2", "sim-3", "sim-4", "--json", "--timeout", "2", "--retries", "2", env=env)
    assert r.returncode == 1, r.stderr.decode()
    res = {x["name"]: x for x in json.loads(r.stdout)["results"]}
    assert (res["sim-1"]["result"], res["sim-1"]["transport"], res["sim-1"]["tried"]) == ("lost", "http", ["http:lost"])
    assert "may have acted" in res["sim-1"]["detail"]
    assert (res["sim-3"]["result"], res["sim-3"]["transport"]) == ("lost", "ssh")
    assert (res["sim-4"]["result"], res["sim-4"]["transport"]) == ("timeout", "ssh")
    assert all(res[n]["attempts"] == 1 for n in ("sim-1", "sim-3", "sim-4"))  # never sent twice
    assert res["sim-2"]["result"] == "ok" and res["sim-2"]["transport"] == "http"
    eventually(lambda: show(fleet, "sim-2")["reboots"] == before["sim-2"] + 1)
    assert all(show(fleet, n)["reboots"] == before[n] for n in ("sim-1", "sim-3", "sim-4"))
    recs = [json.loads(x.lstrip("\x1e")) for x in Path(env["MINECTL_EVENTS"]).read_text().split("\n") if x]
    assert {x["name"]: (x["result"], x["transport"], x["attempts"]) for x in recs} == {
        n: (v["result"], v["transport"], v["attempts"]) for n, v in res.items()
    }
    assert len({x["batch"] for x in recs}) == 1 and all(x["action"] == "reboot" for x in recs)
    for ip in fleet.addresses:
        fleet.clear(ip)
    wait_up(fleet, ["sim-2"])


def test_web_server_dying_or_hanging_mid_locate_beside_a_healthy_one(sim, env):
    fleet, _ = sim
    wait_up(fleet, ["sim-1", "sim-5", "sim-6"])
    fleet.fault(ip_of(fleet, "sim-5"), "hanging", hold=30)
    fleet.fault(ip_of(fleet, "sim-6"), "dying")
    code, res = act(env, "locate", "on", "sim-1", "sim-5", "sim-6", "--timeout", "2")
    assert code == 1
    assert res["sim-5"]["result"] == "timeout" and res["sim-5"]["transport"] == "http"
    assert res["sim-6"]["result"] == "lost" and res["sim-6"]["transport"] == "http"
    assert res["sim-1"]["result"] == "ok" and show(fleet, "sim-1")["led"] is True
    assert not show(fleet, "sim-5")["led"] and not show(fleet, "sim-6")["led"]


def test_pty_shows_lost_and_timeout_results(sim, env):
    """What the admin reads on the terminal when miners die mid-action."""
    from tests.admin_pty import run_in_pty

    fleet, _ = sim
    wait_up(fleet, ["sim-3", "sim-4"])
    fleet.fault(ip_of(fleet, "sim-3"), "dying")
    fleet.fault(ip_of(fleet, "sim-4"), "hanging", hold=30)
    code, screen = run_in_pty(["exec", "sim-3", "sim-4", "--timeout", "2", "--", "uptime"], env)
    assert code == 1, screen
    import re

    plain = re.sub(r"\x1b\[[0-9;]*m", "", screen)
    rows = {ln.split()[0]: ln for ln in plain.splitlines() if ln.startswith("sim-")}
    assert " lost " in rows["sim-3"] and " ssh " in rows["sim-3"]
    assert " timeout " in rows["sim-4"]
    assert "exec: 0 of 2 ok; " in plain and "1 lost" in plain and "1 timeout" in plain
