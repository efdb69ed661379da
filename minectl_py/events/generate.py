"""Realistic site event files for tests and benchmarks: deterministic, streaming, any size.

A simulated site of ``miners`` ASIC miners, polled every ``poll_interval_s`` seconds by one
controller (``nodename``), produces the records the real controller writes, in time order:

* ``poll`` (most records): ``ip``, ``mac``, ``elapsed_ms``, ``digest`` and ``miner``, the
  normalized dictionary of docs/miners.md (make, model, firmware, mac, hashrate_ths,
  hashrate_avg_ths, nominal_ths, boards, temp_max, fans, pools, uptime_s, hw_errors, errors).
  Models: Antminer S9 (~13.5 TH/s, 3 boards x 63 chips, 2 fans), Antminer S19 (~95 TH/s,
  3 x 76 chips, 4 fans), Whatsminer M30S (~86 TH/s), Braiins OS S9 (~14 TH/s). Temperatures
  55-85 C; faults come and go: failed board, hot miner, dead fan, dead pool, reboot, offline.
* ``poll_fail`` while a miner is rebooting or offline (``reason`` timeout/refused/...).
* ``lease``: ``add`` at the first poll cycle, ``old`` renewals (every lease_time/2 per miner
  and after a reboot), ``del`` + ``add`` when a miner is swapped (new MAC, same IP).
* ``time`` heartbeats of the controller every ``heartbeat_s`` seconds (as in the seed).
* ``action``: an admin (``user`` ops) reboots a miner with a failed board; ``alert``:
  ``temp_high`` raised/cleared when a miner runs hot.

The same ``seed`` (and parameters) always gives byte-identical output. Memory stays bounded
(one poll cycle at a time), so 10M records stream fine.

Python API (all keyword arguments have defaults)::

    from minectl_py.events.generate import generate, write, write_daily, Site

    # an iterator of raw records (dicts), time-ordered; stops after `records` (or `duration_s`)
    for rec in generate(records=1_000_000, miners=1000, seed=1): ...

    # one file; fmt: "fluentd" (aggregator line: '<time>\\t<tag>\\t<json>', the seed's form),
    # "rs" (live log: RS <json> LF) or "lines" (JSON lines); gzip=True writes a gzip with a
    # new member every `member_records` records (as fluentd appends chunks). Returns a dict
    # {"records": N, "bytes": B, "first_ms": .., "last_ms": ..}.
    write("data.log.gz", generate(records=10_000, seed=1), fmt="fluentd", gzip=True)

    # the aggregator's daily layout: DIR/data.YYYYMMDD.log.gz per local day (tz of the prefix)
    write_daily("agg/", generate(duration_s=3 * 86400, miners=200, seed=2))

    Site(miners=1000, seed=1)  # the parameters, if you want them as one object

Command line (``python -m minectl_py.events.generate --help``)::

    python -m minectl_py.events.generate --records 1000000 --seed 1 -o bench/data/site-1m.log.gz
    python -m minectl_py.events.generate --duration 2d --miners 200 --daily agg/
    python -m minectl_py.events.generate --records 5000 --format rs -o events.log

Options of ``generate``: ``miners`` (1000), ``seed`` (0), ``start_ms`` (2018-07-04T00:00-07:00),
``poll_interval_s`` (60), ``heartbeat_s`` (10), ``lease_s`` (43200), ``fault_rate`` (per miner
and poll, 0.002), ``nodename`` ("overlord"), ``records`` / ``duration_s`` (limits; neither =
endless). Options of ``write``/``write_daily``: ``fmt``, ``gzip``, ``tz`` ("-0700", the fluentd
prefix's zone), ``tag`` ("mainstream"), ``member_bytes`` (4 MiB of text per gzip member),
``bad_every`` (0: none; N: after every N-th record one corrupt line, for reader tests; the
returned dict counts them as "bad").
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from minectl_py.events.genfleet import (
    DEFAULT_START_MS,
    FAIL_REASONS,
    FAULTS,
    MODELS,
    POOL_URLS,
    Miner,
    Model,
    fleet,
    new_mac,
    pick,
)
from minectl_py.events.record import SCHEMA_VERSION


@dataclass(slots=True)
class Site:
    """Parameters of the simulated site (see the module docstring)."""

    miners: int = 1000
    seed: int = 0
    start_ms: int = DEFAULT_START_MS
    poll_interval_s: int = 60
    heartbeat_s: int = 10
    lease_s: int = 43_200
    fault_rate: float = 0.002
    nodename: str = "overlord"
    controller_ip: str = "34.220.251.198"
    records: int | None = None
    duration_s: float | None = None
    fleet: list[Miner] = field(default_factory=list)


class _Gen:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.rng = random.Random(site.seed)
        self.fleet = site.fleet or fleet(site.miners, site.poll_interval_s, site.lease_s, site.start_ms, self.rng)
        self.alerts: set[int] = set()
        self._seq = 0

    def rec(self, t_ms: int, cmd: str, fields: dict[str, Any]) -> dict[str, Any]:
        r: dict[str, Any] = {
            "created_at_ms": str(t_ms),
            "id": f"{self.rng.getrandbits(128):032x}",
            "cmd": cmd,
            "nodename": self.site.nodename,
            "v": SCHEMA_VERSION,
        }
        r.update(fields)
        return r

    def lease(self, t_ms: int, m: Miner, action: str) -> dict[str, Any]:
        return self.rec(
            t_ms,
            "lease",
            {
                "action": action,
                "mac": m.mac,
                "ip": m.ip,
                "hostname": m.name,
                "supplied_hostname": m.name,
                "vendor_class": m.model.vendor_class,
                "interface": "eth1",
                "expires": t_ms // 1000 + self.site.lease_s,
            },
        )

    # ------------------------------------------------------------------ one poll
    def poll(self, t_ms: int, m: Miner) -> list[dict[str, Any]]:
        rng = self.rng
        out: list[dict[str, Any]] = []
        if not m.fault and rng.random() < self.site.fault_rate:
            self.start_fault(t_ms, m)
        if m.fault:
            m.fault_left -= 1
            if m.fault_left <= 0:
                out.extend(self.end_fault(t_ms, m))
        if m.fault in ("reboot", "offline"):
            reason = "refused" if m.fault == "reboot" and rng.random() < 0.5 else pick(rng, FAIL_REASONS)
            timeout = reason in ("timeout", "connect_timeout")
            out.append(
                self.rec(
                    t_ms,
                    "poll_fail",
                    {
                        "ip": m.ip,
                        "mac": m.mac,
                        "reason": reason,
                        "detail": f"{reason} after {5000 if timeout else rng.randrange(1, 40)} ms on port 4028",
                        "elapsed_ms": 5000 if timeout else rng.randrange(1, 40),
                    },
                )
            )
            return out
        out.append(
            self.rec(
                t_ms,
                "poll",
                {
                    "ip": m.ip,
                    "mac": m.mac,
                    "elapsed_ms": rng.randrange(25, 420),
                    "digest": f"{rng.getrandbits(256):064x}",
                    "miner": self.miner_dict(t_ms, m),
                },
            )
        )
        if m.fault == "hot" and m.idx not in self.alerts and m.heat > 8:
            self.alerts.add(m.idx)
            out.append(self.alert(t_ms, m, "raised", 85.0 + m.heat - 8))
        return out

    def alert(self, t_ms: int, m: Miner, state: str, value: float) -> dict[str, Any]:
        return self.rec(
            t_ms + 1,
            "alert",
            {
                "rule": "temp_high",
                "state": state,
                "mac": m.mac,
                "ip": m.ip,
                "name": m.name,
                "severity": "warning",
                "detail": f"temp_max {value:.0f} C (limit 85 C)",
                "value": round(value, 1),
            },
        )

    def start_fault(self, t_ms: int, m: Miner) -> None:
        rng = self.rng
        m.fault = pick(rng, FAULTS)
        m.fault_left = {"reboot": rng.randrange(1, 3), "offline": rng.randrange(3, 30)}.get(
            m.fault, rng.randrange(10, 120)
        )
        if m.fault == "board":
            m.failed_board = rng.randrange(len(m.model.boards))
        elif m.fault == "hot":
            m.heat = rng.uniform(6, 18)
        elif m.fault == "pool":
            m.active_pool = 1

    def end_fault(self, t_ms: int, m: Miner) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if m.fault == "board":
            # An admin reboots it; the board comes back after the reboot.
            out.append(
                self.rec(
                    t_ms - 1,
                    "action",
                    {
                        "user": "ops",
                        "action": "reboot",
                        "target": m.ip,
                        "mac": m.mac,
                        "name": m.name,
                        "result": "ok",
                        "detail": "reboot accepted",
                        "transport": "ssh" if m.model.make == "Braiins" else "http",
                        "batch": f"{self.rng.getrandbits(64):016x}",
                    },
                )
            )
            m.fault, m.fault_left, m.failed_board = "reboot", 2, -1
            return out
        if m.fault in ("reboot", "offline"):
            m.boot_ms = t_ms - self.rng.randrange(20, 50) * 1000
            m.accepted = m.rejected = 0
            out.append(self.lease(t_ms - 2, m, "old"))
        if m.fault == "hot" and m.idx in self.alerts:
            self.alerts.discard(m.idx)
            out.append(self.alert(t_ms, m, "cleared", 70.0))
        m.fault, m.heat, m.active_pool = "", 0.0, 0
        return out

    def miner_dict(self, t_ms: int, m: Miner) -> dict[str, Any]:
        rng = self.rng
        md = m.model
        heat = m.heat
        boards = []
        total = 0.0
        temp_max = 0.0
        per_board = md.nominal_ths / len(md.boards)
        for bi, index in enumerate(md.boards):
            failed = bi == m.failed_board
            hr = 0.0 if failed else round(per_board * rng.uniform(0.97, 1.02), 3)
            tb = round(rng.uniform(55.0, 68.0) + heat, 1)
            tc = round(tb + rng.uniform(8.0, 15.0), 1)
            total += hr
            temp_max = max(temp_max, tc)
            boards.append(
                {
                    "index": index,
                    "hashrate_ths": hr,
                    "temp_board": tb,
                    "temp_chip": tc,
                    "chips": 0 if failed else md.chips,
                    "chips_expected": md.chips,
                    "status": "failed" if failed else "ok",
                }
            )
        fans = [int(md.fan_rpm * rng.uniform(0.95, 1.05) + heat * 60) // 10 * 10 for _ in range(md.fans)]
        errors: list[str] = []
        if m.fault == "fan":
            fans[0] = 0
            errors.append("fan 1 failed")
        if m.failed_board >= 0:
            errors.append(f"chain {md.boards[m.failed_board]}: 0 asics found")
        if heat > 8:
            errors.append("temperature high")
        up_s = max((t_ms - m.boot_ms) // 1000, 0)
        m.accepted += rng.randrange(0, 8) if total else 0
        if rng.random() < 0.02:
            m.rejected += 1
        if rng.random() < 0.05:
            m.hw_errors += rng.randrange(1, 4)
        pools = []
        for pi, url in enumerate(POOL_URLS):
            dead = m.fault == "pool" and pi == 0
            active = pi == m.active_pool
            pools.append(
                {
                    "index": pi,
                    "url": url,
                    "user": m.pool_user,
                    "status": "dead" if dead else "alive",
                    "active": active,
                    "priority": pi,
                    "accepted": m.accepted if active else 0,
                    "rejected": m.rejected if active else 0,
                }
            )
        return {
            "make": md.make,
            "model": md.model,
            "firmware": md.firmware,
            "mac": m.mac,
            "hashrate_ths": round(total, 3),
            "hashrate_avg_ths": round(md.nominal_ths * (0.99 if m.failed_board < 0 else 0.8), 3),
            "nominal_ths": md.nominal_ths,
            "boards": boards,
            "temp_max": temp_max,
            "fans": fans,
            "pools": pools,
            "uptime_s": up_s,
            "hw_errors": m.hw_errors,
            "errors": errors,
        }

    # ------------------------------------------------------------------ time line
    def cycles(self) -> Iterator[dict[str, Any]]:
        """Poll cycles in time order. A cycle's records lie in [base, base + 2 * interval);
        those past the cycle's end wait for the next one, so the output is globally ordered."""
        s = self.site
        interval = s.poll_interval_s * 1000
        t0 = s.start_ms
        hb_next = t0
        cycle = 0
        swap_rate = 1 / (s.miners * 86_400_000 / interval) if s.miners else 0  # ~1 swap a day
        renew = max(s.lease_s // 2, 1) * 1000
        carry: list[tuple[int, int, dict[str, Any]]] = []
        while True:
            base = t0 + cycle * interval
            batch = carry
            put = self._putter(batch)

            while hb_next < base + interval:
                put(hb_next, self.heartbeat(hb_next))
                hb_next += s.heartbeat_s * 1000
            for m in self.fleet:
                t = base + m.phase_ms + 1000 + self.rng.randrange(0, 900)
                if cycle == 0:
                    put(t - 500, self.lease(t - 500, m, "add"))
                else:
                    lp = m.lease_phase_s * 1000
                    if (t - t0 - lp) // renew != (t - interval - t0 - lp) // renew:
                        put(t - 300, self.lease(t - 300, m, "old"))
                    if self.rng.random() < swap_rate:
                        put(t - 400, self.lease(t - 400, m, "del"))
                        m.mac = new_mac(self.rng)
                        m.boot_ms = t - 30_000
                        m.fault, m.fault_left, m.failed_board, m.heat = "", 0, -1, 0.0
                        m.accepted = m.rejected = m.hw_errors = 0
                        put(t - 350, self.lease(t - 350, m, "add"))
                for r in self.poll(t, m):
                    put(int(r["created_at_ms"]), r)
            batch.sort(key=lambda x: (x[0], x[1]))
            end = base + interval
            carry = []
            for item in batch:
                if item[0] < end:
                    yield item[2]
                else:
                    carry.append(item)
            cycle += 1

    def _putter(self, batch: list[tuple[int, int, dict[str, Any]]]) -> Any:
        def put(t: int, r: dict[str, Any]) -> None:
            self._seq += 1
            batch.append((t, self._seq, r))

        return put

    def heartbeat(self, t_ms: int) -> dict[str, Any]:
        return self.rec(
            t_ms,
            "time",
            {"ip": self.site.controller_ip, "uptime_s": float((t_ms - self.site.start_ms) // 1000 + 86_400)},
        )


def generate(site: Site | None = None, **kw: Any) -> Iterator[dict[str, Any]]:
    """Records of a simulated site in time order (see the module docstring for options)."""
    s = site or Site(**kw)
    end_ms = None if s.duration_s is None else s.start_ms + int(s.duration_s * 1000)
    for n, r in enumerate(_Gen(s).cycles()):
        if s.records is not None and n >= s.records:
            return
        if end_ms is not None and int(r["created_at_ms"]) >= end_ms:
            return
        yield r


# Writing lives in a sibling module to keep this one about the site; re-exported here.
from minectl_py.events.genwrite import main, write, write_daily  # noqa: E402

__all__ = ["MODELS", "Model", "Site", "generate", "main", "write", "write_daily"]

if __name__ == "__main__":
    raise SystemExit(main())
