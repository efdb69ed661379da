"""Reductions: the views' values (checked by hand), input forms, bad records, idempotence, memory."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import subprocess
import sys

import pytest

from minectl_py.reduce.base import Context
from minectl_py.reduce.engine import Engine
from minectl_py.reduce.inventory import Inventory, InventoryError
from minectl_py.reduce.sink_sqlite import SQLiteSink, dump
from minectl_py.reduce.sink_stdout import StdoutSink
from minectl_py.reduce.source import FastReader
from minectl_py.reduce.views import ALL
from tests import reduce_data as D
from tests.conftest import ROOT, run_minectl

M0 = D.T0 // 1000  # epoch s of minute 0


class Collect:
    """A sink that keeps every row, by view."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple]] = {}

    def write(self, view, rows) -> None:
        self.rows.setdefault(view.name, []).extend(rows)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def get(self, view: str, period: int = 60) -> dict:
        v = ALL[view]
        return {r[1 : v.nkeys]: r for r in self.rows.get(view, []) if r[0] == period}


def reduce(recs, names=("all",), inventory=None, **kw) -> tuple[Collect, Engine]:
    sink = Collect()
    inv = Inventory()
    if inventory:
        inv.load_csv(str(inventory))
    eng = Engine(list(names), [sink], Context(inventory=inv), **kw)
    eng.feed_all(recs)
    eng.finish()
    return sink, eng


@pytest.fixture
def inv_csv(tmp_path):
    p = tmp_path / "site.csv"
    p.write_text("# the site\n" + D.INVENTORY)
    return p


def test_hashrate_site_rack_miner_and_rollups(inv_csv):
    out, _ = reduce(D.site(), ["hashrate"], inventory=inv_csv)
    site = out.get("hashrate_site")
    assert site[(M0,)][2:] == (34.25, 40.5, pytest.approx(84.5679, abs=1e-4), 3.0)
    assert site[(M0 + 5 * 60,)][2:4] == (20.25, 27.0)  # miner 3 failing: not counted
    assert len(site) == 12
    five = out.get("hashrate_site", 300)
    assert five[(M0,)][2] == 34.25
    assert five[(M0 + 300,)][2] == pytest.approx((2 * 20.25 + 3 * 34.25) / 5)
    hour = out.get("hashrate_site", 3600)
    assert list(hour) == [(M0,)]
    racks = out.get("hashrate_rack")
    assert racks[(M0, "R1")][3] == 20.25 and racks[(M0, "R2")][3] == 14.0
    miners = out.get("hashrate_miner")
    m1 = miners[(M0, D.MACS[0])]
    assert m1[3:7] == ("s9-1", "R1", "Antminer S9", 13.5) and m1[-1] == 2  # mean of 13.0 and 14.0
    under = out.get("underperformers", 300)
    assert {k[1] for k in under} == {D.MACS[1]}  # only the half-speed miner
    assert under[(M0, D.MACS[1])][-1] == 50.0
    assert not out.get("underperformers", 60)


def test_availability_states_temperature_leases_timeline():
    out, eng = reduce(D.site())
    av = out.get("availability_miner")
    assert av[(M0 + 300, D.MACS[2])][4:7] == (0, 2, 0.0)
    assert av[(M0 + 420, D.MACS[2])][-1] == 1  # uptime went down: a restart
    assert sum(r[-1] for r in av.values()) == 1
    site = out.get("availability_site")
    assert site[(M0 + 300,)][3:6] == (4, 2, 0.6667)
    states = out.get("miner_states")
    assert states[(M0,)][2:] == (3.0, 0.0, 0.0, 0.0, 3.0)
    assert states[(M0 + 300,)][2:4] == (2.0, 1.0)
    temps = out.get("temps_miner")
    t2 = temps[(M0, D.MACS[1])]
    assert t2[4] == 88.0 and t2[6] == 0 and t2[8] == 1  # hottest, slowest fan, dead fans
    hist = out.get("temps_hist")
    assert hist[(M0, 70)][3] == 2.0 and hist[(M0, 85)][3] == 1.0
    leases = out.get("leases_site")
    assert leases[(M0 - 60,)][2:] == (3, 0, 0, 3, 0)
    tl = sorted(out.rows["timeline"], key=lambda r: r[1])
    assert [r[2] for r in tl] == ["fault", "action", "recovered"]
    assert tl[0][3] == D.MACS[2] and tl[0][7] == "timeout" and tl[0][5] == "r1-s9-3"  # name from the lease
    assert tl[1][7] == "ops: reboot" and tl[1][8] == "ok"
    assert eng.ctx.invalid == 0 and eng.ctx.late == 0


def test_rack_from_records_when_no_inventory():
    recs = [D.poll(D.T0 + 1000, D.MACS[0], 10.0, rack="A7"), D.poll(D.T0 + 2000, D.MACS[1], 5.0)]
    recs[1]["miner"]["rack"] = "B2"
    out, _ = reduce(recs, ["hashrate"])
    assert set(k[1] for k in out.get("hashrate_rack")) == {"A7", "B2"}


@pytest.mark.parametrize("form", ["fluentd", "rs", "lines"])
@pytest.mark.parametrize("gz", [False, True])
def test_every_input_form_gives_the_same_views(tmp_path, form, gz):
    recs = D.site()
    ref, _ = reduce(recs)
    p = D.write(tmp_path / "in.log", recs, form, gz)
    sink = Collect()
    eng = Engine(["all"], [sink], Context())
    eng.feed_batches(FastReader([str(p)]).batches())
    eng.finish()
    assert sink.rows == ref.rows


def test_bad_records_are_counted_with_file_and_line_never_fatal(tmp_path):
    recs = D.site(minutes=3)
    lines = [D.fluentd_line(r) for r in recs]
    lines.insert(4, b"20180704T000000-0700\tmainstream\t{not json\n")
    lines.insert(7, b"garbage\x01\n")
    bad_type = D.poll(D.T0 + 5, D.MACS[0], 1.0)
    bad_type["miner"]["hashrate_ths"] = "fast"
    lines.insert(9, D.fluentd_line(bad_type))
    lines.append(b'{"created_at_ms":"1530687')  # truncated last line
    p = tmp_path / "bad.log"
    p.write_bytes(b"".join(lines))
    r = run_minectl("reduce", "hashrate", str(p), "--stats")
    assert r.returncode == 0, r.stderr
    err = r.stderr.decode()
    assert f"{p}:5: not JSON" in err and f"{p}:8: not JSON" in err
    assert "truncated last line" in err
    assert "$.miner.hashrate_ths" in err and f"{p}:10" in err
    stats = json.loads(err.strip().splitlines()[-1])
    assert stats["bad"] == 3 and stats["invalid"] == 1
    good = run_minectl("reduce", "hashrate", str(D.write(tmp_path / "good.log", recs)))
    assert r.stdout == good.stdout  # the good records around the bad ones all counted


def test_late_records_are_counted_not_silently_dropped():
    recs = D.site(minutes=20)
    recs.append(D.poll(D.T0 + 1000, D.MACS[0], 99.0))  # 20 minutes late
    out, eng = reduce(recs, ["hashrate"], lateness_s=300)
    assert eng.ctx.late == 1
    assert out.get("hashrate_site")[(M0,)][2] == 34.25


def test_memory_stays_bounded_to_the_lateness_window():
    eng = Engine(["all"], [Collect()], Context(), lateness_s=120)
    most = 0
    for rec in D.site(minutes=90):
        eng.feed_all([rec])
        most = max(most, *(len(r.buckets) for r in eng.reductions))
    assert most <= 4  # the open minutes: lateness / 60 + the current one + one
    assert all(len(b) <= 2 for ru in eng.rollups.values() for b in ru.open.values())


def test_sqlite_upserts_are_idempotent(tmp_path):
    p = D.write(tmp_path / "in.log.gz", D.site(), gz=True)
    db = tmp_path / "v.sqlite"
    for _ in range(2):
        r = run_minectl("reduce", "all", str(p), "--db", str(db))
        assert r.returncode == 0, r.stderr
        if _ == 0:
            first = dump(str(db))
    assert dump(str(db)) == first
    assert set(first) == set(ALL)
    assert first["hashrate_site"] and first["timeline"]


def test_sqlite_sink_keeps_committed_batches(tmp_path):
    db = tmp_path / "v.sqlite"
    s = SQLiteSink(str(db))
    v = ALL["hashrate_site"]
    s.write(v, [(60, M0, 1.0, 2.0, 50.0, 1.0)])
    s.flush()
    s.write(v, [(60, M0 + 60, 1.0, 2.0, 50.0, 1.0)])  # never flushed: a crash
    assert dump(str(db))["hashrate_site"] == [(60, M0, 1.0, 2.0, 50.0, 1.0)]


@pytest.mark.skipif(not shutil.which("zcat") or not shutil.which("grep"), reason="needs zcat and grep")
@pytest.mark.parametrize("with_grep", [True, False])
def test_the_seeds_pipeline(tmp_path, with_grep):
    for day, part in (("20180704", D.site()[:40]), ("20180705", D.site()[40:])):
        D.write(tmp_path / f"data.{day}.log.gz", part, gz=True)
    grep = "| grep -o '{.*' " if with_grep else ""
    cmd = f"zcat data.2018070*.log.gz {grep}| {sys.executable} -m minectl_py reduce hashrate"
    r = subprocess.run(cmd, shell=True, cwd=tmp_path, capture_output=True, env={"PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0].split() == ["ts", "ths", "nominal_ths", "pct", "miners"]
    assert lines[1].split()[:4] == ["2018-07-04", "07:00", "34.25", "40.50"]
    assert len(lines) == 13


def test_stdout_formats():
    v = ALL["hashrate_site"]
    row = (60, M0, 34.25, 40.5, 84.5679, 3.0)
    for fmt, want in (
        ("csv", "ts,ths,nominal_ths,pct,miners\n1530687600,34.25,40.5,84.5679,3.0\n"),
        ("json", '\x1e{"period":60,"ts":1530687600,"ths":34.25,"nominal_ths":40.5,"pct":84.5679,"miners":3.0}\n'),
    ):
        buf = io.StringIO()
        s = StdoutSink("hashrate_site", 60, fmt, buf)
        s.write(v, [row, (300, M0, 1.0, 1.0, 1.0, 1.0)])
        assert buf.getvalue() == want


def test_inventory_errors_name_file_and_line(tmp_path):
    p = tmp_path / "site.csv"
    p.write_text("mac,name,rack\n00:0e:00:00:00:01,a,R1\nnot-a-mac,b,R2\n")
    with pytest.raises(InventoryError, match=r"site.csv:3: not a MAC"):
        Inventory.from_csv(str(p))
    p.write_text("name,rack\n")
    with pytest.raises(InventoryError, match="no 'mac' column"):
        Inventory.from_csv(str(p))
    r = run_minectl("reduce", "hashrate", "--inventory", str(tmp_path / "nope.csv"), "-", input=b"")
    assert r.returncode == 2 and b"nope.csv" in r.stderr


def test_hostile_strings_are_cleaned():
    recs = [D.lease(D.T0, D.MACS[0], hostname="evil\x1b[31m\nname"), D.poll_fail(D.T0 + 10, D.MACS[0])]
    recs[1]["detail"] = "bad\x07\x1b]0;pwned\x07 thing"
    out, _ = reduce(recs, ["timeline"])
    (row,) = out.rows["timeline"]
    assert row[5] == "evil[31mname" and "\x1b" not in row[9] and "\x07" not in row[9]


def test_report_writes_plots_and_one_html_page(tmp_path, inv_csv):
    recs = D.site(minutes=30)
    recs.append(D.lease(D.T0 + 5, D.MACS[0], "old", hostname="<script>x</script>"))
    p = D.write(tmp_path / "in.log.gz", recs, gz=True)
    out = tmp_path / "report"
    r = run_minectl("reduce", str(p), "--report", str(out))
    assert r.returncode == 0, r.stderr
    for name in ("hashrate.png", "racks.png", "temperatures.png", "availability.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    page = (out / "index.html").read_text()
    assert page.count("<img ") == 4 and "<script>" not in page
    assert "ops: reboot" in page and "00:0e:00:00:00:02" in page  # timeline and the worst miner
    bad = tmp_path / "empty.sqlite"
    bad.write_bytes(b"")
    from minectl_py.reduce.report import main as report_main

    assert report_main([str(bad), str(tmp_path / "r2")]) == 2


def test_report_of_a_log_without_faults_or_actions(tmp_path):
    """No fault, alert or admin action: no timeline table in the views file, and still a report."""
    p = D.write(tmp_path / "calm.log", D.site(minutes=12, fail_at=999), form="rs")
    out = tmp_path / "report"
    r = run_minectl("reduce", str(p), "--report", str(out))
    assert r.returncode == 0, r.stderr
    db = sqlite3.connect(out / "views.sqlite")
    assert "timeline" not in {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    assert (out / "index.html").read_text().count("<img ") == 4


def test_inventory_events_place_miners_in_racks():
    inv = [D.env(D.T0 - 5000, "inventory", action="set", mac=m, name=f"n{i}", rack=f"K{i % 2}", source="site.csv")
           for i, m in enumerate(D.MACS)]  # fmt: skip
    out, _ = reduce(inv + D.site(minutes=2), ["hashrate"])
    assert {k[1] for k in out.get("hashrate_rack")} == {"K0", "K1"}
    gone = [D.env(D.T0 - 4000, "inventory", action="remove", mac=D.MACS[1])]
    out, _ = reduce(inv + gone + D.site(minutes=2), ["hashrate"])
    assert out.get("hashrate_rack")[(M0, "")][-1] == 1.0  # one miner without a rack now
