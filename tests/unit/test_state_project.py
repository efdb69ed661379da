"""The state projection: lease/poll/poll_fail/inventory records into the state directory."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from minectl_py import fastjson
from minectl_py.events import record
from minectl_py.state import project, read, sanitize, values
from tests.statefakes import lease, mac_of, poll, poll_fail

T0 = 1_790_000_000_000
MAC = "02:00:00:00:00:01"


@pytest.fixture(autouse=True)
def _fresh_cache():
    project.forget_cache()
    yield
    project.forget_cache()


def files(d: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(d.iterdir()) if not p.name.startswith(".") and p.is_file()}


def test_lease_add_writes_files_json_and_links(tmp_path):
    assert project.apply(str(tmp_path), lease("add", MAC, "10.77.0.10", T0, "s9-0001", vendor_class="bmminer"))
    d = tmp_path / "miners" / MAC
    f = files(d)
    assert f["ip"] == "10.77.0.10\n"
    assert f["hostname"] == "s9-0001\n"
    assert f["state"] == "new\n"
    assert f["lease"] == "add\n"
    assert f["vendor_class"] == "bmminer\n"
    assert f["first_seen"] == f["last_seen"] == f"{T0 // 1000}\n"
    assert f["lease_expires"] == f"{T0 // 1000 + 3600}\n"
    js = json.loads(f["miner.json"])
    # every one-value file is in miner.json, rendered the same
    assert {k: values.render(k, v) + "\n" for k, v in js.items()} == {k: v for k, v in f.items() if k != "miner.json"}
    assert os.readlink(tmp_path / "by-ip" / "10.77.0.10") == f"../miners/{MAC}"
    assert os.readlink(tmp_path / "by-name" / "s9-0001") == f"../miners/{MAC}"
    assert read.load_one(str(tmp_path), "10.77.0.10")["hostname"] == "s9-0001"
    assert read.load_one(str(tmp_path), "s9-0001")["mac"] == MAC
    assert read.load_one(str(tmp_path), MAC.upper())["ip"] == "10.77.0.10"
    assert read.load_one(str(tmp_path), "../../etc") is None


def test_repeated_old_is_harmless_and_rewrites_nothing(tmp_path):
    project.apply(str(tmp_path), lease("add", MAC, "10.77.0.10", T0, "a"))
    rec = lease("old", MAC, "10.77.0.10", T0 + 1000, "a")
    project.apply(str(tmp_path), rec)
    d = tmp_path / "miners" / MAC
    before = {p.name: os.stat(p).st_ino for p in d.iterdir()}
    snapshot = files(d)
    for _ in range(3):
        project.apply(str(tmp_path), rec)
    assert files(d) == snapshot
    assert {p.name: os.stat(p).st_ino for p in d.iterdir()} == before  # not even rewritten


def test_ip_and_hostname_move_keep_links_right(tmp_path):
    s = str(tmp_path)
    project.apply(s, lease("add", MAC, "10.77.0.10", T0, "a"))
    project.apply(s, lease("old", MAC, "10.77.0.11", T0 + 1000, "b"))
    assert sorted(os.listdir(tmp_path / "by-ip")) == ["10.77.0.11"]
    assert sorted(os.listdir(tmp_path / "by-name")) == ["b"]
    # another miner takes the old address: the link follows the newest holder
    other = mac_of(2)
    project.apply(s, lease("add", other, "10.77.0.11", T0 + 2000, "c"))
    assert os.readlink(tmp_path / "by-ip" / "10.77.0.11") == f"../miners/{other}"
    # the first miner's release must not remove the link the other one holds now
    project.apply(s, lease("del", MAC, "10.77.0.11", T0 + 3000, "b"))
    assert os.readlink(tmp_path / "by-ip" / "10.77.0.11") == f"../miners/{other}"
    assert (tmp_path / "miners" / MAC / "state").read_text() == "offline\n"
    project.apply(s, lease("del", other, "10.77.0.11", T0 + 4000, "c"))
    assert os.listdir(tmp_path / "by-ip") == []


def test_hostile_hostname_and_vendor_class(tmp_path):
    s = str(tmp_path)
    evil = "../../etc/\x1b[31mpwn\x07\u202e"
    rec = lease("add", MAC, "10.77.0.10", T0, evil, vendor_class="x\x1b]0;title\x07y\n" + "A" * 500)
    project.apply(s, rec)
    vals = read.load_one(s, MAC)
    assert vals["hostname"] == "etc---31mpwn"  # a label: the escape's letters stay, harmless
    assert all(c.isprintable() for c in vals["vendor_class"]) and "\x1b" not in vals["vendor_class"]
    assert len(vals["vendor_class"]) <= 64
    assert sorted(os.listdir(tmp_path / "by-name")) == [vals["hostname"]]
    for name in ("..", ".", "/", "\x00", ""):
        assert sanitize.label(name) is None
    assert sanitize.text("\ud800ok\x9b2J") == "?ok"
    assert sanitize.text("fw\x1b[31m 1.0\x1b]0;title\x07") == "fw 1.0"


def test_poll_by_ip_link_then_poll_fail(tmp_path):
    s = str(tmp_path)
    project.apply(s, lease("add", MAC, "10.77.0.10", T0, "a"))
    rng = random.Random(1)
    rec = poll(rng, "10.77.0.10", T0 + 5000, kind=1)
    assert project.apply(s, rec)
    v = read.load_one(s, MAC)
    m = rec["miner"]
    assert v["state"] == "online"
    assert v["model"] == "Antminer S19"
    assert v["hashrate"] == round(m["hashrate_ths"], 2)
    assert v["pool"] == "stratum+tcp://pool0.example.com:3333"
    assert v["fans"] == m["fans"]
    assert v["last_error"] == ""
    assert (tmp_path / "miners" / MAC / "fans").read_text() == " ".join(map(str, m["fans"])) + "\n"
    assert (tmp_path / "miners" / MAC / "hashrate").read_text() == f"{m['hashrate_ths']:.2f}\n"
    project.apply(s, poll_fail("10.77.0.10", T0 + 65000, "timeout"))
    v = read.load_one(s, MAC)
    assert v["state"] == "failing" and v["last_error"] == "timeout" and v["last_poll"] == (T0 + 65000) // 1000
    assert v["last_seen"] == (T0 + 5000) // 1000
    # a poll of an address nobody leased, with no MAC: nothing to project
    assert not project.apply(s, poll_fail("10.77.9.9", T0, "refused"))
    assert not project.apply(s, record.make("time", "n", {}, at_ms=T0))


def test_inventory_set_and_remove(tmp_path):
    s = str(tmp_path)
    inv = record.make(
        "inventory",
        "n",
        {
            "action": "set",
            "mac": MAC,
            "name": "r01-s02-p03",
            "rack": "R01",
            "shelf": "2",
            "position": "3",
            "model": "S19",
        },
        at_ms=T0,
    )
    project.apply(s, inv)
    v = read.load_one(s, "r01-s02-p03")
    assert v["state"] == "expected" and v["rack"] == "R01" and v["model_expected"] == "S19"
    # a hostname never steals a name the inventory gave to another miner
    project.apply(s, lease("add", mac_of(7), "10.77.0.7", T0, "r01-s02-p03"))
    assert os.readlink(tmp_path / "by-name" / "r01-s02-p03") == f"../miners/{MAC}"
    rm = record.make("inventory", "n", {"action": "remove", "mac": MAC}, at_ms=T0 + 1)
    project.apply(s, rm)
    assert not (tmp_path / "miners" / MAC).exists()
    assert not (tmp_path / "by-name" / "r01-s02-p03").exists()


def test_cache_sees_other_writers(tmp_path):
    s = str(tmp_path)
    project.apply(s, lease("add", MAC, "10.77.0.10", T0, "a"))
    # another process rewrites miner.json (simulated: write it as that process would)
    d = tmp_path / "miners" / MAC
    vals = json.loads((d / "miner.json").read_text())
    vals["hostname"] = "zz"
    tmp = d / ".x"
    tmp.write_bytes(fastjson.dumps(vals, sort_keys=True) + b"\n")
    os.rename(tmp, d / "miner.json")
    project.apply(s, lease("old", MAC, "10.77.0.10", T0 + 1000, "a"))
    # the projection noticed the changed miner.json and wrote the hostname file back
    assert json.loads((d / "miner.json").read_text())["hostname"] == "a"


def test_load_all_and_damaged_json_falls_back_to_files(tmp_path):
    s = str(tmp_path)
    recs = [lease("add", mac_of(i), f"10.77.0.{i}", T0 + i, f"m{i}") for i in range(1, 21)]
    assert project.apply_many(s, recs) == 20
    allv = read.load_all(s)
    assert [v["mac"] for v in allv] == sorted(mac_of(i) for i in range(1, 21))
    (tmp_path / "miners" / mac_of(3) / "miner.json").write_text("{broken")
    v = read.load_one(s, mac_of(3))
    assert v["hostname"] == "m3" and v["ip"] == "10.77.0.3"
    assert read.load_all(str(tmp_path / "nothing")) == []
