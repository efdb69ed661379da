"""Run reductions over a stream of records and hand their rows to sinks.

The watermark is the newest record time seen minus the lateness (default 5 minutes):
every minute before it is closed, its rows written, and a record that arrives later for a
closed minute is counted as late (reported, not silently dropped). The same records in
the same order give the same rows whether they come from files (batch) or from a live
log (follow): closing depends only on record times, never on the wall clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from minectl_py.reduce.base import Context, Out, Reduction, Rollup, Rows, miner_key
from minectl_py.reduce.hashrate import Hashrate
from minectl_py.reduce.health import Availability, Temperature
from minectl_py.reduce.record import HashRec, Rec, ValidationError, from_dict
from minectl_py.reduce.timeline import Leases, Timeline
from minectl_py.reduce.views import ALL, PERIODS, View

#: name -> (reduction classes, the view printed by default)
REDUCTIONS: dict[str, tuple[tuple[type[Reduction], ...], str]] = {
    "hashrate": ((Hashrate,), "hashrate_site"),
    "underperformers": ((Hashrate,), "underperformers"),
    "availability": ((Availability,), "availability_site"),
    "states": ((Availability,), "miner_states"),
    "temperature": ((Temperature,), "temps_miner"),
    "leases": ((Leases,), "leases_site"),
    "timeline": ((Timeline,), "timeline"),
    "all": ((Hashrate, Availability, Temperature, Leases, Timeline), "hashrate_site"),
}
#: views each name materializes into a database (``all``: every view)
NAME_VIEWS: dict[str, tuple[str, ...]] = {
    "hashrate": ("hashrate_site", "hashrate_rack", "hashrate_miner", "underperformers"),
    "underperformers": ("underperformers",),
    "availability": ("availability_site", "availability_miner", "miner_states"),
    "states": ("miner_states",),
    "temperature": ("temps_miner", "temps_hist"),
    "leases": ("leases_site",),
    "timeline": ("timeline",),
    "all": tuple(ALL),
}
LEARN_CMDS = frozenset({"lease", "inventory"})


class Sink(Protocol):
    def write(self, view: View, rows: Rows) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class Engine:
    def __init__(
        self,
        names: Iterable[str],
        sinks: list[Any],
        ctx: Context | None = None,
        lateness_s: int = 300,
        rollup_periods: Iterable[int] = PERIODS[1:],
    ) -> None:
        self.ctx = ctx or Context()
        self.sinks = sinks
        self.lateness_s = lateness_s
        classes: list[type[Reduction]] = []
        for n in names:
            if n not in REDUCTIONS:
                raise ValueError(f"unknown reduction {n!r}; have: {', '.join(REDUCTIONS)}")
            for c in REDUCTIONS[n][0]:
                if c not in classes:
                    classes.append(c)
        self.reductions = [r for r in (c(self.ctx) for c in classes) if r.wants_any()]
        self.by_cmd: dict[str, list[Reduction]] = {}
        for r in self.reductions:
            for cmd in r.cmds:
                self.by_cmd.setdefault(cmd, []).append(r)
        self.rollups: dict[str, Rollup] = {}
        periods = tuple(rollup_periods)
        for r in self.reductions:
            for v in r.views:
                if v.periodic and v.name in r.produce and periods:
                    self.rollups[v.name] = Rollup(v, periods)
        types = {r.rec_type for r in self.reductions}
        #: the record type to decode: the smaller HashRec when every reduction reads only that
        self.rec_type: type = HashRec if types == {HashRec} else Rec
        self.maxt = -1
        self.closed = -1
        self.records = 0  # records the reductions used
        self.rows = 0  # rows handed to the sinks

    @property
    def cmds(self) -> frozenset[str]:
        """Record types to read: the reductions' and those that say where miners are."""
        return frozenset(self.by_cmd) | LEARN_CMDS

    def feed(self, rec: Rec) -> None:
        self.feed_batches([[rec]])

    def feed_dict(self, d: dict[str, Any]) -> None:
        """A record read as a dict (follow mode, the temporal index)."""
        if d.get("cmd") not in self.by_cmd and d.get("cmd") not in LEARN_CMDS:
            return
        try:
            rec = from_dict(d, self.rec_type)
        except ValidationError as e:
            self.ctx.bad(f"{d.get('cmd')} record: {e}")
            return
        self.feed(rec)

    def feed_all(self, records: Iterable[Any]) -> None:
        """Feed records (:class:`Rec` or dicts) in order."""
        self.feed_batches([records])

    def feed_batches(self, batches: Iterable[Iterable[Any]]) -> None:
        """Feed lists of records in order. The loop is :meth:`feed` inlined: it runs once
        per record of the input."""
        by_cmd = self.by_cmd
        learn = self.ctx.inventory.learn
        for batch in batches:
            for rec in batch:
                if type(rec) is dict:
                    self.feed_dict(rec)
                    continue
                cmd = rec.cmd
                if cmd in LEARN_CMDS or rec.rack is not None:
                    key = miner_key(rec)
                    if key is not None:
                        learn(rec, key)
                reds = by_cmd.get(cmd)
                if reds is None:
                    continue
                try:
                    t_ms = int(rec.created_at_ms)
                except (TypeError, ValueError):
                    self.ctx.bad(f"{cmd} record without a created_at_ms time")
                    continue
                self.records += 1
                for r in reds:
                    r.feed(rec, t_ms)
                if t_ms > self.maxt:
                    self.maxt = t_ms
                    upto = (t_ms // 1000 - self.lateness_s) // 60 * 60
                    if upto > self.closed:
                        self.close(upto)

    def close(self, upto: int) -> None:
        """Close every minute before ``upto`` (epoch s) and every rollup bucket ending by then."""
        self.closed = upto
        for r in self.reductions:
            self._route(r, r.close(upto))
        for r in self.reductions:
            for v in r.views:
                ru = self.rollups.get(v.name)
                if ru is not None:
                    self._rolled(r, v, ru.advance(upto))

    def finish(self) -> None:
        """End of input: close everything still open, flush the sinks."""
        for r in self.reductions:
            self._route(r, r.close(2**62))
        for r in self.reductions:
            for v in r.views:
                ru = self.rollups.get(v.name)
                if ru is not None:
                    self._rolled(r, v, ru.flush())
        for s in self.sinks:
            s.flush()

    def _route(self, r: Reduction, out: Out) -> None:
        for view, rows in out:
            if view.name in r.want:
                self._write(view, rows)
            ru = self.rollups.get(view.name)
            if ru is not None and rows:
                self._rolled(r, view, ru.add(rows))

    def _rolled(self, r: Reduction, view: View, rows: Rows) -> None:
        if not rows:
            return
        if view.name in r.want:
            self._write(view, rows)
        for v2, rows2 in r.derive(view, rows):
            self._write(v2, rows2)

    def _write(self, view: View, rows: Rows) -> None:
        if not rows:
            return
        self.rows += len(rows)
        for s in self.sinks:
            s.write(view, rows)
