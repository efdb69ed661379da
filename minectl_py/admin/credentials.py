"""Credentials and connection settings for acting on miners: ``$MINECTL_CONFIG_DIR/credentials.yml``.

The file must belong to root (or the user running minectl) and be readable by its owner
only (mode 0600 or 0400): minectl refuses a group- or world-readable file with a message
naming the fix. Credentials never come from the command line.

Format (every key optional)::

    default:                       # any miner
      ssh:  {user: root, password: root}
    families:                      # by firmware family: antminer, bosminer, whatsminer, cgminer
      antminer:
        http: {user: root, password: root}
        ssh:  {user: miner, password: miner}
      whatsminer:
        api:  {password: admin}    # the token API's admin password (no user)
    miners:                        # first matching selector wins (selectors as in minectl status)
      - select: "rack:R12"
        ssh: {user: root, key_file: /etc/minectl/ssh/id_ed25519}
    ports: {api: 4028, http: 80, ssh: 22}
    ssh_host_keys: accept-new      # accept-new (remember on first use) | strict | off
    known_hosts: /etc/minectl/ssh_known_hosts
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from minectl_py import config
from minectl_py.admin.select import Match, SelectorError, parse_target

KINDS = ("api", "http", "ssh")
FAMILIES = ("antminer", "bosminer", "whatsminer", "cgminer")
FILE_NAME = "credentials.yml"


class CredentialsError(Exception):
    """The credentials file is missing, unsafe or malformed; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Cred:
    user: str = ""
    password: str | None = None
    key_file: str | None = None

    def __repr__(self) -> str:  # never print a password
        return f"Cred(user={self.user!r}, password={'***' if self.password else None}, key_file={self.key_file!r})"


@dataclass(slots=True)
class Credentials:
    default: dict[str, Cred] = field(default_factory=dict)
    families: dict[str, dict[str, Cred]] = field(default_factory=dict)
    miners: list[tuple[Match, dict[str, Cred]]] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=lambda: {"api": 4028, "http": 80, "ssh": 22})
    ssh_host_keys: str = "accept-new"
    known_hosts: str = ""
    path: str = ""

    def for_miner(self, m: Mapping[str, Any], family: str, kind: str) -> Cred | None:
        for match, creds in self.miners:
            if kind in creds and match(m):
                return creds[kind]
        fam = self.families.get(family, {})
        if kind in fam:
            return fam[kind]
        return self.default.get(kind)


def path() -> str:
    return os.path.join(config.config_dir(), FILE_NAME)


def check_mode(p: str, st: os.stat_result, euid: int) -> None:
    """Pure check of ownership and mode; raises :class:`CredentialsError`."""
    if not stat.S_ISREG(st.st_mode):
        raise CredentialsError(f"{p} is not a regular file")
    if st.st_uid not in (0, euid):
        try:
            owner = pwd.getpwuid(st.st_uid).pw_name
        except KeyError:
            owner = f"uid {st.st_uid}"
        raise CredentialsError(
            f"{p} belongs to {owner}, not to root or you: act as its owner (sudo -u {owner} minectl ...), "
            f"or make it root's ('chown root:root {p}')"
        )
    if st.st_mode & 0o077:
        raise CredentialsError(
            f"refusing to read {p}: it is readable by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run 'chmod 600 {p}'"
        )


def _cred(where: str, v: Any) -> Cred:
    if not isinstance(v, Mapping):
        raise CredentialsError(f"{where}: expected a mapping like {{user: root, password: ...}}")
    unknown = set(v) - {"user", "password", "key_file"}
    if unknown:
        raise CredentialsError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    c = Cred(
        user=str(v.get("user") or ""),
        password=None if v.get("password") is None else str(v.get("password")),
        key_file=None if v.get("key_file") is None else str(v.get("key_file")),
    )
    return c


def _kinds(where: str, v: Any, allow: tuple[str, ...] = KINDS) -> dict[str, Cred]:
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise CredentialsError(f"{where}: expected a mapping of {', '.join(allow)}")
    out = {}
    for k, c in v.items():
        if k not in allow:
            raise CredentialsError(f"{where}: unknown key {k!r} (expected {', '.join(allow)})")
        out[k] = _cred(f"{where}.{k}", c)
    return out


def parse(doc: Any, p: str = FILE_NAME) -> Credentials:
    """A parsed YAML document -> :class:`Credentials` (pure)."""
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise CredentialsError(f"{p}: expected a mapping at the top")
    known = {"default", "families", "miners", "ports", "ssh_host_keys", "known_hosts"}
    unknown = set(doc) - known
    if unknown:
        raise CredentialsError(f"{p}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    c = Credentials(path=p)
    c.default = _kinds(f"{p}: default", doc.get("default"))
    fams = doc.get("families") or {}
    if not isinstance(fams, Mapping):
        raise CredentialsError(f"{p}: families: expected a mapping")
    for fam, v in fams.items():
        if fam not in FAMILIES:
            raise CredentialsError(f"{p}: families: unknown family {fam!r} (expected {', '.join(FAMILIES)})")
        c.families[fam] = _kinds(f"{p}: families.{fam}", v)
    miners = doc.get("miners") or []
    if not isinstance(miners, list):
        raise CredentialsError(f"{p}: miners: expected a list")
    for i, entry in enumerate(miners):
        where = f"{p}: miners[{i}]"
        if not isinstance(entry, Mapping) or "select" not in entry:
            raise CredentialsError(f"{where}: expected a mapping with 'select'")
        try:
            match = parse_target(str(entry["select"]))
        except SelectorError as e:
            raise CredentialsError(f"{where}.select: {e}") from None
        c.miners.append((match, _kinds(where, {k: v for k, v in entry.items() if k != "select"})))
    ports = doc.get("ports") or {}
    if not isinstance(ports, Mapping):
        raise CredentialsError(f"{p}: ports: expected a mapping")
    for k, v in ports.items():
        if k not in KINDS or not isinstance(v, int) or not 0 < v < 65536:
            raise CredentialsError(f"{p}: ports.{k}: expected api/http/ssh with a port number, got {v!r}")
        c.ports[k] = v
    hk = doc.get("ssh_host_keys", "accept-new")
    if hk not in ("accept-new", "strict", "off"):
        raise CredentialsError(f"{p}: ssh_host_keys: accept-new, strict or off; got {hk!r}")
    c.ssh_host_keys = hk
    c.known_hosts = str(doc.get("known_hosts") or os.path.join(os.path.dirname(p) or ".", "ssh_known_hosts"))
    return c


def load(p: str | None = None) -> Credentials:
    """Read and check the credentials file (ownership and mode first, then the YAML)."""
    import yaml

    p = p or path()
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise CredentialsError(
            f"no credentials file at {p}: create it (mode 0600, owner root); see docs/runbook.md"
        ) from None
    except PermissionError:
        raise CredentialsError(
            f"cannot read {p}: it is readable only by its owner; act as its owner "
            "(on the appliance: sudo -u minectl minectl ...; see docs/runbook.md)"
        ) from None
    except OSError as e:
        raise CredentialsError(f"cannot open {p}: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        check_mode(p, os.fstat(f.fileno()), os.geteuid())
        try:
            doc = yaml.safe_load(f.read())
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise CredentialsError(f"{p}:{where}: not valid YAML") from None
    return parse(doc, p)
