"""``minectl state``: inspect, compare and rebuild the per-miner state directory."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Any

from minectl_py import config
from minectl_py.cliargs import parser

EPILOG = """examples:
  minectl state ls                                  every miner, one line each
  minectl state show 10.20.3.17                     one miner by IP, MAC or name
  minectl state rebuild --into /tmp/rebuilt         replay the whole site log into a fresh directory
  minectl state rebuild --events /var/lib/minectl/events/events-2026*.log.gz events.log --into /tmp/r
  minectl state diff /var/lib/minectl/state /tmp/rebuilt
  minectl state verify                              rebuild into a temporary directory and compare with the live one
  minectl state recover                             finish what a killed writer left half done (any writer does it too)
  minectl state repair                              at boot: recover, check the log's last 10 minutes against the
                                                    state, rebuild from the log if the state is behind (power cut)
  minectl state repair --check --json               only tell (exit 1 if behind); nothing is changed
  minectl state repair --full                       compare with a full replay instead (slow), rebuild if different

exit codes: 0 ok (diff/verify: equal; repair: consistent, or made so), 1 differences (or bad
records with --strict; repair --check: behind), 2 usage or input error, 3 no such miner,
4 permission denied."""


def build_parser(prog: str) -> argparse.ArgumentParser:
    ap = parser(prog, "The per-miner state directory (docs/state.md): a projection of the event log.", EPILOG)
    ap.add_argument("--state-dir", help="state directory (default $MINECTL_STATE_DIR or %(default)s)")
    sub = ap.add_subparsers(dest="sub", required=True, metavar="SUBCOMMAND")
    p = sub.add_parser("ls", help="every miner, one line each")
    p.add_argument("--json", action="store_true", help="JSON list of miner.json values")
    p = sub.add_parser("show", help="everything the state directory holds about one miner")
    p.add_argument("key", help="MAC, IP or name")
    p.add_argument("--json", action="store_true")
    for name, text in (("rebuild", "replay events into a fresh directory"), ("verify", "rebuild and compare")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--events", nargs="+", metavar="PATH", help="event files, globs, - (default: the site log)")
        p.add_argument("--strict", action="store_true", help="exit 1 when a bad record was seen")
        p.add_argument("--json", action="store_true")
        if name == "rebuild":
            p.add_argument("--into", required=True, metavar="DIR", help="new directory (must not exist or be empty)")
    p = sub.add_parser("recover", help="undo and redo a chunk a killed writer left half projected")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser(
        "repair",
        help="at boot: recover, check the state against the log's tail, rebuild when behind",
        description="What the minectl-state-recover unit runs at boot, before dnsmasq and the poller. "
        "The event log is synced, the state directory is not: after a power cut the state may lack "
        "the last seconds. 1) recover a journal a killed writer left; 2) check that every miner in "
        "the log's last --window holds its last record's effect, with whole value files and links; "
        "3) if not, replay the whole log into a new directory and swap it in. See docs/state.md.",
        epilog="examples:\n  minectl state repair\n  minectl state repair --check --json\n"
        "  minectl state repair --window 1h\n  minectl state repair --full",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--events", nargs="+", metavar="PATH", help="event files, oldest first (default: the site log)")
    p.add_argument("--window", default="10m", help="how much of the log's end to check (default %(default)s)")
    p.add_argument("--full", action="store_true", help="compare with a full replay instead of the tail (slow)")
    p.add_argument("--check", action="store_true", help="only check: exit 1 if behind, change nothing")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("diff", help="compare two state directories")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--json", action="store_true")
    return ap


def _state_dir(a: argparse.Namespace) -> str:
    return a.state_dir or config.state_dir()


def _ls(a: argparse.Namespace) -> int:
    from minectl_py.state.read import load_all

    miners = load_all(_state_dir(a))
    if a.json:
        json.dump(miners, sys.stdout, indent=None, separators=(",", ":"))
        sys.stdout.write("\n")
        return 0
    cols = ("mac", "ip", "name", "state", "model", "hashrate", "temp_max", "last_seen")
    rows = [[_cell(m, c) for c in cols] for m in miners]
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(cols)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    print(f"{len(miners)} miners", file=sys.stderr)
    return 0


def _cell(m: dict[str, Any], c: str) -> str:
    v = (m.get("name") or m.get("hostname")) if c == "name" else m.get(c)
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}" if c == "hashrate" else f"{v:.1f}"
    return str(v)


def _show(a: argparse.Namespace) -> int:
    from minectl_py.state.read import load_one

    m = load_one(_state_dir(a), a.key)
    if m is None:
        print(f"minectl state show: no miner {a.key!r} (MAC, IP or name) in {_state_dir(a)}", file=sys.stderr)
        return 3
    if a.json:
        print(json.dumps(m, sort_keys=True))
        return 0
    w = max(len(k) for k in m)
    from minectl_py.state.values import render

    for k in sorted(m):
        print(f"{k.ljust(w)}  {render(k, m[k])}")
    return 0


def rebuild(paths: list[str] | None, into: str, strict: bool = False) -> dict[str, Any]:
    """Replay events into ``into`` (created; must be empty). Returns counts."""
    from minectl_py.events.reader import EventReader, ReadStats, expand_paths
    from minectl_py.events.segments import log_set
    from minectl_py.state import project, values

    files = expand_paths(paths, default=log_set)
    if os.path.isdir(into) and os.listdir(into):
        raise ValueError(f"{into} is not empty: rebuild into a new directory")
    os.makedirs(into, exist_ok=True)
    stats = ReadStats()
    reader = EventReader(files, strict=strict, types=values.PROJECTED, stats=stats)
    project.forget_cache(into)
    applied = project.apply_many(into, reader)
    return {
        "into": into,
        "sources": len(files),
        "records": stats.records,
        "projected": applied,
        "bad": stats.bad,
        "bad_samples": [str(b) for b in stats.samples],
    }


def _rebuild(a: argparse.Namespace) -> int:
    res = rebuild(a.events, a.into, a.strict)
    _report(res, a.json)
    return 1 if (a.strict and res["bad"]) else 0


def _report(res: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(res))
        return
    print(f"rebuilt {res['into']}: {res['records']} records from {res['sources']} files, {res['projected']} projected")
    if res["bad"]:
        print(f"{res['bad']} bad records (skipped):", file=sys.stderr)
        for s in res["bad_samples"]:
            print(f"  {s}", file=sys.stderr)


def _diff(a_dir: str, b_dir: str, as_json: bool) -> int:
    from minectl_py.state.compare import diff, snapshot

    for d in (a_dir, b_dir):
        if not os.path.isdir(d):
            raise FileNotFoundError(f"no such state directory: {d}")
    lines = diff(snapshot(a_dir), snapshot(b_dir))
    if as_json:
        print(json.dumps({"equal": not lines, "differences": lines}))
    elif lines:
        print("\n".join(lines))
    else:
        print(f"{a_dir} and {b_dir} are equal")
    return 1 if lines else 0


def _verify(a: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="minectl-verify-") as tmp:
        into = os.path.join(tmp, "state")
        res = rebuild(a.events, into, a.strict)
        if not a.json:
            _report(res, False)
        return _diff(_state_dir(a), into, a.json)


def _recover(a: argparse.Namespace) -> int:
    from minectl_py.state import project

    d = _state_dir(a)
    if not os.path.isdir(d):
        raise FileNotFoundError(f"no such state directory: {d}")
    res = project.recover(d)
    if a.json:
        print(json.dumps({"recovered": res is not None, **(res or {})}))
    elif res is None:
        print(f"{d}: nothing to recover")
    else:
        print(f"{d}: recovered an interrupted chunk: {res['undone']} changes undone, {res['redone']} records redone")
    return 0


def _repair(a: argparse.Namespace) -> int:
    from minectl_py.events.reader import expand_paths
    from minectl_py.events.segments import log_set
    from minectl_py.state import boot
    from minectl_py.timeparse import parse_duration_ms

    window = parse_duration_ms(a.window)
    if window <= 0:
        raise ValueError(f"--window {a.window!r}: a duration such as 10m, 1h or 90s")
    paths = expand_paths(a.events, default=log_set)
    d = _state_dir(a)
    res = boot.repair(d, paths, window_ms=window, full=a.full, dry_run=a.check)
    if a.json:
        print(json.dumps(res.as_dict()))
    else:
        j = res.journal
        if j is not None:
            print(f"{d}: recovered an interrupted chunk ({j['undone']} undone, {j['redone']} redone)")
        how = f"{res.records_checked} records of the last {a.window} ({res.miners_checked} miners)"
        if a.full:
            how = "a full replay"
        if not res.problems:
            print(f"{d}: consistent with the log ({how})")
        else:
            print(f"{d}: behind the log ({how}): {len(res.problems)} problems, e.g.")
            for line in res.problems[:10]:
                print(f"  {line}")
        if res.rebuilt and res.rebuild:
            r = res.rebuild
            print(f"{d}: rebuilt from {r['records']} records of {r['sources']} files and swapped in")
    return 1 if (a.check and res.problems) else 0


def main(argv: list[str], prog: str = "minectl state", command: str = "state") -> int:
    a = build_parser(prog).parse_args(argv)
    try:
        if a.sub == "ls":
            return _ls(a)
        if a.sub == "show":
            return _show(a)
        if a.sub == "rebuild":
            return _rebuild(a)
        if a.sub == "verify":
            return _verify(a)
        if a.sub == "diff":
            return _diff(a.a, a.b, a.json)
        if a.sub == "recover":
            return _recover(a)
        if a.sub == "repair":
            return _repair(a)
    except (FileNotFoundError, ValueError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    except PermissionError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 4
    return 2
