"""Selectors shared by every command: which miners a command line means.

Positional targets (any of them may match; ``all`` matches everything):

* an IPv4 address ``10.1.12.7``, a range ``10.1.12.10-10.1.12.50`` or ``10.1.12.10-50``,
  a CIDR ``10.1.12.0/24``;
* a MAC ``aa:bb:cc:dd:ee:ff``;
* ``rack:R12`` (glob allowed: ``rack:R1*``);
* otherwise a name or glob (``r12-*``), matched against the inventory name and the hostname,
  case-insensitive.

Options narrow the result (all must hold): ``--rack`` (glob, repeatable), ``--state``,
``--health``, ``--model`` (glob), ``--where`` (see :mod:`where`, repeatable, all must hold).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from minectl_py.admin.fields import ALIASES, FIELDS
from minectl_py.admin.where import compile_where

Miner = Mapping[str, Any]
Match = Callable[[Miner], bool]

_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_IP = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


class SelectorError(ValueError):
    """A selector that does not parse; the message names it."""


@dataclass(slots=True)
class Target:
    text: str
    match: Match
    hits: int = 0


@dataclass(slots=True)
class Selection:
    targets: list[Target] = field(default_factory=list)
    filters: list[Match] = field(default_factory=list)
    describe: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when nothing was asked for (no target, no filter)."""
        return not self.targets and not self.filters

    def __call__(self, m: Miner) -> bool:
        if self.targets:
            hit = False
            for t in self.targets:
                if t.match(m):
                    t.hits += 1
                    hit = True
            if not hit:
                return False
        return all(f(m) for f in self.filters)

    def apply(self, miners: Iterable[Miner]) -> list[Miner]:
        for t in self.targets:
            t.hits = 0
        return [m for m in miners if self(m)]

    def unmatched(self) -> list[str]:
        return [t.text for t in self.targets if t.hits == 0]


def _ip(text: str) -> int:
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        raise SelectorError(f"{text!r} is not an IPv4 address") from None


def _ip_of(m: Miner) -> int | None:
    ip = m.get("ip")
    if not ip:
        return None
    try:
        return int(ipaddress.IPv4Address(ip))
    except ValueError:
        return None


def _between(lo: int, hi: int) -> Match:
    def match(m: Miner) -> bool:
        v = _ip_of(m)
        return v is not None and lo <= v <= hi

    return match


def parse_target(text: str) -> Match:
    t = text.strip()
    if not t:
        raise SelectorError("empty selector")
    if t.lower() == "all":
        return lambda m: True
    if "/" in t and _IP.match(t.split("/", 1)[0]):
        try:
            net = ipaddress.IPv4Network(t, strict=False)
        except ValueError as e:
            raise SelectorError(f"bad CIDR {text!r}: {e}") from None
        return _between(int(net.network_address), int(net.broadcast_address))
    if "-" in t and _IP.match(t.split("-", 1)[0]):
        a, b = t.split("-", 1)
        lo = _ip(a)
        if _IP.match(b):
            hi = _ip(b)
        elif b.isdigit() and int(b) <= 255:
            hi = (lo & ~0xFF) | int(b)
        else:
            raise SelectorError(f"bad IP range {text!r}: use 10.1.2.10-10.1.2.50 or 10.1.2.10-50")
        if hi < lo:
            raise SelectorError(f"bad IP range {text!r}: the end is before the start")
        return _between(lo, hi)
    if _IP.match(t):
        v = _ip(t)
        return _between(v, v)
    if _MAC.match(t):
        mac = t.lower()
        return lambda m: m.get("mac") == mac
    if t.lower().startswith("rack:"):
        return _glob_field("rack", t[5:])
    pat = re.compile(fnmatch.translate(t.lower()))
    return lambda m: any(bool(v) and bool(pat.match(str(v).lower())) for v in (m.get("name"), m.get("hostname")))


def _glob_field(name: str, pattern: str) -> Match:
    if not pattern:
        raise SelectorError(f"empty {name} pattern")
    pat = re.compile(fnmatch.translate(pattern.lower()))
    return lambda m: (v := m.get(name)) is not None and bool(pat.match(str(v).lower()))


def _one_of(name: str, values: Sequence[str], allowed: Sequence[str] | None = None) -> Match:
    want = set()
    for v in values:
        for part in v.split(","):
            p = part.strip().lower()
            if not p:
                continue
            if allowed is not None and p not in allowed:
                raise SelectorError(f"--{name} {part!r}: one of {', '.join(allowed)}")
            want.add(p)
    return lambda m: str(m.get(name) or "").lower() in want


def build(
    targets: Sequence[str] = (),
    *,
    racks: Sequence[str] = (),
    states: Sequence[str] = (),
    healths: Sequence[str] = (),
    models: Sequence[str] = (),
    wheres: Sequence[str] = (),
) -> Selection:
    """A :class:`Selection` from command-line values; raises :class:`SelectorError` or
    :class:`minectl_py.admin.where.WhereError` (both ``ValueError``) on bad input."""
    sel = Selection()
    for t in targets:
        sel.targets.append(Target(t, parse_target(t)))
    if racks:
        ms = [_glob_field("rack", r) for r in racks]
        sel.filters.append(lambda m: any(f(m) for f in ms))
    if states:
        sel.filters.append(_one_of("state", states, ("expected", "new", "online", "failing", "offline")))
    if healths:
        sel.filters.append(_one_of("health", healths, ("ok", "new", "warn", "bad", "offline")))
    if models:
        ms2 = [_glob_field("model", x) for x in models]
        sel.filters.append(lambda m: any(f(m) for f in ms2))
    for w in wheres:
        sel.filters.append(compile_where(w, FIELDS, ALIASES))
    sel.describe = [*targets, *(f"--rack {r}" for r in racks), *(f"--where {w!r}" for w in wheres)]
    return sel


TARGETS_HELP = "miners: names, globs, IPs, ranges, CIDRs, MACs, rack:R12, all"


def add_arguments(p: Any, *, targets_help: str = TARGETS_HELP) -> None:
    """The selector options every command shares (argparse)."""
    p.add_argument("targets", nargs="*", metavar="TARGET", help=targets_help)
    g = p.add_argument_group("selecting miners")
    g.add_argument("--rack", action="append", default=[], metavar="RACK", help="only these racks (glob, repeatable)")
    g.add_argument(
        "--state",
        action="append",
        default=[],
        metavar="STATE",
        help="expected, new, online, failing, offline (repeatable)",
    )
    g.add_argument("--health", action="append", default=[], metavar="H", help="ok, new, warn, bad, offline")
    g.add_argument("--model", action="append", default=[], metavar="GLOB", help="only these models (glob)")
    g.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="EXPR",
        help="predicate, e.g. 'hashrate_pct<80', 'temp>=85 and state=online' (repeatable: all must hold)",
    )


def from_args(a: Any) -> Selection:
    return build(a.targets, racks=a.rack, states=a.state, healths=a.health, models=a.model, wheres=a.where)
