"""The whole appliance works (molecule/default, docs/appliance.md): not just installed.

Runs on the host against the three containers (testinfra, podman:// connections). The admin's
workstation is the central container, which is also the VPN server: every admin check goes
through the tunnel with the test key, as a real admin's would.
"""

from __future__ import annotations

import csv
import json
import shlex
import sys
import time
from pathlib import Path

import pytest
import testinfra

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from tests.grafana_expand import expand_influx, expand_mysql  # noqa: E402

CTL = testinfra.get_host("podman://mapp-controller")
CENTRAL = testinfra.get_host("podman://mapp-central")
MINERS = testinfra.get_host("podman://mapp-miners")
SITE_CSV = ROOT / "molecule" / "default" / "files" / "site.csv"
STATE = "/var/lib/minectl/state/miners"
SHIPPED = "/var/lib/minectl-ship/controller/events.log"
SSH = "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o ConnectTimeout=5"


def site() -> dict[str, dict[str, str]]:
    rows = [r for r in SITE_CSV.read_text().splitlines() if r and not r.startswith("#")]
    return {r["mac"]: r for r in csv.DictReader(rows)}


def wait(what: str, fn, timeout: float = 180.0, step: float = 3.0):
    """fn() until it returns something truthy; fail naming `what` and the last value."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = fn()
        if last:
            return last
        time.sleep(step)
    pytest.fail(f"{what}: not true after {timeout:.0f} s (last: {last!r})")


def leased_by_miners() -> dict[str, str]:
    """MAC -> IPv4 address of each simulated miner's interface, as the miners see it."""
    out = {}
    for link in json.loads(MINERS.check_output("ip -j -4 addr show")):
        if link["ifname"].startswith("m") and link.get("addr_info"):
            mac = MINERS.check_output(f"cat /sys/class/net/{link['ifname']}/address").strip()
            out[mac] = link["addr_info"][0]["local"]
    return out


def state() -> dict[str, dict]:
    out = CTL.run(f"cat {STATE}/*/miner.json").stdout
    return {m["mac"]: m for m in map(json.loads, out.splitlines())}


@pytest.fixture(scope="module")
def vpn_ip() -> str:
    def addr():
        r = CTL.run("ip -j -4 addr show dev tun0")
        return r.rc == 0 and json.loads(r.stdout)[0]["addr_info"][0]["local"]

    return wait("the controller's tunnel has an address", addr, 90)


PROBE = (
    "import socket,sys\n"
    "s=socket.socket(); s.bind((sys.argv[3],0)); s.settimeout(4)\n"
    "try:\n s.connect((sys.argv[1],int(sys.argv[2]))); print('open')\n"
    "except OSError as e:\n print(type(e).__name__)\n"
)


def tcp(host, ip: str, port: int, src: str = "0.0.0.0") -> str:
    """'open', or the error connecting from `host` (bound to `src`) to ip:port gives."""
    return host.check_output(f"python3 -c {shlex.quote(PROBE)} {ip} {port} {src}").strip()


def admin(vpn_ip: str, command: str, opts: str = ""):
    """Run `command` on the controller as the admin: SSH with the key, over the VPN."""
    return CENTRAL.run(f"{SSH} {opts} admin@{vpn_ip} {shlex.quote(command)}")


def test_every_miner_has_a_lease_and_a_state_folder():
    want = site()
    assert len(want) >= 50
    miners = wait("all 50 miners leased", lambda: (m := leased_by_miners()) and len(m) >= len(want) and m, 180)
    assert set(miners) == set(want)
    got = wait("a state folder per miner", lambda: (s := state()) and len(s) >= len(want) and s)
    for mac, row in want.items():
        assert got[mac]["ip"] == miners[mac], mac
        assert got[mac]["lease"] in ("add", "old")
        assert got[mac]["hostname"] == row["name"]
        assert CTL.file(f"/var/lib/minectl/state/by-ip/{miners[mac]}").is_symlink
    assert all(ip.startswith("10.88.") for ip in miners.values())


def test_the_poller_has_stats_for_each_miner():
    n = len(site())

    def polled():
        s = state()
        ok = [m for m in s.values() if m.get("state") == "online" and m.get("hashrate", 0) > 0 and m.get("temp_max")]
        return len(ok) == n and s

    s = wait("every miner polled online with a hashrate and temperatures", polled, 120)
    assert {m["make"] for m in s.values()} >= {"Bitmain", "MicroBT", "Braiins"}
    assert CTL.service("minectl-poller").is_running


def test_the_tunnel_is_up(vpn_ip):
    assert vpn_ip.startswith("10.89.0.")
    assert CTL.service("openvpn-client@minectl").is_running
    # TCP to sshd both ways, through the tunnel (each side's firewall accepts SSH from tun0 only)
    assert tcp(CENTRAL, vpn_ip, 22) == "open"
    assert tcp(CTL, "10.89.0.1", 22) == "open"


def test_an_admin_over_the_vpn_sees_every_miner_in_status(vpn_ip):
    r = admin(vpn_ip, "minectl status --json")
    assert r.rc == 0, r.stderr
    rows = json.loads(r.stdout)
    names = {row.get("name") or row.get("hostname") for row in rows}
    assert names >= {row["name"] for row in site().values()}
    table = admin(vpn_ip, "minectl status")
    assert table.rc == 0 and "r05-s2-p5" in table.stdout


def test_password_login_is_refused(vpn_ip):
    no_key = "-o PubkeyAuthentication=no -o PreferredAuthentications=password,keyboard-interactive"
    r = admin(vpn_ip, "true", opts=no_key)
    assert r.rc == 255
    assert "Permission denied (publickey)" in r.stderr


def test_ssh_from_the_mine_lan_is_refused():
    # From a miner's leased address: DNS on the controller answers (the path works) ...
    src = leased_by_miners()["02:4d:a0:00:00:01"]
    assert tcp(MINERS, "10.88.0.1", 53, src) == "open"
    # ... but SSH is dropped by the controller's firewall.
    assert tcp(MINERS, "10.88.0.1", 22, src) in ("TimeoutError", "timeout")


def _shipper(vpn_ip: str) -> None:
    if CENTRAL.run("systemctl is-active mapp-ship").rc != 0:
        # restarted if the SSH session drops (e.g. sshd restarted); the reducer's upserts make re-sent events harmless
        unit = "--unit mapp-ship -p Restart=always -p RestartSec=2"
        CENTRAL.check_output(f"systemd-run {unit} /usr/local/sbin/mapp-ship-events {vpn_ip}")


def _mysql(sql: str, ds: dict) -> list[str]:
    pw = shlex.quote(ds["secureJsonData"]["password"])
    db = ds["jsonData"]["database"]
    r = CENTRAL.run(f"MYSQL_PWD={pw} mariadb -N -B -h 127.0.0.1 -u {ds['user']} -D {db} -e {shlex.quote(sql)}")
    assert r.rc == 0, f"{r.stderr}: {sql}"
    return r.stdout.splitlines()


@pytest.fixture(scope="module")
def datasources() -> dict[str, dict]:
    import yaml

    prov = yaml.safe_load(CENTRAL.file("/etc/grafana/provisioning/datasources/minectl.yaml").content_string)
    return {d["type"]: d for d in prov["datasources"]}


def test_events_reach_the_metrics_host_and_its_views_fill(vpn_ip, datasources):
    _shipper(vpn_ip)
    wait("events shipped to the metrics host", lambda: int(CENTRAL.check_output(f"wc -l < {SHIPPED}")) > 100, 60)
    assert CENTRAL.service("minectl-reducer").is_running
    ds = datasources["mysql"]
    macs = set(site())

    def filled():
        tables = _mysql("SHOW TABLES", ds)
        if "hashrate_miner" not in tables:
            return False
        return set(_mysql("SELECT DISTINCT mac FROM hashrate_miner", ds)) >= macs and tables

    tables = wait("MariaDB views filled for every miner", filled, 180)
    for t in ("availability_miner", "hashrate_site", "temps_miner", "leases_site", "miner_states"):
        assert t in tables and _mysql(f"SELECT COUNT(*) FROM `{t}`", ds)[0] != "0", t
    q = CENTRAL.run("influx -database minectl -format csv -execute 'SHOW MEASUREMENTS'")
    assert q.rc == 0 and "hashrate_miner" in q.stdout


def _dashboard(kind: str) -> list[tuple[str, str]]:
    d = json.loads((ROOT / "files" / "grafana" / f"minectl-site-{kind}.json").read_text())
    out = [(f"panel {p['title']!r}", t.get("rawSql") or t.get("query")) for p in d["panels"] for t in p["targets"]]
    out += [(f"annotation {a['name']!r}", a.get("rawQuery") or a.get("query")) for a in d["annotations"]["list"]]
    return out


def test_a_miner_fault_reaches_status_and_the_timeline(vpn_ip, datasources):
    ip = leased_by_miners()["02:4d:a0:00:00:07"]
    MINERS.check_output(f"/opt/mapp/venv/bin/minectl sim fault {ip} refusing --control /run/mapp-sim.sock")
    try:
        wait(
            "the faulted miner shows failing in status",
            lambda: (
                (r := admin(vpn_ip, f"minectl status --json {ip}")).rc == 0
                and json.loads(r.stdout)[0]["state"] == "failing"
            ),
            60,
        )
        wait(
            "the fault reaches the timeline on the metrics host",
            lambda: _mysql("SELECT COUNT(*) FROM timeline WHERE kind = 'fault'", datasources["mysql"])[0] != "0",
            120,
        )
    finally:
        MINERS.run(f"/opt/mapp/venv/bin/minectl sim clear {ip} --control /run/mapp-sim.sock")


# The 60-minute rollup needs an hour of data: a run of this scenario does not wait for it.
@pytest.mark.parametrize("rollup", ["60", "300"])
def test_grafana_mysql_queries_return_rows(datasources, rollup):
    ds = datasources["mysql"]
    now = int(time.time())
    for where, q in _dashboard("mysql"):
        sql = expand_mysql(q, now - 3 * 3600, now + 300, 60, {"rollup": rollup})
        assert _mysql(sql, ds), f"{where} returned no rows: {sql}"


def test_grafana_influx_queries_return_rows(datasources):
    # m1 only: the m5 and h1 policies are filled by continuous queries on their own schedule.
    ds = datasources["influxdb"]
    now = int(time.time())
    for where, q in _dashboard("influx"):
        iq = expand_influx(q, now - 3 * 3600, now + 300, 60, {"rp": "m1"})
        r = CENTRAL.run(f"influx -database {ds['database']} -format json -execute {shlex.quote(iq)}")
        assert r.rc == 0, r.stderr
        res = json.loads(r.stdout)["results"][0]
        assert "error" not in res, f"{where}: {res['error']}: {iq}"
        values = [v for s in res.get("series", []) for v in s["values"] if any(x is not None for x in v[1:])]
        assert values, f"{where} returned no rows: {iq}"
