"""JSON through the interpreter's C accelerator (``_json``) without importing :mod:`json`.

``import json`` pulls in ``re``, ``enum`` and ``functools`` (about 6 ms on the controller);
the lease hook runs once per lease change and cannot afford that. ``dumps`` gives exactly the
bytes of :func:`minectl_py.events.record.dumps` (compact, UTF-8, sorted keys optional) and
``loads`` parses any JSON text. Falls back to :mod:`json` when ``_json`` is missing.
"""

from __future__ import annotations

try:
    import _json

    def _constant(name: str) -> float:
        raise ValueError(f"non-standard JSON constant {name}")

    class _Ctx:
        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        parse_constant = staticmethod(_constant)
        memo: dict = {}  # noqa: RUF012 - required attribute of the C scanner's context

    _scan = _json.make_scanner(_Ctx())

    def _default(o: object) -> object:
        raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")

    def _encode(obj: object, ensure_ascii: bool, sort_keys: bool) -> str:
        # The C encoder keeps a markers dict for cycle detection; a fresh one per call.
        esc = _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring
        enc = _json.make_encoder({}, _default, esc, None, ":", ",", sort_keys, False, False)
        return "".join(enc(obj, 0))

    def loads(text: str | bytes) -> object:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        ws = " \t\n\r"
        i = 0
        n = len(text)
        while i < n and text[i] in ws:
            i += 1
        try:
            obj, end = _scan(text, i)
        except StopIteration as e:
            raise ValueError(f"JSON expected at character {e.value}") from None
        while end < n and text[end] in ws:
            end += 1
        if end != n:
            raise ValueError(f"extra data at character {end}")
        return obj

except ImportError:  # pragma: no cover - CPython always has _json
    import json as _jsonmod

    def _encode(obj: object, ensure_ascii: bool, sort_keys: bool) -> str:
        return _jsonmod.dumps(obj, ensure_ascii=ensure_ascii, sort_keys=sort_keys, separators=(",", ":"))

    def loads(text: str | bytes) -> object:
        return _jsonmod.loads(text)


#: As ``minectl_py.events.record.TERMINAL_UNSAFE`` (a test keeps them equal): C1 controls, bidi,
#: zero-width and line-separator characters are written as ``\\uXXXX`` escapes.
TERMINAL_UNSAFE = {
    c: f"\\u{c:04x}"
    for c in [*range(0x80, 0xA0), 0x61C, *range(0x200B, 0x2010), *range(0x2028, 0x202F), *range(0x2066, 0x206A), 0xFEFF]
}


def dumps(obj: object, *, sort_keys: bool = False) -> bytes:
    """Compact UTF-8 JSON; strings that are not valid Unicode (lone surrogates) are escaped,
    and so are the characters a terminal may act on (:data:`TERMINAL_UNSAFE`)."""
    try:
        s = _encode(obj, False, sort_keys)
        if not s.isascii():
            s = s.translate(TERMINAL_UNSAFE)
        return s.encode("utf-8")
    except UnicodeEncodeError:
        return _encode(obj, True, sort_keys).encode("ascii")
