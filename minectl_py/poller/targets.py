"""What to poll: ``--targets`` (IPs, ranges, CIDRs) or the state directory's miners."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

MAX_TARGETS = 65536


class TargetError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Target:
    ip: str
    mac: str | None = None


def parse_targets(specs: list[str]) -> list[Target]:
    """``10.0.0.5``, ``10.0.0.1-10.0.0.50``, ``10.0.0.1-50``, ``10.0.0.0/24`` (hosts only),
    comma-separated or as separate arguments. Duplicates are dropped, order kept."""
    seen: dict[str, None] = {}
    for spec in specs:
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            for ip in _expand(part):
                seen[ip] = None
                if len(seen) > MAX_TARGETS:
                    raise TargetError(f"more than {MAX_TARGETS} targets (at {part!r})")
    return [Target(ip) for ip in seen]


def _expand(part: str) -> list[str]:
    try:
        if "/" in part:
            net = ipaddress.IPv4Network(part, strict=False)
            if net.num_addresses > MAX_TARGETS:
                raise TargetError(f"target {part!r}: network too large (max {MAX_TARGETS} addresses)")
            hosts = list(net.hosts()) if net.prefixlen < 31 else list(net)
            return [str(h) for h in hosts]
        if "-" in part:
            a, _, b = part.partition("-")
            lo = ipaddress.IPv4Address(a.strip())
            b = b.strip()
            if "." not in b:  # 10.0.0.1-50
                b = a.strip().rsplit(".", 1)[0] + "." + b
            hi = ipaddress.IPv4Address(b)
            if int(hi) < int(lo):
                raise TargetError(f"target {part!r}: range end before its start")
            if int(hi) - int(lo) >= MAX_TARGETS:
                raise TargetError(f"target {part!r}: range too large (max {MAX_TARGETS} addresses)")
            return [str(ipaddress.IPv4Address(i)) for i in range(int(lo), int(hi) + 1)]
        return [str(ipaddress.IPv4Address(part))]
    except ValueError as e:
        if isinstance(e, TargetError):
            raise
        raise TargetError(f"target {part!r}: not an IPv4 address, range or CIDR ({e})") from None


#: states whose miners are polled (not offline: lease released; not expected: never seen)
POLLED_STATES = frozenset({"new", "online", "failing", None})


def from_state_dir(state_dir: str) -> list[Target]:
    """Every miner of the state directory with an address and an active lease."""
    try:
        from minectl_py.state import read  # the state projection (docs/state.md)
    except ImportError:
        return _scan_ip_files(state_dir)
    out = []
    for vals in read.load_all(state_dir):
        ip = vals.get("ip")
        if isinstance(ip, str) and ip and vals.get("state") in POLLED_STATES:
            out.append(Target(ip, vals.get("mac")))
    return out


def _scan_ip_files(state_dir: str) -> list[Target]:
    """Fallback reader of ``miners/<mac>/ip`` and ``state`` (docs/state.md)."""
    root = os.path.join(state_dir, "miners")
    out: list[Target] = []
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:
        return out
    for e in entries:
        if e.name.startswith("."):  # writers' scratch folders (docs/state.md)
            continue
        try:
            with open(os.path.join(e.path, "ip"), encoding="ascii") as f:
                ip = str(ipaddress.IPv4Address(f.read().strip()))
        except (OSError, ValueError):
            continue
        try:
            with open(os.path.join(e.path, "state"), encoding="ascii") as f:
                state: str | None = f.read().strip()
        except (OSError, ValueError):
            state = None
        if state in POLLED_STATES:
            out.append(Target(ip, e.name.lower()))
    return out
