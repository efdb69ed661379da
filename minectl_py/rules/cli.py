"""``minectl rules``, ``minectl alerts`` and ``minectl silence``: the watchdog's commands."""

from __future__ import annotations

import argparse
import json
import logging
import os
import pwd
import signal
import sys
import time
from typing import Any

from minectl_py import config
from minectl_py.events import record
from minectl_py.events.reader import ReadStats
from minectl_py.events.writer import EventLogError, EventWriter
from minectl_py.rules import replay, ruleset
from minectl_py.rules.scope import Selector, SelectorError
from minectl_py.rules.state import RuleState
from minectl_py.timeparse import format_ms, parse_duration_ms, parse_time_ms

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_NOMATCH, EXIT_PERM = 0, 1, 2, 3, 4


def default_rules() -> str:
    return os.environ.get("MINECTL_RULES") or os.path.join(config.config_dir(), "rules.yml")


def _user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def _err(prog: str, msg: str) -> None:
    print(f"{prog}: {msg}", file=sys.stderr)


def _duration(text: str) -> int:
    try:
        return parse_duration_ms(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _time(text: str) -> int:
    try:
        return parse_time_ms(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _start(text: str) -> int:
    t = text.strip()
    try:
        if t.startswith("+"):
            return record.now_ms() + parse_duration_ms(t[1:])
        return parse_time_ms(t)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def main(argv: list[str], prog: str = "minectl rules", command: str = "rules") -> int:
    if command == "alerts":
        return alerts_main(argv, prog)
    if command == "silence":
        return silence_main(argv, prog)
    return rules_main(argv, prog)


# --------------------------------------------------------------------------- minectl rules
RULES_EPILOG = """\
examples:
  minectl rules check /etc/minectl/rules.yml     validate; errors name the line and field
  minectl rules run --once --dry-run             what the rules would do now, touching nothing
  minectl rules run                              the service (the minectl role installs it)
  minectl rules run --interval 10s --json        one JSON line per cycle

The rules file format is in docs/rules.md; an example is files/rules/example.yml.
Exit codes: 0 ok, 1 some actions or notifications failed (--once), 2 bad rules file or usage.
"""


def rules_main(argv: list[str], prog: str) -> int:
    ap = argparse.ArgumentParser(
        prog=prog,
        description="The site watchdog: rules over every miner's state that raise alerts, notify people "
        "and act (restart, reboot, switch pool) with limits.",
        epilog=RULES_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="sub", metavar="check|run")
    c = sub.add_parser(
        "check", help="validate a rules file", epilog=RULES_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    c.add_argument("file", nargs="?", help="rules file (default $MINECTL_RULES or /etc/minectl/rules.yml)")
    c.add_argument("--json", action="store_true", help="problems as JSON")
    r = sub.add_parser(
        "run", help="run the watchdog", epilog=RULES_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    r.add_argument("--rules", help="rules file (default $MINECTL_RULES or /etc/minectl/rules.yml)")
    r.add_argument("--once", action="store_true", help="one cycle, then exit")
    r.add_argument("--dry-run", action="store_true", help="decide and show, but write, send and touch nothing")
    r.add_argument("--interval", type=_duration, default=5000, help="time between cycles (default 5s)")
    r.add_argument(
        "--lookback", type=_duration, default=7 * 86_400_000, help="replay at most this far back at start (default 7d)"
    )
    r.add_argument("--json", action="store_true", help="one JSON object per cycle")
    r.add_argument("--events", help="event log (default $MINECTL_EVENTS)")
    r.add_argument("--state-dir", help="state directory (default $MINECTL_STATE_DIR)")
    a = ap.parse_args(argv)
    if a.sub is None:
        ap.print_help()
        return EXIT_USAGE
    if a.sub == "check":
        return check(a.file or default_rules(), a.json, prog)
    return run(a, prog)


def check(path: str, as_json: bool, prog: str) -> int:
    try:
        rs = ruleset.load_file(path)
    except FileNotFoundError:
        _err(prog, f"no such rules file: {path}")
        return EXIT_USAGE
    except ruleset.RulesFileError as e:
        if as_json:
            problems = [{"line": p.line, "field": p.field, "message": p.message} for p in e.problems]
            print(json.dumps({"file": path, "ok": False, "problems": problems}))
        else:
            print(str(e), file=sys.stderr)
            print(f"{path}: {len(e.problems)} problem(s)", file=sys.stderr)
        return EXIT_USAGE
    if as_json:
        print(json.dumps({"file": path, "ok": True, "rules": [r.name for r in rs.rules]}))
    else:
        acting = sum(1 for r in rs.rules if r.steps)
        print(f"{path}: ok: {len(rs.rules)} rule(s), {acting} with actions")
    return EXIT_OK


def _actuator(prog: str) -> Any:
    try:
        from minectl_py.rules.actuator import make_actuator
    except ImportError as e:
        _err(prog, f"no action engine available ({e}): rules will alert and notify but not act")
        return None
    from minectl_py.admin.credentials import CredentialsError

    try:
        return make_actuator()
    except CredentialsError as e:
        _err(prog, f"{e} (the rules service will not act with a broken credentials file)")
        return False


def run(a: argparse.Namespace, prog: str) -> int:
    from minectl_py.rules.service import Service

    path = a.rules or default_rules()
    try:
        rs = ruleset.load_file(path)
    except FileNotFoundError:
        _err(prog, f"no such rules file: {path} (see files/rules/example.yml)")
        return EXIT_USAGE
    except ruleset.RulesFileError as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    actuator = None if a.dry_run else _actuator(prog)
    if actuator is False:
        return EXIT_USAGE
    svc = Service(
        rs,
        events_path=a.events or config.events_path(),
        state_dir=a.state_dir or config.state_dir(),
        nodename=config.nodename(),
        actuator=actuator,
        dry_run=a.dry_run,
        lookback_ms=a.lookback,
    )
    stop = {"now": False}

    def _term(signum: int, frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _term)
    rc = EXIT_OK
    try:
        svc.start()
        while True:
            rep = svc.cycle()
            failed = [x for x in rep.actions + rep.notified if x.get("result") not in ("ok", "dry_run")]
            if failed:
                rc = EXIT_PARTIAL
            _report(rep, a.json, a.dry_run, rs)
            if a.once or stop["now"]:
                break
            deadline = time.monotonic() + a.interval / 1000
            while not stop["now"] and time.monotonic() < deadline:
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
            if stop["now"]:
                break
    except EventLogError as e:
        _err(prog, str(e))
        return EXIT_PERM if e.errno in (1, 13) else EXIT_PARTIAL
    finally:
        svc.close()
    return rc if a.once else EXIT_OK


def _report(rep: Any, as_json: bool, dry_run: bool, rs: ruleset.RuleSet | None = None) -> None:
    if as_json:
        print(
            json.dumps(
                {
                    "at": format_ms(rep.at_ms),
                    "miners": rep.miners,
                    "dry_run": dry_run,
                    "elapsed_ms": rep.elapsed_ms,
                    "events": rep.events,
                    "actions": rep.actions,
                    "notified": rep.notified,
                },
                ensure_ascii=True,
            ),
            flush=True,
        )
        return
    if not rep.events and not rep.actions and not rep.notified and not dry_run:
        return
    head = "would" if dry_run else "did"
    lines = []
    for e in rep.events:
        who = e.get("name") or e.get("mac") or "site"
        if e["cmd"] == "alert":
            lines.append(
                f"alert {e['state']:<7} {e['rule']:<16} {e.get('kind', ''):<10} "
                f"{_safe(who):<20} {_safe(e.get('detail'))}"
            )
        elif e["cmd"] == "rule" and e["decision"] == "act":
            lines.append(
                f"{head} {e['action']:<10} {e['rule']:<16} step {e.get('step')}  {_safe(who):<20} {_safe(e.get('ip'))}"
            )
        elif e["cmd"] == "rule" and e["decision"] not in ("pending", "ok"):
            lines.append(f"{e['decision']:<11} {e['rule']:<16} {_safe(who):<20} {_safe(e.get('detail'))}")
    pending: dict[str, int] = {}
    for e in rep.events:
        if e["cmd"] == "rule" and e["decision"] == "pending":
            pending[e["rule"]] = pending.get(e["rule"], 0) + 1
    for name, n in sorted(pending.items()):
        r = rs.rule(name) if rs is not None else None
        after = f"; alert if it still holds after {_age(r.hold_ms)}" if r is not None and r.hold_ms else ""
        lines.append(f"{'pending':<11} {name:<16} {n} miner(s) started to match{after}")
    for x in rep.actions:
        lines.append(
            f"action {x.get('action')} {x.get('result')} "
            f"{_safe(x.get('name') or x.get('target'))} {_safe(x.get('detail'))}"
        )
    for n in rep.notified:
        lines.append(f"notify {n['channel']} {n['result']} {_safe(n.get('target'))} {_safe(n.get('detail'))}")
    stamp = format_ms(rep.at_ms)
    if not lines and dry_run:
        lines.append(f"nothing to do ({rep.miners} miners)")
    for ln in lines:
        print(f"{stamp} {ln}", flush=True)


def _safe(v: Any, limit: int = 80) -> str:
    s = "" if v is None else str(v)
    return "".join(ch if ch.isprintable() else "?" for ch in s)[:limit]


# -------------------------------------------------------------------------- minectl alerts
ALERTS_EPILOG = """\
examples:
  minectl alerts                       open alerts
  minectl alerts --recent              also those that cleared in the window
  minectl alerts --since 7d --rule hot
  minectl alerts --json | jq '.[] | select(.severity == "critical")'

Exit codes: 0 ok (3 with --fail-if-open when alerts are open), 2 usage error.
"""


def alerts_main(argv: list[str], prog: str) -> int:
    ap = argparse.ArgumentParser(
        prog=prog,
        description="Open and recent alerts of the site watchdog (minectl rules), from the event log.",
        epilog=ALERTS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--recent", action="store_true", help="also list alerts that cleared within --since")
    ap.add_argument("--since", type=_time, default=None, help="window to read (default 24h)")
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
        age = _age(end - r["raised_at_ms"])
        st = "open" if r["open"] else "cleared"
        if r["silenced"]:
            st += "*"
        who = r["name"] or r["mac"] or "(site)"
        print(
            f"{format_ms(r['raised_at_ms']):<20} {age:>7} {st:<8} {r['severity']:<8} {_safe(r['rule'], 16):<16} "
            f"{r['kind']:<9} {_safe(who, 18):<18} {_safe(r['ip'], 15):<15} {_safe(r['detail'], 60)}"
        )
    n_open = sum(1 for r in rows if r["open"])
    print(
        f"\n{n_open} open, {len(rows) - n_open} cleared"
        + ("  (* silenced: not notified)" if any(r["silenced"] for r in rows) else "")
    )


def _age(ms: int) -> str:
    s = max(0, ms // 1000)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


# ------------------------------------------------------------------------- minectl silence
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


def silence_main(argv: list[str], prog: str) -> int:
    ap = argparse.ArgumentParser(
        prog=prog,
        description="Pause rule actions and notifications for a selector (a maintenance window).",
        epilog=SILENCE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("selector", nargs="*", help="which miners (see below)")
    ap.add_argument("--for", dest="duration", type=_duration, help="how long (e.g. 30m, 2h, 1d)")
    ap.add_argument(
        "--from",
        dest="start",
        type=_start,
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
            _err(prog, f"no active silence matches {a.clear!r} (see minectl silence --list)")
            return EXIT_NOMATCH
        recs = [
            record.make("silence", node, {"state": "cleared", "silence_id": i, "user": _user(), "reason": a.reason})
            for i in ids
        ]
        return _write(prog, live, recs, f"cleared {len(recs)} silence(s)", a.json)
    text = " ".join(a.selector)
    try:
        sel = Selector.parse(text)
    except SelectorError as e:
        _err(prog, f"bad selector: {e}")
        return EXIT_USAGE
    if a.duration is None:
        _err(prog, "how long? add --for, e.g. --for 2h")
        return EXIT_USAGE
    if a.duration <= 0 or a.duration > 7 * 86_400_000:
        _err(prog, "--for must be more than 0 and at most 7d")
        return EXIT_USAGE
    start = now if a.start is None else a.start
    if start < now - 60_000 or start > now + 30 * 86_400_000:
        _err(prog, "--from must be from now up to 30 days ahead")
        return EXIT_USAGE
    fields: dict[str, Any] = {
        "state": "set",
        "selector": sel.text,
        "until_ms": start + a.duration,
        "user": _user(),
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
        _err(prog, str(e))
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
            f"{s.id[:12]:<12} {start:<20} {format_ms(s.until_ms):<20} {_age(s.until_ms - now):>6} "
            f"{_safe(s.rule or '*', 16):<16} {_safe(s.user, 10):<10} "
            f"{_safe(s.selector.text, 40)}  {_safe(s.reason, 40)}"
        )
    return EXIT_OK
