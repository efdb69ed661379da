"""The simulator's Antminer HTTP CGI (digest auth) and SSH, driven by real clients."""

from __future__ import annotations

import asyncio

import httpx
import paramiko
import pytest

from minectl_py.miner.poll import poll_miner
from tests.simfleet import start_fleet, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fleet():
    f = start_fleet(["s19", "s9", "bosminer", "cgminer"], http=True, ssh=True, ssh_port=2222)
    yield f
    f.stop()


def cgi(ip: str, name: str, user: str = "root", pw: str = "root", **json_body):
    auth = httpx.DigestAuth(user, pw)
    url = f"http://{ip}/cgi-bin/{name}.cgi"
    with httpx.Client(timeout=5) as c:
        return c.post(url, auth=auth, json=json_body) if json_body else c.get(url, auth=auth)


def test_digest_challenge_and_wrong_password(fleet):
    ip = fleet.addresses[0]
    r = httpx.get(f"http://{ip}/", timeout=5)
    assert r.status_code == 401 and 'realm="antMiner Configuration"' in r.headers["www-authenticate"]
    assert 'qop="auth"' in r.headers["www-authenticate"]
    assert cgi(ip, "get_system_info", pw="wrong").status_code == 401
    info = cgi(ip, "get_system_info").json()
    assert info["minertype"] == "Antminer S19 Pro" and info["macaddr"].lower() == fleet.show(ip)["mac"]


def test_pools_set_over_http_stick_and_show_on_the_api(fleet):
    ip = fleet.addresses[0]
    pools = [{"url": "stratum+tcp://new.example.com:3333", "user": "site.r1", "pass": "x"}]
    r = cgi(ip, "set_miner_conf", pools=pools, **{"miner-mode": 0})
    assert r.json() == {"stats": "success", "code": "M000", "msg": "OK!"}
    assert cgi(ip, "get_miner_conf").json()["pools"][0]["url"] == "stratum+tcp://new.example.com:3333"
    assert wait_for(lambda: fleet.show(ip)["restarts"] == 1)  # bmminer restarts with the new config
    assert wait_for(lambda: asyncio.run(poll_miner(ip)).ok)
    d = asyncio.run(poll_miner(ip)).data
    assert d.active_pool.url == "stratum+tcp://new.example.com:3333" and d.uptime_s < 5
    assert fleet.show(ip)["restarts"] == 1


def test_blink_and_reboot_over_http(fleet):
    ip = fleet.addresses[1]
    assert cgi(ip, "blink", blink=True).json() == {"code": "B000"}
    assert cgi(ip, "get_blink_status").json() == {"blink": True} and fleet.show(ip)["led"]
    assert cgi(ip, "blink", blink="false").json() == {"code": "B100"}
    assert fleet.show(ip)["led"] is False
    assert cgi(ip, "reboot").status_code == 200
    assert wait_for(lambda: fleet.show(ip)["dark"])
    assert asyncio.run(poll_miner(ip)).reason == "refused"
    assert wait_for(lambda: asyncio.run(poll_miner(ip)).ok)
    assert asyncio.run(poll_miner(ip)).data.uptime_s < 5


def test_modern_stats_cgi_layout(fleet):
    st = cgi(fleet.addresses[0], "stats").json()
    chain = st["STATS"][0]["chain"]
    assert len(chain) == 3 and chain[0]["asic_num"] == 114 and len(chain[0]["temp_chip"]) == 4


def test_braiins_web_page(fleet):
    assert "Braiins OS" in httpx.get(f"http://{fleet.addresses[2]}/", timeout=5).text


def ssh(ip: str, user: str, pw: str, cmd: str) -> tuple[str, int]:
    c = paramiko.SSHClient()
    c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    c.connect(ip, port=2222, username=user, password=pw, timeout=10, allow_agent=False, look_for_keys=False)
    try:
        _, out, _ = c.exec_command(cmd, timeout=10)
        text = out.read().decode()
        return text, out.channel.recv_exit_status()
    finally:
        c.close()


def test_ssh_login_commands_and_reboot(fleet):
    bos = fleet.addresses[2]
    with pytest.raises(paramiko.AuthenticationException):
        ssh(bos, "root", "wrong", "true")
    out, code = ssh(bos, "root", "root", "cat /etc/bosminer.toml")
    assert code == 0 and "stratum+tcp://pool1.example.com:3333" in out
    assert ssh(bos, "root", "root", "nosuch") == ("sh: nosuch: not found\n", 127)
    assert ssh(bos, "root", "root", "miner fault_light on")[1] == 0
    assert wait_for(lambda: fleet.show(bos)["led"] is True)
    assert ssh(bos, "root", "root", "reboot")[1] == 0
    assert wait_for(lambda: fleet.show(bos)["dark"] is True)
    assert wait_for(lambda: not fleet.show(bos)["dark"])
    up = float(ssh(bos, "root", "root", "cat /proc/uptime")[0].split()[0])
    assert up < 5 and fleet.show(bos)["reboots"] == 1


def test_ssh_credentials_per_personality(fleet):
    assert (
        ssh(fleet.addresses[0], "miner", "miner", "hostname")[0].strip() == fleet.show(fleet.addresses[0])["hostname"]
    )
    assert ssh(fleet.addresses[1], "root", "admin", "echo hi") == ("hi\n", 0)
