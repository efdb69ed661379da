"""The protocol client's pure parts: reply classification, JSON repairs, normalization."""

from __future__ import annotations

import json

import pytest

from minectl_py.miner import api
from minectl_py.miner.normalize import NormalizeError, clean, detect, normalize

# Real replies quoted in the research notes (Foreman fixtures), shortened.
S9_STATS = (
    b'{"STATUS":[{"STATUS":"S","When":1600293501,"Code":70,"Msg":"BMMiner stats","Description":"bmminer 1.0.0"}],'
    b'"STATS":[{"BMMiner":"2.0.0 rwglr","Miner":"30.0.1.3","CompileTime":"Tue Nov 20 10:12:30 UTC 2019",'
    b'"Type":"Antminer S9 Hiveon"}{"STATS":0,"ID":"BC50","Elapsed":69,"GHS 5s":"11781.40","GHS av":11609.55,'
    b'"fan_num":2,"fan1":0,"fan2":0,"fan3":0,"fan4":0,"fan5":3840,"fan6":4920,"fan7":0,"fan8":0,'
    b'"temp6":59,"temp7":50,"temp8":57,"temp2_6":74,"temp2_7":65,"temp2_8":72,"total_rateideal":11850.30,'
    b'"temp_max":74,"no_matching_work":0,"chain_acn6":63,"chain_acn7":63,"chain_acn8":63,'
    b'"chain_acs6":" oooooooo","chain_acs7":" ooooxooo","chain_acs8":" oooooooo","chain_rate1":"",'
    b'"chain_rate6":"3911.64","chain_rate7":"3913.70","chain_rate8":"3956.05"}],"id":1}\x00'
)


def test_bmminer_missing_comma_is_repaired_and_normalized():
    rep = api.classify(S9_STATS)
    assert rep.ok and rep.repairs == ["}{"]
    d = normalize({"stats": rep.data})
    assert (d.make, d.model) == ("Bitmain", "Antminer S9")
    assert d.hashrate_ths == pytest.approx(11.7814)
    assert d.nominal_ths == pytest.approx(11.8503)
    assert d.fans == [3840, 4920]
    assert [b.chips for b in d.boards] == [63, 63, 63]
    assert [b.temp_chip for b in d.boards] == [74, 65, 72]
    assert d.temp_max == 74
    assert d.errors == ["board 1: 1 chips marked x"]
    assert d.uptime_s == 69


S19_STATS = {
    "STATUS": [{"STATUS": "S", "When": 1621338564, "Code": 70, "Msg": "CGMiner stats", "Description": "cgminer 1.0.0"}],
    "STATS": [
        {"BMMiner": "1.0.0", "Miner": "49.0.1.3", "CompileTime": "Mon Oct 26", "Type": "Antminer S19 Pro"},
        {
            "STATS": 0, "ID": "BTM_SOC0", "Elapsed": 321734, "GHS 5s": 0.0, "GHS av": 93556.98, "fan_num": 4,
            "fan1": 6000, "fan2": 5880, "fan3": 6120, "fan4": 6120,
            "temp_pcb1": "55-66-78-91", "temp_pcb2": "54-64-76-85", "temp_pcb3": "54-63-76-83", "temp_pcb4": "0-0-0-0",
            "temp_chip1": "60-71-83-96", "temp_chip2": "59-69-81-90", "temp_chip3": "59-68-81-88",
            "total_rateideal": 111859.0, "rate_unit": "GH", "total rate": 93556.98, "temp_max": 0,
            "no_matching_work": 2708, "chain_acn1": 114, "chain_acn2": 114, "chain_acn3": 114, "chain_acn4": 0,
            "chain_rate1": "0.00", "chain_rate2": "0.00", "chain_rate3": "0.00", "chain_rate4": "",
        },
    ],
    "id": 1,
}  # fmt: skip


def test_s19_layout_sensor_strings_and_empty_slot():
    d = normalize({"stats": S19_STATS}, "antminer")
    assert d.model == "Antminer S19 Pro" and d.hashrate_ths == 0.0
    assert d.hashrate_avg_ths == pytest.approx(93.557, abs=1e-3)
    assert len(d.boards) == 3  # chain 4 is an empty slot, not a board
    assert [b.temp_board for b in d.boards] == [91, 85, 83]
    assert d.temp_max == 96
    assert d.fans == [6000, 5880, 6120, 6120]
    assert all(b.status == "failed" for b in d.boards)  # 0.00 GH/s per chain
    assert d.hw_errors == 2708


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b'{"STATUS":[{"STATUS":"S","Code":11', "truncated"),
        (bytes(range(256)) + b"\0", "garbage"),
        (b'{"STATUS":[{"STATUS":"S"}],"SUMM"{:ARY":[]}\x00', "invalid_json"),
        (b'{"STATUS":[{"STATUS":"E","Code":45,"Msg":"Access denied to \'restart\' command"}],"id":1}\x00', "denied"),
        (b'{"STATUS":"E","When":1,"Code":45,"Msg":"can\'t access write cmd","Description":""}\x00', "denied"),
        (b'{"STATUS":[{"STATUS":"E","Code":14,"Msg":"Invalid command"}],"id":1}\x00', "error"),
    ],
)
def test_failures_are_classified_not_raised(raw, reason):
    rep = api.classify(raw)
    assert not rep.ok and rep.reason == reason


def test_too_large():
    assert api.classify(b"{" + b" " * 100 + b"}\0", max_bytes=50).reason == "too_large"


@pytest.mark.parametrize(
    ("body", "repair"),
    [
        (b'{"A":[,{"x":1}],"id":1}', "[,{"),
        (b'{"A":[{"x":1,}],"id":1}', ",}"),
        (b'{"A":[{"x":"a\n","y":2}]}', "newline"),
        (b'{"A":[{"x":"a""temp0":1}]}', '""key'),
        (b'{"A":[{"x":inf,"y":nan}]}', "inf/nan"),
    ],
)
def test_known_firmware_bugs_are_repaired(body, repair):
    data, applied = api.repair(body)
    assert repair in applied and isinstance(data, dict)


def test_restart_reply_with_string_status_is_ok():
    rep = api.classify(b'{"STATUS":"RESTART","id":1}\x00')
    assert rep.ok and rep.status["STATUS"] == "RESTART"


def test_hostile_strings_are_sanitized():
    pools = {
        "STATUS": [{"STATUS": "S", "Code": 7}],
        "POOLS": [{"POOL": 0, "URL": "stratum+tcp://x\x1b[31m\u202e:3333", "User": "a\nb" * 200, "Status": "Alive"}],
    }
    summary = {"STATUS": [{"STATUS": "S"}], "SUMMARY": [{"Elapsed": 5, "MHS 5s": "1e6"}]}
    d = normalize({"pools": pools, "summary": summary}, "cgminer")
    assert d.pools[0].url == "stratum+tcp://x[31m:3333" and len(d.pools[0].user) == 200
    assert "\n" not in d.pools[0].user and d.pools[0].active
    assert clean("\x00\x07ok\u200b") == "ok"


def test_detect_families():
    v = lambda obj: {"version": {"STATUS": [{"STATUS": "S", "Description": "x"}], "VERSION": [obj]}}  # noqa: E731
    assert detect(v({"API": "3.7", "BOSer": "boser-buildroot 0.1.0"})) == "bosminer"
    assert detect(v({"CGMiner": "btminer", "API": "2.0.5"})) == "btminer"
    assert detect(v({"BMMiner": "2.0.0", "Type": "Antminer S9"})) == "antminer"
    assert detect(v({"CGMiner": "4.11.1", "API": "3.7"})) == "cgminer"


def test_nothing_usable_is_an_error():
    with pytest.raises(NormalizeError):
        normalize({"pools": {"STATUS": [{"STATUS": "S"}], "POOLS": []}}, "cgminer")


def test_missing_values_are_null_not_zero():
    d = normalize({"summary": {"SUMMARY": [{"Elapsed": 10}]}}, "cgminer")
    assert d.hashrate_ths is None and d.temp_max is None and d.nominal_ths is None
    json.dumps(d.to_dict())


def test_md5crypt_matches_passlib_and_encryption_round_trips():
    from passlib.hash import md5_crypt

    from minectl_py.miner import whatsminer as wm

    for pw, salt in (("admin", "BQ5hoXV9"), ("", "x"), ("pässwörd longer than sixteen bytes", "a./Z09")):
        assert wm.md5crypt(pw, salt) == md5_crypt.hash(pw, salt=salt)
    key = wm.passwd_md5("admin", "BQ5hoXV9")
    assert wm.decrypt(key, wm.encrypt(key, {"cmd": "reboot"})) == {"cmd": "reboot"}
    with pytest.raises(ValueError):
        wm.decrypt(key, "bm90IGJsb2Nrcw==")
