"""``minectl rules run``: the watchdog loop (I/O around the engine).

Each cycle: read every miner from the state directory, fold in records others appended to
the log since the last cycle (silences, leases), let the engine decide, append its events
(durable) *before* acting, act through the actuator (whose ``action`` events name the rule),
notify, and append the ``notify`` records. ``dry_run`` does all of it in memory only: nothing
is written, nothing is sent, no miner is touched; the decisions are returned for printing.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from minectl_py.events.reader import ReadStats
from minectl_py.events.writer import EventWriter
from minectl_py.rules import replay
from minectl_py.rules.engine import ActionRequest, Engine
from minectl_py.rules.facts import facts, refresh
from minectl_py.rules.notify import Notifier
from minectl_py.rules.ruleset import RuleSet
from minectl_py.rules.state import HOUR_MS

log = logging.getLogger("minectl.rules")

CHECKPOINT_MS = HOUR_MS


class Actuator(Protocol):
    """Runs rule actions on miners and returns one ``action`` record per request (not yet written)."""

    def run(self, requests: list[ActionRequest], miners: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]: ...


def read_state_dir(state_dir: str) -> list[dict[str, Any]]:
    """Every miner's record: ``minectl_py.state.read.load_all`` when present, else miner.json files."""
    try:
        from minectl_py.state.read import load_all  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        load_all = None
    if load_all is not None:
        return [dict(r) for r in load_all(state_dir)]
    out = []
    base = os.path.join(state_dir, "miners")
    try:
        names = sorted(os.listdir(base))
    except FileNotFoundError:
        return []
    for n in names:
        if n.startswith("."):  # writers' scratch folders (docs/state.md)
            continue
        try:
            with open(os.path.join(base, n, "miner.json"), "rb") as f:
                rec = json.loads(f.read())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict):
            rec.setdefault("mac", n)
            out.append(rec)
    return out


@dataclass(slots=True)
class CycleReport:
    at_ms: int
    miners: int
    events: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    notified: list[dict[str, Any]] = field(default_factory=list)
    requests: list[ActionRequest] = field(default_factory=list)
    elapsed_ms: int = 0


class Service:
    def __init__(
        self,
        rules: RuleSet,
        *,
        events_path: str,
        state_dir: str,
        nodename: str,
        actuator: Actuator | None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
        dry_run: bool = False,
        lookback_ms: int = 7 * 86_400_000,
        load: Callable[[str], list[dict[str, Any]]] = read_state_dir,
    ) -> None:
        self.rules = rules
        self.events_path = events_path
        self.state_dir = state_dir
        self.nodename = nodename
        self.actuator = actuator
        self.notifier = notifier if notifier is not None else Notifier(rules.notify, nodename, clock=clock)
        self.clock = clock
        self.dry_run = dry_run
        self.lookback_ms = lookback_ms
        self.load = load
        self.stats = ReadStats()
        self.writer: EventWriter | None = None if dry_run else EventWriter(events_path)
        self.engine: Engine | None = None
        self.tail = replay.Tail(events_path, self.stats)
        self._mine: set[str] = set()
        self._last_checkpoint = 0
        self._facts: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}  # mac -> (record, facts)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def start(self) -> None:
        """Rebuild the state from the log, then follow the live file from its end."""
        now = self.now_ms()
        st = replay.rebuild(self.events_path, now, self.lookback_ms, self.stats)
        self.tail.start_at_end()
        self.engine = Engine(self.rules, st, self.nodename, dry_run=self.dry_run)
        self._last_checkpoint = now  # a checkpoint right away would only repeat the log
        if self.stats.bad:
            log.warning("replay: %d bad record(s) skipped, e.g. %s", self.stats.bad, self.stats.samples[:1])

    def _append(self, recs: list[dict[str, Any]]) -> None:
        if not recs or self.writer is None:
            return
        self.writer.append_many(recs)
        self._mine.update(r["id"] for r in recs)

    def _follow(self) -> None:
        assert self.engine is not None
        for rec in self.tail.read():
            rid = rec.get("id")
            if rid in self._mine:
                self._mine.discard(rid)
                continue
            self.engine.state.apply(rec)

    def cycle(self) -> CycleReport:
        if self.engine is None:
            self.start()
        assert self.engine is not None
        t0 = time.monotonic()
        self._follow()  # silences and leases others appended (in a dry run too: it only reads)
        now = self.now_ms()
        st = self.engine.state
        st.prune(now)
        hour_ago = now - HOUR_MS
        miners: dict[str, dict[str, Any]] = {}
        cache: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        now_s = now / 1000
        for rec in self.load(self.state_dir):
            mac = str(rec.get("mac") or "").lower()
            if not mac:
                continue
            leases = float(st.count_since(st.leases, mac, hour_ago))
            acts = float(st.count_since(st.acts, mac, hour_ago))
            hit = self._facts.get(mac)
            if hit is not None and hit[0] == rec:  # unchanged since the last cycle: refresh the clocks only
                f = hit[1]  # the engine keeps no reference to facts between cycles
                refresh(f, now_s, leases, acts)
            else:
                f = facts(rec, now_s, lease_changes_1h=int(leases), rule_actions_1h=int(acts))
                f["mac"] = mac
            cache[mac] = (rec, f)
            miners[mac] = f
        if not miners and (self._facts or st.tracks):
            # every miner vanished at once: the state directory is unreadable or being rebuilt,
            # not a healed site. Clearing every alert now would only re-raise them next cycle.
            log.warning("no miners in %s (rules have open episodes): skipping this cycle", self.state_dir)
            return CycleReport(now, 0, elapsed_ms=int((time.monotonic() - t0) * 1000))
        self._facts = cache
        out = self.engine.cycle(miners, now)
        rep = CycleReport(now, len(miners), events=out.events, requests=out.actions)
        self._append(out.events)  # decisions are durable before anything is done
        if out.actions and not self.dry_run:
            if self.actuator is None:
                log.error("rules want %d action(s) but no actuator is configured", len(out.actions))
            else:
                rep.actions = self.actuator.run(out.actions, miners)
                self._append(rep.actions)
        if out.notices and not self.dry_run:
            rep.notified = self.notifier.send(out.notices)
            self._append(rep.notified)
        if not self.dry_run and now - self._last_checkpoint >= CHECKPOINT_MS:
            self._append([self.engine.checkpoint(now)])
            self._last_checkpoint = now
        rep.elapsed_ms = int((time.monotonic() - t0) * 1000)
        return rep

    def close(self) -> None:
        self.tail.close()
        if self.writer is not None:
            self.writer.close()
