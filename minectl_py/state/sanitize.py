"""Making miner-supplied strings safe: for paths, for terminals, for one-line files.

Standard library only and import-cheap (no ``re``): the lease hook uses it. Every function
returns ``None`` for a value that is missing or empty after cleaning.

* :func:`text` - free text (firmware, pool URL, vendor class, errors): control characters,
  terminal escapes, bidi overrides and zero-width characters removed, whitespace collapsed,
  bounded length. Safe to print and to store as a one-line file; never used as a path.
* :func:`label` - names used as file names and DNS labels (hostnames, inventory names): only
  ``A-Z a-z 0-9 - _ .``; anything else becomes ``-``; no leading dot or dash (so never ``.``
  or ``..``), bounded length.
* :func:`mac`, :func:`ipv4`, :func:`hexid` - strict formats, normalized, else ``None``.
"""

from __future__ import annotations

_LABEL_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
_HEX = frozenset("0123456789abcdef")
#: Default bound of free-text values, in characters.
TEXT_MAX = 128
#: Bound of labels (a DNS label is at most 63 octets).
LABEL_MAX = 63


def _keep(ch: str) -> str:
    if ch.isprintable():
        return ch
    o = ord(ch)
    if 0xD800 <= o < 0xE000:  # lone surrogate (bytes that were not UTF-8)
        return "?"
    if o < 0xA0 or ch.isspace():  # C0, DEL, C1 (incl. CSI 0x9B), odd spaces: a space
        return " "
    return ""  # bidi overrides, zero-width and other format characters, unassigned


def _strip_escapes(s: str) -> str:
    """Drop terminal escape sequences whole (CSI ``ESC [ ... final``, OSC ``ESC ] ... BEL/ST``,
    two-character ``ESC x``), not just the ESC, so no ``[31m`` debris remains."""
    if "\x1b" not in s and "\x9b" not in s and "\x9d" not in s:
        return s
    out = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "\x1b" and i + 1 < n and s[i + 1] in "[]":
            kind, i = s[i + 1], i + 2
        elif c in "\x9b\x9d":
            kind, i = ("[" if c == "\x9b" else "]"), i + 1
        elif c == "\x1b":
            i += 2
            continue
        else:
            out.append(c)
            i += 1
            continue
        if kind == "[":  # parameters and intermediates, then one final byte 0x40-0x7E
            while i < n and not ("\x40" <= s[i] <= "\x7e"):
                i += 1
            i += 1
        else:  # OSC: up to BEL or ST (ESC \\ or 0x9C)
            while i < n and s[i] not in "\x07\x9c\x1b":
                i += 1
            i += 2 if (i < n and s[i] == "\x1b") else 1
    return "".join(out)


def text(value: object, limit: int = TEXT_MAX) -> str | None:
    """Printable one-line text of at most ``limit`` characters, or None."""
    if value is None:
        return None
    s = value if isinstance(value, str) else str(value)
    if len(s) > 4 * limit:  # bound the work on hostile input
        s = s[: 4 * limit]
    if not (s.isascii() and s.isprintable()):
        s = "".join(_keep(c) for c in _strip_escapes(s))
    s = " ".join(s.split())
    if len(s) > limit:
        s = s[:limit].rstrip()
    return s or None


def label(value: object, limit: int = LABEL_MAX) -> str | None:
    """A name safe as a file name and a DNS label, or None."""
    if value is None:
        return None
    s = value if isinstance(value, str) else str(value)
    s = s[: 4 * limit]
    if not all(c in _LABEL_OK for c in s):
        s = "".join(c if c in _LABEL_OK else "-" for c in s)
    s = s.lstrip(".-")[:limit].rstrip(".-")
    return s or None


def mac(value: object) -> str | None:
    """``aa:bb:cc:dd:ee:ff`` (lowercase, colons) from colon or dash form, else None."""
    if not isinstance(value, str) or len(value) != 17:
        return None
    s = value.lower().replace("-", ":")
    parts = s.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and p[0] in _HEX and p[1] in _HEX for p in parts):
        return None
    return s


def ipv4(value: object) -> str | None:
    """A dotted-quad IPv4 address in canonical form (no leading zeros), else None."""
    if not isinstance(value, str) or not 7 <= len(value) <= 15:
        return None
    parts = value.split(".")
    if len(parts) != 4:
        return None
    out = []
    for p in parts:
        if not p.isdigit() or not p.isascii() or len(p) > 3:
            return None
        n = int(p)
        if n > 255 or (len(p) > 1 and p[0] == "0"):
            return None
        out.append(str(n))
    return ".".join(out)


def hexid(value: object, limit: int = 128) -> str | None:
    """Colon-separated hex bytes (a DHCP client id as dnsmasq prints it), else None."""
    if not isinstance(value, str) or not value or len(value) > limit:
        return None
    s = value.lower()
    parts = s.split(":")
    if not all(1 <= len(p) <= 2 and all(c in _HEX for c in p) for p in parts):
        return None
    return s
