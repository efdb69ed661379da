"""``minectl``: the admin's command. Dispatches to one module per command group.

Start-up stays fast: only the chosen command's module is imported. Each module exposes
``main(argv: list[str], prog: str) -> int``.

Exit codes shared by every command (see docs/runbook.md):
0 success; 1 some targets failed / bad records under --strict; 2 usage or input error;
3 nothing matched; 4 permission denied; 130 interrupted.
"""

from __future__ import annotations

import importlib
import sys

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_NOMATCH = 3
EXIT_PERM = 4
EXIT_INTERRUPTED = 130

# command -> (module, one-line help, group)
COMMANDS: dict[str, tuple[str, str, str]] = {
    # seeing
    "status": ("minectl_py.admin.status_cli", "one row per miner: hashrate, temperature, pool, state", "see"),
    "ls": ("minectl_py.admin.status_cli", "alias of status", "see"),
    "show": ("minectl_py.admin.show_cli", "everything known about one miner, with its recent events", "see"),
    "summary": ("minectl_py.admin.summary_cli", "site totals on one screen", "see"),
    "map": ("minectl_py.admin.map_cli", "the racks as a coloured grid", "see"),
    "alerts": ("minectl_py.rules.alerts_cli", "open and recent alerts", "see"),
    # acting
    "reboot": ("minectl_py.admin.actions_cli", "reboot miners", "act"),
    "restart": ("minectl_py.admin.actions_cli", "restart the mining software", "act"),
    "pools": ("minectl_py.admin.actions_cli", "show, set or switch pools", "act"),
    "locate": ("minectl_py.admin.actions_cli", "turn the locate LED on or off", "act"),
    "exec": ("minectl_py.admin.actions_cli", "run a command on miners over SSH", "act"),
    "silence": ("minectl_py.rules.silence_cli", "pause rule actions for a selector", "act"),
    # running the site
    "poll": ("minectl_py.poller.cli", "poll miners for stats (service or --once)", "run"),
    "rules": ("minectl_py.rules.cli", "check or run the site watchdog rules", "run"),
    "state": ("minectl_py.state.cli", "inspect or rebuild the per-miner state directory", "run"),
    "inventory": ("minectl_py.inventory.cli", "validate the site CSV, write dnsmasq reservations", "run"),
    "events": ("minectl_py.events.cli", "read, count, follow, index and rotate the event log", "run"),
    "reduce": (
        "minectl_py.reduce.cli",
        "replay events into views (SQLite, MariaDB, InfluxDB, tables)",
        "run",
    ),
    "sim": ("minectl_py.sim.cli", "run a simulated fleet of miners", "run"),
}

GROUPS = {"see": "Seeing the site", "act": "Acting on miners", "run": "Running the site"}


def usage() -> str:
    lines = [
        "usage: minectl COMMAND [options]   (minectl COMMAND --help for each command)",
        "",
        "minectl runs a Bitcoin mining site: miners, their state and the site event log.",
    ]
    for g, title in GROUPS.items():
        lines += ["", f"{title}:"]
        for name, (_, text, grp) in COMMANDS.items():
            if grp == g:
                lines.append(f"  {name:<10} {text}")
    lines += [
        "",
        "Environment: MINECTL_EVENTS (live event log), MINECTL_STATE_DIR (state directory),",
        "MINECTL_CONFIG_DIR (site config). Exit codes: 0 ok, 1 some failed, 2 usage/input error,",
        "3 nothing matched, 4 permission denied, 130 interrupted.",
        "",
        "Examples:",
        "  minectl summary                      the site at a glance",
        "  minectl status --rack R12 --sort temp",
        "  minectl reboot --where 'hashrate_pct<50' --dry-run",
        "  minectl events cat --since 1h --type lease",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return EXIT_OK if argv else EXIT_USAGE
    if argv[0] == "--version":
        from minectl_py import __version__

        print(f"minectl {__version__}")
        return EXIT_OK
    cmd, rest = argv[0], argv[1:]
    entry = COMMANDS.get(cmd)
    if entry is None:
        print(f"minectl: unknown command {cmd!r}\n\n{usage()}", file=sys.stderr)
        return EXIT_USAGE
    try:
        mod = importlib.import_module(entry[0])
    except ModuleNotFoundError as e:
        if e.name and entry[0].startswith(e.name):
            print(f"minectl: command {cmd!r} is not available in this build", file=sys.stderr)
            return EXIT_USAGE
        raise
    try:
        return int(mod.main(rest, prog=f"minectl {cmd}", command=cmd) or 0)
    except KeyboardInterrupt:
        print("minectl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `minectl events cat | head`: the reader went away; not an error.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
