"""Hashrate per miner, rack and site, and the underperformers against nominal.

Per minute, a miner's hashrate is the mean of its polls' ``miner.hashrate_ths`` in that
minute; a rack's and the site's are the sums of their miners' means (and of their
``nominal_ths``). ``pct`` is hashrate / nominal in percent. The 5 and 60 minute rows are
means of the minute rows. A miner whose 5 or 60 minute ``pct`` is below
``--underperform PCT`` (default 90) is an underperformer for that bucket.
"""

from __future__ import annotations

from typing import Any

from minectl_py.reduce.base import _MACS, Out, Reduction, Rows, miner_key
from minectl_py.reduce.inventory import clean
from minectl_py.reduce.record import HashRec, Rec
from minectl_py.reduce.views import HASHRATE_MINER, HASHRATE_RACK, HASHRATE_SITE, UNDERPERFORMERS, View


def _pct(ths: float, nominal: float) -> float | None:
    return round(ths * 100.0 / nominal, 4) if nominal > 0 else None


class Hashrate(Reduction):
    name = "hashrate"
    cmds = frozenset({"poll"})
    rec_type = HashRec
    views = (HASHRATE_SITE, HASHRATE_RACK, HASHRATE_MINER, UNDERPERFORMERS)

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.produce = set(self.want)
        if UNDERPERFORMERS.name in self.want:
            self.produce.add(HASHRATE_MINER.name)
        self.per_miner = HASHRATE_MINER.name in self.produce
        self.per_rack = HASHRATE_RACK.name in self.produce
        self._minute = -1  # the last record's minute and its bucket (records come in runs)
        self._b: dict[str, list[Any]] = {}

    def feed(self, rec: Rec, t_ms: int) -> None:
        m = rec.miner
        if m is None:
            self.ctx.bad("poll record without a 'miner' object")
            return
        hr = m.hashrate_ths
        if hr is None or hr < 0:
            self.ctx.bad(f"poll record with miner.hashrate_ths {hr!r}")
            return
        key = _MACS.get(rec.mac) if rec.mac is not None else None  # the common case, cached
        if key is None:
            key = miner_key(rec)
            if key is None:
                self.ctx.bad("poll record with neither mac nor ip")
                return
        minute = t_ms // 60_000
        if minute == self._minute:
            b = self._b
        else:
            b = self.bucket(t_ms)
            if b is None:
                return
            self._minute, self._b = minute, b
        if m.rack is not None:
            self.inv.learn(rec, key)
        st = b.get(key)
        if st is None:
            b[key] = [hr, 1, m.nominal_ths, m.model]
        else:
            st[0] += hr
            st[1] += 1
            if m.nominal_ths is not None:
                st[2] = m.nominal_ths
            if m.model is not None:
                st[3] = m.model

    def emit(self, minute: int, b: dict[str, list[Any]]) -> Out:
        if self._b is b:
            self._minute = -1
        out: Out = []
        total = nominal = 0.0
        racks: dict[str, list[float]] = {}
        miners: Rows = []
        inv = self.inv.by_mac
        for key in sorted(b):
            s, n, nom, model = b[key]
            ths = s / n
            total += ths
            if nom is not None:
                nominal += nom
            if self.per_rack or self.per_miner:
                p = inv.get(key)
                rack = p.rack if p is not None else ""
                if self.per_rack:
                    r = racks.get(rack)
                    if r is None:
                        racks[rack] = [ths, nom or 0.0, 1]
                    else:
                        r[0] += ths
                        r[1] += nom or 0.0
                        r[2] += 1
                if self.per_miner:
                    name = p.name if p is not None else ""
                    model_s = clean(model) or (p.model if p is not None else "")
                    miners.append(
                        (
                            60,
                            minute,
                            key,
                            name,
                            rack,
                            model_s,
                            round(ths, 6),
                            nom,
                            _pct(ths, nom or 0.0),
                            n,
                        )
                    )
        if HASHRATE_SITE.name in self.produce:
            row = (60, minute, round(total, 6), round(nominal, 6), _pct(total, nominal), float(len(b)))
            out.append((HASHRATE_SITE, [row]))
        if self.per_rack:
            rows = [
                (60, minute, rack, round(v[0], 6), round(v[1], 6), _pct(v[0], v[1]), float(v[2]))
                for rack, v in sorted(racks.items())
            ]
            out.append((HASHRATE_RACK, rows))
        if self.per_miner:
            out.append((HASHRATE_MINER, miners))
        return out

    def derive(self, view: View, rows: Rows) -> Out:
        if view is not HASHRATE_MINER or UNDERPERFORMERS.name not in self.want:
            return []
        limit = self.opt.underperform_pct
        i = view.index("pct")
        under = [r[:-1] for r in rows if r[i] is not None and r[i] < limit]
        return [(UNDERPERFORMERS, under)] if under else []
