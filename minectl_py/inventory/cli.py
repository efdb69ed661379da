"""``minectl inventory``: validate the site CSV, write dnsmasq reservations, record locations."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from minectl_py import config
from minectl_py.cliargs import parser
from minectl_py.inventory.csvfile import Inventory, Row, parse

EPILOG = """The CSV (a header row, then one miner per row; other columns are ignored):
  mac,name,rack,shelf,position,model[,ip]
  aa:bb:cc:dd:ee:01,r01-s1-p01,R01,1,1,Antminer S19

examples:
  minectl inventory check site.csv                 validate; every problem with line and column
  minectl inventory apply site.csv --hostsdir /var/lib/minectl/dhcp-hosts
  minectl inventory apply site.csv --dry-run       what would change
  minectl inventory dnsmasq-conf --interface eth1 --address 10.20.0.1 --subnet 10.20.0.0/16 \\
      --range 10.20.1.1,10.20.254.254 --test

apply records one `inventory` event per miner whose row changed (docs/events.md), so the
locations in the state directory survive `minectl state rebuild`.
exit codes: 0 ok, 2 the CSV or an option is invalid (nothing changed), 4 permission denied."""


def build_parser(prog: str) -> argparse.ArgumentParser:
    ap = parser(prog, "The site inventory: validate the CSV, write dnsmasq reservations, record locations.", EPILOG)
    sub = ap.add_subparsers(dest="sub", required=True, metavar="SUBCOMMAND")
    p = sub.add_parser("check", help="validate the CSV")
    p.add_argument("csv")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("apply", help="reservations + locations (one inventory event per changed miner)")
    p.add_argument("csv")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--hostsdir", help="dnsmasq dhcp-hostsdir: one file per miner (default %(default)s)")
    g.add_argument("--hostsfile", help="write one dnsmasq dhcp-hostsfile instead")
    p.add_argument("--no-reservations", action="store_true", help="only record locations")
    p.add_argument("--hup-pidfile", help="SIGHUP this dnsmasq afterwards (needed for removals and --hostsfile)")
    p.add_argument("--state-dir", help="default $MINECTL_STATE_DIR")
    p.add_argument("--events", help="live event log (default $MINECTL_EVENTS)")
    p.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("dnsmasq-conf", help="print the controller's dnsmasq config")
    p.add_argument("--interface", required=True)
    p.add_argument("--address", required=True, help="the controller's address on the mine LAN")
    p.add_argument("--subnet", required=True, help="e.g. 10.20.0.0/16")
    p.add_argument("--range", required=True, help="START,END of the DHCP pool")
    p.add_argument("--lease-time", default="12h")
    p.add_argument("--domain", default="mine.lan")
    p.add_argument("--hook", default="/usr/local/lib/minectl/lease-hook")
    p.add_argument("--hostsdir", default="/var/lib/minectl/dhcp-hosts")
    p.add_argument("--router")
    p.add_argument("--upstream", action="append", default=[], help="DNS server to forward to (repeat)")
    p.add_argument("--test", action="store_true", help="also run dnsmasq --test on it")
    return ap


def _load(path: str) -> Inventory:
    with open(path, encoding="utf-8", newline="") as f:
        return parse(f.read())


def _problems(inv: Inventory, source: str) -> None:
    for w in inv.warnings:
        print(f"warning: {w.format(source)}", file=sys.stderr)
    for e in inv.errors:
        print(e.format(source), file=sys.stderr)
    if inv.errors:
        print(f"{source}: {len(inv.errors)} problems; nothing applied", file=sys.stderr)


def _check(a: argparse.Namespace) -> int:
    inv = _load(a.csv)
    if a.json:
        print(
            json.dumps(
                {
                    "ok": inv.ok,
                    "miners": len(inv.rows),
                    "errors": [e.format(a.csv) for e in inv.errors],
                    "warnings": [w.format(a.csv) for w in inv.warnings],
                }
            )
        )
    else:
        _problems(inv, a.csv)
        if inv.ok:
            print(f"{a.csv}: {len(inv.rows)} miners, ok")
    return 0 if inv.ok else 2


def changes(state_dir: str, rows: list[Row], source: str) -> list[dict[str, Any]]:
    """The ``inventory`` event fields that bring the state directory's locations in line with
    ``rows``: a ``set`` per new or changed row, a ``remove`` per miner no longer listed."""
    from minectl_py.state import values
    from minectl_py.state.read import load_all

    current = {m["mac"]: m for m in load_all(state_dir) if isinstance(m.get("mac"), str)}
    out: list[dict[str, Any]] = []
    listed = set()
    for r in rows:
        listed.add(r.mac)
        fields = {"action": "set", **{k: v for k, v in r.fields().items() if v is not None}, "source": source}
        cur = current.get(r.mac, {})
        new = values.reduce(cur, {"cmd": "inventory", "created_at_ms": "0", **fields}, r.mac) or {}
        if any(cur.get(k) != new.get(k) for k in (*values.INVENTORY_FIELDS, "state")):
            out.append(fields)
    for mac, m in sorted(current.items()):
        if mac not in listed and any(k in m for k in values.INVENTORY_FIELDS):
            out.append({"action": "remove", "mac": mac, "source": source})
    return out


def _apply(a: argparse.Namespace) -> int:
    inv = _load(a.csv)
    _problems(inv, a.csv)
    if not inv.ok:
        return 2
    state_dir = a.state_dir or config.state_dir()
    source = os.path.abspath(a.csv)
    todo = changes(state_dir, inv.rows, source)
    res: dict[str, Any] = {"miners": len(inv.rows), "set": 0, "remove": 0, "dry_run": a.dry_run}
    for f in todo:
        res[f["action"]] += 1
    if not a.no_reservations:
        from minectl_py.inventory import reservations

        if a.hostsfile:
            res["reservations"] = reservations.write_hostsfile(a.hostsfile, inv.rows, dry_run=a.dry_run)
        else:
            d = a.hostsdir or "/var/lib/minectl/dhcp-hosts"
            res["reservations"] = reservations.write_hostsdir(d, inv.rows, dry_run=a.dry_run)
    if todo and not a.dry_run:
        from minectl_py.events.record import make
        from minectl_py.events.writer import EventWriter
        from minectl_py.state import project

        node = config.nodename()
        with EventWriter(a.events or config.events_path()) as w:
            project.record_and_apply(state_dir, [make("inventory", node, f) for f in todo], w.append_many)
    if a.hup_pidfile and not a.dry_run:
        from minectl_py.inventory import reservations

        res["hup_pid"] = reservations.hup(a.hup_pidfile)
    if a.json:
        print(json.dumps(res))
    else:
        verb = "would record" if a.dry_run else "recorded"
        print(f"{a.csv}: {res['miners']} miners; {verb} {res['set']} set, {res['remove']} remove")
        if "reservations" in res:
            r = res["reservations"]
            print(f"reservations: {r['written']} written, {r['unchanged']} unchanged, {r['removed']} removed")
    return 0


def _conf(a: argparse.Namespace) -> int:
    from minectl_py.inventory.dnsmasq_conf import DnsmasqSite, dnsmasq_test, render

    start, _, end = a.range.partition(",")
    site = DnsmasqSite(
        interface=a.interface,
        address=a.address,
        subnet=a.subnet,
        range_start=start,
        range_end=end,
        lease_time=a.lease_time,
        domain=a.domain,
        hook=a.hook,
        hostsdir=a.hostsdir,
        router=a.router,
        upstream=a.upstream,
    )
    text = render(site)
    sys.stdout.write(text)
    if a.test:
        ok, msg = dnsmasq_test(text)
        print(f"dnsmasq --test: {msg}", file=sys.stderr)
        return 0 if ok else 2
    return 0


def main(argv: list[str], prog: str = "minectl inventory", command: str = "inventory") -> int:
    a = build_parser(prog).parse_args(argv)
    try:
        if a.sub == "check":
            return _check(a)
        if a.sub == "apply":
            return _apply(a)
        if a.sub == "dnsmasq-conf":
            return _conf(a)
    except PermissionError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 4
    except (FileNotFoundError, ValueError, UnicodeDecodeError, ProcessLookupError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    return 2
