"""A fleet description: from a YAML file and/or flags, validated, deterministic for a seed.

Bad input raises :class:`SpecError` naming the file, the miner entry and the field.
See docs/simulator.md for the file format.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field
from typing import Any

from minectl_py.sim.profiles import FAULTS, PROFILES, profile

#: default share of each personality in a `--miners N` fleet (weights)
DEFAULT_MIX = {"s19": 50, "s9": 20, "btminer": 15, "bosminer": 10, "cgminer": 5}


class SpecError(ValueError):
    pass


@dataclass
class MinerSpec:
    ip: str
    personality: str
    mac: str = ""
    hostname: str = ""
    faults: dict[str, dict[str, Any]] = field(default_factory=dict)
    pools: list[dict[str, str]] | None = None
    write_access: bool | None = None
    web_password: str | None = None
    ssh_password: str | None = None


@dataclass
class FleetSpec:
    miners: list[MinerSpec]
    seed: int = 1
    api_port: int = 4028
    http_port: int | None = 80
    ssh_port: int | None = 22
    reboot_seconds: float = 10.0
    restart_seconds: float = 3.0
    identify_seconds: float = 30.0
    control: str | None = None  # unix socket path of the control API


def parse_faults(raw: Any, where: str) -> dict[str, dict[str, Any]]:
    """``[hot, {slow: {delay: 2}}]`` or ``{hot: {}, slow: {delay: 2}}`` or ``"hot,slow"``."""
    out: dict[str, dict[str, Any]] = {}
    items: list[Any]
    if raw is None:
        return out
    if isinstance(raw, str):
        items = [s.strip() for s in raw.split(",") if s.strip()]
    elif isinstance(raw, dict):
        items = [{k: v} for k, v in raw.items()]
    elif isinstance(raw, list):
        items = raw
    else:
        raise SpecError(f"{where}: faults must be a list, a mapping or a comma-separated string")
    for it in items:
        if isinstance(it, str):
            name, params = it, {}
        elif isinstance(it, dict) and len(it) == 1:
            name, params = next(iter(it.items()))
            params = params or {}
            if not isinstance(params, dict):
                raise SpecError(f"{where}: fault {name!r} parameters must be a mapping")
        else:
            raise SpecError(f"{where}: bad fault entry {it!r:.60}")
        if name not in FAULTS:
            raise SpecError(f"{where}: unknown fault {name!r:.40}; known: {', '.join(sorted(FAULTS))}")
        out[name] = dict(params)
    return out


def parse_mix(text: str) -> dict[str, int]:
    """``s19=6,s9=2`` or ``s19`` -> weights."""
    mix: dict[str, int] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, w = part.partition("=")
        key = profile(name).key
        try:
            mix[key] = int(w) if w else 1
        except ValueError:
            raise SpecError(f"--mix: weight of {name!r} must be an integer, got {w!r}") from None
        if mix[key] < 0:
            raise SpecError(f"--mix: weight of {name!r} must not be negative")
    if not mix or not sum(mix.values()):
        raise SpecError("--mix: no personality with a positive weight")
    return mix


def addresses(base: str, n: int, where: str = "base_ip") -> list[str]:
    """``n`` IPv4 addresses from ``base`` upwards, skipping ``.0`` and ``.255``."""
    try:
        ip = ipaddress.IPv4Address(base)
    except ValueError:
        raise SpecError(f"{where}: not an IPv4 address: {base!r:.60}") from None
    out: list[str] = []
    cur = int(ip)
    while len(out) < n:
        if cur > 0xFFFFFFFF:
            raise SpecError(f"{where}: {n} addresses from {base} run past 255.255.255.255")
        if cur & 0xFF not in (0, 255):
            out.append(str(ipaddress.IPv4Address(cur)))
        cur += 1
    return out


def _mac(seed: int, index: int) -> str:
    b = [0x02, 0x4D, seed & 0xFF, (index >> 16) & 0xFF, (index >> 8) & 0xFF, index & 0xFF]
    return ":".join(f"{x:02x}" for x in b)


def finish(spec: FleetSpec, source: str = "") -> FleetSpec:
    """Fill MACs and hostnames deterministically; check for duplicates."""
    seen: dict[str, int] = {}
    where = f"{source}: " if source else ""
    for i, m in enumerate(spec.miners):
        if m.ip in seen:
            raise SpecError(f"{where}miners[{i}]: ip {m.ip} already used by miners[{seen[m.ip]}]")
        seen[m.ip] = i
        if not m.mac:
            m.mac = _mac(spec.seed, i)
        if not m.hostname:
            m.hostname = f"{m.personality}-{i + 1:05d}"
    return spec


def from_flags(n: int, base_ip: str, seed: int = 1, mix: dict[str, int] | None = None) -> list[MinerSpec]:
    """``n`` miners from ``base_ip``, personalities drawn with the mix's weights (seeded)."""
    if n < 0:
        raise SpecError("--miners must not be negative")
    mix = mix or DEFAULT_MIX
    rng = random.Random(seed)
    keys = list(mix)
    weights = [mix[k] for k in keys]
    return [MinerSpec(ip=ip, personality=rng.choices(keys, weights)[0]) for ip in addresses(base_ip, n)]


def _int(v: Any, where: str, lo: int = 0, hi: int = 65535) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise SpecError(f"{where}: expected an integer in {lo}..{hi}, got {v!r:.40}")
    return v


def from_yaml_text(text: str, source: str = "fleet file") -> FleetSpec:
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SpecError(f"{source}: not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise SpecError(f"{source}: expected a mapping at the top (seed, base_ip, miners...)")
    known = {"seed", "base_ip", "ports", "reboot_seconds", "restart_seconds", "identify_seconds", "miners", "control"}
    for k in doc:
        if k not in known:
            raise SpecError(f"{source}: unknown key {k!r:.40}; known: {', '.join(sorted(known))}")
    seed = _int(doc.get("seed", 1), f"{source}: seed", 0, 2**31)
    spec = FleetSpec(miners=[], seed=seed)
    ports = doc.get("ports") or {}
    if not isinstance(ports, dict):
        raise SpecError(f"{source}: ports must be a mapping (api, http, ssh)")
    for k, v in ports.items():
        if k not in ("api", "http", "ssh"):
            raise SpecError(f"{source}: ports.{k}: unknown port; known: api, http, ssh")
        val = None if v in (None, False, "off") else _int(v, f"{source}: ports.{k}", 1)
        if k == "api":
            if val is None:
                raise SpecError(f"{source}: ports.api cannot be off")
            spec.api_port = val
        else:
            setattr(spec, f"{k}_port", val)
    for k in ("reboot_seconds", "restart_seconds", "identify_seconds"):
        if k in doc:
            v = doc[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise SpecError(f"{source}: {k} must be a non-negative number")
            setattr(spec, k, float(v))
    if doc.get("control") is not None:
        spec.control = str(doc["control"])
    cursor = str(doc.get("base_ip", "127.20.0.1"))
    entries = doc.get("miners") or []
    if not isinstance(entries, list):
        raise SpecError(f"{source}: miners must be a list")
    for i, e in enumerate(entries):
        where = f"{source}: miners[{i}]"
        if not isinstance(e, dict):
            raise SpecError(f"{where}: expected a mapping")
        allowed = {"count", "ip", "personality", "faults", "pools", "write_access"}
        allowed |= {"web_password", "ssh_password", "hostname", "mac", "mix"}
        for k in e:
            if k not in allowed:
                raise SpecError(f"{where}: unknown key {k!r:.40}; known: {', '.join(sorted(allowed))}")
        count = _int(e.get("count", 1), f"{where}.count", 1, 1_000_000)
        if "ip" in e:
            cursor = str(e["ip"])
        ips = addresses(cursor, count + 1, f"{where}.ip")
        cursor = ips[-1]
        pers = e.get("personality")
        mix = parse_mix(str(e["mix"])) if "mix" in e else None
        if pers is None and mix is None:
            raise SpecError(f"{where}: needs personality (one of {', '.join(PROFILES)}) or mix")
        try:
            key = profile(str(pers)).key if pers is not None else None
        except ValueError as err:
            raise SpecError(f"{where}.personality: {err}") from None
        faults = parse_faults(e.get("faults"), f"{where}.faults")
        pools = e.get("pools")
        if pools is not None and (
            not isinstance(pools, list) or not all(isinstance(p, dict) and "url" in p for p in pools)
        ):
            raise SpecError(f"{where}.pools: expected a list of {{url, user, password}}")
        if "write_access" in e and not isinstance(e["write_access"], bool):
            raise SpecError(f"{where}.write_access: expected true or false")
        rng = random.Random(seed * 1000003 + i)
        for j, ip in enumerate(ips[:-1]):
            k = key or rng.choices(list(mix or {}), list((mix or {}).values()))[0]
            spec.miners.append(
                MinerSpec(
                    ip=ip,
                    personality=k,
                    faults={n: dict(p) for n, p in faults.items()},
                    pools=[{str(a): str(b) for a, b in p.items()} for p in pools] if pools else None,
                    write_access=e.get("write_access"),
                    web_password=e.get("web_password"),
                    ssh_password=e.get("ssh_password"),
                    hostname=str(e["hostname"]) if "hostname" in e and count == 1 else "",
                    mac=str(e["mac"]).lower() if "mac" in e and count == 1 and j == 0 else "",
                )
            )
    return finish(spec, source)


def load(path: str) -> FleetSpec:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise SpecError(f"{path}: cannot read: {e.strerror}") from None
    return from_yaml_text(text, path)


EXAMPLE = """\
# minectl sim fleet file (docs/simulator.md)
seed: 7
base_ip: 127.20.0.1          # miners get consecutive addresses (skipping .0 and .255)
ports: {api: 4028, http: 80, ssh: 22}   # http/ssh: a port number or off
reboot_seconds: 10           # how long a rebooting miner stays dark
miners:
  - count: 20
    personality: s19         # cgminer | s9 | s19 | btminer | bosminer
  - count: 10
    mix: s9=2,cgminer=1      # drawn with these weights
  - personality: bosminer
    ip: 127.20.1.1           # explicit address; later entries continue from here
    faults: [hot, {slow: {delay: 4}}]
  - personality: s19
    write_access: true       # api-allow W:0/0 (stock denies privileged commands)
    pools:
      - {url: "stratum+tcp://pool.example.com:3333", user: "site.worker1", password: "x"}
"""
