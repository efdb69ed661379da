"""Choosing a database sink from a URL, and the error every sink raises.

``FILE.sqlite``/``FILE.db``/``sqlite:FILE`` -> SQLite; ``mysql://`` or ``mariadb://`` ->
MariaDB/MySQL; ``influx://HOST:PORT/DB`` (``influxdb://``) -> InfluxDB 1.x over HTTP.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


class SinkError(RuntimeError):
    """A database could not be written (after retries). Batches written before it are kept."""


def retrying(
    where: str,
    retries: int,
    fn: Callable[[], Any],
    errors: tuple[type[BaseException], ...],
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """``fn()``, retried on ``errors`` with back-off (0.5 s doubling to 8 s); then SinkError."""
    delay = 0.5
    last: BaseException | None = None
    for attempt in range(retries + 1):
        try:
            return fn()
        except errors as e:
            last = e
            if attempt == retries:
                break
            print(f"minectl reduce: {where}: {e}; retrying in {delay:.1f} s", file=sys.stderr, flush=True)
            sleep(delay)
            delay = min(delay * 2, 8.0)
    raise SinkError(f"{where}: unreachable after {retries + 1} attempt(s): {last}")


def parse_url(url: str) -> dict[str, Any]:
    u = urlsplit(url)
    q = {k: v[-1] for k, v in parse_qs(u.query).items()}
    try:
        port = u.port
    except ValueError:
        raise ValueError(f"bad port in database URL {redact(url)!r}") from None
    return {
        "scheme": u.scheme,
        "host": u.hostname or "",
        "port": port,
        "user": unquote(u.username) if u.username else "",
        "password": unquote(u.password) if u.password else _env_password(u.scheme),
        "db": u.path.lstrip("/"),
        "query": q,
    }


def _env_password(scheme: str) -> str:
    specific = "MINECTL_INFLUX_PASSWORD" if scheme.startswith("influx") else "MINECTL_MYSQL_PASSWORD"
    return os.environ.get(specific) or os.environ.get("MINECTL_DB_PASSWORD", "")


def redact(url: str) -> str:
    """The URL without its password (for messages)."""
    u = urlsplit(url)
    if u.password:
        netloc = u.netloc.replace(f":{u.password}@", ":***@")
        return u._replace(netloc=netloc).geturl()
    return url


def open_sink(url: str) -> Any:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if url.startswith("sqlite:") or (not scheme and not url.startswith(("mysql:", "influx"))):
        from minectl_py.reduce.sink_sqlite import SQLiteSink

        return SQLiteSink(url[len("sqlite:") :] if url.startswith("sqlite:") else url)
    p = parse_url(url)
    if scheme in ("mysql", "mariadb"):
        if not p["db"]:
            raise ValueError(f"database URL {redact(url)!r} names no database (mysql://USER@HOST/DB)")
        from minectl_py.reduce.sink_mariadb import MariaDBSink

        return MariaDBSink(**{k: p[k] for k in ("host", "port", "user", "password", "db")}, query=p["query"])
    if scheme in ("influx", "influxdb"):
        if not p["db"]:
            raise ValueError(f"database URL {redact(url)!r} names no database (influx://HOST:PORT/DB)")
        from minectl_py.reduce.sink_influx import InfluxSink

        return InfluxSink(**{k: p[k] for k in ("host", "port", "user", "password", "db")}, query=p["query"])
    raise ValueError(f"unknown database URL {redact(url)!r}: use FILE.sqlite, mysql://... or influx://...")
