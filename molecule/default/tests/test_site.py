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


# Firewall (issue #9): probes in parallel, each bound to a source address, 4 s each.
# "tcp:PORT" -> open | TimeoutError (dropped) | ConnectionRefusedError ...;
# "udp:PORT" sends a DNS query for the controller's name -> reply | TimeoutError.
PROBES = r"""
import json, socket, struct, sys, threading
src, ip, specs = sys.argv[1], sys.argv[2], sys.argv[3:]
out = {}
def probe(spec):
    proto, port = spec.split(":"); port = int(port)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    s.bind((src, 0)); s.settimeout(4)
    try:
        if proto == "tcp":
            s.connect((ip, port)); out[spec] = "open"
        else:
            q = struct.pack(">HHHHHH", 0x4D41, 0x0100, 1, 0, 0, 0) + b"\x0acontroller\x00" + struct.pack(">HH", 1, 1)
            s.sendto(q, (ip, port)); data, _ = s.recvfrom(512)
            out[spec] = "reply" if data[:2] == q[:2] else "garbage"
    except OSError as e:
        out[spec] = type(e).__name__
    finally:
        s.close()
ts = [threading.Thread(target=probe, args=(x,)) for x in specs]
[t.start() for t in ts]; [t.join() for t in ts]
print(json.dumps(out))
"""
CANARY_PORTS = (3000, 4028, 8080, 9100, 24224)  # stand-ins for anything that might listen later


def probe(host, src: str, ip: str, specs) -> dict[str, str]:
    specs = " ".join(sorted(set(specs)))
    return json.loads(host.check_output(f"python3 -c {shlex.quote(PROBES)} {src} {ip} {specs}"))


def listening(host) -> set[str]:
    """'tcp:PORT' / 'udp:PORT' for every socket listening on a non-loopback address."""
    out = set()
    for line in host.check_output("ss -H -lntu").splitlines():
        f = line.split()
        local = f[4]
        addr, port = local.rsplit(":", 1)
        if not addr.startswith(("127.", "[::1]")):
            out.add(f"{f[0]}:{port}")
    return out


@pytest.fixture(scope="module")
def canary():
    """TCP and UDP listeners on the controller on ports nothing should open (stopped after)."""
    code = (
        "import socket,threading\n"
        f"P={list(CANARY_PORTS)!r}\n"
        "def tcp(p):\n s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
        "s.bind(('0.0.0.0',p));s.listen()\n while 1: s.accept()[0].close()\n"
        "def udp(p):\n s=socket.socket(type=socket.SOCK_DGRAM);s.bind(('0.0.0.0',p))\n"
        " while 1:\n  d,a=s.recvfrom(512);s.sendto(d,a)\n"
        "[threading.Thread(target=f,args=(p,)).start() for p in P for f in (tcp,udp)]\n"
    )
    CTL.run("systemctl stop mapp-canary; systemctl reset-failed mapp-canary")
    CTL.check_output(f"systemd-run --unit mapp-canary python3 -c {shlex.quote(code)}")
    try:
        specs = [f"{pr}:{p}" for p in CANARY_PORTS for pr in ("tcp", "udp")]
        # positive control: from the controller itself every canary answers
        wait(
            "the canary listeners answer locally",
            lambda: set(probe(CTL, "127.0.0.1", "127.0.0.1", specs).values()) <= {"open", "reply"},
            30,
            1,
        )
        yield specs
    finally:
        CTL.run("systemctl stop mapp-canary")


def test_from_the_mine_lan_only_dhcp_and_dns_reach_the_controller(canary):
    """From a miner's leased address on eth1: DNS answers (UDP, TCP); nothing else does."""
    src = leased_by_miners()["02:4d:a0:00:00:01"]  # its lease proves DHCP (udp 67) got through
    ports = listening(CTL) | set(canary) | {"tcp:22"}
    got = probe(MINERS, src, "10.88.0.1", ports | {"udp:53", "tcp:53"})
    assert got.pop("udp:53") == "reply" and got.pop("tcp:53") == "open", got
    got.pop("udp:67", None)  # dnsmasq's DHCP socket: no answer to a DNS query either way
    assert got and all(v == "TimeoutError" for v in got.values()), f"reachable from the mine LAN: {got}"


def test_from_the_vpn_only_ssh_reaches_the_controller(vpn_ip, canary):
    """From the VPN server's tunnel address: SSH is open; DNS, the canaries, all else dropped."""
    ports = listening(CTL) | set(canary) | {"tcp:53", "udp:53"}
    got = probe(CENTRAL, "10.89.0.1", vpn_ip, ports | {"tcp:22"})
    assert got.pop("tcp:22") == "open", got
    assert got and all(v == "TimeoutError" for v in got.values()), f"reachable from the VPN: {got}"


def test_from_the_wan_nothing_reaches_the_controller(canary):
    """The WAN (not a management range in the example inventory): even SSH is dropped."""
    ports = listening(CTL) | set(canary) | {"tcp:22"}
    got = probe(CENTRAL, "10.250.88.20", "10.250.88.10", ports)
    assert got and all(v == "TimeoutError" for v in got.values()), f"reachable from the WAN: {got}"


def _shipper(vpn_ip: str) -> None:
    if CENTRAL.run("systemctl is-active mapp-ship").rc != 0:
        # the stand-in for fluentd (files/ship-events.py): resumes from its saved position
        unit = "--unit mapp-ship -p Restart=always -p RestartSec=2"
        CENTRAL.check_output(f"systemd-run {unit} /usr/local/sbin/mapp-ship-events {vpn_ip}")


def _shipped_ids() -> list[str]:
    code = "import json,sys\nfor l in open(sys.argv[1],'rb'):\n print(json.loads(l.lstrip(b'\\x1e'))['id'])"
    return CENTRAL.check_output(f"python3 -c {shlex.quote(code)} {SHIPPED}").split()


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


def test_a_shipper_restart_ships_no_record_twice(vpn_ip):
    """The stand-in resumes from its saved position (like fluentd's in_tail pos_file): after a
    restart the shipped file has every record once and is byte for byte the start of the
    controller's log (the old `ssh tail -F` stand-in shipped the whole log again)."""
    _shipper(vpn_ip)
    before = _shipped_ids()
    assert before and CENTRAL.file(SHIPPED + ".pos").exists
    CENTRAL.check_output("systemctl restart mapp-ship")
    wait("records shipped after the restart", lambda: len(_shipped_ids()) > len(before) + 50, 90)
    ids = _shipped_ids()
    assert ids[: len(before)] == before
    dups = len(ids) - len(set(ids))
    assert dups == 0, f"{dups} record(s) shipped twice"
    n = int(CENTRAL.check_output(f"stat -c %s {SHIPPED}"))
    here = CENTRAL.check_output(f"head -c {n} {SHIPPED} | sha256sum")
    there = CTL.check_output(f"head -c {n} /var/lib/minectl/events/events.log | sha256sum")
    assert here == there, "the shipped file is not the start of the controller's log"


def _dashboard(kind: str) -> list[tuple[str, str]]:
    d = json.loads((ROOT / "files" / "grafana" / f"minectl-site-{kind}.json").read_text())
    out = [(f"panel {p['title']!r}", t.get("rawSql") or t.get("query")) for p in d["panels"] for t in p["targets"]]
    out += [(f"annotation {a['name']!r}", a.get("rawQuery") or a.get("query")) for a in d["annotations"]["list"]]
    return out


def test_a_miner_fault_reaches_status_and_the_timeline(vpn_ip, datasources):
    ip = leased_by_miners()["02:4d:a0:00:00:07"]
    since = int(CTL.check_output("date +%s")) - 5
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
    finally:
        MINERS.run(f"/opt/mapp/venv/bin/minectl sim clear {ip} --control /run/mapp-sim.sock")
    # this fault's own row; the table exists only from the first fault or action on
    q = (
        "SELECT COUNT(*) FROM timeline WHERE kind = 'fault' AND mac = '02:4d:a0:00:00:07'"
        f" AND ts_ms >= FROM_UNIXTIME({since})"
    )
    wait(
        "the fault reaches the timeline on the metrics host",
        lambda: "timeline" in _mysql("SHOW TABLES", datasources["mysql"]) and _mysql(q, datasources["mysql"])[0] != "0",
        480,  # the reducer writes a minute once an event 5 minutes later arrived (its lateness)
    )


def _history_hour(ds) -> int:
    """The closed UTC hour the controller's history (converge.yml, files/site_history.py) fills,
    once the reducer has rolled it up: its 60-minute row in MariaDB, equal to the mean of its
    one-minute rows (hashrate_site.ths is a mean)."""
    q = "SELECT UNIX_TIMESTAMP(MIN(ts)) FROM hashrate_site WHERE period = 3600"
    hour = wait("the reducer's first 60-minute row", lambda: (v := _mysql(q, ds)[0]) != "NULL" and int(float(v)), 180)
    rolled, mean, n = _mysql(
        f"SELECT (SELECT ths FROM hashrate_site WHERE period = 3600 AND ts = FROM_UNIXTIME({hour})), AVG(ths), COUNT(*)"
        f" FROM hashrate_site WHERE period = 60 AND ts >= FROM_UNIXTIME({hour}) AND ts < FROM_UNIXTIME({hour + 3600})",
        ds,
    )[0].split("\t")
    assert int(n) >= 10 and abs(float(rolled) - float(mean)) < 0.01, (hour, rolled, mean, n)
    assert hour + 3600 <= time.time(), "a 60-minute row for an hour that has not closed"
    return hour


@pytest.mark.parametrize("rollup", ["60", "300", "3600"])
def test_grafana_mysql_queries_return_rows(datasources, rollup):
    ds = datasources["mysql"]
    if rollup == "3600":
        _history_hour(ds)
    now = int(time.time())
    for where, q in _dashboard("mysql"):
        sql = expand_mysql(q, now - 3 * 3600, now + 300, 60, {"rollup": rollup})
        assert _mysql(sql, ds), f"{where} returned no rows: {sql}"


@pytest.mark.parametrize("rp", ["m1", "m5", "h1"])
def test_grafana_influx_queries_return_rows(datasources, rp):
    # m5 and h1 are filled by InfluxDB's continuous queries, every 5 minutes and on the hour,
    # over the m1 points already written (the reducer writes a minute 5 minutes late), and by
    # the reducer's own backfill of what they will not see again (sink_influx.py).
    hour = _history_hour(datasources["mysql"]) if rp == "h1" else 0
    ds = datasources["influxdb"]

    def rows(where: str, iq: str):
        r = CENTRAL.run(f"influx -database {ds['database']} -format json -execute {shlex.quote(iq)}")
        assert r.rc == 0, r.stderr
        res = json.loads(r.stdout)["results"][0]
        assert "error" not in res, f"{where}: {res['error']}: {iq}"
        return [v for s in res.get("series", []) for v in s["values"] if any(x is not None for x in v[1:])]

    now = int(time.time())
    queries = [(w, expand_influx(q, now - 3 * 3600, now + 300, 60, {"rp": rp})) for w, q in _dashboard("influx")]
    if rp == "h1":
        # the history's hour, backfilled by the reducer once its rows stopped coming: the mean of
        # its one-minute points, as in MariaDB
        iq = f'SELECT "ths" FROM "h1"."hashrate_site" WHERE time = {hour}s'
        m1 = f'SELECT mean("ths") FROM "m1"."hashrate_site" WHERE time >= {hour}s AND time < {hour + 3600}s'

        def same():
            a, b = rows("h1", iq), rows("m1", m1)
            return a and b and abs(a[0][1] - b[0][1]) < 0.01

        wait("the h1 row of the history's hour equals the mean of its m1 points", same, 120, 5)
    if rp == "m5":
        # m5 is filled by the continuous query (every 5 minutes, over the last 10) and, for
        # points written later than that (the leases all happen during converge, before the
        # shipper starts at verify), by the reducer's own backfill, at most once a minute.
        end = time.monotonic() + 420
        while time.monotonic() < end and not all(rows(w, iq) for w, iq in queries):
            time.sleep(15)
    empty = [(where, iq) for where, iq in queries if not rows(where, iq)]
    assert not empty, "no rows: " + "; ".join(f"{w}: {q}" for w, q in empty)
