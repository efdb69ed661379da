"""Real MariaDB and InfluxDB from Debian's packages, started for a test run.

Each server gets a private data directory and loopback ports (the reduce tests' range is
127.0.0.1:18100-18199), runs as a child process we started, and is stopped by its pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

MARIADB_PORT = 18106
INFLUX_HTTP = 18186
INFLUX_BIND = 18188


def _wait(pred, what: str, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(Exception):
            if pred():
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start within {timeout:.0f} s: {log.read_text(errors='replace')[-2000:]}")


def stop(proc: subprocess.Popen | None, timeout: float = 30) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@dataclass
class MariaDB:
    dir: Path
    port: int = MARIADB_PORT
    proc: subprocess.Popen | None = None
    user: str = "reducer"
    password: str = "reducer-pw"
    db: str = "minectl"

    @property
    def socket(self) -> str:
        return str(self.dir / "mysqld.sock")

    @property
    def url(self) -> str:
        return f"mysql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.db}"

    def init(self) -> None:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(
            [
                shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db",
                "--no-defaults",
                f"--datadir={data}",
                "--user=root",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ],
            capture_output=True,
            timeout=180,
        )
        if r.returncode:
            raise RuntimeError(f"mariadb-install-db failed: {r.stderr.decode(errors='replace')[-2000:]}")

    def start(self) -> None:
        log = self.dir / "mariadb.log"
        self.proc = subprocess.Popen(
            [
                "/usr/sbin/mariadbd",
                "--no-defaults",
                f"--datadir={self.dir / 'data'}",
                f"--socket={self.socket}",
                f"--pid-file={self.dir / 'mariadb.pid'}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                "--user=root",
                "--skip-name-resolve",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=128M",
                "--innodb-flush-log-at-trx-commit=2",
                f"--log-error={log}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(lambda: socket.create_connection(("127.0.0.1", self.port), 1).close() or True, "mariadbd", 90,
              self.proc, log)  # fmt: skip

    def root(self):
        import pymysql

        return pymysql.connect(unix_socket=self.socket, user="root", autocommit=True)

    def create_users(self) -> None:
        c = self.root()
        with c.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{self.db}` CHARACTER SET utf8mb4")
            cur.execute(f"CREATE USER IF NOT EXISTS '{self.user}'@'%' IDENTIFIED BY '{self.password}'")
            cur.execute(f"GRANT ALL ON `{self.db}`.* TO '{self.user}'@'%'")
            cur.execute("CREATE USER IF NOT EXISTS 'grafana'@'%' IDENTIFIED BY 'grafana-pw'")
            cur.execute(f"GRANT SELECT ON `{self.db}`.* TO 'grafana'@'%'")
        c.close()

    def connect(self, user: str | None = None, password: str | None = None):
        import pymysql

        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user=user or self.user,
            password=password if password is not None else self.password,
            database=self.db,
            autocommit=True,
            init_command="SET time_zone = '+00:00'",
        )

    def stop(self) -> None:
        stop(self.proc)


INFLUX_CONF = """\
reporting-disabled = true
bind-address = "127.0.0.1:{bind}"
[meta]
  dir = "{dir}/meta"
  retention-autocreate = true
  logging-enabled = false
[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false
  cache-snapshot-write-cold-duration = "10s"
[coordinator]
[retention]
  enabled = true
[shard-precreation]
  enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{http}"
  auth-enabled = false
  log-enabled = false
  max-body-size = 0
[subscriber]
  enabled = false
[[graphite]]
  enabled = false
[[collectd]]
  enabled = false
[[opentsdb]]
  enabled = false
[[udp]]
  enabled = false
[continuous_queries]
  enabled = true
  log-enabled = false
  run-interval = "1s"
"""


@dataclass
class InfluxDB:
    dir: Path
    http: int = INFLUX_HTTP
    bind: int = INFLUX_BIND
    proc: subprocess.Popen | None = None

    def url(self, db: str = "minectl", **q: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in q.items())
        return f"influx://127.0.0.1:{self.http}/{db}" + (f"?{query}" if query else "")

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "influxdb.conf"
        conf.write_text(INFLUX_CONF.format(dir=self.dir, bind=self.bind, http=self.http))
        log = self.dir / "influxd.log"
        env = dict(os.environ, INFLUXDB_HTTP_BIND_ADDRESS=f"127.0.0.1:{self.http}")
        with open(log, "wb") as f:
            self.proc = subprocess.Popen(
                [shutil.which("influxd") or "/usr/bin/influxd", "-config", str(conf)],
                stdout=f,
                stderr=subprocess.STDOUT,
                env=env,
            )
        _wait(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{self.http}/ping", timeout=1).status == 204,
            "influxd",
            60,
            self.proc,
            log,
        )

    def query(self, q: str, db: str = "minectl", epoch: str = "s") -> dict:
        import json
        from urllib.parse import urlencode

        url = f"http://127.0.0.1:{self.http}/query?" + urlencode({"db": db, "q": q, "epoch": epoch})
        with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=30) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        stop(self.proc)
