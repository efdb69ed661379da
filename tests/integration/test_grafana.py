"""The Grafana dashboards: structure, provisioning, and every panel's query run for real.

Grafana is not installable here, so each panel's (and annotation's) query is expanded with
tests/grafana_expand.py, for every value of the dashboard's rollup variable, and run
against real MariaDB (as the read-only ``grafana`` user) and InfluxDB after a reduction;
each must return rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests import reduce_data as D
from tests.conftest import ROOT, run_minectl
from tests.grafana_expand import expand_influx, expand_mysql

GRAFANA = ROOT / "files" / "grafana"
DASHBOARDS = sorted(GRAFANA.glob("*.json"))
PANEL_TYPES = {"timeseries", "stat", "gauge", "table", "heatmap", "barchart", "text"}


def load(p: Path) -> dict:
    return json.loads(p.read_text())


def queries(d: dict) -> list[tuple[str, str, str]]:
    """(where, datasource type, query) for every target and annotation."""
    out = []
    for p in d["panels"]:
        for t in p["targets"]:
            ds = t.get("datasource") or p["datasource"]
            out.append((f"panel {p['title']!r}", ds["type"], t.get("rawSql") or t.get("query")))
    for a in d["annotations"]["list"]:
        out.append((f"annotation {a['name']!r}", a["datasource"]["type"], a.get("rawQuery") or a.get("query")))
    return out


def test_two_dashboards_one_per_datasource():
    assert [p.name for p in DASHBOARDS] == ["minectl-site-influx.json", "minectl-site-mysql.json"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path):
    d = load(path)
    assert 8 <= len(d["uid"]) <= 40 and d["title"] and "id" not in d
    assert isinstance(d["schemaVersion"], int) and d["time"]["from"].startswith("now-")
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    titles = " ".join(p["title"].lower() for p in d["panels"])
    for want in ("against nominal", "by state", "per rack", "heat map", "worst miners", "faults"):
        assert want in titles
    occupied = set()
    for p in d["panels"]:
        g = p["gridPos"]
        assert 1 <= g["w"] <= 24 and g["x"] + g["w"] <= 24 and g["h"] >= 1
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & occupied, f"panel {p['title']} overlaps another"
        occupied |= cells
        assert p["type"] in PANEL_TYPES
        assert p["datasource"]["uid"] in ("minectl-mysql", "minectl-influx")
        for t in p["targets"]:
            assert t["refId"] and t["rawQuery"] is True
            if p["datasource"]["type"] == "mysql":
                assert t["format"] in ("time_series", "table") and t["rawSql"]
                if t["format"] == "time_series":
                    assert "AS time" in t["rawSql"] and "ORDER BY ts" in t["rawSql"]
            else:
                assert t["resultFormat"] in ("time_series", "table") and t["query"]
    assert d["annotations"]["list"] and d["templating"]["list"]


def test_provisioning_files_match_the_dashboards():
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources.yaml").read_text())
    uids = {s["uid"]: s["type"] for s in ds["datasources"]}
    assert uids == {"minectl-mysql": "mysql", "minectl-influx": "influxdb"}
    used = {(p["datasource"]["uid"], p["datasource"]["type"]) for d in map(load, DASHBOARDS) for p in d["panels"]}
    assert used <= set(uids.items())
    prov = yaml.safe_load((GRAFANA / "provisioning" / "dashboards.yaml").read_text())
    (provider,) = prov["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


def test_the_generator_wrote_these_files():
    from scripts.gen_grafana import dashboard

    for kind in ("mysql", "influx"):
        assert load(GRAFANA / f"minectl-site-{kind}.json") == dashboard(kind)


@pytest.fixture(scope="module")
def reduced(mariadb, influxdb, tmp_path_factory):
    p = D.write(tmp_path_factory.mktemp("grafana") / "data.log.gz", D.site(minutes=130), gz=True)
    inv = tmp_path_factory.mktemp("inv") / "site.csv"
    inv.write_text(D.INVENTORY)
    r = run_minectl(
        "reduce", "all", str(p), "--inventory", str(inv), "--db", mariadb.database("grafana"),
        "--db", influxdb.url("grafana", retention="INF"),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return D.T0 // 1000 - 3600, D.T0 // 1000 + 3 * 3600


@pytest.mark.integration
@pytest.mark.parametrize("rollup", ["60", "300", "3600"])
def test_every_mysql_query_returns_rows(mariadb, reduced, rollup):
    frm, to = reduced
    d = load(GRAFANA / "minectl-site-mysql.json")
    conn = mariadb.connect("grafana", "grafana-pw", db="grafana")  # the read-only user Grafana uses
    for where, kind, q in queries(d):
        assert kind == "mysql"
        sql = expand_mysql(q, frm, to, 60, {"rollup": rollup})
        with conn.cursor() as cur:
            cur.execute(sql)
            rows = cur.fetchall()
        assert rows, f"{where} returned no rows: {sql}"


@pytest.mark.integration
@pytest.mark.parametrize("rp", ["m1", "m5", "h1"])
def test_every_influx_query_returns_rows(influxdb, reduced, rp):
    frm, to = reduced
    d = load(GRAFANA / "minectl-site-influx.json")
    for where, kind, q in queries(d):
        assert kind == "influxdb"
        iq = expand_influx(q, frm, to, 300, {"rp": rp})
        res = influxdb.query(iq, db="grafana")["results"][0]
        assert "error" not in res, f"{where}: {res['error']}: {iq}"
        values = [v for s in res.get("series", []) for v in s["values"] if any(x is not None for x in v[1:])]
        assert values, f"{where} returned no rows: {iq}"
