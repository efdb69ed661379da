"""Integration fixtures: real daemons, started once per session on loopback, stopped at the end."""

from __future__ import annotations

import pytest

from tests.integration.dbservers import InfluxDB, MariaDB


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory):
    """MariaDB 10.11 from Debian on a free 127.0.0.1 port of 18700-18749, private datadir;
    users reducer (read-write) and grafana (read-only); ``database(name)`` for a fresh one."""
    srv = MariaDB(tmp_path_factory.mktemp("mariadb"))
    try:
        srv.init()
        srv.start()
        srv.create_users()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory):
    """InfluxDB 1.6 from Debian (HTTP and meta/RPC bind on free 127.0.0.1 ports of 18700-18749), private dirs."""
    srv = InfluxDB(tmp_path_factory.mktemp("influxdb"))
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
