"""Reductions into real MariaDB and InfluxDB: values, idempotence, servers down or going away."""

from __future__ import annotations

from datetime import UTC

import pytest

from minectl_py.reduce.base import Context
from minectl_py.reduce.engine import Engine
from minectl_py.reduce.sink_mariadb import MariaDBSink
from minectl_py.reduce.sink_sqlite import dump
from minectl_py.reduce.sinks import SinkError, open_sink
from minectl_py.reduce.views import ALL
from tests import reduce_data as D
from tests.conftest import run_minectl
from tests.integration.dbservers import MariaDB, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def site_file(tmp_path_factory):
    return D.write(tmp_path_factory.mktemp("events") / "data.20180704.log.gz", D.site(minutes=70), gz=True)


def table(conn, name: str) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM `{name}`")
        return sorted(cur.fetchall(), key=repr)


def test_mariadb_views_match_sqlite_and_reruns_change_nothing(mariadb, site_file, tmp_path):
    sq = tmp_path / "v.sqlite"
    url = mariadb.database("idem")
    for _ in range(2):
        r = run_minectl("reduce", "all", str(site_file), "--db", url, "--db", str(sq))
        assert r.returncode == 0, r.stderr
        if _ == 0:
            conn = mariadb.connect(db="idem")
            first = {v: table(conn, v) for v in ALL}
    again = {v: table(conn, v) for v in ALL}
    assert again == first
    lite = dump(str(sq))
    for v in ALL:
        assert len(first[v]) == len(lite[v]) > 0, v
    # the same numbers in both (MariaDB keeps ts as DATETIME)
    site = {(r[0], int(r[1].replace(tzinfo=UTC).timestamp())): r[2:] for r in first["hashrate_site"]}
    assert site == {(r[0], r[1]): r[2:] for r in lite["hashrate_site"]}
    with conn.cursor() as cur:
        cur.execute("SELECT ths FROM hashrate_site WHERE period = 60 AND ts = '2018-07-04 07:00:00'")
        assert cur.fetchone() == (34.25,)
        cur.execute("SELECT kind FROM timeline ORDER BY ts_ms")
        assert [k for (k,) in cur.fetchall()] == ["fault", "action", "recovered"]


def test_mariadb_down_gives_a_clear_error(site_file):
    port = free_port()
    r = run_minectl("reduce", "all", str(site_file), "--db", f"mysql://reducer:x@127.0.0.1:{port}/minectl?retries=1")
    assert r.returncode == 1
    err = r.stderr.decode()
    assert f"MariaDB reducer@127.0.0.1:{port}/minectl: unreachable after 2 attempt(s)" in err
    assert "x@" not in err  # no password in messages


def test_mariadb_going_away_mid_run_keeps_what_was_written(tmp_path_factory):
    srv = MariaDB(tmp_path_factory.mktemp("mariadb-away"))
    srv.init()
    srv.start()
    try:
        srv.create_users()
        sink = MariaDBSink("127.0.0.1", srv.port, srv.user, srv.password, srv.db, {"retries": "2", "batch": "50"})
        eng = Engine(["all"], [sink], Context())
        recs = D.site(minutes=60)
        half = len(recs) // 2
        eng.feed_all(recs[:half])
        sink.flush()
        written = sink.written
        assert written > 0
        srv.stop()
        with pytest.raises(SinkError, match=r"unreachable after 3 attempt\(s\)"):
            eng.feed_all(recs[half:])
            eng.finish()
        srv.start()
        conn = srv.connect()
        assert sum(len(table(conn, v)) for v in ALL) == written
    finally:
        srv.stop()


def test_influxdb_minute_points_rollups_and_idempotence(influxdb, site_file, tmp_path):
    url = influxdb.url("idem", retention="INF")
    sq = tmp_path / "v.sqlite"
    counts = []
    for _ in range(2):
        r = run_minectl("reduce", "all", str(site_file), "--db", url, "--db", str(sq))
        assert r.returncode == 0, r.stderr
        res = influxdb.query('SELECT count("ths") FROM "m1"."hashrate_miner"', db="idem")
        counts.append(res["results"][0]["series"][0]["values"][0][1])
    assert counts[0] == counts[1] == 70 * 3 - 2  # 3 miners x 70 minutes, minus miner 3's 2 failing minutes
    lite = dump(str(sq))
    res = influxdb.query('SELECT "ths" FROM "m5"."hashrate_site" ORDER BY time', db="idem")
    five = {t: v for t, v in res["results"][0]["series"][0]["values"]}
    want = {r[1]: r[2] for r in lite["hashrate_site"] if r[0] == 300}
    assert five.keys() == want.keys()
    assert all(five[t] == pytest.approx(want[t]) for t in want)  # the CQ's mean == the SQL rollup
    rps = influxdb.query('SHOW RETENTION POLICIES ON "idem"', db="idem")["results"][0]["series"][0]["values"]
    assert {r[0] for r in rps} >= {"m1", "m5", "h1"}
    cqs = influxdb.query("SHOW CONTINUOUS QUERIES", db="idem")["results"][0]["series"]
    assert any(s["name"] == "idem" and len(s["values"]) == 2 * 10 for s in cqs)
    tl = influxdb.query('SELECT "what", "kind" FROM "m1"."timeline"', db="idem")["results"][0]["series"][0]["values"]
    assert sorted(r[2] for r in tl) == ["action", "fault", "recovered"]


def test_influxdb_down_gives_a_clear_error():
    port = free_port()
    with pytest.raises(SinkError, match=rf"InfluxDB http://127.0.0.1:{port}/x: unreachable after 2"):
        open_sink(f"influx://127.0.0.1:{port}/x?retries=1")


def test_mariadb_refusing_local_files_gets_the_same_rows_by_insert(mariadb, site_file):
    """LOAD DATA LOCAL is the fast way; a server with local_infile=0 gets the same rows as upserts."""
    root = mariadb.root()
    try:
        with root.cursor() as cur:
            cur.execute("SET GLOBAL local_infile = 0")
        r = run_minectl("reduce", "all", str(site_file), "--db", mariadb.database("noload"))
        assert r.returncode == 0, r.stderr
    finally:
        with root.cursor() as cur:
            cur.execute("SET GLOBAL local_infile = 1")
        root.close()
    r = run_minectl("reduce", "all", str(site_file), "--db", mariadb.database("load"))
    assert r.returncode == 0, r.stderr
    a, b = mariadb.connect(db="noload"), mariadb.connect(db="load")
    for v in ALL:
        assert table(a, v) == table(b, v) != [], v


def test_influxdb_live_reducer_rolls_up_rows_that_arrive_late(influxdb):
    """A live reducer (flushes, never closes) gets its late rows rolled up: the continuous
    queries only recompute the last two periods, so minutes that arrive an hour late (a VPN
    outage, a shipper restart) must be backfilled by the sink from its flushes."""
    import time

    from minectl_py.reduce.views import HASHRATE_SITE

    sink = open_sink(influxdb.url("late", retention="INF"))
    try:
        now = int(time.time())
        hour = now - now % 3600 - 2 * 3600  # a whole hour, two hours ago
        rows = [(60, hour + 60 * i, 100.0 + i, 120.0, 0.0, 10.0) for i in range(60)]
        sink.write(HASHRATE_SITE, rows)
        sink.flush()  # what the reducer's idle flusher does while following the log

        def got(rp: str) -> dict[int, float]:
            res = influxdb.query(f'SELECT "ths" FROM "{rp}"."hashrate_site" ORDER BY time', db="late")
            return {t: v for t, v in res["results"][0].get("series", [{"values": []}])[0]["values"]}

        assert got("m5") == {hour + 300 * k: pytest.approx(100.0 + 5 * k + 2) for k in range(12)}
        assert got("h1") == {hour: pytest.approx(100.0 + 29.5)}
        # a corrected minute of that hour arrives later still: rolled up again
        sink.late_due.clear()  # (the sink waits a minute between backfills of the 5 min rollup)
        sink.write(HASHRATE_SITE, [(60, hour, 400.0, 120.0, 0.0, 10.0)])
        sink.flush()
        assert got("m5")[hour] == pytest.approx((400.0 + 101 + 102 + 103 + 104) / 5)
    finally:
        sink.close()


def test_influxdb_late_hour_read_in_parts_is_rolled_up_once_its_rows_stop_coming(influxdb):
    """A backlog read across flushes (the follower went idle halfway through a late hour): the
    first flush backfills the part it has; the rest, written while backfills wait
    (LATE_EVERY), is rolled up at the first flush that brings nothing new for that hour."""
    import time

    from minectl_py.reduce.views import HASHRATE_SITE

    sink = open_sink(influxdb.url("parts", retention="INF"))
    try:
        now = int(time.time())
        hour = now - now % 3600 - 2 * 3600
        rows = [(60, hour + 60 * i, 100.0 + i, 120.0, 0.0, 10.0) for i in range(60)]

        def h1() -> dict[int, float]:
            res = influxdb.query('SELECT "ths" FROM "h1"."hashrate_site"', db="parts")
            return {t: v for t, v in res["results"][0].get("series", [{"values": []}])[0]["values"]}

        sink.write(HASHRATE_SITE, rows[:20])
        sink.flush()
        assert h1() == {hour: pytest.approx(100.0 + 9.5)}  # the part read so far
        sink.write(HASHRATE_SITE, rows[20:])
        sink.flush()  # rows still coming: the hour waits (a backfill per flush would repeat it)
        assert h1() == {hour: pytest.approx(100.0 + 9.5)}
        sink.flush()  # idle: nothing new for that hour since the last flush
        assert h1() == {hour: pytest.approx(100.0 + 29.5)}
    finally:
        sink.close()
