"""``minectl summary``: the site on one screen, from the state directory."""

from __future__ import annotations

import json
import sys

from minectl_py.admin import common, health, render
from minectl_py.admin.select import add_arguments
from minectl_py.admin.summary import summarize

EPILOG = """\
Reads the state directory only: no miner is contacted. The selectors narrow the totals
(e.g. one rack).

Hashrate % is the online miners' hashrate against the nominal of every known miner (the
site's capacity); "of online" compares against the nominal of the miners that are hashing.

Examples:
  minectl summary
  minectl summary --rack 'R1*'
  minectl summary --json | jq .hashrate_pct
"""


def main(argv: list[str], prog: str = "minectl summary", command: str = "summary") -> int:
    p = common.parser(prog, "Site totals on one screen.", EPILOG)
    add_arguments(p)
    p.add_argument("--top", type=int, default=5, metavar="N", help="how many racks and miners to list (default 5)")
    p.add_argument("--json", action="store_true", help="the totals as one JSON object")
    common.add_colour(p)
    a = p.parse_args(argv)

    def body() -> int:
        miners, sel = common.load_selected(a, prog)
        if not miners and not sel.empty:
            print(f"{prog}: no miner matches", file=sys.stderr)
            return common.EXIT_NOMATCH
        s = summarize(miners, top=max(1, a.top))
        if a.json:
            json.dump(s, sys.stdout, ensure_ascii=True, indent=1)
            sys.stdout.write("\n")
            return common.EXIT_OK
        sys.stdout.write(text(s, render.use_colour(sys.stdout, a.color)) + "\n")
        return common.EXIT_OK

    return common.run(prog, body)


def text(s: dict, colour: bool) -> str:
    P = render.paint
    lines = []
    pct = "-" if s["hashrate_pct"] is None else f"{s['hashrate_pct']:.1f}%"
    pct_on = "-" if s["hashrate_pct_online"] is None else f"{s['hashrate_pct_online']:.1f}%"
    lines.append(P(f"Site: {s['miners']} miners on {s['racks']} racks", "head", colour))
    lines.append(
        f"Hashrate: {s['hashrate_ths']:.2f} TH/s of {s['nominal_ths']:.2f} TH/s nominal = {pct} ({pct_on} of online)"
    )
    st = s["states"]
    lines.append(
        "State:    "
        + "  ".join(
            P(f"{k} {st[k]}", {"online": "ok", "failing": "bad", "offline": "offline", "new": "new"}[k], colour)
            for k in ("online", "failing", "offline", "new")
        )
    )
    h = s["health"]
    lines.append("Health:   " + "  ".join(P(f"{k} {h[k]}", k, colour) for k in ("ok", "warn", "bad", "offline", "new")))
    models = ", ".join(f"{render.safe(k, 30)} {v}" for k, v in list(s["models"].items())[:6])
    lines.append(f"Models:   {models}")
    if s["hottest_racks"]:
        lines += ["", P("Hottest racks", "head", colour)]
        rows = [
            [
                render.safe(r["rack"], 16),
                str(r["miners"]),
                render.num(r["temp_avg"], 1),
                render.num(r["temp_max"], 0),
                render.num(r["hashrate_pct"], 1),
                str(r["problems"]),
            ]
            for r in s["hottest_racks"]
        ]
        cols = [_temp_colour(r["temp_max"]) for r in s["hottest_racks"]]
        lines.append(
            render.table(
                ["RACK", "MINERS", "TEMP AVG", "TEMP MAX", "HASH %", "PROBLEMS"],
                rows,
                right=[False, True, True, True, True, True],
                colours=cols,
                colour=colour,
            )
        )
    if s["worst_miners"]:
        lines += ["", P("Lowest hashrate (online)", "head", colour)]
        rows = [
            [
                render.safe(m["name"], 24),
                render.safe(m["location"] or "-", 14),
                render.safe(m["ip"] or "-"),
                render.num(m["hashrate_pct"], 0),
                render.num(m["temp_max"], 0),
            ]
            for m in s["worst_miners"]
        ]
        lines.append(
            render.table(
                ["NAME", "LOC", "IP", "%", "TEMP"],
                rows,
                right=[False, False, False, True, True],
                colours=[m["health"] for m in s["worst_miners"]],
                colour=colour,
            )
        )
    if s["unreachable"]:
        more = st["failing"] + st["offline"] - len(s["unreachable"])
        tail = f" (+{more} more: minectl status --state failing --state offline)" if more > 0 else ""
        lines += ["", "Not answering: " + ", ".join(render.safe(n, 24) for n in s["unreachable"]) + tail]
    return "\n".join(lines)


def _temp_colour(t: float | None) -> str | None:
    if t is None:
        return None
    th = health.DEFAULT
    return "bad" if t >= th.temp_bad else "warn" if t >= th.temp_warn else None
