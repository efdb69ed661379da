"""``minectl silence``: pause rule actions and notifications for a selector (a maintenance
window), list silences, end them."""

from __future__ import annotations

import json
from typing import Any

from minectl_py import config
from minectl_py.cliargs import parser
from minectl_py.events import record
from minectl_py.events.writer import EventLogError, EventWriter
from minectl_py.rules import replay
from minectl_py.rules.cli_common import (
    EXIT_NOMATCH,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_PERM,
    EXIT_USAGE,
    duration_ms,
    err,
    format_age,
    safe,
    start_ms,
    user,
)
from minectl_py.rules.scope import Selector, SelectorError
from minectl_py.rules.state import RuleState
from minectl_py.timeparse import format_ms

SILENCE_EPILOG = """\
selectors:
  all, rack:R12, rack:R1*, model:*S19*, name:r12-*, mac:aa:bb:cc:dd:ee:ff, ip:10.1.12.7,
  or a bare MAC, IP or name glob. Several terms must all match: 'rack:R12 model:*S9*'.

examples:
  minectl silence rack:R12 --for 2h --reason "PDU swap"
  minectl silence r12-s03-p07 --for 30m --rule low-hashrate
  minectl silence rack:R3* --from 2026-11-28T02:00 --for 4h --reason "firmware upgrade"
  minectl silence all --from +8h --for 1h
  minectl silence --list
  minectl silence --clear 3f2a...            (an id from --list, or its first 8+ digits)
  minectl silence --clear rack:R12           (every silence with that selector)

A silence pauses rule actions and notifications for the miners it matches; alerts are still
recorded (marked silenced). Exit codes: 0 ok, 2 usage error, 3 nothing to clear, 4 no permission.
"""


def main(argv: list[str], prog: str = "minectl silence", command: str = "silence") -> int:
    ap = parser(prog, "Pause rule actions and notifications for a selector (a maintenance window).", SILENCE_EPILOG)
    ap.add_argument("selector", nargs="*", help="which miners (see below)")
    ap.add_argument("--for", dest="duration", type=duration_ms, help="how long (e.g. 30m, 2h, 1d)")
    ap.add_argument(
        "--from",
        dest="start",
        type=start_ms,
        help="start later: a time (2026-11-28T02:00, UTC unless a zone is given) or +DURATION (+8h)",
    )
    ap.add_argument("--rule", help="only this rule (default: every rule)")
    ap.add_argument("--reason", default="", help="why (recorded)")
    ap.add_argument("--list", action="store_true", help="list active silences")
    ap.add_argument("--clear", metavar="ID|SELECTOR", help="end a silence now")
    ap.add_argument("--json", action="store_true", help="JSON output")
    ap.add_argument("--events", help="event log (default $MINECTL_EVENTS)")
    a = ap.parse_args(argv)
    live = a.events or config.events_path()
    now = record.now_ms()
    if a.list or (not a.selector and a.clear is None):
        return list_silences(live, now, a.json)
    st = replay.rebuild(live, now)
    node = config.nodename()
    if a.clear is not None:
        ids = [s.id for s in st.silences.values() if s.id.startswith(a.clear.lower()) and len(a.clear) >= 8]
        if not ids:
            ids = [s.id for s in st.silences.values() if s.selector.text == " ".join(a.clear.replace(",", " ").split())]
        if not ids:
            err(prog, f"no active silence matches {a.clear!r} (see minectl silence --list)")
            return EXIT_NOMATCH
        recs = [
            record.make("silence", node, {"state": "cleared", "silence_id": i, "user": user(), "reason": a.reason})
            for i in ids
        ]
        return _write(prog, live, recs, f"cleared {len(recs)} silence(s)", a.json)
    text = " ".join(a.selector)
    try:
        sel = Selector.parse(text)
    except SelectorError as e:
        err(prog, f"bad selector: {e}")
        return EXIT_USAGE
    if a.duration is None:
        err(prog, "how long? add --for, e.g. --for 2h")
        return EXIT_USAGE
    if a.duration <= 0 or a.duration > 7 * 86_400_000:
        err(prog, "--for must be more than 0 and at most 7d")
        return EXIT_USAGE
    start = now if a.start is None else a.start
    if start < now - 60_000 or start > now + 30 * 86_400_000:
        err(prog, "--from must be from now up to 30 days ahead")
        return EXIT_USAGE
    fields: dict[str, Any] = {
        "state": "set",
        "selector": sel.text,
        "until_ms": start + a.duration,
        "user": user(),
        "reason": a.reason[:500],
    }
    if a.start is not None:
        fields["from_ms"] = start
    if a.rule:
        fields["rule"] = a.rule
    rec = record.make("silence", node, fields, at_ms=now)
    what = (
        f"silenced {sel.text}"
        + (f" for rule {a.rule}" if a.rule else "")
        + (f" from {format_ms(start)}" if a.start is not None else "")
        + f" until {format_ms(start + a.duration)} (id {rec['id'][:12]})"
    )
    return _write(prog, live, [rec], what, a.json)


def _write(prog: str, live: str, recs: list[dict[str, Any]], what: str, as_json: bool) -> int:
    try:
        with EventWriter(live) as w:
            w.append_many(recs)
    except EventLogError as e:
        err(prog, str(e))
        return EXIT_PERM if e.errno in (1, 13) else EXIT_PARTIAL
    print(json.dumps(recs) if as_json else what)
    return EXIT_OK


def list_silences(live: str, now: int, as_json: bool) -> int:
    st: RuleState = replay.rebuild(live, now)
    rows = sorted(st.silences.values(), key=lambda s: s.until_ms)
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "id": s.id,
                        "selector": s.selector.text,
                        "rule": s.rule,
                        "until_ms": s.until_ms,
                        "user": s.user,
                        "reason": s.reason,
                        "set_ms": s.set_ms,
                        "from_ms": s.from_ms or None,
                    }
                    for s in rows
                ]
            )
        )
        return EXIT_OK
    if not rows:
        print("no active silences")
        return EXIT_OK
    print(f"{'ID':<12} {'FROM':<20} {'UNTIL':<20} {'LEFT':>6} {'RULE':<16} {'BY':<10} SELECTOR / REASON")
    for s in rows:
        start = format_ms(s.from_ms) if s.from_ms > now else "now"
        print(
            f"{s.id[:12]:<12} {start:<20} {format_ms(s.until_ms):<20} {format_age(s.until_ms - now):>6} "
            f"{safe(s.rule or '*', 16):<16} {safe(s.user, 10):<10} "
            f"{safe(s.selector.text, 40)}  {safe(s.reason, 40)}"
        )
    return EXIT_OK
