"""Typed events: one dataclass per event type, validated from and to raw records.

Every record has the envelope (``created_at_ms`` epoch ms as a string, ``id`` 32 hex digits,
``cmd`` the type, ``nodename``, ``v`` the schema version, absent in seed records) and the
type's own fields. docs/events.md documents every type; a test keeps the two in step.

``parse(record)`` returns the typed event or raises :class:`EventError` naming the field.
Unknown types parse to :class:`Unknown` (kept, never dropped): a newer writer's records
must survive an older reader.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from minectl_py.events import record as _record

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_DIGITS = re.compile(r"^\d{1,16}$")


class EventError(ValueError):
    """A record that does not fit its type. ``field`` names the offending field."""

    def __init__(self, field_name: str, message: str, cmd: str | None = None) -> None:
        where = f"{cmd}." if cmd else ""
        super().__init__(f"field {where}{field_name}: {message}")
        self.field = field_name
        self.cmd = cmd


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every typed event: the envelope."""

    CMD: ClassVar[str] = ""

    created_at_ms: str
    id: str
    nodename: str
    v: int = 0

    @property
    def time_ms(self) -> int:
        return int(self.created_at_ms)

    def to_record(self) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "created_at_ms": self.created_at_ms,
            "id": self.id,
            "cmd": self.CMD,
            "nodename": self.nodename,
        }
        if self.v:
            rec["v"] = self.v
        for f in dataclasses.fields(self):
            if f.name not in rec and f.name != "v":
                val = getattr(self, f.name)
                if val is not None:
                    rec[f.name] = val
        return rec

    @classmethod
    def new(cls, nodename: str, *, at_ms: int | None = None, **fields: Any) -> Any:
        """A fresh, validated event of this type with a new id and the current time."""
        return parse(_record.make(cls.CMD, nodename, fields, at_ms=at_ms))


@dataclass(frozen=True, slots=True, kw_only=True)
class Time(Event):
    """Heartbeat of a controller (the seed's ``time`` records)."""

    CMD: ClassVar[str] = "time"
    ip: str | None = None
    uptime_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease(Event):
    """A DHCP lease change reported by dnsmasq through the lease hook."""

    CMD: ClassVar[str] = "lease"
    action: str  # add | old | del
    mac: str
    ip: str
    hostname: str | None = None  # sanitized, safe for paths and terminals
    supplied_hostname: str | None = None  # raw value the client sent (JSON-escaped)
    vendor_class: str | None = None
    client_id: str | None = None
    interface: str | None = None
    domain: str | None = None
    tags: list[str] | None = None
    expires: int | None = None  # epoch seconds
    hostname_raw: str | None = None  # the hostname argument as dnsmasq gave it, if cleaning changed it
    old_hostname: str | None = None  # DNSMASQ_OLD_HOSTNAME: the name a lease lost
    user_class: list[str] | None = None  # DNSMASQ_USER_CLASS0..n
    relay: str | None = None  # DNSMASQ_RELAY_ADDRESS (giaddr)
    requested_options: str | None = None  # DNSMASQ_REQUESTED_OPTIONS (option 55, comma-separated)
    remaining_s: int | None = None  # DNSMASQ_TIME_REMAINING
    data_missing: bool | None = None  # DNSMASQ_DATA_MISSING: an `old` at start-up, only the basics known

    ACTIONS: ClassVar[frozenset[str]] = frozenset({"add", "old", "del"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Inventory(Event):
    """One miner's place in the site inventory set or removed by ``minectl inventory apply``
    (only the miners whose row changed): how locations reach the state directory replayably."""

    CMD: ClassVar[str] = "inventory"
    action: str  # set | remove
    mac: str
    name: str | None = None
    rack: str | None = None
    shelf: str | None = None
    position: str | None = None
    model: str | None = None
    source: str | None = None  # the CSV file it came from


@dataclass(frozen=True, slots=True, kw_only=True)
class Poll(Event):
    """One successful poll of one miner: normalized stats plus a digest of the raw reply."""

    CMD: ClassVar[str] = "poll"
    ip: str
    mac: str | None = None
    elapsed_ms: int = 0
    digest: str = ""  # sha256 hex of the raw reply bytes
    miner: dict[str, Any] = field(default_factory=dict)  # see docs/miners.md


@dataclass(frozen=True, slots=True, kw_only=True)
class PollFail(Event):
    """A poll that got no usable answer, with the reason."""

    CMD: ClassVar[str] = "poll_fail"
    ip: str
    mac: str | None = None
    reason: str  # refused | timeout | connect_timeout | reset | truncated | garbage | ...
    detail: str = ""
    elapsed_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Action(Event):
    """An admin (or rule) action on one miner, with its result: the audit trail."""

    CMD: ClassVar[str] = "action"
    user: str
    action: str  # reboot | restart | pools_show | pools_set | pools_switch | locate_on | locate_off | exec
    target: str  # the miner's IP
    mac: str | None = None
    name: str | None = None
    # ok | fail | denied | auth | nocred | unreachable | timeout | lost | unsupported | hostkey
    result: str
    detail: str = ""
    transport: str | None = None  # api | http | ssh
    params: dict[str, Any] | None = None
    batch: str | None = None  # id shared by all results of one command
    rule: str | None = None  # set when a rule took the action
    uid: int | None = None  # numeric uid of the process (0 under sudo; user names the person)
    family: str | None = None  # firmware family that chose the transports: antminer | bosminer | ...
    attempts: int | None = None  # tries of the transport chain (retries + 1 at most)
    elapsed_ms: int | None = None  # time spent on this miner
    tried: list[str] | None = None  # transport:result for each step tried, in order


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert(Event):
    """A rule's alert being raised or cleared for one miner (or the site). See docs/rules.md.

    ``kind``: ``condition`` (the rule's condition held for its hold time), ``exhausted`` (the
    rule's remedies or the per-miner action limit ran out: a person must look), ``site``
    (too many miners match at once: a site-wide fault; no per-miner actions). A ``cleared``
    event names the ``raised`` event it ends in ``raised_id``.
    """

    CMD: ClassVar[str] = "alert"
    rule: str
    state: str  # raised | cleared
    kind: str = "condition"  # condition | exhausted | site
    mac: str | None = None
    ip: str | None = None
    name: str | None = None
    severity: str = "warning"
    detail: str = ""
    value: float | None = None
    values: dict[str, Any] | None = None  # the facts the condition read, at the time
    since_ms: int | None = None  # when the condition started to hold
    raised_id: str | None = None  # on cleared: the id of the raised event
    silenced: bool | None = None  # true when a silence covered it (not notified)

    KINDS: ClassVar[frozenset[str]] = frozenset({"condition", "exhausted", "site"})


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleDecision(Event):
    """What the rules service decided for one rule and one miner (or the site): the audit of
    the watchdog, and the state it rebuilds from on restart. See docs/rules.md."""

    CMD: ClassVar[str] = "rule"
    rule: str
    decision: str  # pending | ok | act | silenced | storm | deferred | gave_up | checkpoint
    mac: str | None = None
    ip: str | None = None
    name: str | None = None
    action: str | None = None  # on act: restart | reboot | switch_pool
    step: int | None = None  # on act: 1-based step of the rule's action ladder
    params: dict[str, Any] | None = None
    since_ms: int | None = None
    detail: str = ""
    dry_run: bool | None = None
    state: dict[str, Any] | None = None  # on checkpoint: the whole rule state

    DECISIONS: ClassVar[frozenset[str]] = frozenset(
        {"pending", "ok", "act", "silenced", "storm", "deferred", "gave_up", "checkpoint"}
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Silence(Event):
    """A silence (maintenance window) set or cleared: rules take no actions and send no
    notifications for miners the selector matches until ``until_ms``."""

    CMD: ClassVar[str] = "silence"
    state: str  # set | cleared
    selector: str = ""
    until_ms: int | None = None
    from_ms: int | None = None  # a window scheduled ahead starts here (none: at once)
    rule: str | None = None  # only this rule (none: every rule)
    user: str = ""
    reason: str = ""
    silence_id: str | None = None  # on cleared: the id of the set event


@dataclass(frozen=True, slots=True, kw_only=True)
class Notify(Event):
    """One notification attempt (webhook, syslog, email) about one or more alerts."""

    CMD: ClassVar[str] = "notify"
    channel: str  # webhook | syslog | email
    result: str  # ok | fail
    target: str = ""  # URL, facility or addresses
    alerts: list[str] = field(default_factory=list)  # ids of the alert events it carried
    rules: list[str] = field(default_factory=list)
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Unknown(Event):
    """A record of a type this version does not know; its fields are kept as they are."""

    CMD: ClassVar[str] = ""
    cmd: str = ""
    fields: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        rec = {"created_at_ms": self.created_at_ms, "id": self.id, "cmd": self.cmd, "nodename": self.nodename}
        if self.v:
            rec["v"] = self.v
        rec.update(self.fields)
        return rec


TYPES: dict[str, type[Event]] = {
    t.CMD: t for t in (Time, Lease, Inventory, Poll, PollFail, Action, Alert, RuleDecision, Silence, Notify)
}

_ENVELOPE_NAMES = frozenset({"created_at_ms", "id", "cmd", "nodename", "v"})


def _check_type(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_check_type(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is Any:
        return True
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return isinstance(value, list) and all(_check_type(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    h = _HINTS.get(cls)
    if h is None:
        h = _HINTS[cls] = typing.get_type_hints(cls)
    return h


def check_envelope(rec: dict[str, Any]) -> None:
    cmd = rec.get("cmd")
    if not isinstance(cmd, str) or not cmd:
        raise EventError("cmd", "missing or not a non-empty string")
    t = rec.get("created_at_ms")
    if not isinstance(t, str) or not _DIGITS.match(t):
        raise EventError("created_at_ms", f"must be epoch milliseconds as a string of digits, got {t!r:.40}", cmd)
    i = rec.get("id")
    if not isinstance(i, str) or not _HEX32.match(i):
        raise EventError("id", f"must be 32 lowercase hex digits, got {i!r:.40}", cmd)
    n = rec.get("nodename")
    if not isinstance(n, str) or not n:
        raise EventError("nodename", "missing or empty", cmd)
    v = rec.get("v", 0)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise EventError("v", f"schema version must be a non-negative integer, got {v!r:.20}", cmd)


def parse(rec: dict[str, Any]) -> Event:
    """Validate a raw record and return its typed event (``Unknown`` for unknown types)."""
    check_envelope(rec)
    cmd = rec["cmd"]
    cls = TYPES.get(cmd)
    env = {k: rec[k] for k in ("created_at_ms", "id", "nodename") if k in rec}
    env["v"] = rec.get("v", 0)
    if cls is None:
        return Unknown(cmd=cmd, fields={k: v for k, v in rec.items() if k not in _ENVELOPE_NAMES}, **env)
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in env:
            continue
        if f.name in rec:
            val = rec[f.name]
            if not _check_type(val, hints[f.name]):
                raise EventError(f.name, f"expected {_type_name(hints[f.name])}, got {type(val).__name__}", cmd)
            kwargs[f.name] = val
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise EventError(f.name, "missing", cmd)
    ev = cls(**env, **kwargs)
    _check_values(ev)
    return ev


def _check_values(ev: Event) -> None:
    if isinstance(ev, Lease) and ev.action not in Lease.ACTIONS:
        raise EventError("action", f"must be one of add, old, del; got {ev.action!r:.20}", ev.CMD)
    if isinstance(ev, Inventory) and ev.action not in ("set", "remove"):
        raise EventError("action", f"must be set or remove; got {ev.action!r:.20}", ev.CMD)
    if isinstance(ev, Alert):
        if ev.state not in ("raised", "cleared"):
            raise EventError("state", f"must be raised or cleared; got {ev.state!r:.20}", ev.CMD)
        if ev.kind not in Alert.KINDS:
            raise EventError("kind", f"must be condition, exhausted or site; got {ev.kind!r:.20}", ev.CMD)
    if isinstance(ev, RuleDecision) and ev.decision not in RuleDecision.DECISIONS:
        raise EventError("decision", f"unknown decision {ev.decision!r:.20}", ev.CMD)
    if isinstance(ev, Silence) and ev.state not in ("set", "cleared"):
        raise EventError("state", f"must be set or cleared; got {ev.state!r:.20}", ev.CMD)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    return {
        str: "string",
        int: "integer",
        float: "number",
        bool: "boolean",
        list: "list",
        dict: "object",
    }.get(origin or tp, getattr(tp, "__name__", str(tp)))
