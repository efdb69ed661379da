"""``minectl sim``: run a simulated fleet of miners, and poke it while it runs."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys

from minectl_py.sim import control
from minectl_py.sim.profiles import FAULTS, PROFILES
from minectl_py.sim.spec import EXAMPLE, FleetSpec, SpecError, finish, from_flags, load, parse_mix

EPILOG = """\
examples:
  minectl sim run --miners 50 --base-ip 127.20.0.1 --seed 7
  minectl sim run --fleet site.yaml --control /tmp/sim.sock
  minectl sim run --miners 10000 --personality s19 --no-http --no-ssh
  minectl sim example > site.yaml           a commented fleet file to start from
  minectl sim fault 127.20.0.5 hot          (faults: {faults})
  minectl sim fault 127.20.0.6 slow --param delay=4
  minectl sim clear 127.20.0.5              all faults; or: clear IP FAULT
  minectl sim show 127.20.0.5 --json        pools, LED, uptime, faults, listeners
  minectl sim reboot 127.20.0.5

personalities: {pers}
The control commands talk to the running fleet over its Unix socket
(--control, or $MINECTL_SIM_CONTROL, default {ctl}). See docs/simulator.md.
exit codes: 0 ok, 1 the fleet could not start / the request failed, 2 usage error.
"""


def _parser(prog: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=prog,
        description="Simulated ASIC miners speaking the cgminer-family API (TCP 4028), "
        "Antminer HTTP CGI with digest auth, and SSH, with faults injectable at run time.",
        epilog=EPILOG.format(faults=", ".join(sorted(FAULTS)), pers=", ".join(PROFILES), ctl=control.default_path()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="sub", metavar="{run,fault,clear,show,list,reboot,example}")
    r = sub.add_parser("run", help="run a fleet until interrupted")
    r.add_argument("--fleet", help="YAML fleet file (see `minectl sim example`)")
    r.add_argument("--miners", type=int, default=None, help="number of miners (default 10 without --fleet)")
    r.add_argument("--base-ip", default="127.20.0.1", help="first address (default %(default)s)")
    r.add_argument("--seed", type=int, default=None, help="seed: same seed, same fleet (default 1)")
    r.add_argument("--personality", help="every miner of this personality")
    r.add_argument("--mix", help="weights, e.g. s19=6,s9=2,btminer=1")
    r.add_argument("--api-port", type=int, default=None, help="cgminer API port (default 4028)")
    r.add_argument("--http-port", type=int, default=None, help="Antminer/Braiins HTTP port (default 80)")
    r.add_argument("--ssh-port", type=int, default=None, help="SSH port (default 22)")
    r.add_argument("--no-http", action="store_true", help="no HTTP servers")
    r.add_argument("--no-ssh", action="store_true", help="no SSH servers")
    r.add_argument("--reboot-seconds", type=float, default=None, help="how long a reboot stays dark (default 10)")
    r.add_argument("--control", default=None, help=f"control socket (default {control.default_path()})")
    r.add_argument("--ready-file", help="write the miners' addresses (JSON) here once listening")
    r.add_argument("-v", "--verbose", action="store_true")
    for name, helptext in (
        ("fault", "set a fault on a miner (IP or '*')"),
        ("clear", "clear one or every fault"),
        ("show", "a miner's observable state"),
        ("reboot", "reboot a miner"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("ip")
        if name == "fault":
            p.add_argument("fault", choices=sorted(FAULTS))
            p.add_argument("--param", action="append", default=[], help="KEY=VALUE, e.g. delay=4")
        if name == "clear":
            p.add_argument("fault", nargs="?")
        if name == "reboot":
            p.add_argument("--seconds", type=float)
        p.add_argument("--control", default=None)
        p.add_argument("--json", action="store_true", help="JSON output")
    ls = sub.add_parser("list", help="every miner of the running fleet")
    ls.add_argument("--control", default=None)
    ls.add_argument("--json", action="store_true")
    sub.add_parser("example", help="print an example fleet file")
    return ap


def build_spec(a: argparse.Namespace) -> FleetSpec:
    spec = load(a.fleet) if a.fleet else FleetSpec(miners=[])
    if a.seed is not None:
        spec.seed = a.seed
    if a.miners is not None or not a.fleet:
        mix = parse_mix(a.personality) if a.personality else (parse_mix(a.mix) if a.mix else None)
        base = a.base_ip
        if spec.miners:  # continue after the file's miners
            from minectl_py.sim.spec import addresses

            base = addresses(spec.miners[-1].ip, 2)[1]
        spec.miners += from_flags(10 if a.miners is None else a.miners, base, spec.seed, mix)
    for attr in ("api_port", "http_port", "ssh_port"):
        v = getattr(a, attr)
        if v is not None:
            if not 1 <= v <= 65535:
                raise SpecError(f"--{attr.replace('_', '-')}: must be 1..65535")
            setattr(spec, attr, v)
    if a.no_http:
        spec.http_port = None
    if a.no_ssh:
        spec.ssh_port = None
    if a.reboot_seconds is not None:
        spec.reboot_seconds = a.reboot_seconds
    spec.control = a.control or spec.control or control.default_path()
    return finish(spec)


async def _run(spec: FleetSpec, ready_file: str | None) -> int:
    from minectl_py.sim.fleet import Fleet, FleetError

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    fleet = Fleet(spec)
    try:
        await fleet.start()
    except (FleetError, OSError) as e:
        print(f"minectl sim: {e}", file=sys.stderr)
        return 1
    try:
        n = len(fleet.miners)
        print(f"minectl sim: {n} miners up; control socket {spec.control}", file=sys.stderr, flush=True)
        if ready_file:
            tmp = ready_file + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"pid": os.getpid(), "miners": fleet.addresses, "control": spec.control}, f)
            os.replace(tmp, ready_file)
        await stop.wait()
    finally:
        await fleet.stop()
    return 0


def _print(result: object, as_json: bool) -> None:
    if as_json or not isinstance(result, dict):
        print(json.dumps(result, indent=2))
        return
    for k, v in result.items():
        if k == "pools":
            for i, p in enumerate(v):
                star = "*" if p.get("active") else " "
                print(f"pool{i:<7}{star} {p['url']}  {p['user']}{'' if p['enabled'] else '  (disabled)'}")
        else:
            print(f"{k:<12} {v}")


def main(argv: list[str], prog: str = "minectl sim", command: str = "sim") -> int:
    ap = _parser(prog)
    a = ap.parse_args(argv)
    if a.sub is None:
        ap.print_help()
        return 2
    if a.sub == "example":
        sys.stdout.write(EXAMPLE)
        return 0
    if a.sub == "run":
        logging.basicConfig(
            level=logging.INFO if a.verbose else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        try:
            spec = build_spec(a)
        except (SpecError, ValueError) as e:
            print(f"{prog}: {e}", file=sys.stderr)
            return 2
        try:
            return asyncio.run(_run(spec, a.ready_file))
        except KeyboardInterrupt:
            return 130
    path = a.control or control.default_path()
    req: dict[str, object] = {"op": a.sub}
    if a.sub != "list":
        req["ip"] = a.ip
    if a.sub == "fault":
        params: dict[str, object] = {}
        for kv in a.param:
            k, sep, v = kv.partition("=")
            if not sep or not k:
                print(f"{prog}: --param must be KEY=VALUE, got {kv!r}", file=sys.stderr)
                return 2
            try:
                params[k] = float(v) if v.replace(".", "", 1).isdigit() else v
            except ValueError:
                params[k] = v
        req |= {"fault": a.fault, "params": params}
    if a.sub == "clear" and a.fault:
        req["fault"] = a.fault
    if a.sub == "reboot" and a.seconds is not None:
        req["seconds"] = a.seconds
    try:
        result = control.request(path, req)
    except RuntimeError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    if a.sub == "list" and not a.json:
        for m in result:
            print(f"{m['ip']:<16} {m['personality']:<9} {m['mac']}  {','.join(m['faults'])}")
        return 0
    _print(result, getattr(a, "json", False))
    return 0
