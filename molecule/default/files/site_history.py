#!/usr/bin/env python3
"""TEST-ONLY: the event log a controller that has been running for a while would hold.

A scenario run lasts less than an hour, so the site's own events never span a closed UTC
hour and the 60-minute rollups would never fill. converge.yml puts these records at the head
of the brand-new controller's event log before site.yml runs (only when there is no log yet):
the 50 miners of the site CSV (same MACs, names, models; addresses 10.88.88.(86+N) as dnsmasq
hands them out here), leased and polled once a minute through the last MINUTES minutes of the
UTC hour before the current one, miners 10 and 20 at 45 % of nominal as their simulators run.
From there they take the normal path: shipped over the VPN to the metrics host, reduced into
MariaDB and InfluxDB, where the hour they fall in is closed by the site's own later events.

Records come from minectl_py.events.generate (the same generator as the tests' and benchmarks'
data); faults are off, so the controller's rules service has nothing from the past to act on.

Usage: site_history.py SITE_CSV NODENAME OUT [MINUTES]   (RFC 7464: RS JSON LF, as the log)
"""

from __future__ import annotations

import csv
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository

from minectl_py.events.generate import MODELS, Site, generate, write
from minectl_py.events.genfleet import fleet

LOW = {10, 20}  # miners-up.sh: miners 10 and 20 run with the low_hashrate fault


def records(site_csv: str, nodename: str, minutes: int, now: float) -> list[dict]:
    lines = [line for line in Path(site_csv).read_text().splitlines() if not line.startswith("#")]
    rows = list(csv.DictReader(lines))
    hour = int(now) // 3600 * 3600
    start_ms = (hour - minutes * 60) * 1000
    models = {m.model: m for m, _ in MODELS}
    miners = fleet(len(rows), 60, 43_200, start_ms, random.Random(8))
    low = set()
    for m, row in zip(miners, rows, strict=True):
        n = int(row["mac"].rsplit(":", 1)[1], 16)
        m.mac, m.name, m.ip = row["mac"], row["name"], f"10.88.88.{86 + n}"
        m.model = models.get(row["model"].removesuffix(" Pro"), m.model)
        if n in LOW:
            low.add(m.mac)
    site = Site(
        miners=len(rows),
        seed=8,
        start_ms=start_ms,
        poll_interval_s=60,
        heartbeat_s=60,
        fault_rate=0.0,
        nodename=nodename,
        controller_ip="10.250.88.10",
        duration_s=minutes * 60,
        fleet=miners,
    )
    out = []
    for r in generate(site):
        mi = r.get("miner")
        if r["cmd"] == "poll" and r["mac"] in low and mi:
            for k in ("hashrate_ths", "hashrate_avg_ths"):
                mi[k] = round(mi[k] * 0.45, 3)
        out.append(r)
    if not out or int(out[-1]["created_at_ms"]) >= hour * 1000:
        raise SystemExit(f"site_history: records past the hour {hour}")
    return out


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    minutes = int(argv[3]) if len(argv) == 4 else 15
    recs = records(argv[0], argv[1], minutes, time.time())
    stats = write(argv[2], recs, fmt="rs", gzip=False)
    print(f"{stats['records']} records, {stats['first_ms']}..{stats['last_ms']} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
