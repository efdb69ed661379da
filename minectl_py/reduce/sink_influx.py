"""InfluxDB 1.x sink: line protocol over HTTP, batched, with retention policies and
continuous queries for downsampling.

Layout in database ``DB`` (created if missing):

* retention policy ``m1`` (default; ``?retention=90d``, ``INF`` for replays of old data)
  holds the one-minute rows of every periodic view, and the timeline;
* ``m5`` (``?retention5=365d``) and ``h1`` (``INF``) hold the 5 and 60 minute rollups,
  filled by one continuous query per view and period (``cq_<view>_5m``/``_1h``, the same
  functions as the SQL rollups, ``GROUP BY time(..), *`` so tags stay tags, ``RESAMPLE
  FOR`` twice the period for late points). Continuous queries do not backfill, so the sink
  runs the same ``SELECT ... INTO`` itself over every bucket it wrote, once no run of the
  continuous query will see that bucket again: at the end of a batch run (all of it, once),
  and while following a live log from the flushes (while late rows keep coming, at most once
  a minute for the 5-minute and every 10 minutes for the 60-minute rollups; a bucket that
  got nothing new since the last flush at once), so rows that arrive late (after a VPN
  outage, a shipper restart, or the reducer's own lateness window) are rolled up too.

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
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

from minectl_py.reduce.sinks import SinkError, retrying
from minectl_py.reduce.views import ALL, RP_FOR_PERIOD, View

BATCH = 10_000  # lines per write request (InfluxDB's docs: 5,000-10,000)
#: rollup period (s) -> how often (s) a live reducer backfills its buckets that came too late
LATE_EVERY = {300: 60.0, 3600: 600.0}
EVERYTHING = 2**62  # a "now" after every bucket: backfill all that was written
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
        self.batch = int(q.get("batch", BATCH))
        self.writers = max(1, int(q.get("writers", 2)))
        self.local = threading.local()  # each writer thread's connection
        self.lock = threading.Lock()
        self.conns: list[http.client.HTTPConnection] = []
        self.pool = ThreadPoolExecutor(self.writers, thread_name_prefix="minectl-influx")
        self.inflight: list[tuple[int, Future[int]]] = []
        self.pending: dict[str, list[str]] = {}  # precision -> lines not yet sent
        self.failed: SinkError | None = None  # a writer thread's error (later batches are not sent)
        self.written = 0
        self.dropped = 0
        self.span: dict[str, list[int]] = {}  # view -> [first ts, last ts] written since the last flush
        #: (view, period) -> [first, last bucket start] written and not yet backfilled
        self.late: dict[tuple[str, int], list[int]] = {}
        self.late_due: dict[int, float] = {}  # period -> monotonic time its next backfill may run
        self.fresh: set[tuple[str, int]] = set()  # keys of self.late that got rows in the last flush
        self.closing = False
        self.specs: dict[str, Any] = {}
        self.heads: dict[str, dict[tuple[Any, ...], str]] = {}
        retrying(self.where, self.retries, self.setup, (OSError, http.client.HTTPException))

    # ------------------------------------------------------------------ HTTP
    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """One request on this thread's keep-alive connection (a new one after an error)."""
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            with self.lock:
                self.conns.append(conn)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "text/plain; charset=utf-8"})
            r = conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self.local.conn = None
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
    def _spec(self, view: View) -> tuple[list[tuple[int, str]], list[tuple[int, str, str]], int, str]:
        sp = self.specs.get(view.name)
        if sp is None:
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
            tsi, precision = (view.index("ts"), "s") if view.periodic else (view.index("ts_ms"), "ms")
            sp = self.specs[view.name] = (tags, fields, tsi, precision)
        return sp

    def lines(self, view: View, rows: list[tuple[Any, ...]]) -> list[str]:
        """Line protocol of ``rows``, column by column (a comprehension per column); the
        measurement-and-tags head is built once per distinct set of tag values."""
        if not rows:
            return []
        tags, fields, tsi, _ = self._spec(view)
        cols = list(zip(*rows, strict=True))
        heads = self.heads.setdefault(view.name, {})
        if len(heads) > 200_000:
            heads.clear()
        hs: list[str] = []
        for tv in zip(*(cols[i] for i, _ in tags), strict=True) if tags else [()] * len(rows):
            h = heads.get(tv)
            if h is None:
                h = view.name
                for (_, name), v in zip(tags, tv, strict=True):
                    t = "" if v is None else str(v).translate(_TAG_ESC)
                    if t:
                        h += f",{name}={t}"
                heads[tv] = h
            hs.append(h)
        fcols: list[list[str | None]] = []
        for i, name, kind in fields:
            p = name + "="
            vals = cols[i]
            if kind == "int":
                fcols.append([None if v is None else f"{p}{int(v)}i" for v in vals])
            elif kind == "float":
                fcols.append([None if v is None else p + repr(float(v)) for v in vals])
            else:
                fcols.append([None if v is None else f'{p}"{str(v).translate(_STR_ESC)}"' for v in vals])
        out = []
        for h, fs, t in zip(hs, zip(*fcols, strict=True), cols[tsi], strict=True):
            f = ",".join([x for x in fs if x is not None])
            if f:
                out.append(f"{h} {f} {t}")
        return out

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
        if not rows:
            return
        precision = self._spec(view)[3]
        pending = self.pending.setdefault(precision, [])
        pending.extend(self.lines(view, rows))
        while len(pending) >= self.batch:
            self._submit(precision, pending[: self.batch])
            del pending[: self.batch]

    def flush(self) -> None:
        for precision, pending in self.pending.items():
            while pending:
                self._submit(precision, pending[: self.batch])
                del pending[: self.batch]
        while self.inflight:
            self._collect()
        if self.backfill:
            self._note_late()
            self._backfill_late(EVERYTHING if self.closing else int(time.time()), force=self.closing)

    def _submit(self, precision: str, lines: list[str]) -> None:
        """Post a batch from a writer thread (``?writers=N``, default 2: the server parses one
        batch while we format the next and it writes another)."""
        while len(self.inflight) >= self.writers:
            self._collect()
        body = "\n".join(lines).encode("utf-8")
        self.inflight.append((len(lines), self.pool.submit(self._post, body, precision)))

    def _collect(self) -> None:
        n, fut = self.inflight.pop(0)
        self.dropped += fut.result()  # SinkError from the writer thread is raised here
        self.written += n

    def _post(self, body: bytes, precision: str = "ms") -> int:
        """One write request (retried); returns the points InfluxDB dropped as too old."""
        if self.failed is not None:  # a batch before failed: send nothing after it
            raise self.failed
        path = "/write?" + urlencode({"db": self.db, "rp": "m1", "precision": precision, **self.auth})

        def run() -> int:
            status, data = self._request("POST", path, body)
            if status == 204:
                return 0
            text = data[:300].decode("utf-8", "replace")
            m = _DROPPED.search(text)
            if status == 400 and "beyond retention policy" in text and m:
                return int(m.group(1))
            raise SinkError(f"{self.where}: write refused (HTTP {status}): {text}")

        try:
            return retrying(self.where, self.retries, run, (OSError, http.client.HTTPException))
        except SinkError as e:
            self.failed = e
            raise

    def close(self) -> None:
        try:
            self.closing = True  # the last flush backfills every bucket written (batch runs)
            self.flush()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
            for conn in self.conns:
                conn.close()
            self.conns.clear()
        if self.dropped:
            print(
                f"minectl reduce: {self.where}: {self.dropped} point(s) older than a retention policy "
                f"(m1: {self.retention}, m5: {self.retention5}) were dropped by InfluxDB "
                "(use ?retention=INF to keep old data)",
                file=sys.stderr,
            )

    def _note_late(self) -> None:
        """Add what was written since the last flush to the rollup buckets still to check."""
        self.fresh = set()
        for name, (lo, hi) in self.span.items():
            for p in LATE_EVERY:
                first, last = lo - lo % p, hi - hi % p
                sp = self.late.get((name, p))
                self.late[(name, p)] = [first, last] if sp is None else [min(sp[0], first), max(sp[1], last)]
                self.fresh.add((name, p))
        self.span.clear()

    def _backfill_late(self, now: int, force: bool) -> None:
        """Backfill the buckets the continuous query's next run (at the next period boundary,
        ``RESAMPLE FOR`` 2 periods) will not recompute; keep the newer ones for later.

        While late rows keep coming (a backlog being read), a period's buckets are backfilled
        at most every ``LATE_EVERY[p]`` seconds; a bucket that got no new rows since the last
        flush (the follower is idle, its backlog read) is backfilled at once."""
        mono = time.monotonic()
        for p, every in LATE_EVERY.items():
            waiting = not force and mono < self.late_due.get(p, 0.0)
            cutoff = EVERYTHING if now >= EVERYTHING else -(-now // p) * p - p
            ran = False
            for key in sorted(k for k in self.late if k[1] == p):
                if waiting and key in self.fresh:
                    continue
                first, last = self.late[key]
                if first >= cutoff:
                    continue
                self.backfill_rollup(ALL[key[0]], p, first, min(last + p, cutoff))
                ran = True
                if last >= cutoff:
                    self.late[key] = [cutoff, last]
                else:
                    del self.late[key]
            if ran and not waiting:
                self.late_due[p] = mono + every

    def backfill_rollups(self) -> None:
        """Compute now every rollup bucket written so far (what a batch run's close does)."""
        self._note_late()
        self._backfill_late(EVERYTHING, force=True)

    def backfill_rollup(self, view: View, p: int, a: int, b: int) -> None:
        """The rollup of ``view`` for period ``p`` over buckets in ``[a, b)`` (epoch s)."""
        try:
            self.query(cq_select(view, self.db, p, f"time >= {a}s AND time < {b}s"))
        except SinkError as e:
            m = _DROPPED.search(str(e))
            if "beyond retention policy" not in str(e) or not m:
                raise
            self.dropped += int(m.group(1))
