"""Real MariaDB and InfluxDB from Debian's packages, started for a test run.

Each server gets a private data directory and loopback ports (the reduce tests' range is
127.0.0.1:18700-18749), runs as a child process we started, and is stopped by its pid.
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

#: the reduce tests' loopback ports; several test runs may share the machine, so each server
#: takes free ones from this range rather than fixed numbers
PORTS = range(18700, 18750)
_taken: set[int] = set()


def free_port() -> int:
    """A port of :data:`PORTS` that nothing listens on now (and this process did not hand out)."""
    import random

    for port in random.sample(list(PORTS), len(PORTS)):
        if port in _taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _taken.add(port)
        return port
    raise RuntimeError(f"no free port in 127.0.0.1:{PORTS.start}-{PORTS.stop - 1}")


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
    port: int = 0
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
        tmp = self.dir / "tmp"  # private: not the shared /tmp other processes clean
        tmp.mkdir(exist_ok=True)
        r = subprocess.run(
            [
                shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db",
                "--no-defaults",
                f"--datadir={data}",
                "--user=root",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
                f"--tmpdir={tmp}",
            ],
            capture_output=True,
            timeout=180,
        )
        if r.returncode:
            raise RuntimeError(f"mariadb-install-db failed: {r.stderr.decode(errors='replace')[-2000:]}")

    def start(self) -> None:
        log = self.dir / "mariadb.log"
        self.port = self.port or free_port()
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
                f"--tmpdir={self.dir / 'tmp'}",
                "--innodb-buffer-pool-size=128M",
                "--innodb-flush-log-at-trx-commit=2",
                f"--log-error={log}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(lambda: self.root().close() or True, "mariadbd", 90, self.proc, log)  # our own socket

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

    def database(self, name: str) -> str:
        """A new, empty database the reducer may write and grafana read; its URL."""
        c = self.root()
        with c.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            cur.execute(f"GRANT ALL ON `{name}`.* TO '{self.user}'@'%'")
            cur.execute(f"GRANT SELECT ON `{name}`.* TO 'grafana'@'%'")
        c.close()
        return f"mysql://{self.user}:{self.password}@127.0.0.1:{self.port}/{name}"

    def connect(self, user: str | None = None, password: str | None = None, db: str | None = None):
        import pymysql

        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user=user or self.user,
            password=password if password is not None else self.password,
            database=db or self.db,
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
    http: int = 0
    bind: int = 0
    proc: subprocess.Popen | None = None

    def url(self, db: str = "minectl", **q: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in q.items())
        return f"influx://127.0.0.1:{self.http}/{db}" + (f"?{query}" if query else "")

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.http = self.http or free_port()
        self.bind = self.bind or free_port()
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
        time.sleep(0.3)  # a server that lost the port race exits: _wait sees it
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
