"""The admin's functional core: predicates, selectors, health, sorting, rendering, grid, plans."""

from __future__ import annotations

import os
import stat

import pytest

from minectl_py.admin import credentials, grid, health, order, plan, render
from minectl_py.admin.fields import ALIASES, FIELDS, normalize
from minectl_py.admin.select import SelectorError, build, parse_target
from minectl_py.admin.summary import summarize
from minectl_py.admin.where import WhereError, compile_where

NOW = 1_800_000_000.0


def miner(**kw):
    raw = {"state": "online", "last_seen": NOW - 30, **kw}
    m = normalize(raw, NOW)
    m["health"] = health.level(m)
    return m


def w(text):
    return compile_where(text, FIELDS, ALIASES)


# -- where ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expr", "expect"),
    [
        ("hashrate_pct<80", True),
        ("hashrate_pct<=75", True),
        ("hashrate_pct>75", False),
        ("pct >= 75 and temp > 80", True),
        ("pct>=75 && temp>90", False),
        ("temp>90 or state=online", True),
        ("temp>90 || state==offline", False),
        ("not state=offline", True),
        ("!(state=offline)", True),
        ("model~'*s19*'", True),
        ("model!~'*S9'", True),
        ("model='Antminer S19 Pro'", True),
        ('model="antminer s19 pro"', True),
        ("pool~*example*", True),
        ("rack=R12, shelf=3", True),
        ("(temp>90 or pct<80) and rack=R12", True),
        ("nominal=110", True),
        ("fans~'*0 *'", True),
        ("fan=0", True),
    ],
)
def test_where_matches(expr, expect):
    m = miner(
        hashrate=82.5,
        nominal=110,
        temp_max=85,
        model="Antminer S19 Pro",
        rack="R12",
        shelf="3",
        pool="stratum+tcp://pool.example:3333",
        fans="0 5400",
    )
    assert m["hashrate_pct"] == 75.0
    assert w(expr)(m) is expect


def test_where_missing_values_are_false_except_not_equal():
    m = miner()  # never polled values: all None
    assert not w("temp>10")(m)
    assert not w("temp<10")(m)
    assert not w("temp=0")(m)
    assert w("temp!=0")(m)
    assert not w("model~*")(m)
    assert w("model!~x*")(m)


@pytest.mark.parametrize(
    ("expr", "column", "needle"),
    [
        ("", 1, "empty"),
        ("hashrate_pct", 13, "operator"),
        ("hashrate_pct<", 14, "value"),
        ("bogus<3", 1, "unknown field 'bogus'"),
        ("temp<hot", 6, "is a number"),
        ("temp<3 and", 11, "field name"),
        ("(temp<3", 8, "')'"),
        ("temp<3 temp>4", 8, "unexpected"),
        ("temp<3 $ 4", 8, "unexpected character"),
        ("__import__('os')", 1, "unknown field '__import__'"),
    ],
)
def test_where_errors_name_the_column(expr, column, needle):
    with pytest.raises(WhereError) as e:
        w(expr)
    assert f"column {column}" in str(e.value)
    assert needle in str(e.value)


# -- selectors ---------------------------------------------------------------------------
SITE = [
    miner(name="r1-s1-p1", ip="10.1.1.1", mac="02:00:00:00:00:01", rack="R1", hashrate=50, nominal=100),
    miner(name="r1-s1-p2", ip="10.1.1.2", mac="02:00:00:00:00:02", rack="R1", hashrate=99, nominal=100),
    miner(name="r2-s1-p1", ip="10.1.2.10", mac="02:00:00:00:00:03", rack="R2", state="offline"),
    miner(hostname="antminer-x", ip="10.1.2.200", mac="02:00:00:00:00:04"),
]


def names(sel):
    return [m.get("name") or m.get("hostname") for m in sel.apply(SITE)]


@pytest.mark.parametrize(
    ("targets", "expect"),
    [
        (["10.1.1.2"], ["r1-s1-p2"]),
        (["10.1.1.0/24"], ["r1-s1-p1", "r1-s1-p2"]),
        (["10.1.1.2-10.1.2.10"], ["r1-s1-p2", "r2-s1-p1"]),
        (["10.1.2.5-250"], ["r2-s1-p1", "antminer-x"]),
        (["02:00:00:00:00:03"], ["r2-s1-p1"]),
        (["R1-*"], ["r1-s1-p1", "r1-s1-p2"]),
        (["ANTMINER-*"], ["antminer-x"]),
        (["rack:r2"], ["r2-s1-p1"]),
        (["all"], ["r1-s1-p1", "r1-s1-p2", "r2-s1-p1", "antminer-x"]),
        (["r1-s1-p1", "10.1.2.200"], ["r1-s1-p1", "antminer-x"]),
    ],
)
def test_targets(targets, expect):
    assert names(build(targets)) == expect


def test_filters_narrow_and_unmatched_targets_are_reported():
    sel = build(["all"], racks=["R1"], wheres=["hashrate_pct<80"])
    assert names(sel) == ["r1-s1-p1"]
    sel = build(["nope-*", "10.1.1.1"])
    assert names(sel) == ["r1-s1-p1"]
    assert sel.unmatched() == ["nope-*"]
    assert names(build([], states=["offline"])) == ["r2-s1-p1"]
    assert build([]).empty


@pytest.mark.parametrize("bad", ["10.1.1.300", "10.1.1.9-10.1.1.2", "10.1.1.0/33", "10.1.1.1-x", "", "rack:"])
def test_bad_selectors(bad):
    with pytest.raises(SelectorError):
        parse_target(bad)


def test_bad_state_names_the_choices():
    with pytest.raises(SelectorError, match="online"):
        build([], states=["up"])


# -- health ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kw", "level"),
    [
        ({"hashrate": 100, "nominal": 100, "temp_max": 60, "fans": "5000 5000"}, "ok"),
        ({"hashrate": 85, "nominal": 100}, "warn"),
        ({"hashrate": 40, "nominal": 100}, "bad"),
        ({"temp_max": 88}, "warn"),
        ({"temp_max": 95}, "bad"),
        ({"fans": "0 5000"}, "bad"),
        ({"state": "failing", "last_error": "timeout"}, "bad"),
        ({"state": "offline"}, "offline"),
        ({"state": "new"}, "new"),
        ({"last_seen": NOW - 3600}, "warn"),
    ],
)
def test_health(kw, level):
    m = miner(**kw)
    got, reasons = health.classify(m)
    assert got == level
    assert bool(reasons) == (level != "ok")


# -- rendering: hostile text never reaches the terminal raw ------------------------------
@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain", "plain"),
        ("evil\x1b[2J\x1b]0;pwned\x07", "evil\\x1b[2J\\x1b]0;pwned\\x07"),
        ("a\nb\rc\td", "a\\x0ab\\x0dc\\x09d"),
        ("\u202egnp.exe", "\\u202egnp.exe"),
        ("c1\x9bcsi", "c1\\x9bcsi"),
        ("ok ünïcode", "ok ünïcode"),
    ],
)
def test_safe(raw, shown):
    assert render.safe(raw) == shown
    assert "\x1b" not in render.safe(raw)


def test_table_aligns_and_colours_only_when_asked():
    t = render.table(["A", "NUM"], [["x", "1"], ["longer", "22"]], right=[False, True], colours=["ok", "bad"])
    assert t.splitlines() == ["A       NUM", "x         1", "longer   22"]
    c = render.table(["A"], [["x"], ["y"]], colours=["ok", "bad"], colour=True)
    assert "\x1b[31;1my\x1b[0m" in c and "\x1b[32m" not in c  # ok rows stay plain


def test_duration_and_width():
    assert [render.duration(x) for x in (5, 125, 7300, 93784)] == ["5s", "2m", "2h01m", "1d2h"]
    assert render.width("日本") == 4
    assert render.safe("x" * 30, 10) == "x" * 9 + "…"


# -- sorting -----------------------------------------------------------------------------
def test_sort_specs():
    ms = [
        miner(name=n, temp_max=t, ip=ip)
        for n, t, ip in [("a", 70, "10.0.0.10"), ("b", None, "10.0.0.9"), ("c", 90, "10.0.0.2")]
    ]
    assert [m["name"] for m in order.sort_miners(ms, "-temp")] == ["c", "a", "b"]
    assert [m["name"] for m in order.sort_miners(ms, "temp")] == ["a", "c", "b"]
    assert [m["name"] for m in order.sort_miners(ms, "ip")] == ["c", "b", "a"]
    racks = [miner(name=f"m{r}", rack=f"R{r}") for r in (10, 2, 1)]
    assert [m["rack"] for m in order.sort_miners(racks, None)] == ["R1", "R2", "R10"]
    with pytest.raises(ValueError, match="unknown field"):
        order.parse_sort("colour")


# -- grid and summary --------------------------------------------------------------------
def test_grid_cells_and_unplaced():
    ms = [
        miner(rack="R1", shelf="1", position="1", hashrate=99, nominal=100),
        miner(rack="R1", shelf="1", position="2", hashrate=60, nominal=100),
        miner(rack="R1", shelf="2", position="1", state="offline"),
        miner(rack="R1", shelf="2", position="10", state="failing"),
        miner(rack="R2", shelf="1", position="1", temp_max=95),
        miner(name="loose"),
    ]
    racks, unplaced = grid.build(ms, "pct")
    assert unplaced == 1
    r1 = racks[0]
    assert r1.shelves == ["1", "2"] and r1.positions == ["1", "2", "10"]
    assert r1.cells[("1", "1")] == grid.Cell("99", "ok")
    assert r1.cells[("1", "2")] == grid.Cell("60", "warn")
    assert r1.cells[("2", "1")].level == "offline"
    assert r1.cells[("2", "10")] == grid.Cell("!!", "bad")
    racks, _ = grid.build(ms, "temp")
    assert racks[1].cells[("1", "1")] == grid.Cell("95", "bad")


def test_summary_totals():
    ms = [
        miner(rack="R1", hashrate=90, nominal=100, temp_max=70),
        miner(rack="R1", hashrate=50, nominal=100, temp_max=95),
        miner(rack="R2", state="offline", nominal=100, hashrate=100),
    ]
    s = summarize(ms)
    assert s["hashrate_ths"] == 140
    assert s["nominal_ths"] == 300
    assert s["hashrate_pct"] == pytest.approx(46.7)
    assert s["hashrate_pct_online"] == 70.0
    assert s["states"] == {"online": 2, "failing": 0, "offline": 1, "new": 0}
    assert s["hottest_racks"][0]["rack"] == "R1"
    assert s["worst_miners"][0]["hashrate_pct"] == 50


# -- credentials -------------------------------------------------------------------------
def test_credentials_refuse_unsafe_modes(tmp_path):
    p = tmp_path / "credentials.yml"
    p.write_text("default:\n  ssh: {user: root, password: s3cret}\n")
    for mode in (0o640, 0o604, 0o666):
        os.chmod(p, mode)
        with pytest.raises(credentials.CredentialsError, match="chmod 600"):
            credentials.load(str(p))
    os.chmod(p, 0o600)
    c = credentials.load(str(p))
    assert c.default["ssh"].password == "s3cret"
    assert "s3cret" not in repr(c.default["ssh"])
    st = os.stat(p)
    fake = os.stat_result((stat.S_IFREG | 0o600, 0, 0, 1, 1234, 0, 0, 0, 0, 0))
    with pytest.raises(credentials.CredentialsError, match="chown root"):
        credentials.check_mode(str(p), fake, euid=st.st_uid if st.st_uid != 1234 else 0)


def test_credentials_resolution_and_errors():
    doc = {
        "default": {"ssh": {"user": "root", "password": "a"}},
        "families": {"antminer": {"ssh": {"user": "miner", "password": "b"}, "http": {"user": "root"}}},
        "miners": [{"select": "rack:R9", "ssh": {"user": "tech", "key_file": "/k"}}],
        "ports": {"ssh": 2222},
    }
    c = credentials.parse(doc)
    assert c.for_miner({"rack": "R9"}, "antminer", "ssh").user == "tech"
    assert c.for_miner({"rack": "R1"}, "antminer", "ssh").user == "miner"
    assert c.for_miner({"rack": "R1"}, "cgminer", "ssh").user == "root"
    assert c.for_miner({}, "cgminer", "http") is None
    assert c.ports == {"api": 4028, "http": 80, "ssh": 2222}
    for bad, needle in [
        ({"defaults": {}}, "unknown key"),
        ({"families": {"avalon": {}}}, "unknown family"),
        ({"default": {"ssh": {"user": "x", "pasword": "y"}}}, "pasword"),
        ({"miners": [{"select": "10.0.0.300"}]}, "miners[0].select"),
        ({"ports": {"ssh": 70000}}, "ports.ssh"),
        ({"ssh_host_keys": "yolo"}, "ssh_host_keys"),
    ]:
        with pytest.raises(credentials.CredentialsError, match=bad and needle.replace("[", r"\[")):
            credentials.parse(bad)


# -- plans -------------------------------------------------------------------------------
def test_family_and_fallback_chains():
    s19 = {"make": "Bitmain", "model": "Antminer S19 Pro", "firmware": "bmminer 1.0.0"}
    bos = {"make": "Braiins", "model": "Antminer S19", "firmware": "BOSer boser-buildroot 0.1.0"}
    wm = {"make": "MicroBT", "model": "Whatsminer M30S", "firmware": "btminer 2.0.1"}
    assert [plan.family(m) for m in (s19, bos, wm, {})] == ["antminer", "bosminer", "whatsminer", "cgminer"]
    via = [(s.transport, s.op) for s in plan.steps("restart", "antminer", {})]
    assert via == [("api", "command"), ("http", "reapply_conf"), ("ssh", "run")]
    assert [s.transport for s in plan.steps("reboot", "antminer", {})] == ["http", "ssh"]
    assert plan.steps("locate_on", "bosminer", {})[0].args["cmd"] == "miner fault_light on"
    assert plan.steps("exec", "cgminer", {"cmd": "uptime"})[0].args["cmd"] == "uptime"
