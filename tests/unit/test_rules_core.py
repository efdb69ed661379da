"""The rules core without I/O: conditions, the rules file, scopes, the engine and its fold."""

from __future__ import annotations

from pathlib import Path

import pytest

from minectl_py.events import model
from minectl_py.rules import expr, ruleset
from minectl_py.rules.engine import Engine
from minectl_py.rules.facts import FIELDS, NUMERIC, TEXT, facts
from minectl_py.rules.scope import Selector, SelectorError
from minectl_py.rules.state import RuleState

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000_000
MIN = 60_000


def cond(text, **variables):
    return expr.compile_condition(text, FIELDS, variables)


def fast_cond(text, **variables):
    return expr.compile_condition(text, FIELDS, variables, numeric=NUMERIC, texts=TEXT)


# ------------------------------------------------------------------------------ conditions
@pytest.mark.parametrize(
    "text, f, want",
    [
        ("temp_max > 90", {"temp_max": 91.0}, True),
        ("temp_max > 90", {"temp_max": 90.0}, False),
        ("temp_max > 90", {"temp_max": None}, False),
        ("temp_max <= 90", {"temp_max": None}, False),
        ("temp_max == null", {"temp_max": None}, True),
        ("temp_max != null", {"temp_max": 3.0}, True),
        ("state == online and hashrate_pct < 80", {"state": "online", "hashrate_pct": 50.0}, True),
        ("state == ONLINE and hashrate_pct < 80", {"state": "online", "hashrate_pct": 85.0}, False),
        ("state in (offline, failing)", {"state": "failing"}, True),
        ("state not in (offline, failing)", {"state": "online"}, True),
        ("state not in (offline, failing)", {"state": None}, False),
        ("model ~ '*s19*'", {"model": "Antminer S19 Pro"}, True),
        ("model !~ '*s19*'", {"model": "Antminer S9"}, True),
        ("not (fan_min > 0) or fans_zero > 0", {"fan_min": 0.0, "fans_zero": 1.0}, True),
        ("pool != $primary", {"pool": "stratum+tcp://b:3333"}, True),
        ("pool != $primary", {"pool": None}, False),
        ("pool != $primary", {"pool": "stratum+tcp://a:3333"}, False),
    ],
)
def test_conditions(text, f, want):
    c = cond(text, primary="stratum+tcp://a:3333")
    assert c.test(f) is want
    # the specialized paths for normalized facts agree with the general one
    full = facts({"mac": "02:00:00:00:00:01", **f}, T0 / 1000)
    full.update({k: (float(v) if isinstance(v, int) else v) for k, v in f.items()})
    assert fast_cond(text, primary="stratum+tcp://a:3333").test(full) is want


@pytest.mark.parametrize(
    "text, column, words",
    [
        ("temp_max >", 11, "expected a field"),
        ("tmp_max > 90", 1, "unknown field 'tmp_max'"),
        ("temp_max > 90 and", 18, "expected a field"),
        ("temp_max 90", 10, "expected a comparison"),
        ("(temp_max > 90", 15, "missing ')'"),
        ("pool != $nope", 9, "unknown variable $nope"),
        ("temp_max > 90 # x", 15, "unexpected character"),
        ("", 1, "empty condition"),
    ],
)
def test_condition_errors_name_the_column(text, column, words):
    with pytest.raises(expr.ExprError) as e:
        cond(text)
    assert e.value.column == column
    assert words in str(e.value)


# ------------------------------------------------------------------------------ rules file
def test_example_file_loads():
    rs = ruleset.load_file(str(ROOT / "files" / "rules" / "example.yml"))
    names = [r.name for r in rs.rules]
    assert "hot" in names and "low-hashrate" in names
    low = rs.rule("low-hashrate")
    assert [s.action for s in low.steps] == ["restart", "reboot"]
    assert low.hold_ms == 10 * MIN
    assert rs.rule("hot").hold_ms == 2 * MIN
    assert rs.rule("offline").hold_ms == 5 * MIN  # from defaults
    assert rs.variables["primary_pool"].startswith("stratum")
    assert rs.rule("s19-runs-hot").scope({"model": "Antminer S19", "rack": "R12"})
    assert not rs.rule("s19-runs-hot").scope({"model": "Antminer S19", "rack": "R31"})


BAD = """\
version: 1
limits:
  max_miners_acting: lots
rules:
  - name: hot
    when: temp_max >> 90
  - name: slow
    when: hashrate_pct < 80
    for: ten minutes
    actions: [restart, explode]
  - name: hot
    when: temp_max > 80
    scope: {shelf: 3}
  - when: fan_min == 0
    colour: red
"""


def test_check_reports_every_problem_with_line_and_field():
    with pytest.raises(ruleset.RulesFileError) as e:
        ruleset.load_text(BAD, source="bad.yml")
    lines = str(e.value).splitlines()
    assert any(x.startswith("bad.yml:3: limits.max_miners_acting: must be a whole number") for x in lines), lines
    assert any(x.startswith("bad.yml:6: rules[0].when: at column 11") for x in lines), lines
    assert any(x.startswith("bad.yml:9: rules[1].for: not a duration") for x in lines), lines
    assert any(x.startswith("bad.yml:10: rules[1].actions[1]: 'explode' is not one of") for x in lines), lines
    assert any(x.startswith("bad.yml:13: rules[2].scope.shelf: unknown scope key") for x in lines), lines
    assert any(x.startswith("bad.yml:14: rules[3]: every rule needs a name") for x in lines), lines
    assert any(x.startswith("bad.yml:15: rules[3].colour: unknown key") for x in lines), lines


def test_yaml_syntax_error_and_duplicate_names():
    with pytest.raises(ruleset.RulesFileError) as e:
        ruleset.load_text("rules:\n  - name: a\n    when: [unclosed\n", source="x.yml")
    assert str(e.value).startswith("x.yml:")
    assert "not valid YAML" in str(e.value)
    dup = "rules:\n  - name: a\n    when: temp_max > 1\n  - name: a\n    when: temp_max > 2\n"
    with pytest.raises(ruleset.RulesFileError) as e:
        ruleset.load_text(dup, source="d.yml")
    assert "d.yml:4: rules[1].name: duplicate rule name 'a' (first on line 2)" in str(e.value)
    with pytest.raises(ruleset.RulesFileError, match="duplicate key 'when'"):
        ruleset.load_text("rules:\n  - name: a\n    when: x\n    when: y\n")


def test_alias_bomb_is_refused():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    prev = "a"
    for i in range(8):
        name = f"b{i}"
        bomb += f"{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
        prev = name
    with pytest.raises(ruleset.RulesFileError, match="too large"):
        ruleset.load_text(bomb)


def test_selectors():
    s = Selector.parse("rack:R1* model:*s19*")
    assert s({"rack": "R12", "model": "Antminer S19"})
    assert not s({"rack": "R22", "model": "Antminer S19"})
    assert Selector.parse("aa:bb:cc:dd:ee:ff")({"mac": "aa:bb:cc:dd:ee:ff"})
    assert Selector.parse("10.0.0.7")({"ip": "10.0.0.7"})
    assert Selector.parse("r12-*")({"name": None, "hostname": "r12-s1"})
    assert Selector.parse("all").everything
    for bad in ("", "colour:red", "rack:", "x\x1b[2J"):
        with pytest.raises(SelectorError):
            Selector.parse(bad)


# ---------------------------------------------------------------------------------- engine
RULES = """\
version: 1
limits:
  actions_per_miner_per_hour: 3
  max_miners_acting: 4
  settle: 10m
  storm_percent: 20
  storm_min: 3
rules:
  - name: hot
    when: temp_max > 90
    for: 2m
    severity: critical
  - name: low-hashrate
    when: state == online and hashrate_pct < 80
    for: 10m
    retry: 5m
    actions: [restart, reboot]
"""


def fleet(n=20, over=None):
    over = over or {}
    out = {}
    for i in range(n):
        mac = f"02:00:00:00:00:{i:02x}"
        rec = {"mac": mac, "ip": f"10.0.0.{i + 1}", "name": f"m{i}", "state": "online", "hashrate_pct": 100.0}
        rec["temp_max"] = 70.0
        rec.update(over.get(mac, {}))
        out[mac] = facts(rec, T0 / 1000)
    return out


def mac(i):
    return f"02:00:00:00:00:{i:02x}"


class Run:
    """An engine plus the log it wrote, driven by a fake clock."""

    def __init__(self, text=RULES, **kw):
        self.rs = ruleset.load_text(text)
        self.state = RuleState()
        self.engine = Engine(self.rs, self.state, "test", **kw)
        self.log: list[dict] = []

    def at(self, minutes, miners):
        out = self.engine.cycle(miners, T0 + int(minutes * MIN))
        for e in out.events:
            model.parse(e)  # every record is a valid typed event
        self.log.extend(out.events)
        return out


def test_hot_alert_after_hold_and_clears():
    r = Run()
    hot = fleet(over={mac(3): {"temp_max": 95}})
    assert r.at(0, hot).count("alert") == 0  # pending only
    assert r.at(1.9, hot).count("alert") == 0
    out = r.at(2, hot)
    assert out.count("alert", state="raised", rule="hot", mac=mac(3)) == 1
    assert out.notices and out.notices[0][0]["rule"] == "hot"
    assert out.notices[0][0]["values"] == {"temp_max": 95}
    assert r.at(3, hot).count("alert") == 0  # raised once per episode
    out = r.at(4, fleet())
    cleared = [e for e in out.events if e["cmd"] == "alert"]
    assert len(cleared) == 1 and cleared[0]["state"] == "cleared"
    assert cleared[0]["raised_id"] == next(e["id"] for e in r.log if e.get("state") == "raised")


def test_flap_before_hold_does_not_alert():
    r = Run()
    hot = fleet(over={mac(1): {"temp_max": 95}})
    r.at(0, hot)
    out = r.at(1, fleet())
    assert out.count("rule", decision="ok") == 1
    r.at(1.5, hot)
    assert r.at(3, hot).count("alert") == 0  # the timer restarted at 1.5
    assert r.at(3.5, hot).count("alert", state="raised") == 1


def test_low_hashrate_restart_then_reboot_then_gives_up():
    r = Run()
    low = fleet(over={mac(5): {"hashrate_pct": 40}})
    r.at(0, low)
    out = r.at(10, low)
    assert [(a.action, a.step) for a in out.actions] == [("restart", 1)]
    assert r.at(14, low).actions == []  # retry 5m
    out = r.at(15, low)
    assert [(a.action, a.step) for a in out.actions] == [("reboot", 2)]
    assert r.at(24, low).actions == []  # backoff doubles: 10m after step 2
    out = r.at(25, low)
    assert out.actions == []
    ex = [e for e in out.events if e["cmd"] == "alert" and e["kind"] == "exhausted"]
    assert len(ex) == 1 and "giving up" in ex[0]["detail"] and ex[0]["severity"] == "critical"
    for m in (30, 60, 120):
        assert r.at(m, low).actions == [] and not r.at(m, low).events  # left alone, no spam
    out = r.at(121, fleet())
    assert out.count("alert", state="cleared") == 2  # exhausted and condition


def test_ladder_resumes_when_the_miner_went_dark_while_rebooting():
    r = Run()
    low = fleet(over={mac(5): {"hashrate_pct": 40}})
    dark = fleet(over={mac(5): {"state": "offline", "hashrate_pct": None}})
    r.at(0, low)
    assert [a.action for a in r.at(10, low).actions] == ["restart"]
    r.at(11, dark)  # restarting: the episode ends (the alert clears)
    r.at(12, low)  # back, still low: a new episode, the ladder resumes at step 2
    assert r.at(21, low).actions == []  # the hold time again
    assert [(a.action, a.step) for a in r.at(22, low).actions] == [("reboot", 2)]
    fresh = RuleState().apply_all(r.log)
    assert fresh.snapshot() == r.state.snapshot()
    # an hour after the last step, a new episode starts the ladder over
    r.at(30, fleet())
    r.at(83, low)
    assert [a.action for a in r.at(93, low).actions] == ["restart"]


def test_per_miner_hourly_limit():
    text = RULES.replace("actions_per_miner_per_hour: 3", "actions_per_miner_per_hour: 1")
    r = Run(text)
    low = fleet(over={mac(5): {"hashrate_pct": 40}})
    r.at(0, low)
    assert len(r.at(10, low).actions) == 1
    out = r.at(15, low)
    assert out.actions == [] and "limit of 1 action(s) per miner per hour" in out.events[-1]["detail"]


def test_site_wide_fault_is_not_a_reboot_storm():
    r = Run()
    sick = {mac(i): {"hashrate_pct": 30} for i in range(6)}  # 30 % of 20
    miners = fleet(over=sick)
    out = r.at(0, miners)
    assert out.count("rule", decision="storm", mac=None) == 1 and out.count("alert") == 0
    out = r.at(10, miners)
    assert out.actions == []
    site = [e for e in out.events if e["cmd"] == "alert" and e["kind"] == "site"]
    assert len(site) == 1 and site[0]["state"] == "raised" and "6 of 20" in site[0]["detail"]
    # per-miner alerts are recorded but only the site alert is notified
    assert out.count("alert", kind="condition", state="raised") == 6
    assert [n[0]["kind"] for n in out.notices] == ["site"]
    assert r.at(30, miners).actions == []
    # the fault goes away for most: the site alert clears, the rest are acted on within the site limit
    few = fleet(over={mac(i): {"hashrate_pct": 30} for i in range(2)})
    out = r.at(31, few)
    assert out.count("alert", kind="site", state="cleared") == 1
    assert sorted(a.mac for a in out.actions) == [mac(0), mac(1)]


def test_site_limit_defers_beyond_max_acting():
    r = Run(RULES.replace("storm_percent: 20", "storm_percent: 50"))
    miners = fleet(over={mac(i): {"hashrate_pct": 30} for i in range(6)})
    r.at(0, miners)
    out = r.at(10, miners)
    assert len(out.actions) == 4  # max_miners_acting
    assert out.count("rule", decision="deferred") == 2
    assert r.at(11, miners).count("rule", decision="deferred") == 0  # recorded once
    out = r.at(21, miners)  # settle window passed: the deferred two go, the first four take step 2
    assert sorted(a.mac for a in out.actions if a.step == 1) == [mac(4), mac(5)]


def test_silence_holds():
    r = Run()
    silence = model.Silence.new("test", at_ms=T0, state="set", selector="name:m5", until_ms=T0 + 60 * MIN).to_record()
    r.state.apply(silence)
    low = fleet(over={mac(5): {"hashrate_pct": 40}})
    r.at(0, low)
    out = r.at(10, low)
    assert out.actions == [] and out.notices == []
    raised = [e for e in out.events if e["cmd"] == "alert"]
    assert raised and raised[0]["silenced"] is True  # recorded, not notified
    assert out.count("rule", decision="silenced") == 1
    assert r.at(59, low).actions == []
    assert [a.action for a in r.at(60, low).actions] == ["restart"]  # the silence ended


def test_replay_rebuilds_state_and_does_not_refire():
    r = Run()
    low = fleet(over={mac(5): {"hashrate_pct": 40}, mac(7): {"temp_max": 99}})
    for m in (0, 10, 12):
        r.at(m, low)
    fresh = RuleState().apply_all(r.log)
    assert fresh.snapshot() == r.state.snapshot()
    again = Engine(r.rs, fresh, "test")
    out = again.cycle(low, T0 + 13 * MIN)
    assert out.events == [] and out.actions == []
    out = again.cycle(low, T0 + 15 * MIN)
    assert [a.action for a in out.actions] == ["reboot"]


def test_checkpoint_restores():
    r = Run()
    low = fleet(over={mac(5): {"hashrate_pct": 40}})
    r.at(0, low)
    r.at(10, low)
    cp = r.engine.checkpoint(T0 + 11 * MIN)
    model.parse(cp)
    fresh = RuleState()
    fresh.apply(cp)
    assert fresh.snapshot() == r.state.snapshot()


def test_lease_changes_counted():
    st = RuleState()
    for i, (act, ip) in enumerate([("add", "10.0.0.1"), ("old", "10.0.0.1"), ("old", "10.0.0.2"), ("del", "10.0.0.2")]):
        st.apply(model.Lease.new("t", at_ms=T0 + i * MIN, action=act, mac="02:00:00:00:00:01", ip=ip).to_record())
    assert st.count_since(st.leases, "02:00:00:00:00:01", T0 - 1) == 3


def test_rebuild_reads_back_to_the_newest_checkpoint_only(tmp_path):
    from minectl_py.events.writer import EventWriter
    from minectl_py.rules import replay

    live = tmp_path / "events.log"
    r = Run()
    low = fleet(over={mac(5): {"hashrate_pct": 40}})
    r.at(0, low)
    r.at(10, low)  # restart taken
    cp = r.engine.checkpoint(T0 + 11 * MIN)
    later = r.at(15, low).events  # reboot taken
    # an older daily segment holds records that contradict the checkpoint: it must not be read
    old = tmp_path / "events-20000101.log"
    bogus = model.Silence.new("t", at_ms=T0 - MIN, state="set", selector="all", until_ms=T0 + 999 * MIN).to_record()
    with EventWriter(str(old), rotate=False) as w:
        w.append(bogus)
    with EventWriter(str(live), rotate=False) as w:
        w.append_many([*r.log[:3], cp, *later])
    st = replay.rebuild(str(live), T0 + 16 * MIN, lookback_ms=10**12)
    assert st.silences == {}
    assert st.snapshot() == r.state.snapshot()
    assert st.tracks[("low-hashrate", mac(5))].step == 2


def test_a_removed_rule_clears_its_alerts():
    r = Run()
    hot = fleet(over={mac(3): {"temp_max": 95}})
    r.at(0, hot)
    r.at(2, hot)
    assert any(k[0] == "hot" for k in r.state.tracks)
    only_low = RULES[: RULES.index("  - name: hot")] + RULES[RULES.index("  - name: low-hashrate") :]
    r2 = Engine(ruleset.load_text(only_low), RuleState().apply_all(r.log), "test")
    out = r2.cycle(hot, T0 + 3 * MIN)
    assert [(e["rule"], e["state"]) for e in out.events if e["cmd"] == "alert"] == [("hot", "cleared")]
    assert not any(k[0] == "hot" for k in r2.state.tracks)
    assert r2.cycle(hot, T0 + 4 * MIN).events == []


def test_a_scheduled_maintenance_window():
    r = Run()
    win = model.Silence.new(
        "test", at_ms=T0, state="set", selector="rack:r*", from_ms=T0 + 30 * MIN, until_ms=T0 + 90 * MIN
    ).to_record()
    r.state.apply(win)
    low = fleet(over={mac(5): {"hashrate_pct": 40, "rack": "R1"}, mac(6): {"hashrate_pct": 40, "rack": "R1"}})
    r.at(0, low)
    assert len(r.at(10, low).actions) == 2  # before the window: acted on
    r.at(20, fleet())
    r.at(25, low)
    out = r.at(35, low)  # inside the window
    assert out.actions == [] and out.count("rule", decision="silenced") == 2
    assert out.notices == []
    fresh = RuleState().apply_all([win, *r.log])
    assert fresh.snapshot() == r.state.snapshot()
