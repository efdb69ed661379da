"""A database killed in the middle of a reduction (issue #9): the reducer retries with back-off,
the server comes back, the run finishes, and the views are exactly those of a clean run (nothing
lost, nothing twice). The server process is the real mariadbd / influxd, killed with SIGKILL
while batches are being written, then started again on the same data directory and port."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from minectl_py.events.generate import generate, write
from minectl_py.reduce.views import ALL
from tests.conftest import ROOT
from tests.integration.dbservers import InfluxDB, MariaDB

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("away") / "site.log.gz"
    write(str(p), generate(records=12_000, miners=100, seed=3), fmt="fluentd", gzip=True)
    return p


def reducer(events: Path, url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "minectl_py", "reduce", "all", str(events), "--db", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def wait_for(pred, what: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"reducer ended (status {proc.returncode}) before {what}: {err.decode()[-2000:]}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def finish(proc: subprocess.Popen) -> str:
    try:
        _, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    text = err.decode()
    assert proc.returncode == 0, text[-3000:]
    return text


def test_mariadb_killed_mid_run_comes_back_and_the_views_are_a_clean_runs(tmp_path, events):
    srv = MariaDB(tmp_path / "mariadb")
    srv.init()
    srv.start()
    try:
        srv.create_users()

        def rows(db: str) -> dict[str, list[tuple]]:
            conn = srv.connect(db=db)
            try:
                out = {}
                with conn.cursor() as cur:
                    for v in ALL:
                        cur.execute(f"SELECT * FROM `{v}`")
                        out[v] = sorted(cur.fetchall(), key=repr)
                return out
            finally:
                conn.close()

        def written() -> int:
            try:
                conn = srv.connect(db="away")
            except Exception:
                return 0  # no database yet
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT COUNT(*) FROM hashrate_miner")
                    return cur.fetchone()[0]
            except Exception:
                return 0  # no table yet
            finally:
                conn.close()

        url = srv.database("away").replace("/away", "/away?batch=300&retries=10")
        proc = reducer(events, url)
        wait_for(lambda: written() > 0, "rows in MariaDB", proc)
        srv.proc.kill()  # SIGKILL mid-run: no clean shutdown, InnoDB recovers on start
        srv.proc.wait()
        time.sleep(1.0)
        srv.start()
        err = finish(proc)
        assert "retrying in" in err  # it noticed, and retried rather than failing
        after = rows("away")
        # a clean run of the same input into another database on the same server
        finish(reducer(events, srv.database("clean")))
        clean = rows("clean")
        for v in ALL:
            assert len(after[v]) == len(clean[v]), v  # nothing lost, nothing twice
            assert after[v] == clean[v], v
        assert sum(len(r) for r in clean.values()) > 1000
    finally:
        srv.stop()


def test_influxdb_killed_mid_run_comes_back_and_the_points_are_a_clean_runs(tmp_path, events):
    srv = InfluxDB(tmp_path / "influx")
    srv.start()
    try:

        def points(db: str) -> dict[str, list]:
            out = {}
            for v in ALL:
                res = srv.query(f'SELECT * FROM "m1"."{v}"', db=db)["results"][0]
                out[v] = sorted((s["values"] for s in res.get("series", [])), key=repr)
            return out

        def written() -> int:
            try:
                res = srv.query('SELECT count("ths") FROM "m1"."hashrate_miner"', db="away")["results"][0]
            except Exception:
                return 0
            series = res.get("series") or []
            return series[0]["values"][0][1] if series else 0

        url = srv.url("away", retention="INF", batch="500", retries="10")
        proc = reducer(events, url)
        wait_for(lambda: written() > 0, "points in InfluxDB", proc)
        srv.proc.kill()  # SIGKILL mid-run: InfluxDB replays its WAL on start
        srv.proc.wait()
        time.sleep(1.0)
        srv.start()
        err = finish(proc)
        assert "retrying in" in err
        after = points("away")
        finish(reducer(events, srv.url("clean", retention="INF")))
        clean = points("clean")
        for v in ALL:
            assert after[v] == clean[v], v  # every point, once (a point is keyed by its tags and time)
        assert sum(len(s) for r in clean.values() for s in r) > 1000
        # the rollups were backfilled after the restart too
        five = srv.query('SELECT count("ths") FROM "m5"."hashrate_site"', db="away")["results"][0]["series"]
        five_clean = srv.query('SELECT count("ths") FROM "m5"."hashrate_site"', db="clean")["results"][0]["series"]
        assert five == five_clean
    finally:
        srv.stop()
