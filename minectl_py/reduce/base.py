"""What every reduction shares: one-minute buckets with a watermark, and rollups.

A reduction is fed records in log order (``feed``) and, when the engine's watermark says a
minute can no longer change, is asked to ``close`` it: it returns the one-minute rows of
its views. The engine passes periodic rows through :class:`Rollup` for the 5 and 60 minute
views. Nothing depends on wall-clock time or on how the records were read, so batch
replay and live follow give the same rows for the same records.

Memory stays bounded: only open minutes (those within the lateness window), open rollup
buckets and one small entry per known miner are kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from minectl_py.reduce.inventory import Inventory, norm_mac
from minectl_py.reduce.record import Rec
from minectl_py.reduce.views import View

Rows = list[tuple[Any, ...]]
Out = list[tuple[View, Rows]]


@dataclass(slots=True)
class Options:
    """Tunables shared by the reductions."""

    underperform_pct: float = 90.0  # below this % of nominal over a bucket: underperformer
    silent_after_s: int = 600  # a miner not heard from for this long counts as offline
    temp_bin_c: int = 5


@dataclass(slots=True)
class Context:
    inventory: Inventory = field(default_factory=Inventory)
    options: Options = field(default_factory=Options)
    wanted: frozenset[str] | None = None  # view names to produce (None: all of the reduction's)
    invalid: int = 0  # records of a wanted type whose fields made no sense
    late: int = 0  # records for a minute already closed (outside the lateness window)
    invalid_samples: list[str] = field(default_factory=list)

    def bad(self, why: str) -> None:
        self.invalid += 1
        if len(self.invalid_samples) < 20:
            self.invalid_samples.append(why)


_MACS: dict[Any, str | None] = {}


def mac_of(value: Any) -> str | None:
    """``norm_mac`` with a cache (the same few thousand MACs repeat in every minute)."""
    try:
        return _MACS[value]
    except (KeyError, TypeError):
        pass
    m = norm_mac(value)
    if len(_MACS) > 200_000:
        _MACS.clear()
    if isinstance(value, str):
        _MACS[value] = m
    return m


def miner_key(rec: Rec) -> str | None:
    """The miner a record is about: its MAC (record, then ``miner.mac``), else its IP."""
    mac = mac_of(rec.mac) if rec.mac is not None else None
    if mac is None and rec.miner is not None and rec.miner.mac is not None:
        mac = mac_of(rec.miner.mac)
    if mac is not None:
        return mac
    ip = rec.ip
    return ip if ip is not None and 0 < len(ip) <= 45 and ip.isprintable() else None


class Reduction:
    """Base class: subclasses set ``name``, ``cmds``, ``views`` and implement
    ``feed_minute`` (one record into its minute's state) and ``emit`` (a closed minute)."""

    name = ""
    cmds: frozenset[str] = frozenset()
    rec_type: type = Rec  # what it reads of a record (HashRec: fewer fields, faster to decode)
    views: tuple[View, ...] = ()

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.inv = ctx.inventory
        self.opt = ctx.options
        self.buckets: dict[int, Any] = {}
        self.closed_upto = -1  # every minute < this is closed
        w = ctx.wanted
        self.want = {v.name for v in self.views if w is None or v.name in w}
        self.produce = set(self.want)  # views computed (wanted ones and what they derive from)

    def wants_any(self) -> bool:
        return bool(self.want)

    def bucket(self, t_ms: int) -> Any:
        """The state of ``t_ms``'s minute, or None if that minute is already closed."""
        minute = t_ms // 60_000 * 60
        b = self.buckets.get(minute)
        if b is None:
            if minute < self.closed_upto:
                self.ctx.late += 1
                return None
            b = self.buckets[minute] = self.new_bucket()
        return b

    def new_bucket(self) -> Any:
        return {}

    def feed(self, rec: Rec, t_ms: int) -> None:
        raise NotImplementedError

    def close(self, upto_s: int) -> Out:
        """Rows of every open minute before ``upto_s`` (epoch seconds), oldest first."""
        out: Out = []
        for minute in sorted(m for m in self.buckets if m < upto_s):
            out.extend(self.emit(minute, self.buckets.pop(minute)))
        self.closed_upto = max(self.closed_upto, upto_s)
        return out

    def emit(self, minute: int, state: Any) -> Out:
        raise NotImplementedError

    def derive(self, view: View, rows: Rows) -> Out:
        """Views computed from rollup rows (e.g. underperformers); none by default."""
        return []


# ------------------------------------------------------------------------- rollups
def _agg_fns(view: View) -> list[tuple[int, str]]:
    return [(view.index(c.name), c.agg) for c in view.values]


class Rollup:
    """Aggregate one-minute rows of a periodic view into longer buckets, column by column.

    Rows must arrive minute by minute in time order (they do: minutes close in order).
    A bucket is emitted once a row from a later bucket arrives, or at ``flush``.
    """

    def __init__(self, view: View, periods: Iterable[int]) -> None:
        self.view = view
        self.periods = tuple(periods)
        self.fns = _agg_fns(view)
        self.nk = view.nkeys
        self.open: dict[int, dict[int, dict[tuple[Any, ...], list[Any]]]] = {p: {} for p in self.periods}

    def add(self, rows: Rows) -> Rows:
        out: Rows = []
        if not rows:
            return out
        ts = rows[0][1]
        nk = self.nk
        fns = self.fns
        for p in self.periods:
            buckets = self.open[p]
            for b in sorted(b for b in buckets if b + p <= ts):
                out.extend(self._emit(p, b, buckets.pop(b)))
            for row in rows:
                t = row[1]
                b = t - t % p
                cur = buckets.get(b)
                if cur is None:
                    cur = buckets[b] = {}
                key = row[2:nk]
                st = cur.get(key)
                if st is None:
                    cur[key] = [_start(agg, row[i]) for i, agg in fns]
                else:
                    for j, (i, agg) in enumerate(fns):
                        st[j] = _step(agg, st[j], row[i])
        return out

    def advance(self, upto: int) -> Rows:
        """Emit every bucket that ends at or before ``upto`` (epoch s)."""
        out: Rows = []
        for p in self.periods:
            buckets = self.open[p]
            for b in sorted(b for b in buckets if b + p <= upto):
                out.extend(self._emit(p, b, buckets.pop(b)))
        return out

    def flush(self) -> Rows:
        out: Rows = []
        for p in self.periods:
            buckets = self.open[p]
            for b in sorted(buckets):
                out.extend(self._emit(p, b, buckets.pop(b)))
        return out

    def _emit(self, p: int, b: int, cur: dict[tuple[Any, ...], list[Any]]) -> Rows:
        kinds = [c.kind for c in self.view.values]
        out = []
        for key in sorted(cur):
            st = cur[key]
            vals = [_final(agg, s, k) for (_, agg), s, k in zip(self.fns, st, kinds, strict=True)]
            out.append((p, b, *key, *vals))
        return out


def _start(agg: str, v: Any) -> Any:
    if agg == "mean":
        return [v, 1] if v is not None else [0.0, 0]
    return v


def _step(agg: str, s: Any, v: Any) -> Any:
    if v is None:
        return s
    if agg == "mean":
        s[0] += v
        s[1] += 1
        return s
    if s is None:
        return v
    if agg == "sum":
        return s + v
    if agg == "max":
        return v if v > s else s
    if agg == "min":
        return v if v < s else s
    return v  # last


def _final(agg: str, s: Any, kind: str) -> Any:
    if agg == "mean":
        if not s[1]:
            return None
        return round(s[0] / s[1], 4)
    return s
