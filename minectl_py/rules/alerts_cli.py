"""``minectl alerts``: open and recent alerts of the site watchdog, from the event log."""

from __future__ import annotations

import json
from typing import Any

from minectl_py import config
from minectl_py.cliargs import parser
from minectl_py.events import record
from minectl_py.events.reader import ReadStats
from minectl_py.rules import replay
from minectl_py.rules.cli_common import EXIT_NOMATCH, EXIT_OK, format_age, safe, time_ms
from minectl_py.timeparse import format_ms

ALERTS_EPILOG = """\
examples:
  minectl alerts                       open alerts
  minectl alerts --recent              also those that cleared in the window
  minectl alerts --since 7d --rule hot
  minectl alerts --json | jq '.[] | select(.severity == "critical")'

Exit codes: 0 ok (3 with --fail-if-open when alerts are open), 2 usage error.
"""


def main(argv: list[str], prog: str = "minectl alerts", command: str = "alerts") -> int:
    ap = parser(prog, "Open and recent alerts of the site watchdog (minectl rules), from the event log.", ALERTS_EPILOG)
    ap.add_argument("--recent", action="store_true", help="also list alerts that cleared within --since")
    ap.add_argument("--since", type=time_ms, default=None, help="window to read (default 24h)")
    ap.add_argument("--rule", action="append", help="only this rule (repeatable)")
    ap.add_argument("--json", action="store_true", help="JSON list for machines")
    ap.add_argument("--events", help="event log (default $MINECTL_EVENTS)")
    ap.add_argument("--fail-if-open", action="store_true", help="exit 3 when any alert is open (for monitoring)")
    a = ap.parse_args(argv)
    now = record.now_ms()
    since = a.since if a.since is not None else now - 86_400_000
    live = a.events or config.events_path()
    rows = load_alerts(live, since, now)
    if a.rule:
        rows = [r for r in rows if r["rule"] in a.rule]
    if not a.recent:
        rows = [r for r in rows if r["open"]]
    if a.json:
        print(json.dumps(rows, ensure_ascii=True, indent=1))
    else:
        print_alerts(rows, now)
    if a.fail_if_open and any(r["open"] for r in rows):
        return EXIT_NOMATCH
    return EXIT_OK


def load_alerts(live: str, since_ms: int, now_ms: int) -> list[dict[str, Any]]:
    """Alerts raised in the window (or still open from a checkpoint), newest first."""
    stats = ReadStats()
    by_id: dict[str, dict[str, Any]] = {}
    for path in replay.files_since(live, since_ms):
        stream = replay.open_binary(path)
        try:
            for rec in replay.records(stream, path, stats):
                if rec.get("cmd") != "alert":
                    continue
                t = rec.get("created_at_ms")
                if not (isinstance(t, str) and t.isdigit()) or int(t) < since_ms:
                    continue
                if rec.get("state") == "raised":
                    by_id[str(rec.get("id"))] = _row(rec)
                elif rec.get("state") == "cleared":
                    row = by_id.get(str(rec.get("raised_id")))
                    if row is not None:
                        row["open"] = False
                        row["cleared_at_ms"] = int(t)
                        row["cleared_detail"] = rec.get("detail", "")
        finally:
            stream.close()
    return sorted(by_id.values(), key=lambda r: (-int(r["open"]), -r["raised_at_ms"]))


def _row(rec: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": rec.get("id"),
        "rule": rec.get("rule"),
        "kind": rec.get("kind", "condition"),
        "severity": rec.get("severity", "warning"),
        "mac": rec.get("mac"),
        "ip": rec.get("ip"),
        "name": rec.get("name"),
        "detail": rec.get("detail", ""),
        "values": rec.get("values"),
        "since_ms": rec.get("since_ms"),
        "raised_at_ms": int(rec["created_at_ms"]),
        "open": True,
        "cleared_at_ms": None,
        "silenced": bool(rec.get("silenced")),
    }


def print_alerts(rows: list[dict[str, Any]], now_ms: int) -> None:
    if not rows:
        print("no alerts")
        return
    hdr = f"{'RAISED':<20} {'FOR':>7} {'STATE':<8} {'SEV':<8} {'RULE':<16} {'KIND':<9} {'MINER':<18} {'IP':<15} DETAIL"
    print(hdr)
    for r in rows:
        end = r["cleared_at_ms"] or now_ms
        age = format_age(end - r["raised_at_ms"])
        st = "open" if r["open"] else "cleared"
        if r["silenced"]:
            st += "*"
        who = r["name"] or r["mac"] or "(site)"
        print(
            f"{format_ms(r['raised_at_ms']):<20} {age:>7} {st:<8} {r['severity']:<8} {safe(r['rule'], 16):<16} "
            f"{r['kind']:<9} {safe(who, 18):<18} {safe(r['ip'], 15):<15} {safe(r['detail'], 60)}"
        )
    n_open = sum(1 for r in rows if r["open"])
    print(
        f"\n{n_open} open, {len(rows) - n_open} cleared"
        + ("  (* silenced: not notified)" if any(r["silenced"] for r in rows) else "")
    )
