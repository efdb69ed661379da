"""Lease churn per minute, and the timeline of faults and admin actions.

Timeline kinds: ``action`` (an admin or rule acted on a miner, with its result), ``alert``
(a rule raised or cleared an alert), ``fault`` (a miner's polls start failing: the first
``poll_fail`` after a good poll or at the start), ``recovered`` (the first good poll after
failures), ``released`` (its DHCP lease was released). Repeated failures of a failing miner
are not repeated in the timeline (the availability views count them).
"""

from __future__ import annotations

from typing import Any

from minectl_py.reduce.base import Out, Reduction, mac_of, miner_key
from minectl_py.reduce.inventory import clean
from minectl_py.reduce.record import Rec
from minectl_py.reduce.views import LEASES_SITE, TIMELINE

MAX_DETAIL = 200


class Leases(Reduction):
    name = "leases"
    cmds = frozenset({"lease"})
    views = (LEASES_SITE,)

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.ip_of: dict[str, str] = {}

    def feed(self, rec: Rec, t_ms: int) -> None:
        mac = mac_of(rec.mac)
        action = rec.action
        if mac is None or action not in ("add", "old", "del"):
            self.ctx.bad(f"lease record with mac {rec.mac!r:.20} action {action!r:.10}")
            return
        b = self.bucket(t_ms)
        if b is None:
            return
        if not b:
            b.update(adds=0, renewals=0, releases=0, new_macs=0, ip_changes=0)
        b[{"add": "adds", "old": "renewals", "del": "releases"}[action]] += 1
        ip = rec.ip
        prev = self.ip_of.get(mac)
        if prev is None:
            b["new_macs"] += 1
        elif isinstance(ip, str) and ip != prev:
            b["ip_changes"] += 1
        if isinstance(ip, str):
            self.ip_of[mac] = ip[:45]

    def emit(self, minute: int, b: dict[str, int]) -> Out:
        row = (60, minute, b["adds"], b["renewals"], b["releases"], b["new_macs"], b["ip_changes"])
        return [(LEASES_SITE, [row])]


class Timeline(Reduction):
    name = "timeline"
    cmds = frozenset({"action", "alert", "poll", "poll_fail", "lease"})
    views = (TIMELINE,)

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.failing: dict[str, bool] = {}

    def new_bucket(self) -> Any:
        return []

    def feed(self, rec: Rec, t_ms: int) -> None:
        cmd = rec.cmd
        key = miner_key(rec)
        if cmd == "poll":
            if key is None or not self.failing.get(key):
                return
            self.failing[key] = False
            self._add(rec, t_ms, key, "recovered", "poll ok", "ok", "")
        elif cmd == "poll_fail":
            if key is None or self.failing.get(key):
                return
            self.failing[key] = True
            self._add(rec, t_ms, key, "fault", clean(rec.reason), "failing", rec.detail)
        elif cmd == "lease":
            if rec.action == "del" and key is not None:
                self.failing.pop(key, None)
                self._add(rec, t_ms, key, "released", "lease del", "", rec.hostname)
        elif cmd == "action":
            what = f"{clean(rec.user)}: {clean(rec.action)}"
            if rec.rule:
                what += f" (rule {clean(rec.rule)})"
            self._add(rec, t_ms, key, "action", what, clean(rec.result), rec.detail)
        elif cmd == "alert":
            what = f"{clean(rec.rule)} ({clean(rec.severity)})"
            self._add(rec, t_ms, key, "alert", what, clean(rec.state), rec.detail)

    def _add(self, rec: Rec, t_ms: int, key: str | None, kind: str, what: str, result: str, detail: str | None) -> None:
        b = self.bucket(t_ms)
        if b is None:
            return
        mac = mac_of(rec.mac) or (key if key and mac_of(key) else "")
        ip = rec.ip if rec.ip is not None else rec.target
        place = self.inv.by_mac.get(mac) if mac else None
        name = clean(rec.name) or (place.name if place else "")
        rid = clean(rec.id) if rec.id else f"{t_ms}-{kind}-{key or ''}"
        d = "".join(ch for ch in detail if ch.isprintable()) if detail else ""
        b.append((rid, t_ms, kind, mac, clean(ip), name, place.rack if place else "", what, result, d[:MAX_DETAIL]))

    def emit(self, minute: int, b: list[tuple[Any, ...]]) -> Out:
        return [(TIMELINE, sorted(b, key=lambda r: (r[1], r[0])))]
