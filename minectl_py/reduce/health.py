"""Availability and uptime, miners by state, temperatures and fans.

Availability of a miner in a bucket is polls answered / polls tried (``poll`` vs
``poll_fail``); a restart is a poll whose ``uptime_s`` is lower than the miner's previous
one. A miner's state at the end of a minute is the state of its last event so far
(``poll`` online, ``poll_fail`` failing, lease ``del`` offline, a lease of a miner never
polled new); a miner not heard from for ``silent_after_s`` counts as offline, and one
offline for a day is forgotten (so memory stays bounded under churn).
"""

from __future__ import annotations

from typing import Any

from minectl_py.reduce.base import Out, Reduction, miner_key
from minectl_py.reduce.record import Rec
from minectl_py.reduce.views import (
    AVAILABILITY_MINER,
    AVAILABILITY_SITE,
    MINER_STATES,
    TEMPS_HIST,
    TEMPS_MINER,
)

FORGET_S = 86_400
STATES = ("online", "failing", "offline", "new")


class Availability(Reduction):
    name = "availability"
    cmds = frozenset({"poll", "poll_fail", "lease"})
    views = (AVAILABILITY_SITE, AVAILABILITY_MINER, MINER_STATES)

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.last_uptime: dict[str, float] = {}
        self.polled: set[str] = set()
        self.status: dict[str, tuple[str, int]] = {}  # mac -> (state, last heard, epoch s)

    def feed(self, rec: Rec, t_ms: int) -> None:
        key = miner_key(rec)
        if key is None:
            self.ctx.bad(f"{rec.cmd} record with neither mac nor ip")
            return
        b = self.bucket(t_ms)
        if b is None:
            return
        st = b.get(key)
        if st is None:
            st = b[key] = [0, 0, None, 0, "", -1]  # ok, failed, uptime max, restarts, state, state time
        cmd = rec.cmd
        if cmd == "poll":
            st[0] += 1
            self.polled.add(key)
            up = rec.miner.uptime_s if rec.miner is not None else None
            if up is not None:
                prev = self.last_uptime.get(key)
                if prev is not None and up < prev:
                    st[3] += 1
                self.last_uptime[key] = up
                if st[2] is None or up > st[2]:
                    st[2] = up
            state = "online"
        elif cmd == "poll_fail":
            st[1] += 1
            state = "failing"
        else:
            if rec.action == "del":
                state = "offline"
            elif key not in self.polled:
                state = "new"
            else:
                state = ""  # a renewal says nothing new about a polled miner
        if state and t_ms >= st[5]:
            st[4], st[5] = state, t_ms

    def emit(self, minute: int, b: dict[str, list[Any]]) -> Out:
        out: Out = []
        status = self.status
        end = minute + 60
        rows = []
        tot_ok = tot_failed = restarts = polled = 0
        for key in sorted(b):
            ok, failed, up, rs, state, _ = b[key]
            prev = status.get(key)
            status[key] = (state or (prev[0] if prev else "new"), end)
            if ok + failed:
                polled += 1
                tot_ok += ok
                tot_failed += failed
                restarts += rs
                rows.append(
                    (
                        60,
                        minute,
                        key,
                        self.inv.rack(key),
                        ok,
                        failed,
                        round(ok / (ok + failed), 4),
                        int(up) if up is not None else None,
                        rs,
                    )
                )
        if AVAILABILITY_MINER.name in self.produce:
            out.append((AVAILABILITY_MINER, rows))
        if AVAILABILITY_SITE.name in self.produce and polled:
            avail = round(tot_ok / (tot_ok + tot_failed), 4)
            out.append((AVAILABILITY_SITE, [(60, minute, float(polled), tot_ok, tot_failed, avail, restarts)]))
        if MINER_STATES.name in self.produce:
            out.append((MINER_STATES, [self._states(minute, end)]))
        return out

    def _states(self, minute: int, end: int) -> tuple[Any, ...]:
        counts = dict.fromkeys(STATES, 0)
        silent = self.opt.silent_after_s
        gone = []
        for key, (state, heard) in self.status.items():
            if state == "offline" or end - heard >= silent:
                if end - heard >= FORGET_S:
                    gone.append(key)
                    continue
                counts["offline"] += 1
            else:
                counts[state] += 1
        for key in gone:
            del self.status[key]
            self.last_uptime.pop(key, None)
            self.polled.discard(key)
        total = sum(counts.values())
        return (60, minute, *(float(counts[s]) for s in STATES), float(total))


class Temperature(Reduction):
    name = "temperature"
    cmds = frozenset({"poll"})
    views = (TEMPS_MINER, TEMPS_HIST)

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)

    def feed(self, rec: Rec, t_ms: int) -> None:
        m = rec.miner
        if m is None:
            self.ctx.bad("poll record without a 'miner' object")
            return
        t = m.temp_max
        fans = m.fans or ()
        if t is None and not fans:
            return  # nothing to say (a firmware that reports neither)
        key = miner_key(rec)
        if key is None:
            self.ctx.bad("poll record with neither mac nor ip")
            return
        b = self.bucket(t_ms)
        if b is None:
            return
        st = b.get(key)
        if st is None:
            st = b[key] = [None, 0.0, 0, None, 0.0, 0, 0]  # tmax, tsum, tn, fan min, fan sum, fan n, dead
        if t is not None:
            st[0] = t if st[0] is None or t > st[0] else st[0]
            st[1] += t
            st[2] += 1
        if fans:
            lo = min(fans)
            st[3] = lo if st[3] is None or lo < st[3] else st[3]
            st[4] += sum(fans)
            st[5] += len(fans)
            st[6] = sum(1 for f in fans if f <= 0)

    def emit(self, minute: int, b: dict[str, list[Any]]) -> Out:
        rows = []
        hist: dict[int, int] = {}
        width = self.opt.temp_bin_c
        for key in sorted(b):
            tmax, tsum, tn, fmin, fsum, fn, dead = b[key]
            rows.append(
                (
                    60,
                    minute,
                    key,
                    self.inv.rack(key),
                    tmax,
                    round(tsum / tn, 3) if tn else None,
                    int(fmin) if fmin is not None else None,
                    round(fsum / fn, 1) if fn else None,
                    dead,
                )
            )
            if tmax is not None:
                bin_c = int(tmax // width * width)
                hist[bin_c] = hist.get(bin_c, 0) + 1
        out: Out = []
        if TEMPS_MINER.name in self.want:
            out.append((TEMPS_MINER, rows))
        if TEMPS_HIST.name in self.want:
            out.append((TEMPS_HIST, [(60, minute, k, float(v)) for k, v in sorted(hist.items())]))
        return out
