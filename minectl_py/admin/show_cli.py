"""``minectl show MINER``: everything known about one miner, and its recent events."""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from minectl_py import config
from minectl_py.admin import common, fleet, perms, render
from minectl_py.admin.fields import label
from minectl_py.admin.health import classify
from minectl_py.admin.select import build

EPILOG = """\
MINER is a name, hostname, IP or MAC (anything `minectl status` accepts, matching one miner).
Values come from the state directory; events from the site log ($MINECTL_EVENTS): the live
file and, with --days N, the rotated segments of the last N-1 days too.

Examples:
  minectl show r12-s3-p4
  minectl show 10.1.12.7 --events 50
  minectl show aa:bb:cc:dd:ee:ff --json
"""

_ORDER_TEXT = """name location rack shelf position ip mac hostname vendor_class make model model_expected
firmware state health hashrate hashrate_avg nominal hashrate_pct temp_max fans pool pool_user uptime hw_errors
lease lease_expires first_seen last_seen last_poll last_error"""
ORDER = tuple(_ORDER_TEXT.split())
TIMES = {"first_seen", "last_seen", "last_poll", "lease_expires"}


def describe_event(rec: Mapping[str, Any]) -> str:
    """A one-line, terminal-safe summary of an event about a miner."""
    cmd = rec.get("cmd")
    if cmd == "lease":
        return f"lease {rec.get('action')} ip={rec.get('ip')} hostname={rec.get('hostname')}"
    if cmd == "poll":
        m = rec.get("miner") or {}
        return (
            f"poll ok {m.get('hashrate_ths')} TH/s temp {m.get('temp_max')} "
            f"uptime {m.get('uptime_s')}s ({rec.get('elapsed_ms')} ms)"
        )
    if cmd == "poll_fail":
        return f"poll failed: {rec.get('reason')} {rec.get('detail') or ''}".rstrip()
    if cmd == "action":
        return f"{rec.get('action')} by {rec.get('user')}: {rec.get('result')} via {rec.get('transport') or '-'}" + (
            f" ({rec.get('detail')})" if rec.get("detail") else ""
        )
    if cmd == "inventory":
        where = "-".join(str(rec.get(k) or "?") for k in ("rack", "shelf", "position"))
        return f"inventory {rec.get('action') or 'set'} name={rec.get('name')} at {where}"
    if cmd == "alert":
        return f"alert {rec.get('rule')} {rec.get('state')} {rec.get('detail') or ''}".rstrip()
    keys = ", ".join(k for k in rec if k not in ("created_at_ms", "id", "cmd", "nodename", "v"))
    return f"{cmd} ({keys})"


def recent_events(paths: Iterable[str], mac: str | None, ip: str | None, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` events naming this MAC or IP (a byte scan first, JSON only on hits)."""
    from minectl_py.events.reader import classify as classify_line
    from minectl_py.events.reader import iter_lines, open_binary

    needles = [f'"{x}"'.encode() for x in (mac, ip) if x]
    if not needles:
        return []
    keep: deque[dict[str, Any]] = deque(maxlen=max(1, limit))
    for path in paths:
        try:
            stream = open_binary(path)
        except OSError:
            continue
        try:
            for raw, _ in iter_lines(stream):
                if not any(n in raw for n in needles):
                    continue
                text = raw.lstrip(b"\x1e")
                if b"\t" in text[:80] and not text.startswith(b"{"):
                    text = text[text.find(b"{") :]
                rec, _reason = classify_line(text)
                if rec is None:
                    continue
                if (mac and rec.get("mac") == mac) or (ip and ip in (rec.get("ip"), rec.get("target"))):
                    keep.append(rec)
        finally:
            stream.close()
    return list(keep)


def main(argv: list[str], prog: str = "minectl show", command: str = "show") -> int:
    p = common.parser(prog, "Everything known about one miner, with its recent events.", EPILOG)
    p.add_argument("miner", metavar="MINER", help="name, hostname, IP or MAC of one miner")
    p.add_argument("--events", type=int, default=20, metavar="N", help="how many recent events (default 20, 0: none)")
    p.add_argument("--days", type=int, default=1, metavar="D", help="read the log's last D days (default 1: live file)")
    p.add_argument("--json", action="store_true", help="the miner and its events as one JSON object")
    common.add_colour(p)
    a = p.parse_args(argv)

    def body() -> int:
        state = config.state_dir()
        perms.check_read(state)
        sel = build([a.miner])
        miners = sel.apply(fleet.load(state))
        if not miners:
            raise common.Exit(common.EXIT_NOMATCH, f"no miner matches {a.miner!r}")
        if len(miners) > 1:
            names = ", ".join(render.safe(label(m), 24) for m in miners[:10])
            raise common.Exit(
                common.EXIT_USAGE, f"{a.miner!r} matches {len(miners)} miners ({names}...): name one, or use status"
            )
        m = miners[0]
        level, reasons = classify(m)
        events: list[dict[str, Any]] = []
        if a.events > 0:
            from minectl_py.events.segments import log_set

            paths = log_set(config.events_path())
            perms.check_read(config.events_path(), "the event log")
            paths = paths[-max(1, a.days) :]
            events = recent_events(paths, m.get("mac"), m.get("ip"), a.events)
        if a.json:
            doc = {"miner": {k: m.get(k) for k in ORDER}, "health": level, "reasons": reasons, "events": events}
            json.dump(doc, sys.stdout, ensure_ascii=True, indent=1)
            sys.stdout.write("\n")
            return common.EXIT_OK
        colour = render.use_colour(sys.stdout, a.color)
        sys.stdout.write(text(m, level, reasons, events, colour) + "\n")
        return common.EXIT_OK

    return common.run(prog, body)


def text(m: Mapping[str, Any], level: str, reasons: list[str], events: list[dict[str, Any]], colour: bool) -> str:
    out = [render.paint(f"{render.safe(label(m), 40)}  ({level})", level if level != "ok" else "head", colour)]
    for r in reasons:
        out.append("  " + render.paint("! " + render.safe(r, 100), level, colour))
    for k in ORDER:
        v = m.get(k)
        if v is None or v == [] or k == "health":
            continue
        if k in TIMES:
            shown = f"{render.when(v)} ({render.ago(v)})" if k != "lease_expires" else render.when(v)
        elif k == "uptime":
            shown = render.duration(v)
        elif k == "fans":
            shown = " ".join(str(f) for f in v) + " rpm"
        else:
            shown = render.safe(v, 100)
        out.append(f"  {k:<14} {shown}")
    if events:
        out += ["", render.paint(f"Recent events ({len(events)})", "head", colour)]
        rows = []
        for e in events:
            t = int(e.get("created_at_ms", "0")) / 1000
            rows.append([time.strftime("%m-%d %H:%M:%S", time.gmtime(t)), render.safe(describe_event(e), 110)])
        out.append(render.table(["TIME (UTC)", "EVENT"], rows))
    return "\n".join(out)
