"""A small expander of Grafana's query macros and template variables, for testing dashboards
against real databases (Grafana itself is in no registry here).

MySQL datasource macros (Grafana docs, MySQL query editor): ``$__timeFilter(col)``,
``$__timeFrom()``, ``$__timeTo()``, ``$__timeGroup(col,'5m')``, ``$__timeGroupAlias``,
``$__unixEpochFilter(col)``, ``$__interval``, ``$__interval_ms``. InfluxDB (InfluxQL):
``$timeFilter``, ``$__interval``. Template variables: ``$name``, ``${name}``, ``[[name]]``.
Anything left that looks like a macro is an error, so a dashboard cannot use one the test
does not understand.
"""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _secs(text: str) -> int:
    m = re.fullmatch(r"\s*'?(\d+)([smhd])'?\s*", text)
    if not m:
        raise ValueError(f"bad interval {text!r}")
    return int(m.group(1)) * _UNITS[m.group(2)]


def _vars(q: str, variables: dict[str, str]) -> str:
    for k, v in variables.items():
        q = q.replace("${" + k + "}", v).replace("[[" + k + "]]", v)
        q = re.sub(r"\$" + re.escape(k) + r"\b", v, q)
    return q


def expand_mysql(q: str, frm: int, to: int, interval_s: int, variables: dict[str, str]) -> str:
    def group(m: re.Match[str], alias: bool) -> str:
        col, iv = [p.strip() for p in m.group(1).split(",")[:2]]
        n = _secs(iv)
        s = f"cast(cast(UNIX_TIMESTAMP({col})/({n}) as signed)*{n} as signed)"
        return s + (' AS "time"' if alias else "")

    q = re.sub(r"\$__timeGroupAlias\(([^)]*)\)", lambda m: group(m, True), q)
    q = re.sub(r"\$__timeGroup\(([^)]*)\)", lambda m: group(m, False), q)
    q = re.sub(
        r"\$__timeFilter\(([^)]*)\)", lambda m: f"{m.group(1)} BETWEEN FROM_UNIXTIME({frm}) AND FROM_UNIXTIME({to})", q
    )
    q = re.sub(r"\$__unixEpochFilter\(([^)]*)\)", lambda m: f"{m.group(1)} >= {frm} AND {m.group(1)} <= {to}", q)
    q = q.replace("$__timeFrom()", f"FROM_UNIXTIME({frm})").replace("$__timeTo()", f"FROM_UNIXTIME({to})")
    q = q.replace("$__interval_ms", str(interval_s * 1000)).replace("$__interval", f"{interval_s}s")
    q = _vars(q, variables)
    if re.search(r"\$\w|\[\[\w", q):
        raise ValueError(f"unexpanded macro or variable in: {q}")
    return q


def expand_influx(q: str, frm: int, to: int, interval_s: int, variables: dict[str, str]) -> str:
    q = q.replace("$timeFilter", f"time >= {frm * 1000}ms and time <= {to * 1000}ms")
    q = q.replace("$__interval_ms", str(interval_s * 1000)).replace("$__interval", f"{interval_s}s")
    q = _vars(q, variables)
    if re.search(r"\$\w|\[\[\w", q):
        raise ValueError(f"unexpanded macro or variable in: {q}")
    return q
