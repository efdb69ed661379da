"""The site inventory: CSV validation, reservations, locations as replayable events, dnsmasq config."""

from __future__ import annotations

import json
import shutil

import pytest

from minectl_py.events.reader import EventReader
from minectl_py.inventory.csvfile import parse
from minectl_py.inventory.dnsmasq_conf import ConfError, DnsmasqSite, dnsmasq_test, render
from minectl_py.state import compare, project, read
from tests.conftest import run_minectl

GOOD = """\ufeffMAC,Name,Rack,Shelf,Position,Model,Notes
# row 1 of rack R1
aa:bb:cc:dd:ee:01,r1-s1-p1,R1,1,1,Antminer S19,fine

AA-BB-CC-DD-EE-02,R1-S1-P2,R1,1,2,"Antminer S19, 95T",
aabb.ccdd.ee03,r1-s1-p3,R1,1,3,,
"""


def test_parse_good_file_normalizes():
    inv = parse(GOOD)
    assert inv.ok, inv.errors
    assert [(r.line, r.mac, r.name) for r in inv.rows] == [
        (3, "aa:bb:cc:dd:ee:01", "r1-s1-p1"),
        (5, "aa:bb:cc:dd:ee:02", "r1-s1-p2"),
        (6, "aa:bb:cc:dd:ee:03", "r1-s1-p3"),
    ]
    assert inv.rows[1].model == "Antminer S19, 95T" and inv.rows[2].model is None
    assert [w.column for w in inv.warnings] == ["notes"]


@pytest.mark.parametrize(
    ("row", "line_col_what"),
    [
        ("aa:bb:cc:dd:ee:01,dup-mac,R1,1,9,S9", (4, "mac", "duplicate MAC aa:bb:cc:dd:ee:01 (first on line 2)")),
        ("aa:bb:cc:dd:ee:09,r1-s1-p1,R1,1,9,S9", (4, "name", "duplicate name r1-s1-p1 (first on line 2)")),
        ("aa:bb:cc:dd:ee,short,R1,1,9,S9", (4, "mac", "bad MAC 'aa:bb:cc:dd:ee'")),
        ("gg:bb:cc:dd:ee:09,x1,R1,1,9,S9", (4, "mac", "bad MAC 'gg:bb:cc:dd:ee:09'")),
        (",x1,R1,1,9,S9", (4, "mac", "empty MAC")),
        ("aa:bb:cc:dd:ee:09,bad_name,R1,1,9,S9", (4, "name", "characters a DNS name cannot have ('_')")),
        ("aa:bb:cc:dd:ee:09,../etc,R1,1,9,S9", (4, "name", "characters a DNS name cannot have ('.', '/')")),
        ("aa:bb:cc:dd:ee:09,,R1,1,9,S9", (4, "name", "empty name")),
        ("aa:bb:cc:dd:ee:09,-x,R1,1,9,S9", (4, "name", "starts or ends with '-'")),
        ("aa:bb:cc:dd:ee:09,x" + "y" * 63 + ",R1,1,9,S9", (4, "name", "longer than 63")),
        ("aa:bb:cc:dd:ee:09,ok9,R\x1b[2J,1,9,S9", (4, "rack", "control characters")),
        ("aa:bb:cc:dd:ee:09,ok9,R1,1,9,S9,extra", (4, "", "7 cells but the header has 6 columns")),
    ],
)
def test_each_problem_names_line_column_and_what(row, line_col_what):
    text = "mac,name,rack,shelf,position,model\naa:bb:cc:dd:ee:01,r1-s1-p1,R1,1,1,S19\n\n" + row + "\n"
    inv = parse(text)
    assert not inv.ok
    (p,) = inv.errors
    line, col, what = line_col_what
    assert (p.line, p.column) == (line, col) and what in p.message, p.format("f")
    if col:
        assert f"column {text.splitlines()[0].split(',').index(col) + 1} ({col})" in p.format("site.csv")


def test_header_problems():
    assert "no 'name' column" in parse("mac,rack\n").errors[0].message
    assert "empty file" in parse("").errors[0].message
    assert "named twice" in parse("mac,name,mac\n").errors[0].message
    inv = parse('mac,name\n"aa:bb,x\n')
    assert not inv.ok


def test_apply_records_events_reservations_and_is_idempotent(tmp_path, site):
    csv = tmp_path / "site.csv"
    csv.write_text(GOOD)
    hosts = tmp_path / "hosts"
    (hosts).mkdir()
    (hosts / "other.conf").write_text("00:11:22:33:44:55,printer\n")  # not ours: left alone
    r = run_minectl("inventory", "apply", str(csv), "--hostsdir", str(hosts), "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert (res["set"], res["remove"], res["reservations"]["written"]) == (3, 0, 3)
    assert (hosts / "minectl-aabbccddee02").read_text() == "aa:bb:cc:dd:ee:02,r1-s1-p2\n"
    st = str(site / "miners")
    v = read.load_one(st, "r1-s1-p2")
    assert v["rack"] == "R1" and v["position"] == "2" and v["state"] == "expected"
    # again: nothing to record, nothing written
    res = json.loads(run_minectl("inventory", "apply", str(csv), "--hostsdir", str(hosts), "--json").stdout)
    assert (res["set"], res["remove"], res["reservations"]["unchanged"]) == (0, 0, 3)
    # move one miner, drop another, give one a fixed address
    csv.write_text(
        "mac,name,rack,shelf,position,model,ip\n"
        "aa:bb:cc:dd:ee:01,r1-s1-p1,R2,1,1,Antminer S19,10.77.0.50\n"
        'aa:bb:cc:dd:ee:02,r1-s1-p2,R1,1,2,"Antminer S19, 95T",\n'
    )
    res = json.loads(run_minectl("inventory", "apply", str(csv), "--hostsdir", str(hosts), "--json").stdout)
    assert (res["set"], res["remove"], res["reservations"]["removed"]) == (1, 1, 1)
    assert (hosts / "minectl-aabbccddee01").read_text() == "aa:bb:cc:dd:ee:01,10.77.0.50,r1-s1-p1\n"
    assert (hosts / "other.conf").exists()
    assert read.load_one(st, "aa:bb:cc:dd:ee:03") is None  # expected-only miner gone with its row
    assert read.load_one(st, "r1-s1-p1")["rack"] == "R2"
    evs = list(EventReader([str(site / "events" / "events.log")], strict=True, types={"inventory"}))
    assert [e["action"] for e in evs] == ["set"] * 3 + ["set", "remove"]
    # locations are a projection: a rebuild gives the same directory
    project.forget_cache()
    r = run_minectl("state", "rebuild", "--events", str(site / "events" / "events.log"), "--into", str(tmp_path / "rb"))
    assert r.returncode == 0, r.stderr
    assert compare.diff(compare.snapshot(st), compare.snapshot(str(tmp_path / "rb"))) == []


def test_apply_refuses_a_bad_file_and_changes_nothing(tmp_path, site):
    csv = tmp_path / "bad.csv"
    csv.write_text("mac,name\naa:bb:cc:dd:ee:01,a\naa:bb:cc:dd:ee:01,b\n")
    r = run_minectl("inventory", "apply", str(csv), "--hostsdir", str(tmp_path / "h"))
    assert r.returncode == 2
    assert b"bad.csv:3: column 1 (mac): duplicate MAC" in r.stderr
    assert not (site / "events" / "events.log").exists() and not (tmp_path / "h").exists()
    r = run_minectl("inventory", "check", str(csv), "--json")
    assert r.returncode == 2 and json.loads(r.stdout)["ok"] is False
    assert run_minectl("inventory", "check", str(tmp_path / "none.csv")).returncode == 2


def test_generated_dnsmasq_configs_pass_dnsmasq_test():
    if not shutil.which("dnsmasq") and not __import__("os").path.exists("/usr/sbin/dnsmasq"):
        pytest.fail("dnsmasq is not installed (dnsmasq-base is in scripts/apt-packages.txt)")
    base = dict(interface="eth1", address="10.20.0.1", subnet="10.20.0.0/16", range_start="10.20.1.1")
    variants = [
        DnsmasqSite(**base, range_end="10.20.254.254"),
        DnsmasqSite(**base, range_end="10.20.1.200", lease_time="2m", router="10.20.0.254", upstream=["9.9.9.9"]),
        DnsmasqSite(**base, range_end="10.20.9.9", lease_time="infinite", log_dhcp=True, pid_file="/run/d.pid"),
        DnsmasqSite(**base, range_end="10.20.9.9", script_user="minectl", port=5353, listen_lo=False),
    ]
    for v in variants:
        ok, msg = dnsmasq_test(render(v))
        assert ok, (msg, render(v))
    # the check is real: a broken line fails
    ok, msg = dnsmasq_test(render(variants[0]) + "dhcp-range=bogus\n")
    assert not ok and "bad dhcp-range" in msg
    with pytest.raises(ConfError, match="inside the DHCP range"):
        render(DnsmasqSite(**{**base, "address": "10.20.1.5"}, range_end="10.20.9.9"))
    with pytest.raises(ConfError, match=r"not in 10\.20\.0\.0/16"):
        render(DnsmasqSite(**base, range_end="10.21.0.1"))
    r = run_minectl(
        "inventory", "dnsmasq-conf", "--interface", "eth1", "--address", "10.20.0.1", "--subnet", "10.20.0.0/16",
        "--range", "10.20.1.1,10.20.9.9", "--test",
    )  # fmt: skip
    assert r.returncode == 0 and b"leasefile-ro" in r.stdout and b"syntax check OK" in r.stderr
