"""The site inventory CSV: parsing and validation (pure; no I/O but the text given).

Columns (header row required, any order, case-insensitive; a UTF-8 BOM from a spreadsheet
is fine): ``mac`` and ``name`` required, ``rack``, ``shelf``, ``position``, ``model`` and
``ip`` (a fixed address) optional. Other columns (notes...) are ignored with a warning.
Empty lines and lines starting with ``#`` are skipped.

Every problem is reported with line, column and what is wrong; nothing is applied unless
the whole file is clean.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from minectl_py.state import sanitize as san

COLUMNS = ("mac", "name", "rack", "shelf", "position", "model", "ip")
REQUIRED = ("mac", "name")
LIMITS = {"rack": 32, "shelf": 32, "position": 32, "model": 64}
_NAME_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    mac: str
    name: str
    rack: str | None = None
    shelf: str | None = None
    position: str | None = None
    model: str | None = None
    ip: str | None = None

    def fields(self) -> dict[str, str | None]:
        """The ``inventory`` event's fields for this row."""
        return {
            "mac": self.mac,
            "name": self.name,
            "rack": self.rack,
            "shelf": self.shelf,
            "position": self.position,
            "model": self.model,
        }


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    column: str  # "" for the whole line
    message: str
    col_no: int = 0

    def format(self, source: str) -> str:
        where = f"{_shown(source)}:{self.line}"
        if self.column:
            where += f": column {self.col_no} ({_shown(self.column)})"
        return f"{where}: {_shown(self.message)}"


def _shown(text: str) -> str:
    """Text from the CSV as it may reach a terminal: control, escape and bidi characters
    escaped (``\\x1b``, ``\\u202e``), the rest as is."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass(slots=True)
class Inventory:
    rows: list[Row] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def parse_mac(value: str) -> str | None:
    """``aa:bb:cc:dd:ee:ff`` from colon or dash (``AA-BB-..``), dot (``aabb.ccdd.eeff``) or
    bare (``aabbccddeeff``) forms; None for anything else."""
    s = value.strip().lower()
    for sep, n, width in ((":", 6, 2), ("-", 6, 2), (".", 3, 4)):
        if sep in s:
            parts = s.split(sep)
            if len(parts) != n or any(len(p) != width for p in parts):
                return None
            s = "".join(parts)
            break
    if len(s) != 12 or not all(c in _HEX for c in s):
        return None
    return ":".join(s[i : i + 2] for i in range(0, 12, 2))


def check_name(value: str) -> str | None:
    """The reason a name is not a valid DNS label, or None."""
    if not value:
        return "empty name"
    if len(value) > 63:
        return f"name longer than 63 characters ({len(value)})"
    bad = sorted({c for c in value.lower() if c not in _NAME_OK})
    if bad:
        shown = ", ".join(repr(c) for c in bad[:5])
        return f"name {value[:40]!r} has characters a DNS name cannot have ({shown}); use a-z, 0-9 and -"
    if value[0] == "-" or value[-1] == "-":
        return f"name {value!r} starts or ends with '-'"
    if value.isdigit():
        return f"name {value!r} is all digits"
    return None


def parse(text: str) -> Inventory:
    inv = Inventory()
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    index: dict[str, int] = {}
    seen_mac: dict[str, int] = {}
    seen_name: dict[str, int] = {}
    seen_ip: dict[str, int] = {}
    line = 0
    try:
        for cells in reader:
            start = line + 1
            line = reader.line_num
            if not cells or all(not c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = [c.strip().lower() for c in cells]
                for i, h in enumerate(header):
                    if h in index:
                        inv.errors.append(Problem(start, h, "column named twice in the header", i + 1))
                    elif h in COLUMNS:
                        index[h] = i
                    else:
                        inv.warnings.append(Problem(start, h or "(empty)", "unknown column, ignored", i + 1))
                for r in REQUIRED:
                    if r not in index:
                        inv.errors.append(Problem(start, "", f"header has no {r!r} column (need: mac,name,...)"))
                if inv.errors:
                    return inv
                continue
            row, good = _row(cells, start, header, index, inv)
            for key, seen, what in ((row.mac, seen_mac, "MAC"), (row.name, seen_name, "name"), (row.ip, seen_ip, "IP")):
                if not key:
                    continue
                if key in seen:
                    col = {"MAC": "mac", "name": "name", "IP": "ip"}[what]
                    inv.errors.append(
                        Problem(start, col, f"duplicate {what} {key} (first on line {seen[key]})", index[col] + 1)
                    )
                    good = False
                else:
                    seen[key] = start
            if good:
                inv.rows.append(row)
    except csv.Error as e:
        inv.errors.append(Problem(line + 1, "", f"not valid CSV: {e}"))
    if header is None:
        inv.errors.append(Problem(1, "", "empty file: expected a header line mac,name,rack,shelf,position,model"))
    return inv


def _row(cells: list[str], line: int, header: list[str], index: dict[str, int], inv: Inventory) -> tuple[Row, bool]:
    if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
        inv.errors.append(Problem(line, "", f"{len(cells)} cells but the header has {len(header)} columns"))
        return Row(line=line, mac="", name=""), False
    n_err = len(inv.errors)

    def cell(col: str) -> str:
        i = index.get(col)
        return cells[i].strip() if i is not None and i < len(cells) else ""

    def err(col: str, msg: str) -> None:
        inv.errors.append(Problem(line, col, msg, index[col] + 1))

    raw_mac = cell("mac")
    mac = parse_mac(raw_mac)
    if mac is None:
        err(
            "mac",
            f"bad MAC {raw_mac[:40]!r}: expected six hex bytes like aa:bb:cc:dd:ee:ff" if raw_mac else "empty MAC",
        )
    name = cell("name").lower()
    why = check_name(name)
    if why:
        err("name", why)
    vals: dict[str, str | None] = {}
    for col, limit in LIMITS.items():
        v = cell(col)
        if not v:
            vals[col] = None
            continue
        if san.text(v, limit) != v:
            err(col, f"{col} {v[:40]!r} is longer than {limit} characters or has control characters")
        vals[col] = v
    ip = None
    if cell("ip"):
        ip = san.ipv4(cell("ip"))
        if ip is None:
            err("ip", f"bad IPv4 address {cell('ip')[:40]!r}")
    # A row with errors still takes part in the duplicate checks (with what is valid in it).
    return Row(line=line, mac=mac or "", name="" if why else name, ip=ip, **vals), len(inv.errors) == n_err
