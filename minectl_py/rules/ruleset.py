"""The rules file: load, validate (every problem with its line and field), and model it.

See docs/rules.md for the format and files/rules/example.yml for a complete example.
:func:`load_text` returns a :class:`RuleSet` or raises :class:`RulesFileError` listing every
problem found (not just the first), each as ``FILE:LINE: FIELD: message``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from minectl_py.rules import expr, yamlpos
from minectl_py.rules.facts import FIELDS, NUMERIC, TEXT
from minectl_py.rules.scope import Scope
from minectl_py.timeparse import parse_duration_ms

#: Remedies a rule may take, in the order a ladder usually climbs them.
ACTIONS = ("restart", "reboot", "switch_pool")
SEVERITIES = ("info", "warning", "critical")
CHANNELS = ("webhook", "syslog", "email")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    field: str
    message: str

    def format(self, source: str) -> str:
        return f"{source}:{self.line}: {self.field}: {self.message}"


class RulesFileError(ValueError):
    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(p.format(source) for p in problems))


@dataclass(frozen=True, slots=True)
class Step:
    action: str  # restart | reboot | switch_pool
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    when: expr.Condition
    hold_ms: int
    severity: str
    scope: Scope
    notify: tuple[str, ...]
    steps: tuple[Step, ...]
    retry_ms: int  # wait after a step before the next one (doubles each step: backoff)
    line: int = 0


@dataclass(frozen=True, slots=True)
class Limits:
    per_miner_per_hour: int = 3
    max_acting: int = 10  # miners acted on within `settle` across the site
    settle_ms: int = 600_000
    storm_percent: float = 10.0
    storm_min: int = 5


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    timeout_s: float = 5.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Email:
    to: tuple[str, ...]
    sender: str = "minectl"
    sendmail: str = "/usr/sbin/sendmail"


@dataclass(frozen=True, slots=True)
class Notify:
    webhook: Webhook | None = None
    syslog: bool = False
    syslog_facility: str = "daemon"
    syslog_socket: str = "/dev/log"  # rsyslog's or journald's local socket
    email: Email | None = None


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    limits: Limits = Limits()
    notify: Notify = Notify()
    variables: dict[str, Any] = field(default_factory=dict)
    source: str = "<rules>"

    def rule(self, name: str) -> Rule | None:
        for r in self.rules:
            if r.name == name:
                return r
        return None


class _Checker:
    def __init__(self, doc: yamlpos.Located) -> None:
        self.doc = doc
        self.problems: list[Problem] = []

    def bad(self, path: yamlpos.Path, message: str) -> None:
        self.problems.append(Problem(self.doc.line(path), _dotted(path), message))

    def mapping(self, value: Any, path: yamlpos.Path, allowed: tuple[str, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.bad(path, f"must be a mapping, got {_kind(value)}")
            return {}
        for k in value:
            if k not in allowed:
                self.bad((*path, k), f"unknown key (expected one of: {', '.join(allowed)})")
        return value

    def duration(self, value: Any, path: yamlpos.Path, default: int) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.bad(path, f"must be a duration like 30s, 10m, 2h; got {_kind(value)}")
            return default
        try:
            ms = parse_duration_ms(str(value))
        except ValueError as e:
            self.bad(path, str(e))
            return default
        return ms

    def number(self, value: Any, path: yamlpos.Path, default: float, lo: float, hi: float, integer: bool) -> Any:
        if value is None:
            return default
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok or not lo <= value <= hi:
            kind = "a whole number" if integer else "a number"
            self.bad(path, f"must be {kind} from {lo:g} to {hi:g}, got {value!r:.40}")
            return default
        return value

    def choice_list(self, value: Any, path: yamlpos.Path, choices: tuple[str, ...]) -> tuple[str, ...]:
        if value is True:
            return choices
        if value is False or value is None:
            return ()
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            self.bad(path, f"must be true, false, or a list of {', '.join(choices)}")
            return ()
        out = []
        for i, it in enumerate(items):
            if it not in choices:
                self.bad((*path, i) if value is items else path, f"{it!r:.40} is not one of {', '.join(choices)}")
            else:
                out.append(it)
        return tuple(out)


def _dotted(path: yamlpos.Path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out or "(file)"


def _kind(v: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "a boolean", type(None): "nothing"}.get(
        type(v), type(v).__name__
    )


def load_file(path: str) -> RuleSet:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise RulesFileError(path, [Problem(1, "(file)", f"not UTF-8 text: {e.reason}")]) from None
    return load_text(text, source=path)


def load_text(text: str, source: str = "<rules>") -> RuleSet:
    try:
        doc = yamlpos.load(text)
    except yamlpos.YamlError as e:
        raise RulesFileError(source, [Problem(e.line, "(file)", e.message)]) from None
    c = _Checker(doc)
    top = c.mapping(doc.value, (), ("version", "site", "defaults", "limits", "notify", "rules"))
    if doc.value is None:
        c.bad((), "the file is empty (expected version, rules, ...)")
    version = top.get("version", 1)
    if version != 1:
        c.bad(("version",), f"unsupported version {version!r:.20} (this minectl reads version 1)")

    site = c.mapping(
        top.get("site"), ("site",), tuple(top.get("site") or {}) if isinstance(top.get("site"), dict) else ()
    )
    variables: dict[str, Any] = {}
    for k, v in site.items():
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", k):
            c.bad(("site", k), "a site variable name is letters, digits and _")
        elif not isinstance(v, (str, int, float)) or isinstance(v, bool):
            c.bad(("site", k), f"a site variable must be text or a number, got {_kind(v)}")
        else:
            variables[k] = v

    d = c.mapping(top.get("defaults"), ("defaults",), ("for", "severity", "notify", "retry"))
    d_hold = c.duration(d.get("for"), ("defaults", "for"), 300_000)
    d_retry = c.duration(d.get("retry"), ("defaults", "retry"), 600_000)
    d_sev = d.get("severity", "warning")
    if d_sev not in SEVERITIES:
        c.bad(("defaults", "severity"), f"must be one of {', '.join(SEVERITIES)}")
        d_sev = "warning"
    d_notify = c.choice_list(d.get("notify", True), ("defaults", "notify"), CHANNELS)

    limits = _limits(c, top.get("limits"))
    notify = _notify(c, top.get("notify"))

    rules: list[Rule] = []
    raw_rules = top.get("rules")
    if raw_rules is None:
        c.bad(("rules",) if "rules" in top else (), "no rules: add a 'rules:' list")
    elif not isinstance(raw_rules, list):
        c.bad(("rules",), f"must be a list of rules, got {_kind(raw_rules)}")
    else:
        seen: dict[str, int] = {}
        for i, raw in enumerate(raw_rules):
            r = _rule(c, raw, ("rules", i), variables, d_hold, d_retry, d_sev, d_notify)
            if r is None:
                continue
            if r.name in seen:
                c.bad(("rules", i, "name"), f"duplicate rule name {r.name!r} (first on line {seen[r.name]})")
                continue
            seen[r.name] = r.line
            rules.append(r)
    if c.problems:
        raise RulesFileError(source, sorted(c.problems, key=lambda p: p.line))
    return RuleSet(tuple(rules), limits, notify, variables, source)


def _limits(c: _Checker, raw: Any) -> Limits:
    p = ("limits",)
    m = c.mapping(raw, p, ("actions_per_miner_per_hour", "max_miners_acting", "settle", "storm_percent", "storm_min"))
    return Limits(
        per_miner_per_hour=c.number(
            m.get("actions_per_miner_per_hour"), (*p, "actions_per_miner_per_hour"), 3, 0, 100, True
        ),
        max_acting=c.number(m.get("max_miners_acting"), (*p, "max_miners_acting"), 10, 0, 100_000, True),
        settle_ms=c.duration(m.get("settle"), (*p, "settle"), 600_000),
        storm_percent=float(c.number(m.get("storm_percent"), (*p, "storm_percent"), 10.0, 0, 100, False)),
        storm_min=c.number(m.get("storm_min"), (*p, "storm_min"), 5, 1, 100_000, True),
    )


def _notify(c: _Checker, raw: Any) -> Notify:
    p = ("notify",)
    m = c.mapping(raw, p, ("webhook", "syslog", "email"))
    webhook = None
    if m.get("webhook") is not None:
        w = c.mapping(m["webhook"], (*p, "webhook"), ("url", "timeout", "headers"))
        url = w.get("url")
        if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url):
            c.bad((*p, "webhook", "url"), "must be an http:// or https:// URL")
        headers = w.get("headers") or {}
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            c.bad((*p, "webhook", "headers"), "must be a mapping of header names to text")
            headers = {}
        timeout = c.duration(w.get("timeout"), (*p, "webhook", "timeout"), 5000) / 1000
        if isinstance(url, str):
            webhook = Webhook(url, timeout, {str(k): v for k, v in headers.items()})
    syslog_raw = m.get("syslog", False)
    facility = "daemon"
    sock = "/dev/log"
    if isinstance(syslog_raw, dict):
        s = c.mapping(syslog_raw, (*p, "syslog"), ("facility", "socket"))
        facility = str(s.get("facility", "daemon"))
        sock = s.get("socket", "/dev/log")
        if not isinstance(sock, str) or not sock.startswith("/"):
            c.bad((*p, "syslog", "socket"), "must be the absolute path of a unix socket")
            sock = "/dev/log"
        if facility not in (
            "daemon",
            "user",
            "local0",
            "local1",
            "local2",
            "local3",
            "local4",
            "local5",
            "local6",
            "local7",
        ):
            c.bad((*p, "syslog", "facility"), "must be daemon, user or local0..local7")
            facility = "daemon"
        syslog_on = True
    elif isinstance(syslog_raw, bool):
        syslog_on = syslog_raw
    else:
        c.bad((*p, "syslog"), "must be true, false, or a mapping with facility and socket")
        syslog_on = False
    email = None
    if m.get("email") is not None:
        e = c.mapping(m["email"], (*p, "email"), ("to", "from", "sendmail"))
        to = e.get("to")
        to_list = [to] if isinstance(to, str) else to
        if not isinstance(to_list, list) or not to_list or not all(_is_address(a) for a in to_list):
            c.bad((*p, "email", "to"), "must be an address or a list of addresses (name@host)")
            to_list = []
        sender = e.get("from", "minectl")
        if not isinstance(sender, str) or "\n" in sender or "\r" in sender:
            c.bad((*p, "email", "from"), "must be one line of text")
            sender = "minectl"
        sendmail = e.get("sendmail", "/usr/sbin/sendmail")
        if not isinstance(sendmail, str) or not sendmail.startswith("/"):
            c.bad((*p, "email", "sendmail"), "must be an absolute path")
            sendmail = "/usr/sbin/sendmail"
        if to_list:
            email = Email(tuple(to_list), sender, sendmail)
    return Notify(webhook, syslog_on, facility, sock, email)


def _is_address(a: Any) -> bool:
    return isinstance(a, str) and re.match(r"^[^\s@<>,;]+@[^\s@<>,;]+$", a) is not None


def _rule(
    c: _Checker,
    raw: Any,
    p: yamlpos.Path,
    variables: dict[str, Any],
    d_hold: int,
    d_retry: int,
    d_sev: str,
    d_notify: tuple[str, ...],
) -> Rule | None:
    if not isinstance(raw, dict):
        c.bad(p, f"a rule must be a mapping with name and when, got {_kind(raw)}")
        return None
    n0 = len(c.problems)
    m = c.mapping(raw, p, ("name", "when", "for", "severity", "scope", "notify", "actions", "retry", "description"))
    name = m.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        c.bad((*p, "name") if "name" in m else p, "every rule needs a name: letters, digits, _ . - (at most 64)")
        name = f"rules[{p[-1]}]"
    when = m.get("when")
    cond = None
    if when is None:
        c.bad(p, "missing 'when' (the condition, e.g. temp_max > 90)")
    else:
        try:
            cond = expr.compile_condition(
                when if isinstance(when, str) else str(when), FIELDS, variables, numeric=NUMERIC, texts=TEXT
            )
        except expr.ExprError as e:
            c.bad((*p, "when"), f"{e} in {str(when)!r:.80}")
    hold = c.duration(m.get("for"), (*p, "for"), d_hold)
    retry = c.duration(m.get("retry"), (*p, "retry"), d_retry)
    sev = m.get("severity", d_sev)
    if sev not in SEVERITIES:
        c.bad((*p, "severity"), f"must be one of {', '.join(SEVERITIES)}")
    notify = c.choice_list(m.get("notify"), (*p, "notify"), CHANNELS) if "notify" in m else d_notify
    scope = Scope.parse(m.get("scope"), lambda sub, msg: c.bad((*p, "scope", *sub), msg))
    steps = _steps(c, m.get("actions"), (*p, "actions"))
    if len(c.problems) > n0 or cond is None:
        return None
    return Rule(str(name), cond, hold, str(sev), scope, notify, steps, retry, c.doc.line(p))


def _steps(c: _Checker, raw: Any, p: yamlpos.Path) -> tuple[Step, ...]:
    if raw is None:
        return ()
    items = [raw] if isinstance(raw, (str, dict)) else raw
    if not isinstance(items, list):
        c.bad(p, "must be a list of actions (restart, reboot, switch_pool)")
        return ()
    out: list[Step] = []
    for i, it in enumerate(items):
        ip = (*p, i) if items is raw else p
        was_text = isinstance(it, str)
        if was_text:
            it = {"action": it}
        if not isinstance(it, dict):
            c.bad(ip, f"an action is a name or a mapping with 'action', got {_kind(it)}")
            continue
        act = it.get("action")
        if act not in ACTIONS:
            c.bad(
                ip if was_text or "action" not in it else (*ip, "action"),
                f"{act!r:.40} is not one of {', '.join(ACTIONS)}",
            )
            continue
        params = {k: v for k, v in it.items() if k != "action"}
        if act == "switch_pool":
            pool = params.get("pool")
            if not isinstance(pool, int) or isinstance(pool, bool) or not 0 <= pool <= 9:
                c.bad((*ip, "pool") if "pool" in it else ip, "switch_pool needs pool: the pool index 0..9 to switch to")
                continue
            extra = set(params) - {"pool"}
        else:
            extra = set(params)
        if extra:
            c.bad((*ip, sorted(extra)[0]), f"unknown key for {act}")
            continue
        out.append(Step(act, params))
    return tuple(out)


Reporter = Callable[[yamlpos.Path, str], None]
