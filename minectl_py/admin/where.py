"""``--where`` predicates: a small, safe expression language (no ``eval``).

Grammar (keywords are case-insensitive)::

    expr   := term (("or" | "||") term)*
    term   := factor (("and" | "&&" | ",") factor)*
    factor := ("not" | "!") factor | "(" expr ")" | FIELD OP VALUE
    OP     := "<" | "<=" | ">" | ">=" | "=" | "==" | "!=" | "~" (glob) | "!~"
    VALUE  := number | 'single' or "double" quoted string | bare word

Examples: ``hashrate_pct<80``, ``temp>=85 and state=online``, ``model~'*S19*' or rack=R12``.

A comparison with a missing value (``null``) is false, except ``!=`` and ``!~`` which are true.
Numbers compare as numbers; everything else compares as text (case-insensitive for ``~``).
Errors raise :class:`WhereError` with the position of the problem.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<op><=|>=|==|!=|!~|&&|\|\||[<>=~!(),])
    | (?P<str>'[^']*'|"[^"]*")
    | (?P<word>[A-Za-z0-9_.:*?/\[\]+%@-]+)
    )""",
    re.VERBOSE,
)
_NUM = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
COMPARE_OPS = ("<", "<=", ">", ">=", "=", "==", "!=", "~", "!~")


class WhereError(ValueError):
    """A predicate that does not parse; names the position and what was expected."""

    def __init__(self, text: str, pos: int, message: str) -> None:
        super().__init__(f"--where {text!r}: at column {pos + 1}: {message}")
        self.pos = pos


@dataclass(frozen=True, slots=True)
class Tok:
    kind: str  # op | str | word | end
    text: str
    pos: int


def tokenize(text: str) -> list[Tok]:
    toks: list[Tok] = []
    i = 0
    n = len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        m = _TOKEN.match(text, i)
        if not m or m.end() == i:
            raise WhereError(text, i, f"unexpected character {text[i]!r}")
        kind = m.lastgroup or "word"
        val = m.group(kind)
        start = m.start(kind)
        if kind == "str":
            val = val[1:-1]
        toks.append(Tok(kind, val, start))
        i = m.end()
    toks.append(Tok("end", "", n))
    return toks


class _Parser:
    def __init__(self, text: str, fields: Mapping[str, str], aliases: Mapping[str, str]) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.i = 0
        self.fields = fields
        self.aliases = aliases

    def peek(self) -> Tok:
        return self.toks[self.i]

    def take(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def is_kw(self, t: Tok, *words: str) -> bool:
        return (t.kind == "word" and t.text.lower() in words) or (t.kind == "op" and t.text in words)

    def parse(self) -> Predicate:
        if self.peek().kind == "end":
            raise WhereError(self.text, 0, "empty expression")
        p = self.expr()
        t = self.peek()
        if t.kind != "end":
            raise WhereError(self.text, t.pos, f"unexpected {t.text!r} (expected 'and', 'or' or the end)")
        return p

    def expr(self) -> Predicate:
        parts = [self.term()]
        while self.is_kw(self.peek(), "or", "||"):
            self.take()
            parts.append(self.term())
        if len(parts) == 1:
            return parts[0]
        return lambda m: any(p(m) for p in parts)

    def term(self) -> Predicate:
        parts = [self.factor()]
        while self.is_kw(self.peek(), "and", "&&", ","):
            self.take()
            parts.append(self.factor())
        if len(parts) == 1:
            return parts[0]
        return lambda m: all(p(m) for p in parts)

    def factor(self) -> Predicate:
        t = self.peek()
        if self.is_kw(t, "not", "!"):
            self.take()
            inner = self.factor()
            return lambda m: not inner(m)
        if t.kind == "op" and t.text == "(":
            self.take()
            inner = self.expr()
            close = self.take()
            if not (close.kind == "op" and close.text == ")"):
                raise WhereError(self.text, close.pos, "expected ')'")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        f = self.take()
        if f.kind != "word":
            raise WhereError(self.text, f.pos, f"expected a field name, got {f.text or 'the end'!r}")
        name = self.aliases.get(f.text.lower(), f.text.lower())
        if name not in self.fields:
            known = ", ".join(sorted(self.fields))
            raise WhereError(self.text, f.pos, f"unknown field {f.text!r}; fields: {known}")
        op = self.take()
        if op.kind != "op" or op.text not in COMPARE_OPS:
            raise WhereError(self.text, op.pos, f"expected an operator ({' '.join(COMPARE_OPS)}) after {f.text!r}")
        v = self.take()
        if v.kind not in ("word", "str"):
            raise WhereError(self.text, v.pos, f"expected a value after {op.text!r}")
        return make_compare(name, self.fields[name], op.text, v.text, self.text, v.pos)


def make_compare(name: str, ftype: str, op: str, raw: str, text: str, pos: int) -> Predicate:
    """One comparison. ``ftype`` is ``num`` or ``str``."""
    if op in ("~", "!~"):
        pat = re.compile(fnmatch.translate(raw.lower()))
        neg = op == "!~"

        def glob(m: Mapping[str, Any]) -> bool:
            v = m.get(name)
            if v is None:
                return neg
            return bool(pat.match(_text(v).lower())) != neg

        return glob
    if ftype == "num":
        if not _NUM.match(raw):
            raise WhereError(text, pos, f"{name} is a number; {raw!r} is not")
        want: Any = float(raw)
    else:
        want = raw.lower()
    if op in ("=", "=="):
        return lambda m: (v := _val(m.get(name), ftype)) is not None and v == want
    if op == "!=":
        return lambda m: (v := _val(m.get(name), ftype)) is None or v != want
    cmp = {"<": _lt, "<=": _le, ">": _gt, ">=": _ge}[op]
    return lambda m: (v := _val(m.get(name), ftype)) is not None and cmp(v, want)


def _lt(a: Any, b: Any) -> bool:
    return a < b


def _le(a: Any, b: Any) -> bool:
    return a <= b


def _gt(a: Any, b: Any) -> bool:
    return a > b


def _ge(a: Any, b: Any) -> bool:
    return a >= b


def _text(v: Any) -> str:
    if isinstance(v, list):
        return " ".join(str(x) for x in v)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _val(v: Any, ftype: str) -> Any:
    if v is None:
        return None
    if ftype == "num":
        if isinstance(v, bool):
            return None
        if isinstance(v, (int, float)):
            return float(v)
        try:
            return float(v)
        except (TypeError, ValueError):
            return None
    return _text(v).lower()


def compile_where(text: str, fields: Mapping[str, str], aliases: Mapping[str, str] | None = None) -> Predicate:
    """Parse ``text`` into a predicate over a miner's dictionary.

    ``fields`` maps every field name to ``num`` or ``str``; ``aliases`` maps short names
    (``temp``) to field names (``temp_max``).
    """
    return _Parser(text, fields, aliases or {}).parse()
