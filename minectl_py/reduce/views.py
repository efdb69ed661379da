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


KINDS = {"f": "float", "i": "int", "s": "str", "tsms": "tsms"}


def cols(spec: str) -> list[Col]:
    """Columns from words ``name:kind[:agg][:tag]`` (kind ``f``/``i``/``s``), e.g.
    ``"ths:f:mean rack:s:last:tag"``."""
    out = []
    for word in spec.split():
        name, kind, *rest = word.split(":")
        agg = next((r for r in rest if r != "tag"), "")
        out.append(Col(name, KINDS[kind], agg, "tag" in rest))
    return out


MAC = "mac:s:tag"
LABELS = "name:s:last:tag rack:s:last:tag model:s:last:tag"
HASH = "ths:f:mean nominal_ths:f:mean pct:f:mean"
#: (name, key columns, value columns, doc) of every periodic view
PERIODIC = [
    ("hashrate_site", "", f"{HASH} miners:f:mean",
     "site hashrate: sum over miners of each miner's mean in the minute; pct of nominal"),
    ("hashrate_rack", "rack:s:tag", f"{HASH} miners:f:mean",
     "hashrate per rack (rack from the inventory; '' when unknown)"),
    ("hashrate_miner", MAC, f"{LABELS} {HASH} samples:i:sum",
     "hashrate per miner: mean of its polls in the bucket"),
    ("underperformers", MAC, f"{LABELS} {HASH}",
     "miners whose hashrate over the bucket was below the threshold (% of nominal); 5 and 60 min only"),
    ("miner_states", "", "online:f:mean failing:f:mean offline:f:mean new:f:mean total:f:mean",
     "miners by state at the end of the minute (online: last poll ok; failing: last poll failed; "
     "offline: lease released or silent; new: leased, never polled)"),
    ("availability_miner", MAC,
     "rack:s:last:tag polls_ok:i:sum polls_failed:i:sum availability:f:mean uptime_s:i:max restarts:i:sum",
     "polls answered / polls tried; uptime; restarts (uptime went down)"),
    ("availability_site", "",
     "miners:f:mean polls_ok:i:sum polls_failed:i:sum availability:f:mean restarts:i:sum",
     "site availability: polls answered / polls tried"),
    ("temps_miner", MAC,
     "rack:s:last:tag temp_max:f:max temp_avg:f:mean fan_min:i:min fan_avg:f:mean fans_dead:i:max",
     "temperatures (hottest board or chip, degrees C) and fans (rpm) per miner"),
    ("temps_hist", "bin_c:i", "miners:f:mean",
     "how many miners had their hottest temperature in [bin_c, bin_c + 5) degrees C"),
    ("leases_site", "", "adds:i:sum renewals:i:sum releases:i:sum new_macs:i:sum ip_changes:i:sum",
     "lease churn: DHCP add/old/del, MACs never seen before, MACs that changed IP"),
]  # fmt: skip
_P = {name: _pv(name, cols(keys), cols(values), doc) for name, keys, values, doc in PERIODIC}
HASHRATE_SITE, HASHRATE_RACK, HASHRATE_MINER, UNDERPERFORMERS = (
    _P[n] for n in ("hashrate_site", "hashrate_rack", "hashrate_miner", "underperformers")
)
MINER_STATES, AVAILABILITY_MINER, AVAILABILITY_SITE = (
    _P[n] for n in ("miner_states", "availability_miner", "availability_site")
)
TEMPS_MINER, TEMPS_HIST, LEASES_SITE = (_P[n] for n in ("temps_miner", "temps_hist", "leases_site"))
TIMELINE = View(
    "timeline",
    tuple(cols("id:s ts_ms:tsms kind:s:tag mac:s:tag ip:s name:s rack:s:tag what:s result:s detail:s")),
    1,
    False,
    "faults and admin actions: action, alert, fault (polls start failing), recovered, released",
)

ALL: dict[str, View] = {**_P, TIMELINE.name: TIMELINE}
