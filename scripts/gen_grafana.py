"""Write the Grafana site dashboards (files/grafana/*.json) for the MariaDB and InfluxDB datasources.

The same panels for both: site hashrate against nominal, miners by state, hashrate per rack,
a temperature heat map, availability, worst miners, underperformers, lease churn, the
timeline, and events (faults, actions, alerts) as annotations. Run after changing a view::

    .venv/bin/python -m scripts.gen_grafana        # rewrites files/grafana/minectl-site-*.json

tests/integration/test_grafana.py runs every query of both files against real databases.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "files" / "grafana"
MYSQL = {"type": "mysql", "uid": "minectl-mysql"}
INFLUX = {"type": "influxdb", "uid": "minectl-influx"}

# (title, kind, width, height, mysql sql, mysql format, influx query, influx format, field config)
R = "period = $rollup AND $__timeFilter(ts)"
PANELS: list[tuple[str, str, int, int, str, str, str, str, dict[str, Any]]] = [
    (
        "Site hashrate",
        "stat",
        6,
        5,
        f"SELECT ts AS time, ths FROM hashrate_site WHERE {R} ORDER BY ts",
        "time_series",
        'SELECT last("ths") AS "ths" FROM "$rp"."hashrate_site" WHERE $timeFilter',
        "time_series",
        {"unit": "none", "decimals": 0, "custom": {}, "displayName": "TH/s"},
    ),
    (
        "Hashrate % of nominal",
        "gauge",
        6,
        5,
        f"SELECT ts AS time, pct FROM hashrate_site WHERE {R} ORDER BY ts",
        "time_series",
        'SELECT last("pct") AS "pct" FROM "$rp"."hashrate_site" WHERE $timeFilter',
        "time_series",
        {"unit": "percent", "min": 0, "max": 110},
    ),
    (
        "Miners online",
        "stat",
        6,
        5,
        f"SELECT ts AS time, online FROM miner_states WHERE {R} ORDER BY ts",
        "time_series",
        'SELECT last("online") AS "online" FROM "$rp"."miner_states" WHERE $timeFilter',
        "time_series",
        {"unit": "none", "decimals": 0},
    ),
    (
        "Availability",
        "stat",
        6,
        5,
        f"SELECT ts AS time, availability * 100 AS availability FROM availability_site WHERE {R} ORDER BY ts",
        "time_series",
        'SELECT mean("availability") * 100 AS "availability" FROM "$rp"."availability_site" WHERE $timeFilter',
        "time_series",
        {"unit": "percent", "decimals": 2},
    ),
    (
        "Total hashrate against nominal",
        "timeseries",
        24,
        9,
        f'SELECT ts AS time, ths AS "hashrate TH/s", nominal_ths AS "nominal TH/s" FROM hashrate_site '
        f"WHERE {R} ORDER BY ts",
        "time_series",
        'SELECT mean("ths") AS "hashrate TH/s", mean("nominal_ths") AS "nominal TH/s" FROM "$rp"."hashrate_site" '
        "WHERE $timeFilter GROUP BY time($__interval) fill(none)",
        "time_series",
        {"unit": "none"},
    ),
    (
        "Miners by state",
        "timeseries",
        12,
        9,
        f"SELECT ts AS time, online, failing, offline, new FROM miner_states WHERE {R} ORDER BY ts",
        "time_series",
        'SELECT mean("online") AS "online", mean("failing") AS "failing", mean("offline") AS "offline", '
        'mean("new") AS "new" FROM "$rp"."miner_states" WHERE $timeFilter GROUP BY time($__interval) fill(none)',
        "time_series",
        {"custom": {"stacking": {"mode": "normal"}, "fillOpacity": 60}},
    ),
    (
        "Hashrate per rack",
        "timeseries",
        12,
        9,
        f"SELECT ts AS time, rack AS metric, ths FROM hashrate_rack WHERE {R} ORDER BY ts",
        "time_series",
        'SELECT mean("ths") AS "ths" FROM "$rp"."hashrate_rack" WHERE $timeFilter '
        'GROUP BY time($__interval), "rack" fill(none)',
        "time_series",
        {"unit": "none"},
    ),
    (
        "Temperature heat map (miners per 5 °C)",
        "heatmap",
        12,
        9,
        f"SELECT ts AS time, CAST(bin_c AS CHAR) AS metric, miners FROM temps_hist WHERE {R} ORDER BY ts",
        "time_series",
        'SELECT mean("miners") AS "miners" FROM "$rp"."temps_hist" WHERE $timeFilter '
        'GROUP BY time($__interval), "bin_c" fill(0)',
        "time_series",
        {},
    ),
    (
        "Site availability",
        "timeseries",
        12,
        9,
        f'SELECT ts AS time, availability * 100 AS "availability %", restarts FROM availability_site '
        f"WHERE {R} ORDER BY ts",
        "time_series",
        'SELECT mean("availability") * 100 AS "availability %", sum("restarts") AS "restarts" '
        'FROM "$rp"."availability_site" WHERE $timeFilter GROUP BY time($__interval) fill(none)',
        "time_series",
        {},
    ),
    (
        "Worst miners (lowest % of nominal)",
        "table",
        12,
        10,
        "SELECT mac, name, rack, model, ROUND(AVG(ths), 2) AS ths, ROUND(AVG(nominal_ths), 2) AS nominal, "
        f"ROUND(AVG(pct), 1) AS pct FROM hashrate_miner WHERE {R} GROUP BY mac, name, rack, model "
        "ORDER BY pct ASC LIMIT 25",
        "table",
        'SELECT bottom("pct", "mac", 25) AS "pct" FROM (SELECT mean("pct") AS "pct" FROM "$rp"."hashrate_miner" '
        'WHERE $timeFilter GROUP BY "mac")',
        "table",
        {},
    ),
    (
        "Underperformers",
        "table",
        12,
        10,
        "SELECT ts AS time, name, mac, rack, model, ths, nominal_ths, pct FROM underperformers "
        "WHERE period = GREATEST($rollup, 300) AND $__timeFilter(ts) ORDER BY ts DESC, pct ASC LIMIT 200",
        "table",
        'SELECT "ths", "nominal_ths", "pct", "mac", "name", "rack" FROM "$rp"."hashrate_miner" '
        'WHERE $timeFilter AND "pct" < 90 ORDER BY time DESC LIMIT 200',
        "table",
        {},
    ),
    (
        "Lease churn",
        "timeseries",
        12,
        8,
        f"SELECT ts AS time, adds, renewals, releases, new_macs, ip_changes FROM leases_site WHERE {R} ORDER BY ts",
        "time_series",
        'SELECT sum("adds") AS "adds", sum("renewals") AS "renewals", sum("releases") AS "releases", '
        'sum("new_macs") AS "new_macs", sum("ip_changes") AS "ip_changes" FROM "$rp"."leases_site" '
        "WHERE $timeFilter GROUP BY time($__interval) fill(none)",
        "time_series",
        {"custom": {"drawStyle": "bars"}},
    ),
    (
        "Faults and admin actions",
        "table",
        12,
        8,
        "SELECT ts_ms AS time, kind, name, mac, rack, what, result, detail FROM timeline "
        "WHERE $__timeFilter(ts_ms) ORDER BY ts_ms DESC LIMIT 200",
        "table",
        'SELECT "kind", "mac", "name", "what", "result", "detail" FROM "m1"."timeline" '
        "WHERE $timeFilter ORDER BY time DESC LIMIT 200",
        "table",
        {},
    ),
]

ANNOTATION_SQL = (
    "SELECT ts_ms AS time, CONCAT(kind, ' ', name, ' ', mac, ': ', what, ' ', result) AS text, kind AS tags "
    "FROM timeline WHERE $__timeFilter(ts_ms) ORDER BY ts_ms"
)
ANNOTATION_INFLUX = 'SELECT "what", "kind", "mac" FROM "m1"."timeline" WHERE $timeFilter'


def _target(ds: dict[str, str], q: str, fmt: str) -> dict[str, Any]:
    if ds is MYSQL:
        return {"refId": "A", "datasource": ds, "rawQuery": True, "editorMode": "code", "format": fmt, "rawSql": q}
    return {"refId": "A", "datasource": ds, "rawQuery": True, "resultFormat": fmt, "query": q}


def dashboard(kind: str) -> dict[str, Any]:
    ds = MYSQL if kind == "mysql" else INFLUX
    panels = []
    x = y = 0
    row_h = 0
    for i, (title, ptype, w, h, sql, sfmt, iq, ifmt, fc) in enumerate(PANELS, start=1):
        if x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        q, fmt = (sql, sfmt) if ds is MYSQL else (iq, ifmt)
        p: dict[str, Any] = {
            "id": i,
            "type": ptype,
            "title": title,
            "datasource": ds,
            "gridPos": {"x": x, "y": y, "w": w, "h": h},
            "targets": [_target(ds, q, fmt)],
            "fieldConfig": {"defaults": fc, "overrides": []},
            "options": {},
        }
        if ptype in ("stat", "gauge"):
            p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
        if ptype == "table":
            p["options"] = {"showHeader": True}
        panels.append(p)
        x += w
        row_h = max(row_h, h)
    if ds is MYSQL:
        var = {
            "name": "rollup",
            "label": "Rollup",
            "type": "custom",
            "query": "1m : 60, 5m : 300, 1h : 3600",
            "current": {"text": "5m", "value": "300"},
            "options": [
                {"text": t, "value": v, "selected": v == "300"}
                for t, v in (("1m", "60"), ("5m", "300"), ("1h", "3600"))
            ],
        }
        ann = {
            "datasource": ds,
            "enable": True,
            "name": "Faults and actions",
            "iconColor": "red",
            "rawQuery": ANNOTATION_SQL,
        }
    else:
        var = {
            "name": "rp",
            "label": "Rollup",
            "type": "custom",
            "query": "m1,m5,h1",
            "current": {"text": "m5", "value": "m5"},
            "options": [{"text": v, "value": v, "selected": v == "m5"} for v in ("m1", "m5", "h1")],
        }
        ann = {
            "datasource": ds,
            "enable": True,
            "name": "Faults and actions",
            "iconColor": "red",
            "query": ANNOTATION_INFLUX,
            "textColumn": "what",
            "tagsColumn": "kind",
        }
    return {
        "uid": f"minectl-site-{kind}",
        "title": f"Mine site ({'MariaDB' if kind == 'mysql' else 'InfluxDB'})",
        "description": "minectl reductions: hashrate, states, racks, temperatures, availability, faults",
        "tags": ["minectl", kind],
        "timezone": "utc",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "1m",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-24h", "to": "now"},
        "templating": {"list": [var]},
        "annotations": {"list": [ann]},
        "panels": panels,
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for kind in ("mysql", "influx"):
        path = OUT / f"minectl-site-{kind}.json"
        path.write_text(json.dumps(dashboard(kind), indent=2, ensure_ascii=False) + "\n")
        print(path)


if __name__ == "__main__":
    main()
