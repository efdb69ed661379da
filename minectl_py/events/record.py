"""Building and encoding raw event records: the hot path, standard library only.

A record is a JSON object with the envelope fields below plus the event type's own fields.
The lease hook uses only this module (plus ``writer``), so it stays import-cheap: no
dataclasses, no validation. Typed events and validation live in ``model``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

#: Version of the record schema written by this code. Seed records carry no ``v``: version 0.
SCHEMA_VERSION = 1
#: Envelope fields every record carries (``v`` is absent in seed records).
ENVELOPE = ("created_at_ms", "id", "cmd", "nodename", "v")

RS = b"\x1e"
LF = b"\n"

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_dumps_ascii = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode


#: Characters JSON allows raw in strings that a terminal may act on (C1 controls such as CSI
#: U+009B, bidi overrides, zero-width and line-separator characters): written as ``\\uXXXX``,
#: so ``tail events.log`` on an admin's terminal shows them inert. The value read back is the same.
TERMINAL_UNSAFE = {
    c: f"\\u{c:04x}"
    for c in [*range(0x80, 0xA0), 0x61C, *range(0x200B, 0x2010), *range(0x2028, 0x202F), *range(0x2066, 0x206A), 0xFEFF]
}


def dumps(record: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON. Strings that are not valid Unicode (lone surrogates from hostile
    bytes) are written as ``\\uXXXX`` escapes, so the output is always valid UTF-8; so are the
    characters of :data:`TERMINAL_UNSAFE`."""
    try:
        s = _dumps(record)
        if not s.isascii():
            s = s.translate(TERMINAL_UNSAFE)
        return s.encode("utf-8")
    except UnicodeEncodeError:
        return _dumps_ascii(record).encode("ascii")


def new_id() -> str:
    """A 128-bit random id as 32 lowercase hex digits (as in the seed's records)."""
    return os.urandom(16).hex()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def make(cmd: str, nodename: str, fields: dict[str, Any], *, at_ms: int | None = None) -> dict[str, Any]:
    """A new record: envelope first (so ``head`` output reads well), then the type's fields."""
    rec: dict[str, Any] = {
        "created_at_ms": str(now_ms() if at_ms is None else at_ms),
        "id": new_id(),
        "cmd": cmd,
        "nodename": nodename,
        "v": SCHEMA_VERSION,
    }
    for k, v in fields.items():
        if k in rec:
            raise ValueError(f"event field {k!r} collides with the envelope")
        rec[k] = v
    return rec


def encode(record: dict[str, Any]) -> bytes:
    """One RFC 7464 record: ``0x1E <json> 0x0A``. The JSON never contains a raw RS or LF."""
    return RS + dumps(record) + LF


def encode_plain(record: dict[str, Any]) -> bytes:
    """One JSON Lines record (``--lines``): ``<json> 0x0A``."""
    return dumps(record) + LF
