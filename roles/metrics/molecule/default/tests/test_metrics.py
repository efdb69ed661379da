"""The metrics role's real effect: MariaDB and InfluxDB serving on loopback only, users, provisioning."""

from __future__ import annotations

import json
import time

import yaml

testinfra_hosts = ["podman://mctl-metrics"]


def test_mariadb_serves_on_loopback_only(host):
    assert host.service("mariadb").is_running and host.service("mariadb").is_enabled
    assert host.socket("tcp://127.0.0.1:3306").is_listening
    assert not host.socket("tcp://0.0.0.0:3306").is_listening


def test_mariadb_users_can_do_what_they_should(host):
    rw = "mariadb -h 127.0.0.1 -u minectl -pmolecule-TEST-ONLY-rw minectl"
    ro = "mariadb -h 127.0.0.1 -u grafana -pmolecule-TEST-ONLY-ro minectl"
    assert host.run(f"{rw} -e 'CREATE TABLE IF NOT EXISTS t_probe (x INT); INSERT INTO t_probe VALUES (1)'").rc == 0
    assert host.check_output(f"{ro} -N -e 'SELECT COUNT(*) FROM t_probe'") != ""
    denied = host.run(f"{ro} -e 'INSERT INTO t_probe VALUES (2)'")
    assert denied.rc != 0 and "denied" in denied.stderr
    host.run(f"{rw} -e 'DROP TABLE t_probe'")
    assert host.file("/etc/minectl-metrics/mariadb.sql").mode == 0o600


def test_influxdb_serves_the_database_on_loopback_only(host):
    assert host.service("influxdb").is_running and host.service("influxdb").is_enabled
    assert host.socket("tcp://127.0.0.1:8086").is_listening
    assert not host.socket("tcp://0.0.0.0:8086").is_listening
    dbs = host.check_output("influx -format csv -execute 'SHOW DATABASES'").splitlines()
    assert "databases,minectl" in dbs
    rps = host.check_output("influx -format csv -execute 'SHOW RETENTION POLICIES ON minectl'")
    assert "m1,720h0m0s," in rps, rps  # metrics_influxdb_retention: 30d (the reducer's default policy)
    assert "raw," not in rps


def test_grafana_provisioning_parses(host):
    ds = yaml.safe_load(host.file("/etc/grafana/provisioning/datasources/minectl.yaml").content_string)
    by_uid = {d["uid"]: d for d in ds["datasources"]}
    assert by_uid["minectl-mysql"]["url"] == "127.0.0.1:3306"
    assert by_uid["minectl-mysql"]["user"] == "grafana"
    assert by_uid["minectl-mysql"]["secureJsonData"]["password"] == "molecule-TEST-ONLY-ro"
    assert by_uid["minectl-influx"]["database"] == "minectl"
    assert host.file("/etc/grafana/provisioning/datasources/minectl.yaml").mode == 0o640
    prov = yaml.safe_load(host.file("/etc/grafana/provisioning/dashboards/minectl.yaml").content_string)
    assert prov["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/minectl"
    for name in host.file("/var/lib/grafana/dashboards/minectl").listdir():
        d = json.loads(host.file(f"/var/lib/grafana/dashboards/minectl/{name}").content_string)
        assert d["uid"] and d["title"]


def test_reducer_runs_and_reaches_influxdb(host):
    unit = host.file("/etc/systemd/system/minectl-reducer.service").content_string
    assert "reduce all" in unit and "--follow" in unit and "User=minectl" in unit
    assert "--db mysql://minectl@127.0.0.1:3306/minectl" in unit
    assert "--db influx://127.0.0.1:8086/minectl?retention=30d" in unit
    assert "--inventory /etc/minectl/site.csv" in unit and host.file("/etc/minectl/site.csv").exists
    assert "molecule-TEST-ONLY-rw" not in unit  # the password is in the env file only
    assert host.file("/etc/minectl-metrics/reducer.env").mode == 0o600
    svc = host.service("minectl-reducer")
    assert svc.is_running and svc.is_enabled
    # the reducer's InfluxDB sink sets up its retention policies when it starts
    for _ in range(60):
        rps = host.check_output("influx -format csv -execute 'SHOW RETENTION POLICIES ON minectl'")
        if all(f"{rp}," in rps for rp in ("m1", "m5", "h1")):
            break
        time.sleep(1)
    assert all(f"{rp}," in rps for rp in ("m1", "m5", "h1")), rps
    m1 = [line for line in rps.splitlines() if ",m1," in f",{line}"][0]
    assert "720h0m0s" in m1 and m1.endswith("true"), rps  # the retention reached the reducer; m1 is the default
    assert host.check_output("systemctl show -p NRestarts --value minectl-reducer") == "0"
