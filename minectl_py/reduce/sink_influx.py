"""InfluxDB 1.x sink: line protocol over HTTP, batched, with retention policies and
continuous queries for downsampling.

Layout in database ``DB`` (created if missing):

* retention policy ``m1`` (default; ``?retention=90d``, ``INF`` for replays of old data)
  holds the one-minute rows of every periodic view, and the timeline;
* ``m5`` (``?retention5=365d``) and ``h1`` (``INF``) hold the 5 and 60 minute rollups,
  filled by one continuous query per view and period (``cq_<view>_5m``/``_1h``, the same
  functions as the SQL rollups, ``GROUP BY time(..), *`` so tags stay tags, ``RESAMPLE
  FOR`` twice the period for late points). Continuous queries do not backfill, so after a
  batch run the sink runs the same ``SELECT ... INTO`` over the time range it wrote.

One measurement per view; string key columns (and labels such as name, rack, model) are
tags, numbers fields; the point time is the bucket start (``ts``) or the event time
(``ts_ms``). Writing the same point again replaces it (same measurement, tags and time), so
re-running the same input leaves the database identical. Points older than ``m1``'s
duration are dropped by InfluxDB; the sink counts and reports them.
"""

from __future__ import annotations

import http.client
import json
import re
import sys
from typing import Any
from urllib.parse import urlencode

from minectl_py.reduce.sinks import SinkError, retrying
from minectl_py.reduce.views import ALL, RP_FOR_PERIOD, View

BATCH = 5000
_TAG_ESC = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ ", "\n": "", "\r": "", "\\": "\\\\"})
_STR_ESC = str.maketrans({'"': '\\"', "\\": "\\\\", "\n": " ", "\r": " "})
_DROPPED = re.compile(r"dropped=(\d+)")


def influx_agg(agg: str) -> str:
    return {"mean": "mean", "sum": "sum", "max": "max", "min": "min", "last": "last"}[agg]


def cq_select(view: View, db: str, period: int, where: str = "") -> str:
    """The rollup of ``view`` from ``m1`` into the period's retention policy."""
    fields = [c for c in view.values if not _is_tag(view, c.name)]
    sel = ", ".join(f'{influx_agg(c.agg)}("{c.name}") AS "{c.name}"' for c in fields)
    rp = RP_FOR_PERIOD[period]
    w = f" WHERE {where}" if where else ""
    return (
        f'SELECT {sel} INTO "{db}"."{rp}"."{view.name}" FROM "{db}"."m1"."{view.name}"{w} GROUP BY time({period}s), *'
    )


def _is_tag(view: View, name: str) -> bool:
    i = view.index(name)
    c = view.cols[i]
    return c.tag or (view.periodic and 2 <= i < view.nkeys)


class InfluxSink:
    name = "influxdb"

    def __init__(
        self, host: str, port: int | None, user: str, password: str, db: str, query: dict[str, str] | None = None
    ) -> None:
        q = query or {}
        self.host = host or "127.0.0.1"
        self.port = port or 8086
        self.db = db
        self.auth = {"u": user, "p": password} if user else {}
        self.where = f"InfluxDB http://{self.host}:{self.port}/{db}"
        self.retries = int(q.get("retries", 6))
        self.retention = q.get("retention", "90d")
        self.retention5 = q.get("retention5", "INF" if self.retention.upper() == "INF" else "365d")
        self.backfill = q.get("backfill", "1") != "0"
        self.conn: http.client.HTTPConnection | None = None
        self.lines: list[str] = []
        self.written = 0
        self.dropped = 0
        self.span: dict[str, list[int]] = {}  # view -> [first ts, last ts] written
        self.formats: dict[str, Any] = {}
        retrying(self.where, self.retries, self.setup, (OSError, http.client.HTTPException))

    # ------------------------------------------------------------------ HTTP
    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            self.conn.request(method, path, body=body, headers={"Content-Type": "text/plain; charset=utf-8"})
            r = self.conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            raise
        if r.status >= 500:
            raise ConnectionError(f"HTTP {r.status}: {data[:200]!r}")
        return r.status, data

    def query(self, q: str) -> dict[str, Any]:
        """Run an InfluxQL statement (POST /query); raise SinkError on an error reply."""

        def run() -> dict[str, Any]:
            status, data = self._request("POST", "/query?" + urlencode({"db": self.db, "q": q, **self.auth}))
            try:
                res = json.loads(data or b"{}")
            except ValueError:
                res = {"error": data[:200].decode("utf-8", "replace")}
            err = res.get("error") or next((r.get("error") for r in res.get("results", []) if r.get("error")), None)
            if status >= 400 or err:
                raise SinkError(f"{self.where}: {q[:120]}: {err or status}")
            return res

        return retrying(self.where, self.retries, run, (OSError, http.client.HTTPException))

    def setup(self) -> None:
        db = self.db
        self.query(f'CREATE DATABASE "{db}"')
        have = {r[0] for r in self._rows(f'SHOW RETENTION POLICIES ON "{db}"')}
        for rp, dur, default in (("m1", self.retention, True), ("m5", self.retention5, False), ("h1", "INF", False)):
            verb = "ALTER" if rp in have else "CREATE"
            self.query(f'{verb} RETENTION POLICY "{rp}" ON "{db}" DURATION {dur} REPLICATION 1{" DEFAULT" * default}')
        cqs = {r[0] for r in self._rows("SHOW CONTINUOUS QUERIES", db)}
        for view in ALL.values():
            if not view.periodic:
                continue
            for p in (300, 3600):
                name = f"cq_{view.name}_{p // 60}m"
                if name in cqs:
                    continue
                self.query(
                    f'CREATE CONTINUOUS QUERY "{name}" ON "{db}" RESAMPLE FOR {2 * p}s BEGIN '
                    f"{cq_select(view, db, p)} END"
                )

    def _rows(self, q: str, series: str | None = None) -> list[list[Any]]:
        res = self.query(q)
        out: list[list[Any]] = []
        for r in res.get("results", []):
            for s in r.get("series", []):
                if series is None or s.get("name") == series:
                    out.extend(s.get("values") or [])
        return out

    # ------------------------------------------------------------------ writing
    def _formatter(self, view: View) -> Any:
        f = self.formats.get(view.name)
        if f is not None:
            return f
        tags: list[tuple[int, str]] = []
        fields: list[tuple[int, str, str]] = []
        start = 2 if view.periodic else 0
        for i, c in enumerate(view.cols[start:], start):
            if c.kind in ("ts", "tsms"):
                continue
            if _is_tag(view, c.name):
                tags.append((i, c.name))
            else:
                fields.append((i, c.name, c.kind))
        tags.sort(key=lambda t: t[1])  # sorted tag keys: InfluxDB's fast path
        tsi = view.index("ts") if view.periodic else view.index("ts_ms")
        scale = 1000 if view.periodic else 1  # to ms

        def fmt(row: tuple[Any, ...]) -> str | None:
            head = view.name
            for i, name in tags:
                v = row[i]
                if v is not None and v != "":
                    head += f",{name}={str(v).translate(_TAG_ESC)}"
            parts = []
            for i, name, kind in fields:
                v = row[i]
                if v is None:
                    continue
                if kind == "int":
                    parts.append(f"{name}={int(v)}i")
                elif kind == "float":
                    parts.append(f"{name}={float(v)!r}")
                else:
                    parts.append(f'{name}="{str(v).translate(_STR_ESC)}"')
            if not parts:
                return None
            return f"{head} {','.join(parts)} {row[tsi] * scale}"

        self.formats[view.name] = fmt
        return fmt

    def write(self, view: View, rows: list[tuple[Any, ...]]) -> None:
        if view.periodic:
            rows = [r for r in rows if r[0] == 60]
            if not rows:
                return
            sp = self.span.get(view.name)
            lo, hi = rows[0][1], rows[-1][1]
            if sp is None:
                self.span[view.name] = [min(lo, hi), max(lo, hi)]
            else:
                sp[0], sp[1] = min(sp[0], lo, hi), max(sp[1], lo, hi)
        fmt = self._formatter(view)
        for r in rows:
            line = fmt(r)
            if line is not None:
                self.lines.append(line)
        if len(self.lines) >= BATCH:
            self.flush()

    def flush(self) -> None:
        while self.lines:
            chunk = self.lines[:BATCH]
            self._post("\n".join(chunk).encode("utf-8"))
            self.written += len(chunk)
            del self.lines[:BATCH]

    def _post(self, body: bytes) -> None:
        path = "/write?" + urlencode({"db": self.db, "rp": "m1", "precision": "ms", **self.auth})

        def run() -> None:
            status, data = self._request("POST", path, body)
            if status == 204:
                return
            text = data[:300].decode("utf-8", "replace")
            m = _DROPPED.search(text)
            if status == 400 and "beyond retention policy" in text and m:
                self.dropped += int(m.group(1))
                return
            raise SinkError(f"{self.where}: write refused (HTTP {status}): {text}")

        retrying(self.where, self.retries, run, (OSError, http.client.HTTPException))

    def close(self) -> None:
        try:
            self.flush()
            if self.backfill:
                self.backfill_rollups()
        finally:
            if self.conn is not None:
                self.conn.close()
                self.conn = None
        if self.dropped:
            print(
                f"minectl reduce: {self.where}: {self.dropped} point(s) older than a retention policy "
                f"(m1: {self.retention}, m5: {self.retention5}) were dropped by InfluxDB "
                "(use ?retention=INF to keep old data)",
                file=sys.stderr,
            )

    def backfill_rollups(self) -> None:
        """Continuous queries only cover new time: compute the rollups of what was written."""
        for name, (lo, hi) in self.span.items():
            view = ALL[name]
            for p in (300, 3600):
                a = lo - lo % p
                b = hi - hi % p + p
                try:
                    self.query(cq_select(view, self.db, p, f"time >= {a}s AND time < {b}s"))
                except SinkError as e:
                    m = _DROPPED.search(str(e))
                    if "beyond retention policy" not in str(e) or not m:
                        raise
                    self.dropped += int(m.group(1))
