"""The consumer is away (VPN or aggregator down): the site keeps writing, the log rotates at
midnight, retention compacts old segments; when the consumer comes back it resumes from where
it stopped and gets every record exactly once, in log order (what a batch replay gives).

The consumer here is minectl's own follower (``minectl_py.events.follow``: what ``minectl
events tail`` and the reducer's ``--follow`` use). fluentd's ``in_tail`` + file buffer, the
production shipper, is configured by roles/fluentd but cannot run here (docs/security.md).
"""

from __future__ import annotations

import os
import random
import time

import pytest

from minectl_py.events import compact
from minectl_py.events.follow import follow
from minectl_py.events.reader import EventReader
from minectl_py.events.segments import log_set, segments
from minectl_py.events.writer import EventWriter
from tests.statefakes import mac_of, poll

MINERS = 200
#: 2026-11-01 23:00 UTC: the outage crosses midnight, days before "now" (so retention compacts).
T0 = 1_793_574_000


def _minutes(w: EventWriter, live: str, rng: random.Random, start_s: int, minutes: int) -> int:
    """``minutes`` of a site: every miner polled once a minute, one batch per minute."""
    n = 0
    for m in range(minutes):
        t = start_s + 60 * m
        if time.gmtime(t).tm_mday != time.gmtime(t - 60).tm_mday and os.path.exists(live):
            os.utime(live, (t - 60, t - 60))
            w.rotate_now()  # the first append of a new UTC day rotates (done here on the simulated clock)
        batch = [
            poll(rng, f"10.1.{i // 250}.{i % 250 + 1}", t * 1000 + i, kind=i, mac=mac_of(i)) for i in range(MINERS)
        ]
        w.append_many(batch)
        os.utime(live, (t, t))
        n += len(batch)
    return n


@pytest.mark.parametrize("days", [0, 3])
def test_consumer_away_resumes_with_nothing_lost_or_duplicated(tmp_path, days):
    """``days=0``: an hour away across midnight. ``days=3``: three days away, three rotations,
    and retention compacting the segments older than two days meanwhile."""
    rng = random.Random(days)
    live = str(tmp_path / "events" / "events.log")
    w = EventWriter(live, fsync=False, rotate=False)
    written = _minutes(w, live, rng, T0 - 600, 10)  # before the outage
    stop = [False]
    consumer = iter(follow(live, from_start=True, stop=lambda: stop[0], poll_s=0.01, idle_timeout=20))
    got = [next(consumer) for _ in range(written)]  # caught up, then the link goes down
    away = _minutes(w, live, rng, T0, 60) if not days else 0
    for d in range(days):  # a day = a few minutes of polls at its start, then midnight
        away += _minutes(w, live, rng, T0 + 86400 * d, 5)
        os.utime(live, (T0 + 86400 * d + 3600, T0 + 86400 * d + 3600))
        w.rotate_now()
    if days:
        res = compact.compact(live, older_than_days=2, now=T0 + 86400 * days)  # what retention runs
        assert res, "nothing was compacted"
        assert any(s.endswith(".gz") for s in segments(live))
        away += _minutes(w, live, rng, T0 + 86400 * days, 1)  # the site goes on: a new live file
    for r in consumer:  # the link is back (the follower ends after 20 s without news)
        got.append(r)
        if len(got) == written + away:
            stop[0] = True  # then nothing more may come
    ids = [r["id"] for r in got]
    assert len(ids) == len(set(ids)) == written + away, (len(ids), len(set(ids)), written + away)
    assert ids == [r["id"] for r in EventReader(log_set(live))]
    kept = sum(os.path.getsize(p) for p in log_set(live))
    span = "1 h" if not days else f"{days} d"
    print(f"away {span}: {away} records written meanwhile, all received once; log {kept} bytes")
