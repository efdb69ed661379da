"""Which miners a rule or a silence applies to.

A rule's ``scope`` is a mapping of ``rack``, ``model``, ``name``, ``ip`` and ``mac`` to a glob or a list of
globs; a miner is in scope when every key given matches (any glob of a list). No scope: every miner.

A silence's *selector* is text, the way an admin types it on the command line::

    all                 every miner (and site-wide alerts)
    rack:R12            a rack (globs allowed: rack:R1*)
    model:*S19*         a model glob
    name:r12-*          a name glob (also matched against the hostname)
    mac:aa:bb:cc:dd:ee:ff, ip:10.1.12.7
    r12-s03-p07         a bare word: a MAC, an IP, or a name glob

Several terms separated by spaces must all match. Globs are case-insensitive.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

KEYS = ("rack", "model", "name", "ip", "mac")
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_IP = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


class SelectorError(ValueError):
    pass


#: globs -> (compiled pattern, memo of value -> matched); values repeat (50 racks, a few models)
_COMPILED: dict[tuple[str, ...], tuple[re.Pattern[str], dict[str, bool]]] = {}
_MEMO_MAX = 50_000


def _match_any(value: Any, globs: tuple[str, ...]) -> bool:
    if value is None:
        return False
    c = _COMPILED.get(globs)
    if c is None:
        c = _COMPILED[globs] = (re.compile("|".join(fnmatch.translate(g) for g in globs)), {})
    pat, memo = c
    v = value if isinstance(value, str) else str(value)
    hit = memo.get(v)
    if hit is None:
        hit = pat.match(v.lower()) is not None
        if len(memo) < _MEMO_MAX:
            memo[v] = hit
    return hit


@dataclass(frozen=True, slots=True)
class Scope:
    """All given keys must match; ``terms`` maps a fact name to lowercase globs."""

    terms: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def everything(self) -> bool:
        return not self.terms

    def __call__(self, f: Mapping[str, Any]) -> bool:
        for key, globs in self.terms:
            if key == "name":
                if not (_match_any(f.get("name"), globs) or _match_any(f.get("hostname"), globs)):
                    return False
            elif not _match_any(f.get(key), globs):
                return False
        return True

    def describe(self) -> str:
        if not self.terms:
            return "all"
        return " ".join(f"{k}:{','.join(g)}" for k, g in self.terms)

    @staticmethod
    def parse(raw: Any, report: Callable[[tuple[str | int, ...], str], None]) -> Scope:
        """From a rules-file mapping; problems go to ``report(subpath, message)``."""
        if raw is None:
            return Scope()
        if not isinstance(raw, dict):
            report((), f"must be a mapping of {', '.join(KEYS)} to globs")
            return Scope()
        terms = []
        for k, v in raw.items():
            if k not in KEYS:
                report((k,), f"unknown scope key (expected one of: {', '.join(KEYS)})")
                continue
            vals = [v] if isinstance(v, (str, int, float)) and not isinstance(v, bool) else v
            if not isinstance(vals, list) or not vals or not all(isinstance(x, (str, int, float)) for x in vals):
                report((k,), "must be a glob or a list of globs")
                continue
            terms.append((k, tuple(str(x).lower() for x in vals)))
        return Scope(tuple(terms))


@dataclass(frozen=True, slots=True)
class Selector:
    """A silence's selector (see the module doc). ``text`` is what was typed, normalized."""

    text: str
    scope: Scope

    def __call__(self, f: Mapping[str, Any]) -> bool:
        return self.scope(f)

    @property
    def everything(self) -> bool:
        return self.scope.everything

    @staticmethod
    def parse(text: str) -> Selector:
        words = text.replace(",", " ").split() if isinstance(text, str) else []
        if not words:
            raise SelectorError("empty selector (use all, rack:R12, model:*S19*, name:GLOB, a MAC, an IP or a name)")
        terms: dict[str, list[str]] = {}
        for w in words:
            if len(w) > 200 or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in w):
                raise SelectorError(f"bad selector term {w[:40]!r}")
            low = w.lower()
            if low == "all":
                continue
            key, sep, val = low.partition(":")
            if sep and key in KEYS and not _MAC.match(low):
                if not val:
                    raise SelectorError(f"{w!r}: nothing after {key}:")
                terms.setdefault(key, []).append(val)
            elif _MAC.match(low):
                terms.setdefault("mac", []).append(low)
            elif _IP.match(low):
                terms.setdefault("ip", []).append(low)
            elif sep:
                raise SelectorError(f"{w!r}: unknown selector key {key!r} (use {', '.join(KEYS)})")
            else:
                terms.setdefault("name", []).append(low)
        scope = Scope(tuple((k, tuple(v)) for k, v in terms.items()))
        return Selector(" ".join(words), scope)
