"""The rules service's state as a fold over events: rebuilt by replaying the log on restart.

Inputs are raw records (dicts) of these types: ``rule`` (decisions: pending, ok, act, ...),
``alert`` (raised/cleared), ``silence`` (set/cleared), ``lease`` (for lease-change counts).
The engine applies every event it emits to the same state with :meth:`RuleState.apply`, so
the state after a live run equals the state after replaying that run's events: a restarted
service neither re-raises open alerts nor re-runs steps it already took.

A ``rule`` event with decision ``checkpoint`` carries the whole state (``state`` field);
replay starts from the newest checkpoint it finds (see :mod:`minectl_py.rules.replay`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from minectl_py.rules.scope import Selector, SelectorError

HOUR_MS = 3_600_000


@dataclass(slots=True)
class Track:
    """One rule on one miner while its condition holds (absent when it does not)."""

    since_ms: int
    alert_id: str | None = None  # open condition alert
    exhausted_id: str | None = None  # open exhausted alert
    step: int = 0  # action steps taken in this episode
    last_action_ms: int = 0
    last_decision: str = "pending"


@dataclass(slots=True)
class SilenceEntry:
    id: str
    selector: Selector
    until_ms: int
    rule: str | None
    user: str = ""
    reason: str = ""
    set_ms: int = 0
    from_ms: int = 0  # a maintenance window scheduled ahead starts here

    def covers(self, rule: str, facts: Mapping[str, Any] | None, now_ms: int) -> bool:
        if not self.from_ms <= now_ms < self.until_ms or (self.rule is not None and self.rule != rule):
            return False
        if facts is None:  # a site-wide alert: only an all-miner silence covers it
            return self.selector.everything
        return self.selector(facts)


@dataclass(slots=True)
class RuleState:
    tracks: dict[tuple[str, str], Track] = field(default_factory=dict)
    site_alerts: dict[str, str] = field(default_factory=dict)  # rule -> raised alert id
    storms: dict[str, int] = field(default_factory=dict)  # rule -> since when a site-wide fault holds
    #: (rule, mac) -> (steps taken, last action) of an episode that ended less than an hour
    #: after its last step: a new episode resumes the ladder (a reboot that helped for a
    #: moment, or the miner going dark while it reboots, does not start it over)
    ladders: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    silences: dict[str, SilenceEntry] = field(default_factory=dict)
    acts: dict[str, deque[int]] = field(default_factory=dict)  # mac -> times of rule actions
    leases: dict[str, deque[int]] = field(default_factory=dict)  # mac -> times of lease changes
    last_ip: dict[str, str] = field(default_factory=dict)
    last_ms: int = 0

    # -- folding ------------------------------------------------------------------------
    def apply_all(self, records: Iterable[Mapping[str, Any]]) -> RuleState:
        for r in records:
            self.apply(r)
        return self

    def apply(self, r: Mapping[str, Any]) -> None:
        cmd = r.get("cmd")
        try:
            t = int(r.get("created_at_ms", 0))
        except (TypeError, ValueError):
            return
        self.last_ms = max(self.last_ms, t)
        if cmd == "rule":
            self._rule(r, t)
        elif cmd == "alert":
            self._alert(r)
        elif cmd == "silence":
            self._silence(r, t)
        elif cmd == "lease":
            self._lease(r, t)

    def _rule(self, r: Mapping[str, Any], t: int) -> None:
        d = r.get("decision")
        rule = r.get("rule")
        mac = r.get("mac")
        if d == "checkpoint":
            if isinstance(r.get("state"), dict):
                self.restore(r["state"])
            return
        if not isinstance(rule, str):
            return
        if mac is None:
            if d == "storm":
                since = r.get("since_ms")
                self.storms[rule] = int(since) if isinstance(since, int) else t
            elif d == "ok":
                self.storms.pop(rule, None)
            return
        key = (rule, mac)
        tr = self.tracks.get(key)
        if d == "pending":
            since = r.get("since_ms")
            tr = self.tracks[key] = Track(since_ms=int(since) if isinstance(since, int) else t)
            lad = self.ladders.pop(key, None)
            if lad is not None and t - lad[1] < HOUR_MS:
                tr.step, tr.last_action_ms = lad
            return
        if d == "ok":
            self._end(key)
            return
        if tr is None:
            since = r.get("since_ms")
            tr = self.tracks[key] = Track(since_ms=int(since) if isinstance(since, int) else t)
        tr.last_decision = str(d)
        if d == "act":
            step = r.get("step")
            tr.step = int(step) if isinstance(step, int) else tr.step + 1
            tr.last_action_ms = t
            self.acts.setdefault(mac, deque()).append(t)

    def _alert(self, r: Mapping[str, Any]) -> None:
        rule, mac, kind, st = r.get("rule"), r.get("mac"), r.get("kind", "condition"), r.get("state")
        if not isinstance(rule, str):
            return
        if kind == "site":
            if st == "raised":
                self.site_alerts[rule] = str(r.get("id"))
            else:
                self.site_alerts.pop(rule, None)
            return
        if not isinstance(mac, str):
            return
        key = (rule, mac)
        tr = self.tracks.get(key)
        if st == "raised":
            if tr is None:
                since = r.get("since_ms")
                tr = self.tracks[key] = Track(since_ms=int(since) if isinstance(since, int) else self.last_ms)
            if kind == "exhausted":
                tr.exhausted_id = str(r.get("id"))
            else:
                tr.alert_id = str(r.get("id"))
        elif tr is not None:
            if kind == "exhausted":
                tr.exhausted_id = None
            else:
                self._end(key)  # the condition alert clearing ends the episode

    def _end(self, key: tuple[str, str]) -> None:
        tr = self.tracks.pop(key, None)
        if tr is not None and tr.step > 0:
            self.ladders[key] = (tr.step, tr.last_action_ms)

    def _silence(self, r: Mapping[str, Any], t: int) -> None:
        if r.get("state") == "set":
            try:
                sel = Selector.parse(str(r.get("selector", "")))
            except SelectorError:
                return
            until = r.get("until_ms")
            if not isinstance(until, int):
                return
            sid = str(r.get("id"))
            rule = r.get("rule") if isinstance(r.get("rule"), str) else None
            start = r.get("from_ms")
            self.silences[sid] = SilenceEntry(
                sid,
                sel,
                until,
                rule,
                str(r.get("user", "")),
                str(r.get("reason", "")),
                t,
                start if isinstance(start, int) else 0,
            )
        elif r.get("state") == "cleared":
            self.silences.pop(str(r.get("silence_id")), None)

    def _lease(self, r: Mapping[str, Any], t: int) -> None:
        mac = r.get("mac")
        if not isinstance(mac, str):
            return
        mac = mac.lower()
        ip = r.get("ip")
        act = r.get("action")
        changed = act in ("add", "del") or (act == "old" and isinstance(ip, str) and self.last_ip.get(mac) != ip)
        if isinstance(ip, str):
            self.last_ip[mac] = ip
        if changed:
            self.leases.setdefault(mac, deque()).append(t)

    # -- queries ------------------------------------------------------------------------
    def prune(self, now_ms: int) -> None:
        """Forget what no longer matters: action and lease times older than an hour, expired silences."""
        cut = now_ms - HOUR_MS
        for table in (self.acts, self.leases):
            for mac in list(table):
                q = table[mac]
                while q and q[0] <= cut:
                    q.popleft()
                if not q:
                    del table[mac]
        for sid in [s for s, e in self.silences.items() if e.until_ms <= now_ms]:
            del self.silences[sid]
        for key in [k for k, (_, last) in self.ladders.items() if last <= cut]:
            del self.ladders[key]

    def count_since(self, table: dict[str, deque[int]], mac: str, since_ms: int) -> int:
        q = table.get(mac)
        if not q:
            return 0
        return sum(1 for x in q if x > since_ms)

    def acting(self, now_ms: int, settle_ms: int) -> set[str]:
        """Miners a rule acted on within the settle window (still "being acted on")."""
        cut = now_ms - settle_ms
        return {mac for mac, q in self.acts.items() if q and q[-1] > cut}

    def silenced(self, rule: str, facts: Mapping[str, Any] | None, now_ms: int) -> SilenceEntry | None:
        for s in self.silences.values():
            if s.covers(rule, facts, now_ms):
                return s
        return None

    # -- checkpoints ------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "tracks": [[r, m, asdict(t)] for (r, m), t in sorted(self.tracks.items())],
            "site_alerts": dict(self.site_alerts),
            "storms": dict(self.storms),
            "silences": [
                {
                    "id": s.id,
                    "selector": s.selector.text,
                    "until_ms": s.until_ms,
                    "rule": s.rule,
                    "user": s.user,
                    "reason": s.reason,
                    "set_ms": s.set_ms,
                    "from_ms": s.from_ms,
                }
                for s in self.silences.values()
            ],
            "acts": {m: list(q) for m, q in self.acts.items()},
            "leases": {m: list(q) for m, q in self.leases.items()},
            "last_ip": dict(self.last_ip),
            "ladders": [[r, m, step, last] for (r, m), (step, last) in sorted(self.ladders.items())],
        }

    def restore(self, snap: Mapping[str, Any]) -> None:
        self.tracks = {}
        for item in snap.get("tracks", []):
            try:
                r, m, t = item
                self.tracks[(str(r), str(m))] = Track(**{k: t[k] for k in Track.__slots__ if k in t})
            except (TypeError, ValueError):
                continue
        self.site_alerts = {str(k): str(v) for k, v in dict(snap.get("site_alerts", {})).items()}
        self.storms = {str(k): int(v) for k, v in dict(snap.get("storms", {})).items()}
        self.silences = {}
        for s in snap.get("silences", []):
            try:
                sel = Selector.parse(s["selector"])
                self.silences[s["id"]] = SilenceEntry(
                    s["id"],
                    sel,
                    int(s["until_ms"]),
                    s.get("rule"),
                    s.get("user", ""),
                    s.get("reason", ""),
                    int(s.get("set_ms", 0)),
                    int(s.get("from_ms", 0)),
                )
            except (KeyError, TypeError, ValueError, SelectorError):
                continue
        self.acts = {m: deque(int(x) for x in q) for m, q in dict(snap.get("acts", {})).items()}
        self.leases = {m: deque(int(x) for x in q) for m, q in dict(snap.get("leases", {})).items()}
        self.last_ip = {str(k): str(v) for k, v in dict(snap.get("last_ip", {})).items()}
        self.ladders = {}
        for item in snap.get("ladders", []):
            try:
                r, m, step, last = item
                self.ladders[(str(r), str(m))] = (int(step), int(last))
            except (TypeError, ValueError):
                continue
