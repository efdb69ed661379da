"""minectl actions over the Antminer HTTP digest CGI and SSH against the simulator, with the
fallbacks stock firmware needs, wrong passwords, and the output an admin reads."""

from __future__ import annotations

import json

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


sim = admin_sim.fleet_fixture(FLEET, http=True, ssh=True)


@pytest.fixture
def env(sim, tmp_path):
    return admin_sim.fresh_env(sim, tmp_path, CREDS)


act = admin_sim.act


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
    env = admin_sim.site_env(base, tmp_path, wrong)
    code, res = act(env, "locate", "on", "sim-6")  # LED: HTTP only on stock Antminer
    assert code == 1 and res["sim-6"]["result"] == "auth" and "401" in res["sim-6"]["detail"]
    assert show(fleet, "sim-6")["led"] is False
    before = show(fleet, "sim-6")["reboots"]
    code, res = act(env, "reboot", "sim-6")
    assert code == 0 and res["sim-6"]["tried"] == ["http:auth", "ssh:ok"]
    eventually(lambda: show(fleet, "sim-6")["reboots"] == before + 1)
    wait_up(fleet, ["sim-6"])
    bad_ssh = wrong.replace("{user: miner, password: miner}", "{user: miner, password: wrong}")
    env = admin_sim.site_env(base, tmp_path, bad_ssh)
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
    recs = admin_sim.audit(env)
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


def test_ssh_host_keys_remembered_then_a_changed_key_is_refused(sim, env, tmp_path):  # env: faults cleared
    import io

    import paramiko
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    fleet, base = sim
    wait_up(fleet, ["sim-4"])
    ip = ip_of(fleet, "sim-4")
    known = tmp_path / "known_hosts"
    env = admin_sim.site_env(base, tmp_path, CREDS + f"known_hosts: {known}\n")
    code, res = act(env, "exec", "sim-4", "--", "true")  # first use: the key is remembered
    assert code == 0 and res["sim-4"]["result"] == "ok"
    assert known.read_text().startswith(f"{ip} ssh-ed25519 ") and oct(known.stat().st_mode)[-3:] == "600"
    code, res = act(env, "exec", "sim-4", "--", "true")
    assert code == 0  # the same key again: fine
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    other = paramiko.Ed25519Key(file_obj=io.StringIO(pem.decode()))
    known.write_text(f"{ip} ssh-ed25519 {other.get_base64()}\n")  # as if the miner was replaced
    before = show(fleet, "sim-4")["reboots"]
    code, res = act(env, "reboot", "sim-4")
    assert code == 1 and res["sim-4"]["result"] == "hostkey" and "known_hosts" in res["sim-4"]["detail"]
    assert show(fleet, "sim-4")["reboots"] == before  # nothing was sent to a host we could not trust
    known.unlink()
    strict = admin_sim.site_env(base, tmp_path, CREDS + f"known_hosts: {known}\nssh_host_keys: strict\n")
    code, res = act(strict, "exec", "sim-4", "--", "true")
    assert code == 1 and res["sim-4"]["result"] == "hostkey" and not known.exists()
