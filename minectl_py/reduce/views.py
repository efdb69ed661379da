"""The views the reductions materialize: one schema shared by every sink.

A view is a table (SQL) or a measurement (InfluxDB). Periodic views have the key columns
``period`` (bucket length in seconds: 60, 300, 3600) and ``ts`` (bucket start, epoch seconds,
UTC) first; the one-minute rows are computed from events, the longer ones are rollups of
the one-minute rows, column by column with the column's ``agg`` (so the SQL rollups and
InfluxDB's continuous queries, which apply the same functions, agree). Event views (the
timeline) are keyed by the event id.

Column kinds: ``ts`` epoch seconds, ``tsms`` epoch milliseconds, ``str``, ``int``, ``float``.
``tag`` marks string key columns that become InfluxDB tags.
"""

from __future__ import annotations

from dataclasses import dataclass

PERIODS = (60, 300, 3600)
#: InfluxDB retention policy per period (the one-minute data is written, the others are
#: filled by continuous queries).
RP_FOR_PERIOD = {60: "m1", 300: "m5", 3600: "h1"}


@dataclass(frozen=True, slots=True)
class Col:
    name: str
    kind: str  # ts | tsms | str | int | float
    agg: str = ""  # rollup function for value columns: sum | mean | max | min | last
    tag: bool = False  # InfluxDB tag (string keys and labels)


@dataclass(frozen=True, slots=True)
class View:
    name: str
    cols: tuple[Col, ...]
    nkeys: int  # the first nkeys columns form the primary key
    periodic: bool = True
    doc: str = ""

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cols]

    @property
    def keys(self) -> tuple[Col, ...]:
        return self.cols[: self.nkeys]

    @property
    def values(self) -> tuple[Col, ...]:
        return self.cols[self.nkeys :]

    def index(self, name: str) -> int:
        return self.names.index(name)


def _pv(name: str, keys: list[Col], values: list[Col], doc: str) -> View:
    cols = (Col("period", "int"), Col("ts", "ts"), *keys, *values)
    return View(name, cols, 2 + len(keys), True, doc)


F, I, S = "float", "int", "str"  # noqa: E741

HASHRATE_SITE = _pv(
    "hashrate_site",
    [],
    [Col("ths", F, "mean"), Col("nominal_ths", F, "mean"), Col("pct", F, "mean"), Col("miners", F, "mean")],
    "site hashrate: sum over miners of each miner's mean in the minute; pct of nominal",
)
HASHRATE_RACK = _pv(
    "hashrate_rack",
    [Col("rack", S, tag=True)],
    [Col("ths", F, "mean"), Col("nominal_ths", F, "mean"), Col("pct", F, "mean"), Col("miners", F, "mean")],
    "hashrate per rack (rack from the inventory; '' when unknown)",
)
HASHRATE_MINER = _pv(
    "hashrate_miner",
    [Col("mac", S, tag=True)],
    [
        Col("name", S, "last", tag=True),
        Col("rack", S, "last", tag=True),
        Col("model", S, "last", tag=True),
        Col("ths", F, "mean"),
        Col("nominal_ths", F, "mean"),
        Col("pct", F, "mean"),
        Col("samples", I, "sum"),
    ],
    "hashrate per miner: mean of its polls in the bucket",
)
UNDERPERFORMERS = _pv(
    "underperformers",
    [Col("mac", S, tag=True)],
    [
        Col("name", S, "last", tag=True),
        Col("rack", S, "last", tag=True),
        Col("model", S, "last", tag=True),
        Col("ths", F, "mean"),
        Col("nominal_ths", F, "mean"),
        Col("pct", F, "mean"),
    ],
    "miners whose hashrate over the bucket was below the threshold (% of nominal); 5 and 60 min only",
)
MINER_STATES = _pv(
    "miner_states",
    [],
    [
        Col("online", F, "mean"),
        Col("failing", F, "mean"),
        Col("offline", F, "mean"),
        Col("new", F, "mean"),
        Col("total", F, "mean"),
    ],
    "miners by state at the end of the minute (online: last poll ok; failing: last poll failed; "
    "offline: lease released or silent; new: leased, never polled)",
)
AVAILABILITY_MINER = _pv(
    "availability_miner",
    [Col("mac", S, tag=True)],
    [
        Col("rack", S, "last", tag=True),
        Col("polls_ok", I, "sum"),
        Col("polls_failed", I, "sum"),
        Col("availability", F, "mean"),
        Col("uptime_s", I, "max"),
        Col("restarts", I, "sum"),
    ],
    "polls answered / polls tried; uptime; restarts (uptime went down)",
)
AVAILABILITY_SITE = _pv(
    "availability_site",
    [],
    [
        Col("miners", F, "mean"),
        Col("polls_ok", I, "sum"),
        Col("polls_failed", I, "sum"),
        Col("availability", F, "mean"),
        Col("restarts", I, "sum"),
    ],
    "site availability: polls answered / polls tried",
)
TEMPS_MINER = _pv(
    "temps_miner",
    [Col("mac", S, tag=True)],
    [
        Col("rack", S, "last", tag=True),
        Col("temp_max", F, "max"),
        Col("temp_avg", F, "mean"),
        Col("fan_min", I, "min"),
        Col("fan_avg", F, "mean"),
        Col("fans_dead", I, "max"),
    ],
    "temperatures (hottest board or chip, degrees C) and fans (rpm) per miner",
)
TEMPS_HIST = _pv(
    "temps_hist",
    [Col("bin_c", I)],
    [Col("miners", F, "mean")],
    "how many miners had their hottest temperature in [bin_c, bin_c + 5) degrees C",
)
LEASES_SITE = _pv(
    "leases_site",
    [],
    [
        Col("adds", I, "sum"),
        Col("renewals", I, "sum"),
        Col("releases", I, "sum"),
        Col("new_macs", I, "sum"),
        Col("ip_changes", I, "sum"),
    ],
    "lease churn: DHCP add/old/del, MACs never seen before, MACs that changed IP",
)
TIMELINE = View(
    "timeline",
    (
        Col("id", S),
        Col("ts_ms", "tsms"),
        Col("kind", S, tag=True),
        Col("mac", S, tag=True),
        Col("ip", S),
        Col("name", S),
        Col("rack", S, tag=True),
        Col("what", S),
        Col("result", S),
        Col("detail", S),
    ),
    1,
    False,
    "faults and admin actions: action, alert, fault (polls start failing), recovered, released",
)

ALL: dict[str, View] = {
    v.name: v
    for v in (
        HASHRATE_SITE,
        HASHRATE_RACK,
        HASHRATE_MINER,
        UNDERPERFORMERS,
        MINER_STATES,
        AVAILABILITY_MINER,
        AVAILABILITY_SITE,
        TEMPS_MINER,
        TEMPS_HIST,
        LEASES_SITE,
        TIMELINE,
    )
}
