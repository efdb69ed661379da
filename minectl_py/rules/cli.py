"""``minectl rules``: check a rules file, or run the site watchdog (``minectl alerts`` and
``minectl silence`` are ``rules/alerts_cli.py`` and ``rules/silence_cli.py``)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from typing import Any

from minectl_py import config
from minectl_py.cliargs import parser
from minectl_py.events.writer import EventLogError
from minectl_py.rules import ruleset
from minectl_py.rules.cli_common import (
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_PERM,
    EXIT_USAGE,
    default_rules,
    duration_ms,
    err,
    format_age,
    safe,
)
from minectl_py.timeparse import format_ms

RULES_EPILOG = """\
examples:
  minectl rules check /etc/minectl/rules.yml     validate; errors name the line and field
  minectl rules run --once --dry-run             what the rules would do now, touching nothing
  minectl rules run                              the service (the minectl role installs it)
  minectl rules run --interval 10s --json        one JSON line per cycle

The rules file format is in docs/rules.md; an example is files/rules/example.yml.
Exit codes: 0 ok, 1 some actions or notifications failed (--once), 2 bad rules file or usage.
"""


def main(argv: list[str], prog: str = "minectl rules", command: str = "rules") -> int:
    ap = parser(
        prog,
        "The site watchdog: rules over every miner's state that raise alerts, notify people "
        "and act (restart, reboot, switch pool) with limits.",
        RULES_EPILOG,
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
    r.add_argument("--interval", type=duration_ms, default=5000, help="time between cycles (default 5s)")
    r.add_argument(
        "--lookback",
        type=duration_ms,
        default=7 * 86_400_000,
        help="replay at most this far back at start (default 7d)",
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
        err(prog, f"no such rules file: {path}")
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
        err(prog, f"no action engine available ({e}): rules will alert and notify but not act")
        return None
    from minectl_py.admin.credentials import CredentialsError

    try:
        return make_actuator()
    except CredentialsError as e:
        err(prog, f"{e} (the rules service will not act with a broken credentials file)")
        return False


def run(a: argparse.Namespace, prog: str) -> int:
    from minectl_py.rules.service import Service

    path = a.rules or default_rules()
    try:
        rs = ruleset.load_file(path)
    except FileNotFoundError:
        err(prog, f"no such rules file: {path} (see files/rules/example.yml)")
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
        err(prog, str(e))
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
                f"alert {e['state']:<7} {e['rule']:<16} {e.get('kind', ''):<10} {safe(who):<20} {safe(e.get('detail'))}"
            )
        elif e["cmd"] == "rule" and e["decision"] == "act":
            lines.append(
                f"{head} {e['action']:<10} {e['rule']:<16} step {e.get('step')}  {safe(who):<20} {safe(e.get('ip'))}"
            )
        elif e["cmd"] == "rule" and e["decision"] not in ("pending", "ok"):
            lines.append(f"{e['decision']:<11} {e['rule']:<16} {safe(who):<20} {safe(e.get('detail'))}")
    pending: dict[str, int] = {}
    for e in rep.events:
        if e["cmd"] == "rule" and e["decision"] == "pending":
            pending[e["rule"]] = pending.get(e["rule"], 0) + 1
    for name, n in sorted(pending.items()):
        r = rs.rule(name) if rs is not None else None
        after = f"; alert if it still holds after {format_age(r.hold_ms)}" if r is not None and r.hold_ms else ""
        lines.append(f"{'pending':<11} {name:<16} {n} miner(s) started to match{after}")
    for x in rep.actions:
        lines.append(
            f"action {x.get('action')} {x.get('result')} "
            f"{safe(x.get('name') or x.get('target'))} {safe(x.get('detail'))}"
        )
    for n in rep.notified:
        lines.append(f"notify {n['channel']} {n['result']} {safe(n.get('target'))} {safe(n.get('detail'))}")
    stamp = format_ms(rep.at_ms)
    if not lines and dry_run:
        lines.append(f"nothing to do ({rep.miners} miners)")
    for ln in lines:
        print(f"{stamp} {ln}", flush=True)
