"""The rule condition language: a small, safe expression over one miner's facts (no ``eval``).

Grammar (keywords are case-insensitive)::

    expr    := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | "(" expr ")" | compare
    compare := value OP value | value ["not"] "in" "(" value ("," value)* ")"
    OP      := "<" | "<=" | ">" | ">=" | "==" | "=" | "!=" | "~" (glob) | "!~"
    value   := FIELD | $VARIABLE | number | 'single' or "double" quoted string | bare word | null

Examples::

    temp_max > 90
    state == online and hashrate_pct < 80
    fan_min == 0 or fans_zero > 0
    state in (offline, failing)
    pool != $primary_pool
    model ~ '*S19*' and lease_changes_1h > 3

Semantics: a comparison involving a missing value (``null``) is false, whatever the operator
(so ``pool != $primary_pool`` does not fire for a miner whose pool is unknown); test for a
missing value with ``FIELD == null`` / ``FIELD != null``. Two numbers compare as numbers,
anything else as text (``==`` and ``~`` ignore case for text).

:func:`compile_condition` returns a :class:`Condition` whose ``test(facts)`` is a closure
tree (fast: thousands of miners times tens of rules per cycle). Errors raise
:class:`ExprError` with the 1-based column.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Facts = Mapping[str, Any]
Test = Callable[[Facts], bool]
Getter = Callable[[Facts], Any]

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    | (?P<op><=|>=|==|!=|!~|[<>=~(),])
    | (?P<str>'[^']*'|"[^"]*")
    | (?P<var>\$[A-Za-z_][A-Za-z0-9_]*)
    | (?P<word>[A-Za-z0-9_.:*?/\[\]+%@-]+)
    """,
    re.VERBOSE,
)
_NUM = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_FIELD = re.compile(r"^[a-z_][a-z0-9_]*$")
_COMPARE = ("<", "<=", ">", ">=", "==", "=", "!=", "~", "!~")
_KEYWORDS = frozenset({"and", "or", "not", "in", "null"})


class ExprError(ValueError):
    """A condition that does not parse or names an unknown field; ``column`` is 1-based."""

    def __init__(self, text: str, pos: int, message: str) -> None:
        super().__init__(f"at column {pos + 1}: {message}")
        self.text = text
        self.column = pos + 1
        self.message = message


@dataclass(frozen=True, slots=True)
class Tok:
    kind: str  # op | str | var | word | end
    text: str
    pos: int


@dataclass(frozen=True, slots=True)
class Condition:
    text: str
    test: Test
    fields: frozenset[str]  # the facts it reads (for docs and for deciding what to compute)


def tokenize(text: str) -> list[Tok]:
    toks: list[Tok] = []
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if not m or m.end() == i:
            raise ExprError(text, i, f"unexpected character {text[i]!r}")
        kind = m.lastgroup or ""
        if kind != "ws":
            toks.append(Tok(kind, m.group(), i))
        i = m.end()
    toks.append(Tok("end", "", len(text)))
    return toks


class _Parser:
    def __init__(
        self,
        text: str,
        fields: frozenset[str],
        variables: Mapping[str, Any],
        numeric: frozenset[str],
        texts: frozenset[str],
    ) -> None:
        self.text = text
        self.numeric = numeric
        self.texts = texts
        self.meta: dict[Getter, tuple[str, Any]] = {}  # getter -> ("field", name) | ("const", value)
        self.toks = tokenize(text)
        self.i = 0
        self.known = fields
        self.vars = variables
        self.used: set[str] = set()

    # -- helpers ------------------------------------------------------------------
    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def err(self, message: str, tok: Tok | None = None) -> ExprError:
        return ExprError(self.text, (tok or self.tok).pos, message)

    def kw(self, word: str) -> bool:
        t = self.tok
        if t.kind == "word" and t.text.lower() == word:
            self.i += 1
            return True
        return False

    def op(self, text: str) -> bool:
        if self.tok.kind == "op" and self.tok.text == text:
            self.i += 1
            return True
        return False

    # -- grammar --------------------------------------------------------------------
    def parse(self) -> Test:
        if self.tok.kind == "end":
            raise self.err("empty condition")
        t = self.expr()
        if self.tok.kind != "end":
            raise self.err(f"unexpected {self.tok.text!r} (expected and, or, or the end)")
        return t

    def expr(self) -> Test:
        parts = [self.conj()]
        while self.kw("or"):
            parts.append(self.conj())
        if len(parts) == 1:
            return parts[0]
        return lambda f: any(p(f) for p in parts)

    def conj(self) -> Test:
        parts = [self.neg()]
        while self.kw("and"):
            parts.append(self.neg())
        if len(parts) == 1:
            return parts[0]
        if len(parts) == 2:
            a, b = parts
            return lambda f: a(f) and b(f)
        return lambda f: all(p(f) for p in parts)

    def neg(self) -> Test:
        if self.kw("not"):
            inner = self.neg()
            return lambda f: not inner(f)
        if self.op("("):
            inner = self.expr()
            if not self.op(")"):
                raise self.err("missing ')'")
            return inner
        return self.compare()

    def compare(self) -> Test:
        left_tok = self.tok
        left = self.value(left=True)
        t = self.tok
        negate = False
        if t.kind == "word" and t.text.lower() in ("in", "not"):
            if t.text.lower() == "not":
                self.i += 1
                negate = True
                if not self.kw("in"):
                    raise self.err("expected 'in' after 'not'")
            else:
                self.i += 1
            return self.membership(left, negate)
        if t.kind != "op" or t.text not in _COMPARE:
            what = "the end" if t.kind == "end" else repr(t.text)
            raise self.err(
                f"expected a comparison (<, <=, >, >=, ==, !=, ~, !~, in) after {left_tok.text!r}, got {what}"
            )
        self.i += 1
        right = self.value()
        return self.fast(t.text, left, right) or _compare(t.text, left, right)

    def fast(self, op: str, left: Getter, right: Getter) -> Test | None:
        """Specialized tests for the common shapes (a fact against a constant): facts are
        already normalized (numeric facts are floats or None, text facts str or None)."""
        lm, rm = self.meta.get(left), self.meta.get(right)
        if not lm or not rm or lm[0] != "field" or rm[0] != "const" or rm[1] is None:
            return None
        name, c = lm[1], rm[1]
        if name in self.numeric and op in _OPS:
            n = _num(c)
            if n is None:
                return None
            fn = _OPS[op]

            def num_test(f: Facts) -> bool:
                v = f.get(name)
                return v is not None and fn(v, n)

            return num_test
        if name in self.texts and op in ("==", "=", "!=") and _num(c) is None:
            want = _text(c).lower()
            eq = op != "!="

            def text_test(f: Facts) -> bool:
                v = f.get(name)
                return v is not None and (v.lower() == want) == eq

            return text_test
        return None

    def membership(self, left: Getter, negate: bool) -> Test:
        if not self.op("("):
            raise self.err("expected '(' to start the list after 'in'")
        items: list[Getter] = [self.value()]
        while self.op(","):
            items.append(self.value())
        if not self.op(")"):
            raise self.err("expected ',' or ')' in the list")
        lm = self.meta.get(left)
        consts = [self.meta.get(it) for it in items]
        if (
            lm
            and lm[0] == "field"
            and lm[1] in self.texts
            and all(c and c[0] == "const" and c[1] is not None for c in consts)
        ):
            wanted = frozenset(_text(c[1]).lower() for c in consts if c)
            name = lm[1]

            def in_set(f: Facts) -> bool:
                v = f.get(name)
                return v is not None and (v.lower() in wanted) != negate

            return in_set
        eq = [_compare("==", left, it) for it in items]

        def test(f: Facts) -> bool:
            if left(f) is None:
                return False
            hit = any(e(f) for e in eq)
            return hit != negate

        return test

    def const(self, value: Any) -> Getter:
        def g(f: Facts) -> Any:
            return value

        self.meta[g] = ("const", value)
        return g

    def value(self, left: bool = False) -> Getter:
        """A value. A bare word is a field when it names one; on the left of a comparison it
        must (``tmp_max > 90`` is a typo), on the right it is otherwise text (``state == online``)."""
        t = self.tok
        if t.kind == "str":
            self.i += 1
            s = t.text[1:-1]
            return self.const(s)
        if t.kind == "var":
            self.i += 1
            name = t.text[1:]
            if name not in self.vars:
                known = ", ".join("$" + k for k in sorted(self.vars)) or "none defined"
                raise self.err(f"unknown variable {t.text} (site variables: {known})", t)
            return self.const(self.vars[name])
        if t.kind == "word":
            self.i += 1
            low = t.text.lower()
            if low == "null":
                return _NULL
            if _NUM.match(t.text):
                return self.const(float(t.text))
            if low in _KEYWORDS:
                raise self.err(f"expected a value, got keyword {t.text!r}", t)
            if _FIELD.match(low) and low in self.known:
                self.used.add(low)
                g = _getter(low)
                self.meta[g] = ("field", low)
                return g
            if left and _FIELD.match(t.text):
                raise self.err(f"unknown field {t.text!r} (fields: {', '.join(sorted(self.known))})", t)
            return self.const(t.text)
        what = "the end" if t.kind == "end" else repr(t.text)
        raise self.err(f"expected a field, number or text, got {what}")


def _NULL(f: Facts) -> None:
    return None


def _getter(name: str) -> Getter:
    return lambda f: f.get(name)


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str) and _NUM.match(v.strip()):
        return float(v)
    return None


def _text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _compare(op: str, left: Getter, right: Getter) -> Test:
    if right is _NULL or left is _NULL:
        other = left if right is _NULL else right
        if op in ("==", "="):
            return lambda f: other(f) is None
        if op == "!=":
            return lambda f: other(f) is not None
        return lambda f: False
    if op in ("~", "!~"):
        neg = op == "!~"

        def glob(f: Facts) -> bool:
            a, b = left(f), right(f)
            if a is None or b is None:
                return False
            return fnmatch.fnmatchcase(_text(a).lower(), _text(b).lower()) != neg

        return glob

    def cmp(f: Facts) -> bool:
        a, b = left(f), right(f)
        if a is None or b is None:
            return False
        x, y = _num(a), _num(b)
        if x is None or y is None:
            if op in ("==", "="):
                return _text(a).lower() == _text(b).lower()
            if op == "!=":
                return _text(a).lower() != _text(b).lower()
            x, y = _text(a), _text(b)  # type: ignore[assignment]
        return _OPS[op](x, y)

    return cmp


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def compile_condition(
    text: str,
    fields: frozenset[str],
    variables: Mapping[str, Any] | None = None,
    *,
    numeric: frozenset[str] = frozenset(),
    texts: frozenset[str] = frozenset(),
) -> Condition:
    """Parse ``text`` into a :class:`Condition`; raises :class:`ExprError`.

    ``numeric`` / ``texts`` name the fields whose values are always float-or-None /
    str-or-None (normalized facts): comparisons of those with constants get fast paths."""
    if not isinstance(text, str):
        raise ExprError(str(text), 0, f"a condition must be text, got {type(text).__name__}")
    p = _Parser(text, fields, variables or {}, numeric, texts)
    test = p.parse()
    return Condition(text, test, frozenset(p.used))
