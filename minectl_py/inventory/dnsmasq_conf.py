"""The controller's dnsmasq configuration, generated (the Ansible role's template mirrors
:func:`render` line for line; ``dnsmasq --test`` accepts every config it produces).

Choices, with reasons (facts in docs/state.md and the dnsmasq man page):

* ``leasefile-ro`` + ``dhcp-script``: the event log is the lease database; the hook's
  ``init`` gives dnsmasq its leases back on restart, and renewals reach the hook as ``old``.
* ``dhcp-authoritative``: the only DHCP server of the mine LAN; a replaced controller answers
  renewals of leases it never saw instead of NAKing a whole site.
* ``no-ping``: the ping check serializes new clients (~3 s each): a site powering on at once
  would wait minutes.
* ``dhcp-lease-max``: dnsmasq's default is 1,000 leases.
* ``domain=<domain>,<subnet>,local``: names and reverse lookups of the subnet are answered
  from DHCP and never forwarded.
* ``dhcp-hostsdir``: reservations from ``minectl inventory apply``, read without a restart.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field

from minectl_py.inventory.csvfile import check_name

DNSMASQ = "/usr/sbin/dnsmasq"


class ConfError(ValueError):
    """A setting that cannot make a valid dnsmasq config; the message names it."""


@dataclass(frozen=True, slots=True)
class DnsmasqSite:
    interface: str  # the mine LAN interface
    address: str  # the controller's address on it
    subnet: str  # e.g. 10.20.0.0/16
    range_start: str
    range_end: str
    lease_time: str = "12h"
    domain: str = "mine.lan"
    controller_name: str = "controller"
    hook: str = "/usr/local/lib/minectl/lease-hook"
    hostsdir: str = "/var/lib/minectl/dhcp-hosts"
    lease_max: int = 20000
    router: str | None = None  # default gateway handed to miners (none: no route)
    upstream: list[str] = field(default_factory=list)  # DNS servers to forward to (none: no-resolv)
    listen_lo: bool = True
    log_dhcp: bool = False
    log_facility: str | None = None
    pid_file: str | None = None
    script_user: str | None = None
    user: str | None = None  # user dnsmasq runs as (Debian's unit passes -u dnsmasq)
    port: int | None = None  # DNS port (default 53)


def _ip(value: str, what: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        raise ConfError(f"{what}: {value!r} is not an IPv4 address") from None


def validate(s: DnsmasqSite) -> ipaddress.IPv4Network:
    if not s.interface or any(c in s.interface for c in " ,/\n") or len(s.interface) > 15:
        raise ConfError(f"interface: {s.interface!r} is not an interface name")
    try:
        net = ipaddress.IPv4Network(s.subnet, strict=True)
    except ValueError as e:
        raise ConfError(f"subnet: {s.subnet!r}: {e}") from None
    for what, v in (("address", s.address), ("range_start", s.range_start), ("range_end", s.range_end)):
        if _ip(v, what) not in net:
            raise ConfError(f"{what}: {v} is not in {net}")
    if s.router and _ip(s.router, "router") not in net:
        raise ConfError(f"router: {s.router} is not in {net}")
    if _ip(s.range_start, "range_start") > _ip(s.range_end, "range_end"):
        raise ConfError(f"range: {s.range_start} is after {s.range_end}")
    if _ip(s.range_start, "range_start") <= _ip(s.address, "address") <= _ip(s.range_end, "range_end"):
        raise ConfError(f"address: the controller's {s.address} is inside the DHCP range")
    for label in s.domain.split("."):
        if check_name(label):
            raise ConfError(f"domain: {s.domain!r}: {check_name(label)}")
    if check_name(s.controller_name):
        raise ConfError(f"controller_name: {check_name(s.controller_name)}")
    lt = s.lease_time
    if not (lt == "infinite" or (lt[:-1].isdigit() and lt[-1] in "smhdw") or lt.isdigit()):
        raise ConfError(f"lease_time: {lt!r} (use seconds or 45m, 12h, 2d, 1w, infinite)")
    for p in (s.hook, s.hostsdir):
        if not os.path.isabs(p) or any(c in p for c in ",\n"):
            raise ConfError(f"path {p!r} must be absolute, without commas")
    for u in s.upstream:
        _ip(u, "upstream")
    if not 1 <= s.lease_max <= 1_000_000:
        raise ConfError(f"lease_max: {s.lease_max}")
    return net


def render(s: DnsmasqSite) -> str:
    net = validate(s)
    lines = [
        "# minectl: dnsmasq for the mine LAN (generated; see minectl_py/inventory/dnsmasq_conf.py)",
        f"interface={s.interface}",
    ]
    if s.listen_lo:
        lines.append("interface=lo")
    lines += [
        "bind-interfaces",
        f"domain={s.domain},{net.with_prefixlen},local",
        f"dhcp-range={s.range_start},{s.range_end},{net.netmask},{s.lease_time}",
        f"dhcp-option=option:dns-server,{s.address}",
    ]
    if s.router:
        lines.append(f"dhcp-option=option:router,{s.router}")
    else:
        lines.append("dhcp-option=option:router")  # no default route for miners
    lines += [
        f"dhcp-lease-max={s.lease_max}",
        "dhcp-authoritative",
        "no-ping",
        "leasefile-ro",
        f"dhcp-script={s.hook}",
        f"dhcp-hostsdir={s.hostsdir}",
        f"host-record={s.controller_name}.{s.domain},{s.controller_name},{s.address}",
        "cache-size=10000",
        "dns-forward-max=1000",
    ]
    if s.script_user:
        lines.append(f"dhcp-scriptuser={s.script_user}")
    if s.upstream:
        lines += ["no-resolv"] + [f"server={u}" for u in s.upstream]
    else:
        lines.append("no-resolv")
    if s.user:
        lines.append(f"user={s.user}")
    if s.port is not None:
        lines.append(f"port={s.port}")
    if s.log_dhcp:
        lines.append("log-dhcp")
    if s.log_facility:
        lines.append(f"log-facility={s.log_facility}")
    if s.pid_file:
        lines.append(f"pid-file={s.pid_file}")
    return "\n".join(lines) + "\n"


def dnsmasq_test(conf: str, dnsmasq: str | None = None) -> tuple[bool, str]:
    """Run ``dnsmasq --test`` on a config text. Returns (ok, dnsmasq's message)."""
    exe = dnsmasq or shutil.which("dnsmasq") or DNSMASQ
    with tempfile.NamedTemporaryFile("w", suffix=".conf", prefix="minectl-dnsmasq-") as f:
        f.write(conf)
        f.flush()
        r = subprocess.run([exe, "--test", "-C", f.name], capture_output=True, text=True, timeout=30)
    return r.returncode == 0, (r.stdout + r.stderr).strip()
