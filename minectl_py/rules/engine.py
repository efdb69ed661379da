"""The decision engine: given the rules, every miner's facts now, the rule state and the time,
decide which alerts to raise or clear, which actions to take, and what to notify. No I/O.

For each rule, every cycle:

1. Miners in the rule's scope whose condition is true. If more than ``storm_percent`` of the
   in-scope miners (and at least ``storm_min``) match at once, that is a site-wide fault: one
   ``site`` alert is raised for the rule, per-miner alerts are recorded but not notified, and
   no per-miner actions are taken until it clears.
2. A miner whose condition stops holding: its open alerts are cleared (or, before its hold
   time was reached, an ``ok`` decision ends the pending episode).
3. A miner whose condition starts holding: a ``pending`` decision (the held-since timer).
4. Held for the rule's ``for``: the ``condition`` alert is raised (once per episode).
5. Then the rule's action ladder, one step at a time: step 1 at once, step k+1 only after
   ``retry * 2**(k-1)`` if the condition still holds (backoff), each subject to: a silence
   (``silenced``), the per-miner limit of actions per hour and the end of the ladder
   (``gave_up``: an ``exhausted`` alert, and the miner is left alone), the site limit of
   miners acted on within ``settle`` (``deferred``: tried again next cycle).

Decisions other than ``act`` are recorded once per change (not every cycle). Every event the
engine emits is applied to the state at once, so the state is always the fold of the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from minectl_py.events import record
from minectl_py.rules.ruleset import Rule, RuleSet
from minectl_py.rules.state import HOUR_MS, RuleState

Facts = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ActionRequest:
    rule: str
    action: str
    mac: str
    ip: str | None
    name: str | None
    step: int
    params: dict[str, Any]
    decision_id: str  # id of the ``rule`` act event


@dataclass(slots=True)
class Outcome:
    events: list[dict[str, Any]] = field(default_factory=list)
    actions: list[ActionRequest] = field(default_factory=list)
    #: alert records to notify, with the channels of their rule
    notices: list[tuple[dict[str, Any], tuple[str, ...]]] = field(default_factory=list)

    def count(self, cmd: str, **match: Any) -> int:
        return sum(1 for e in self.events if e["cmd"] == cmd and all(e.get(k) == v for k, v in match.items()))


class Engine:
    def __init__(self, rules: RuleSet, state: RuleState, nodename: str, *, dry_run: bool = False) -> None:
        self.rules = rules
        self.state = state
        self.nodename = nodename
        self.dry_run = dry_run

    # -- emitting ------------------------------------------------------------------------
    def _emit(self, out: Outcome, cmd: str, now_ms: int, **fields: Any) -> dict[str, Any]:
        rec = record.make(cmd, self.nodename, {k: v for k, v in fields.items() if v is not None}, at_ms=now_ms)
        out.events.append(rec)
        self.state.apply(rec)
        return rec

    def _who(self, f: Facts | None) -> dict[str, Any]:
        if f is None:
            return {}
        return {"mac": f.get("mac"), "ip": f.get("ip"), "name": f.get("name") or f.get("hostname")}

    def _decide(self, out: Outcome, rule: Rule, f: Facts, now_ms: int, decision: str, detail: str) -> None:
        tr = self.state.tracks.get((rule.name, f["mac"]))
        if tr is not None and tr.last_decision == decision:
            return
        self._emit(out, "rule", now_ms, rule=rule.name, decision=decision, detail=detail, **self._who(f))

    def _alert(
        self,
        out: Outcome,
        rule: Rule,
        f: Facts | None,
        now_ms: int,
        *,
        state: str,
        kind: str,
        detail: str,
        notify: bool,
        since_ms: int | None = None,
        raised_id: str | None = None,
        silenced: bool = False,
    ) -> dict[str, Any]:
        values = None
        value = None
        if f is not None:
            values = {k: _plain(f.get(k)) for k in sorted(rule.when.fields)}
            for k in sorted(rule.when.fields):
                v = f.get(k)
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    value = v
                    break
        rec = self._emit(
            out,
            "alert",
            now_ms,
            rule=rule.name,
            state=state,
            kind=kind,
            severity=rule.severity if kind != "exhausted" else "critical",
            detail=detail,
            value=value,
            values=values,
            since_ms=since_ms,
            raised_id=raised_id,
            silenced=True if silenced else None,
            **self._who(f),
        )
        if notify and rule.notify and not silenced:
            out.notices.append((rec, rule.notify))
        return rec

    # -- the cycle ------------------------------------------------------------------------
    def cycle(self, miners: Mapping[str, Facts], now_ms: int) -> Outcome:
        out = Outcome()
        st = self.state
        lim = self.rules.limits
        st.prune(now_ms)
        acting = st.acting(now_ms, lim.settle_ms)
        budget = [lim.max_acting - len(acting)]
        self._retired(out, now_ms)
        for rule in self.rules.rules:
            self._rule_cycle(out, rule, miners, now_ms, acting, budget)
        return out

    def _retired(self, out: Outcome, now_ms: int) -> None:
        """Rules no longer in the file (removed or renamed): end their episodes and alerts."""
        st = self.state
        names = {r.name for r in self.rules.rules}
        detail = "the rule is no longer in the rules file"
        for rule, mac in sorted(k for k in st.tracks if k[0] not in names):
            tr = st.tracks[(rule, mac)]
            who = {"mac": mac}
            for kind, rid in (("exhausted", tr.exhausted_id), ("condition", tr.alert_id)):
                if rid:
                    self._emit(
                        out, "alert", now_ms, rule=rule, state="cleared", kind=kind, detail=detail, raised_id=rid, **who
                    )
            if (rule, mac) in st.tracks:
                self._emit(out, "rule", now_ms, rule=rule, decision="ok", detail=detail, **who)
        for rule in sorted(set(st.storms) - names):
            rid = st.site_alerts.get(rule)
            if rid:
                self._emit(out, "alert", now_ms, rule=rule, state="cleared", kind="site", detail=detail, raised_id=rid)
            self._emit(out, "rule", now_ms, rule=rule, decision="ok", detail=detail)

    def _rule_cycle(
        self,
        out: Outcome,
        rule: Rule,
        miners: Mapping[str, Facts],
        now_ms: int,
        acting: set[str],
        budget: list[int],
    ) -> None:
        st = self.state
        lim = self.rules.limits
        test = rule.when.test
        scope = rule.scope
        if scope.everything:
            n_scope = len(miners)
            true = {mac: f for mac, f in miners.items() if test(f)}
        else:
            n_scope = 0
            true = {}
            for mac, f in miners.items():
                if scope(f):
                    n_scope += 1
                    if test(f):
                        true[mac] = f

        # 1. site-wide fault: actions stop at once; the site alert follows the rule's hold time
        n = len(true)
        storm = n >= lim.storm_min and n_scope > 0 and 100.0 * n / n_scope > lim.storm_percent
        share = f"{n} of {n_scope} miners ({100.0 * n / n_scope if n_scope else 0:.0f}%)"
        storm_since = st.storms.get(rule.name)
        if storm and storm_since is None:
            self._emit(
                out,
                "rule",
                now_ms,
                rule=rule.name,
                decision="storm",
                since_ms=now_ms,
                detail=f"{share} match at once: site-wide fault, no per-miner actions",
            )
            storm_since = now_ms
        site_id = st.site_alerts.get(rule.name)
        if storm and site_id is None and storm_since is not None and now_ms - storm_since >= rule.hold_ms:
            silenced = st.silenced(rule.name, None, now_ms) is not None
            self._alert(
                out,
                rule,
                None,
                now_ms,
                state="raised",
                kind="site",
                since_ms=storm_since,
                notify=True,
                detail=f"{share} match at once: site-wide fault, no per-miner actions",
                silenced=silenced,
            )
        if not storm and storm_since is not None:
            detail = f"{share} match: below the site-wide limit"
            if site_id is not None:
                self._alert(
                    out,
                    rule,
                    None,
                    now_ms,
                    state="cleared",
                    kind="site",
                    detail=detail,
                    notify=True,
                    since_ms=storm_since,
                    raised_id=site_id,
                )
            self._emit(out, "rule", now_ms, rule=rule.name, decision="ok", detail=detail)

        # 2. episodes that ended
        for key in [k for k in st.tracks if k[0] == rule.name and k[1] not in true]:
            tr = st.tracks[key]
            f = miners.get(key[1]) or {"mac": key[1]}
            if tr.exhausted_id:
                self._alert(
                    out,
                    rule,
                    f,
                    now_ms,
                    state="cleared",
                    kind="exhausted",
                    detail="condition no longer holds",
                    notify=True,
                    raised_id=tr.exhausted_id,
                    silenced=st.silenced(rule.name, f, now_ms) is not None,
                )
            if tr.alert_id:
                self._alert(
                    out,
                    rule,
                    f,
                    now_ms,
                    state="cleared",
                    kind="condition",
                    detail="condition no longer holds",
                    notify=not storm,
                    since_ms=tr.since_ms,
                    raised_id=tr.alert_id,
                    silenced=st.silenced(rule.name, f, now_ms) is not None,
                )
            else:
                self._emit(out, "rule", now_ms, rule=rule.name, decision="ok", since_ms=tr.since_ms, **self._who(f))

        # 3.-4. episodes that hold: timers and alerts
        candidates = []
        for mac in sorted(true):
            f = true[mac]
            key = (rule.name, mac)
            tr = st.tracks.get(key)
            if tr is None:
                self._emit(out, "rule", now_ms, rule=rule.name, decision="pending", since_ms=now_ms, **self._who(f))
                tr = st.tracks[key]
            if now_ms - tr.since_ms < rule.hold_ms:
                continue
            silence = st.silenced(rule.name, f, now_ms)
            if tr.alert_id is None:
                self._alert(
                    out,
                    rule,
                    f,
                    now_ms,
                    state="raised",
                    kind="condition",
                    detail=f"{rule.when.text} for {_dur(now_ms - tr.since_ms)}",
                    notify=not storm,
                    since_ms=tr.since_ms,
                    silenced=silence is not None,
                )
            if rule.steps and tr.exhausted_id is None:
                candidates.append((tr.step, tr.since_ms, mac, f, tr, silence))
        # 5. actions: miners waiting for their first step go before those on later steps
        candidates.sort(key=lambda c: c[:3])
        for _, _, mac, f, tr, silence in candidates:
            self._ladder(out, rule, mac, f, tr, silence, storm, now_ms, acting, budget)

    def _ladder(
        self,
        out: Outcome,
        rule: Rule,
        mac: str,
        f: Facts,
        tr: Any,
        silence: Any,
        storm: bool,
        now_ms: int,
        acting: set[str],
        budget: list[int],
    ) -> None:
        st = self.state
        lim = self.rules.limits
        if storm:
            self._decide(out, rule, f, now_ms, "storm", "site-wide fault: no per-miner actions")
            return
        if silence is not None:
            self._decide(
                out, rule, f, now_ms, "silenced", f"silence {silence.selector.text!r} until {silence.until_ms}"
            )
            return
        if tr.step > 0 and now_ms - tr.last_action_ms < rule.retry_ms * 2 ** (tr.step - 1):
            return  # waiting for the last step to work (backoff)
        limit = lim.per_miner_per_hour
        if tr.step >= len(rule.steps):
            why = f"still true after {tr.step} action(s) ({', '.join(s.action for s in rule.steps)}): giving up"
        elif st.count_since(st.acts, mac, now_ms - HOUR_MS) >= limit:
            why = f"limit of {limit} action(s) per miner per hour reached: giving up"
        else:
            why = ""
        if why:
            self._decide(out, rule, f, now_ms, "gave_up", why)
            self._alert(
                out, rule, f, now_ms, state="raised", kind="exhausted", detail=why, notify=True, since_ms=tr.since_ms
            )
            return
        if mac not in acting and budget[0] <= 0:
            self._decide(
                out,
                rule,
                f,
                now_ms,
                "deferred",
                f"site limit: {lim.max_acting} miners acted on within {_dur(lim.settle_ms)}",
            )
            return
        number = tr.step + 1
        step = rule.steps[tr.step]
        rec = self._emit(
            out,
            "rule",
            now_ms,
            rule=rule.name,
            decision="act",
            action=step.action,
            step=number,
            params=dict(step.params) or None,
            since_ms=tr.since_ms,
            dry_run=True if self.dry_run else None,
            detail=f"{rule.when.text} for {_dur(now_ms - tr.since_ms)}",
            **self._who(f),
        )
        if mac not in acting:
            acting.add(mac)
            budget[0] -= 1
        out.actions.append(
            ActionRequest(rule.name, step.action, mac, f.get("ip"), f.get("name"), number, dict(step.params), rec["id"])
        )

    def checkpoint(self, now_ms: int) -> dict[str, Any]:
        """A ``rule`` checkpoint record carrying the whole state (replay starts from it)."""
        return record.make(
            "rule", self.nodename, {"rule": "*", "decision": "checkpoint", "state": self.state.snapshot()}, at_ms=now_ms
        )


def _plain(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _dur(ms: int) -> str:
    s = ms // 1000
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
