"""``minectl map``: the racks as a grid, coloured by hashrate percent or temperature."""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter

from minectl_py.admin import common, render
from minectl_py.admin.grid import CELL, Rack, build
from minectl_py.admin.select import add_arguments

EPILOG = """\
One block per rack: a row per shelf (S1 at the top), a column per position. Each cell shows
the miner's hashrate in percent of nominal (--by pct, the default) or its hottest
temperature in °C (--by temp), coloured green / yellow / red on a terminal.
  --  offline     !!  polls failing     ..  leased, never polled     ?  no value     x2  two miners, one slot
An empty slot is blank. Racks, shelves and positions come from the site inventory.

Examples:
  minectl map
  minectl map --by temp --rack 'R1*'
  minectl map --json
"""


def render_rack(rack: Rack, colour: bool) -> list[str]:
    label_w = max(3, *(len(render.safe(s, 4)) + 1 for s in rack.shelves))
    head = " " * label_w + "".join(render.safe(p, CELL - 1).rjust(CELL - 1) + " " for p in rack.positions)
    title = render.safe(rack.name, 24)
    lines = [render.paint(title, "head", colour), render.paint(head.rstrip(), "dim", colour)]
    for s in rack.shelves:
        parts = [("S" + render.safe(s, 4)).ljust(label_w)]
        for p in rack.positions:
            c = rack.cells.get((s, p))
            if c is None:
                parts.append(" " * CELL)
                continue
            txt = c.text.rjust(CELL - 1)
            parts.append(render.paint(txt, c.level if c.level != "none" else None, colour) + " ")
        lines.append("".join(parts).rstrip() if not colour else "".join(parts))
    return lines


def block_width(rack: Rack) -> int:
    label_w = max(3, *(len(render.safe(s, 4)) + 1 for s in rack.shelves))
    return max(label_w + CELL * len(rack.positions), len(render.safe(rack.name, 24)))


def layout(racks: list[Rack], colour: bool, columns: int) -> str:
    """Racks side by side as far as the terminal is wide."""
    out: list[str] = []
    row: list[tuple[list[str], int]] = []
    used = 0
    gap = 3

    def flush() -> None:
        if not row:
            return
        height = max(len(b) for b, _ in row)
        for i in range(height):
            line = ""
            for b, w in row:
                piece = b[i] if i < len(b) else ""
                line += piece + " " * max(0, w - render.width(_strip(piece))) + " " * gap
            out.append(line.rstrip())
        out.append("")
        row.clear()

    for r in racks:
        w = block_width(r)
        if row and used + w + gap > columns:
            flush()
            used = 0
        row.append((render_rack(r, colour), w))
        used += w + gap
    flush()
    return "\n".join(out).rstrip("\n")


def _strip(s: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", s)


def main(argv: list[str], prog: str = "minectl map", command: str = "map") -> int:
    p = common.parser(prog, "The racks as a grid, coloured by hashrate percent or temperature.", EPILOG)
    add_arguments(p)
    p.add_argument("--by", choices=("pct", "temp"), default="pct", help="what the cells show (default pct)")
    p.add_argument("--json", action="store_true", help="the grid as JSON: racks, shelves, positions, cells")
    common.add_colour(p)
    a = p.parse_args(argv)

    def body() -> int:
        miners, sel = common.load_selected(a, prog)
        if not miners:
            print(f"{prog}: no miner matches" if not sel.empty else f"{prog}: no miners known yet", file=sys.stderr)
            return common.EXIT_NOMATCH if not sel.empty else common.EXIT_OK
        racks, unplaced = build(miners, a.by)
        if a.json:
            doc = {
                "by": a.by,
                "unplaced": unplaced,
                "racks": [
                    {
                        "rack": r.name,
                        "shelves": r.shelves,
                        "positions": r.positions,
                        "cells": [
                            {"shelf": s, "position": q, "text": c.text, "level": c.level}
                            for (s, q), c in sorted(r.cells.items())
                        ],
                    }
                    for r in racks
                ],
            }
            json.dump(doc, sys.stdout, ensure_ascii=True, indent=1)
            sys.stdout.write("\n")
            return common.EXIT_OK
        colour = render.use_colour(sys.stdout, a.color)
        cols = shutil.get_terminal_size((120, 40)).columns
        sys.stdout.write(layout(racks, colour, cols) + "\n")
        lv = Counter(c.level for r in racks for c in r.cells.values())
        what = "hashrate % of nominal" if a.by == "pct" else "hottest °C"
        levels = ("ok", "warn", "bad", "offline", "new")
        legend = "  ".join(render.paint(f"{k} {lv[k]}", k, colour) for k in levels if lv[k])
        sys.stdout.write(f"cells: {what}; {legend}\n")
        if unplaced:
            sys.stdout.write(
                f"{unplaced} miners have no rack/shelf/position in the inventory (minectl status --where 'rack!~*')\n"
            )
        return common.EXIT_OK

    return common.run(prog, body)
