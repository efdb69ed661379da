"""The fields reductions read from a record, decoded straight from JSON bytes.

A record is decoded into :class:`Rec` (with :mod:`msgspec`), which keeps only the fields
some reduction reads and skips the rest (boards, pools, digests) without building Python
objects for them: three to four times faster than a full parse, which is what keeps the
reduction near the speed of decompression. Records that arrive as dicts (follow mode,
the temporal index) go through :func:`from_dict`; both ways give the same :class:`Rec`.

A record whose fields have the wrong types (``hashrate_ths: "abc"``) fails validation and
is counted as invalid with msgspec's message naming the field (``$.miner.hashrate_ths``).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

Str = str | None
Num = float | None
#: epoch ms as JSON decodes it and as a dict converts: 64-bit (a bigger int is invalid both ways)
Time = str | Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)] | None


class PollMiner(msgspec.Struct, gc=False):
    """The poll's miner fields the hashrate reduction reads."""

    mac: Str = None
    model: Str = None
    hashrate_ths: Num = None
    nominal_ths: Num = None
    rack: Str = None


class Miner(PollMiner, gc=False):
    """...and those the other reductions read too."""

    temp_max: Num = None
    fans: list[float] | None = None
    uptime_s: Num = None


class HashRec(msgspec.Struct, gc=False):
    """What the hashrate reduction (and the engine, and learning where miners are) reads:
    decoding only these is a third faster than :class:`Rec` (fewer strings and lists built)."""

    created_at_ms: Time = None
    cmd: Str = None
    mac: Str = None
    ip: Str = None
    miner: PollMiner | None = None
    rack: Str = None
    name: Str = None
    hostname: Str = None
    action: Str = None


class Rec(HashRec, gc=False):
    """Every field some reduction reads: :class:`HashRec`'s (``miner`` with all of
    :class:`Miner`) and the rest."""

    miner: Miner | None = None
    id: Str = None
    reason: Str = None
    detail: Str = None
    user: Str = None
    target: Str = None
    result: Str = None
    rule: Str = None
    state: Str = None
    severity: Str = None


decoder = msgspec.json.Decoder(Rec)
decode = decoder.decode
decode_lines = decoder.decode_lines
ValidationError = msgspec.ValidationError
DecodeError = msgspec.DecodeError
_DECODERS: dict[type, Any] = {Rec: decoder, HashRec: msgspec.json.Decoder(HashRec)}


def decoder_for(rec_type: type) -> Any:
    """The JSON decoder of one record type (:class:`Rec` or :class:`HashRec`)."""
    return _DECODERS[rec_type]


def from_dict(d: dict[str, Any], rec_type: type = Rec) -> Any:
    """A record read as a dict (follow, index) as a ``rec_type``; ValidationError if a field it
    keeps has the wrong type."""
    return msgspec.convert(d, rec_type)


def time_ms(rec: Rec) -> int | None:
    t = rec.created_at_ms
    if isinstance(t, int):
        return t
    if t is not None and t.isdigit():
        return int(t)
    return None
