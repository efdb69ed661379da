"""Printing one view as it is computed: a table for people, CSV, or a JSON text sequence.

Rows stream out as minutes close (nothing is held back), so ``zcat ... | minectl reduce
hashrate`` prints as it goes. Times print as UTC (``2018-07-04 07:00``); JSON keeps them as
epoch seconds (``ts``) or milliseconds (``ts_ms``).
"""

from __future__ import annotations

import csv
import json
import sys
import time
from typing import Any, TextIO

from minectl_py.reduce.views import View

FORMATS = ("table", "csv", "json")


def fmt_time(kind: str, v: Any) -> str:
    if v is None:
        return ""
    if kind == "ts":
        return time.strftime("%Y-%m-%d %H:%M", time.gmtime(v))
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(v // 1000)) + f".{v % 1000:03d}"


def _cell(kind: str, v: Any) -> str:
    if v is None:
        return "-"
    if kind in ("ts", "tsms"):
        return fmt_time(kind, v)
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


class StdoutSink:
    name = "stdout"

    def __init__(self, view: str, period: int | None = 60, fmt: str = "table", out: TextIO | None = None) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        self.view_name = view
        self.period = period
        self.fmt = fmt
        self.out = out or sys.stdout
        self.header = False
        self.count = 0
        self._csv = csv.writer(self.out, lineterminator="\n") if fmt == "csv" else None
        self.widths: list[int] = []

    def write(self, view: View, rows: list[tuple[Any, ...]]) -> None:
        if view.name != self.view_name:
            return
        if view.periodic and self.period is not None:
            rows = [r for r in rows if r[0] == self.period]
            if not rows:
                return
        cols = view.cols[1:] if view.periodic else view.cols  # the period is implied
        skip = 1 if view.periodic else 0
        if self.fmt == "json":
            w = self.out.write
            for r in rows:
                d = {c.name: v for c, v in zip(view.cols, r, strict=True)}
                w("\x1e" + json.dumps(d, separators=(",", ":"), ensure_ascii=False) + "\n")
        elif self._csv is not None:
            if not self.header:
                self._csv.writerow([c.name for c in cols])
                self.header = True
            for r in rows:
                self._csv.writerow(["" if v is None else v for v in r[skip:]])
        else:
            if not self.header:
                self.widths = [max(len(c.name), 16 if c.kind == "ts" else 23 if c.kind == "tsms" else 8) for c in cols]
                self._line([c.name for c in cols])
                self.header = True
            for r in rows:
                self._line([_cell(c.kind, v) for c, v in zip(cols, r[skip:], strict=True)])
        self.count += len(rows)

    def _line(self, cells: list[str]) -> None:
        parts = []
        for i, c in enumerate(cells):
            if i < len(self.widths):
                w = self.widths[i]
                parts.append(c.ljust(w) if i == 0 or not _numeric(c) else c.rjust(w))
            else:
                parts.append(c)
        self.out.write("  ".join(parts).rstrip() + "\n")

    def flush(self) -> None:
        self.out.flush()

    def close(self) -> None:
        self.flush()


def _numeric(s: str) -> bool:
    return s.replace(".", "", 1).replace("-", "", 1).isdigit()
