"""``minectl reboot|restart|pools|locate|exec``: safe bulk actions on miners."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections import Counter
from typing import Any

from minectl_py.admin import common, perms, render
from minectl_py.admin.credentials import Credentials, CredentialsError
from minectl_py.admin.engine import Options, Progress, Result
from minectl_py.admin.fields import label
from minectl_py.admin.fleet import default_order
from minectl_py.admin.plan import READ_ONLY, family, steps
from minectl_py.admin.select import add_arguments

CONFIRM_ABOVE = 5

COMMON_EPILOG = """\
Selecting miners: names and globs ('r12-*'), IPs, ranges (10.1.12.10-50), CIDRs (10.1.12.0/24),
MACs, rack:R12, or 'all'; narrowed by --rack, --state, --health, --model and --where
('hashrate_pct<50', 'temp>=90 and state=online'). An action needs at least one of them.

Safety: --dry-run shows the miners and the transports that would be used, and touches
nothing. Acting on more than {n} miners asks for confirmation on the terminal; --yes answers
for scripts (without a terminal and without --yes, minectl refuses). Each miner's result is
appended to the site event log as an 'action' event naming you (the audit trail).

Transports follow the firmware: privileged API command (TCP 4028; Whatsminer: its token API,
signed with the admin password), Antminer HTTP digest CGI, or SSH, falling back along the
chain when the firmware refuses (e.g. stock Antminer denies API restart: minectl re-applies
the config over HTTP). Credentials come from $MINECTL_CONFIG_DIR/credentials.yml (mode 0600, owned by root or by the
service user 'minectl' that the appliance makes admins act as: 'sudo -u minectl minectl reboot
...'; e.g. 'families: whatsminer: api: {{password: ...}}'), never from the command line.

Results per miner: ok; fail (the miner said no); denied (firmware refuses the command); auth
(wrong user or password); nocred (none configured); unreachable (nothing reached the miner:
retried --retries times); timeout (sent, no answer); lost (sent, then the connection dropped:
the miner may have acted; never sent twice); unsupported; hostkey (SSH host key changed).

Needs root or group minectl-admin (exit 4 otherwise). Exit codes: 0 every miner succeeded,
1 some failed, 2 usage error or refused, 3 nothing matched, 4 permission denied.
"""

EXAMPLES = {
    "reboot": "  minectl reboot r12-s3-p4\n  minectl reboot --where 'hashrate_pct<50' --dry-run\n"
    "  minectl reboot --rack R12 --state failing --yes --concurrency 20",
    "restart": "  minectl restart 10.1.12.0/24 --where 'hashrate_pct<80'\n  minectl restart rack:R3 --dry-run",
    "locate": "  minectl locate on r12-s3-p4\n  minectl locate off --rack R12 --yes",
    "pools": "  minectl pools show rack:R1\n"
    "  minectl pools set --rack R12 --pool 'stratum+tcp://pool.example:3333,acct.{name},x'\n"
    "  minectl pools switch 1 10.1.12.7",
    "exec": "  minectl exec r12-s3-p4 -- uptime\n  minectl exec --rack R12 --yes -- cat /config/bmminer.conf",
}


def _parser(prog: str, command: str) -> argparse.ArgumentParser:
    desc = {
        "reboot": "Reboot miners.",
        "restart": "Restart the mining software on miners (not the whole miner).",
        "locate": "Turn the locate LED on or off, so a technician finds the miner.",
        "pools": "Show, set or switch the mining pools of miners.",
        "exec": "Run a command on miners over SSH (the command is yours; no miner text reaches a shell).",
    }[command]
    p = common.parser(prog, desc, COMMON_EPILOG.format(n=CONFIRM_ABOVE) + "\nExamples:\n" + EXAMPLES[command])
    if command == "locate":
        p.add_argument("state_arg", choices=("on", "off"), metavar="on|off", help="LED on or off")
    if command == "pools":
        p.add_argument("verb", choices=("show", "set", "switch"), metavar="show|set|switch")
        p.add_argument(
            "--pool",
            action="append",
            default=[],
            metavar="URL,USER[,PASS]",
            help="pools set: up to 3, in priority order; USER may use {name}, {ip}, {mac}, {rack}",
        )
    add_arguments(p)
    g = p.add_argument_group("acting")
    g.add_argument("--dry-run", "-n", action="store_true", help="show what would happen, touch nothing")
    g.add_argument("--yes", "-y", action="store_true", help=f"do not ask for confirmation above {CONFIRM_ABOVE} miners")
    g.add_argument("--concurrency", "-j", type=int, default=50, metavar="N", help="miners at a time (default 50)")
    g.add_argument("--timeout", type=float, default=10.0, metavar="S", help="per network step, seconds (default 10)")
    g.add_argument("--retries", type=int, default=1, metavar="N", help="extra tries when unreachable (default 1)")
    g.add_argument("--json", action="store_true", help="results as JSON (one object per miner)")
    common.add_colour(p)
    return p


def _split_exec(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


def parse_pools(specs: list[str]) -> list[dict[str, str]]:
    if not specs:
        raise common.Exit(common.EXIT_USAGE, "pools set needs --pool URL,USER[,PASS] (up to 3)")
    if len(specs) > 3:
        raise common.Exit(common.EXIT_USAGE, f"at most 3 pools (--pool given {len(specs)} times)")
    out = []
    for s in specs:
        parts = s.split(",")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise common.Exit(common.EXIT_USAGE, f"--pool {s!r}: expected URL,USER[,PASS]")
        url = parts[0].strip()
        if "://" not in url:
            raise common.Exit(common.EXIT_USAGE, f"--pool {s!r}: the URL needs a scheme, e.g. stratum+tcp://host:3333")
        if any(ord(c) < 0x20 for c in s):
            raise common.Exit(common.EXIT_USAGE, f"--pool {s!r}: control characters are not allowed")
        out.append({"url": url, "user": parts[1].strip(), "password": parts[2] if len(parts) == 3 else "x"})
    return out


def personalize(pools: list[dict[str, str]], m: dict[str, Any]) -> list[dict[str, str]]:
    """``{name}`` etc. in the pool user, from inventory values (sanitized names only)."""
    vals = {k: str(m.get(k) or "") for k in ("name", "ip", "mac", "rack")}
    vals["name"] = vals["name"] or str(m.get("hostname") or m.get("ip") or "")
    out = []
    for p in pools:
        user = p["user"]
        for k, v in vals.items():
            user = user.replace("{" + k + "}", "".join(c for c in v if c.isalnum() or c in "-_.:"))
        out.append({**p, "user": user})
    return out


def action_name(command: str, a: argparse.Namespace) -> str:
    if command == "locate":
        return f"locate_{a.state_arg}"
    if command == "pools":
        return f"pools_{a.verb}"
    return command


def main(argv: list[str], prog: str = "minectl reboot", command: str = "reboot") -> int:
    argv, remote = _split_exec(argv) if command == "exec" else (argv, [])
    p = _parser(prog, command)
    index = None
    if command == "pools":
        argv, index = _pools_argv(argv)
    a = p.parse_args(argv)
    a.index = index

    def body() -> int:
        return act(a, prog, command, remote)

    return common.run(prog, body)


def _pools_argv(argv: list[str]) -> tuple[list[str], int | None]:
    """``pools switch N TARGETS...``: take N out before argparse sees the targets."""
    if len(argv) >= 2 and argv[0] == "switch" and argv[1].isdigit():
        return ["switch", *argv[2:]], int(argv[1])
    return argv, None


def act(a: argparse.Namespace, prog: str, command: str, remote: list[str]) -> int:
    action = action_name(command, a)
    params: dict[str, Any] = {}
    pools: list[dict[str, str]] = []
    if command == "exec":
        if not remote:
            raise common.Exit(common.EXIT_USAGE, "exec needs a command after '--': minectl exec r1-s1-p1 -- uptime")
        params["cmd"] = shlex.join(remote) if len(remote) > 1 else remote[0]
    if action == "pools_set":
        pools = parse_pools(a.pool)
        params["pools"] = pools
    if action == "pools_switch":
        idx = a.index
        if idx is None:
            raise common.Exit(common.EXIT_USAGE, "pools switch needs the pool number: minectl pools switch 1 TARGET...")
        params["index"] = int(idx)
    if not (a.targets or a.rack or a.state or a.health or a.model or a.where):
        raise common.Exit(
            common.EXIT_USAGE, f"name the miners to act on (name, IP, range, rack:R1, --where, or 'all'): {prog} --help"
        )
    miners, _sel = common.load_selected(a, prog)
    miners.sort(key=default_order)
    if not miners:
        raise common.Exit(common.EXIT_NOMATCH, "no miner matches")
    if a.concurrency < 1 or a.timeout <= 0 or a.retries < 0:
        raise common.Exit(common.EXIT_USAGE, "--concurrency >= 1, --timeout > 0 and --retries >= 0")
    colour = render.use_colour(sys.stdout, a.color)
    if a.dry_run:
        return dry_run(miners, action, params, a.json, colour)
    perms.check_act(prog.split()[-1])
    creds = load_credentials()
    from minectl_py.admin.audit import Audit

    audit = Audit(action, _audit_params(action, params), perms.unix_user())
    audit.check_writable()
    if action not in READ_ONLY and len(miners) > CONFIRM_ABOVE and not a.yes:
        confirm(miners, action, prog)
    return run_action(miners, action, params, pools, creds, audit, a, colour)


def _audit_params(action: str, params: dict[str, Any]) -> dict[str, Any]:
    if action == "pools_set":
        return {"pools": [{"url": p["url"], "user": p["user"]} for p in params["pools"]]}  # no pool passwords
    return dict(params)


def load_credentials() -> Credentials:
    from minectl_py.admin import credentials

    try:
        return credentials.load()
    except CredentialsError as e:
        msg = str(e)
        unsafe = "refusing" in msg or "only by its owner" in msg or "belongs to" in msg
        code = common.EXIT_PERM if unsafe else common.EXIT_USAGE
        raise common.Exit(code, msg) from None


def dry_run(miners: list[dict[str, Any]], action: str, params: dict[str, Any], as_json: bool, colour: bool) -> int:
    rows = []
    docs = []
    for m in miners:
        fam = family(m)
        chain = steps(action, fam, params)
        via = " then ".join(s.label() for s in chain) or "not possible on this firmware"
        docs.append({"name": label(m), "ip": m.get("ip"), "mac": m.get("mac"), "family": fam, "via": via})
        rows.append([render.safe(label(m), 24), render.safe(m.get("ip") or "-"), fam, render.safe(via, 80)])
    if as_json:
        json.dump({"dry_run": True, "action": action, "miners": docs}, sys.stdout, ensure_ascii=True, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render.table(["NAME", "IP", "FIRMWARE", "WOULD USE"], rows, colour=colour) + "\n")
        sys.stdout.write(f"dry run: {action} would act on {len(miners)} miners; nothing was done\n")
    return common.EXIT_OK


def confirm(miners: list[dict[str, Any]], action: str, prog: str) -> None:
    racks = Counter(m.get("rack") or "-" for m in miners)
    where = ", ".join(f"{render.safe(r, 12)}: {n}" for r, n in racks.most_common(6))
    if len(racks) > 6:
        where += ", ..."
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise common.Exit(
            common.EXIT_USAGE,
            f"refusing to {action} {len(miners)} miners without confirmation: add --yes (no terminal to ask on)",
        )
    sys.stderr.write(f"{action} {len(miners)} miners ({where})? [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise common.Exit(common.EXIT_USAGE, "not confirmed; nothing was done")


def progress_line(pr: Progress, width: int = 30) -> str:
    frac = pr.done / pr.total if pr.total else 1.0
    fill = int(frac * width)
    bar = "#" * fill + "." * (width - fill)
    return f"[{bar}] {pr.done}/{pr.total}  ok {pr.ok}  failed {pr.failed}  {time.monotonic() - pr.started:.1f}s"


def run_action(
    miners: list[dict[str, Any]],
    action: str,
    params: dict[str, Any],
    pools: list[dict[str, str]],
    creds: Credentials,
    audit: Any,
    a: argparse.Namespace,
    colour: bool,
) -> int:
    from minectl_py.admin.engine import run_all

    show_bar = sys.stderr.isatty()
    last_flush = [time.monotonic()]

    def on_result(r: Result, pr: Progress) -> None:
        audit.record(r)

    def on_tick(pr: Progress) -> None:
        now = time.monotonic()
        if now - last_flush[0] > 0.5:
            audit.flush()
            last_flush[0] = now
        if show_bar:
            sys.stderr.write("\r\x1b[K" + progress_line(pr))
            sys.stderr.flush()

    opts = Options(timeout=a.timeout, retries=a.retries, concurrency=a.concurrency)
    try:
        if action == "pools_set":
            results = _run_personalized(miners, pools, creds, opts, on_result, on_tick)
        else:
            results = run_all(miners, action, params, creds, opts, on_result=on_result, on_tick=on_tick)
    finally:
        audit.close()
    if show_bar:
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()
    report(results, action, a.json, colour)
    return common.EXIT_OK if all(r.outcome.ok for r in results) else common.EXIT_PARTIAL


def _run_personalized(miners, pools, creds, opts, on_result, on_tick) -> list[Result]:  # type: ignore[no-untyped-def]
    """pools set with per-miner user names ({name} ...): each miner gets its own list."""
    from minectl_py.admin.engine import run_all

    return run_all(
        miners,
        "pools_set",
        lambda m: {"pools": personalize(pools, m)},
        creds,
        opts,
        on_result=on_result,
        on_tick=on_tick,
    )


def _pool_row(p: dict[str, Any]) -> list[str]:
    active = "*" if p["active"] else ""
    url, user = render.safe(p["url"], 60), render.safe(p["user"], 40)
    return [str(p["index"]), url, user, render.safe(p["status"], 10), active]


def report(results: list[Result], action: str, as_json: bool, colour: bool) -> None:
    out = sys.stdout
    if as_json:
        docs = []
        for r in results:
            o = r.outcome
            docs.append(
                {
                    "name": label(r.miner),
                    "ip": r.miner.get("ip"),
                    "mac": r.miner.get("mac"),
                    "result": o.result,
                    "transport": o.transport,
                    "detail": o.detail,
                    "tried": o.tried,
                    "attempts": r.attempts,
                    "elapsed_ms": r.elapsed_ms,
                    "exit_status": o.exit_status,
                    "output": o.output,
                    "pools": o.data if action == "pools_show" else None,
                }
            )
        json.dump({"action": action, "results": docs}, out, ensure_ascii=True, indent=1)
        out.write("\n")
        return
    rows = []
    cols = []
    for r in results:
        o = r.outcome
        rows.append(
            [
                render.safe(label(r.miner), 24),
                render.safe(r.miner.get("ip") or "-"),
                o.result,
                o.transport or "-",
                render.safe(o.detail or "", 90),
            ]
        )
        cols.append("ok" if o.ok else "bad")
    out.write(render.table(["NAME", "IP", "RESULT", "VIA", "DETAIL"], rows, colours=cols, colour=colour) + "\n")
    if action == "exec" or action == "pools_show":
        for r in results:
            o = r.outcome
            if action == "pools_show" and o.data:
                out.write(f"\n== {render.safe(label(r.miner), 40)} ({render.safe(r.miner.get('ip'))})\n")
                prow = [_pool_row(p) for p in o.data]
                out.write(render.table(["#", "URL", "USER", "STATUS", "ACTIVE"], prow) + "\n")
            if action == "exec" and o.output is not None:
                who = f"{render.safe(label(r.miner), 40)} ({render.safe(r.miner.get('ip'))})"
                out.write(f"\n== {who} exit {o.exit_status}\n")
                for line in o.output.splitlines()[:200]:
                    out.write(render.safe(line, 300) + "\n")
    c = Counter(r.outcome.result for r in results)
    ok = c.pop("ok", 0)
    tail = ", ".join(f"{n} {k}" for k, n in c.most_common())
    summary = f"{action}: {ok} of {len(results)} ok" + (f"; {tail}" if tail else "")
    out.write(render.paint(summary, "ok" if not c else "bad", colour) + "\n")
