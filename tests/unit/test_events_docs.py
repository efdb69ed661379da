"""docs/events.md documents every event type and every field of minectl_py/events/model.py."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from minectl_py.events import model

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def sections(text: str) -> dict[str, str]:
    """``## name`` heading (first word, backticks dropped) -> the text up to the next one."""
    out: dict[str, str] = {}
    parts = re.split(r"^## +(.+)$", text, flags=re.M)
    for head, body in zip(parts[1::2], parts[2::2], strict=True):
        out[head.strip().strip("`").split()[0].strip("`").lower()] = body
    return out


def documented(body: str) -> set[str]:
    return set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", body))


def test_every_type_and_field_is_in_docs_events_md():
    secs = sections(DOC.read_text())
    problems = []
    envelope = documented(secs.get("envelope", ""))
    for name in ("created_at_ms", "id", "cmd", "nodename", "v"):
        if name not in envelope:
            problems.append(f"the '## Envelope' section lacks `{name}`")
    base = {f.name for f in dataclasses.fields(model.Event)}
    for cmd, cls in sorted(model.TYPES.items()):
        body = secs.get(cmd.lower())
        own = [f.name for f in dataclasses.fields(cls) if f.name not in base]
        if body is None:
            problems.append(
                f"type {cmd!r} ({cls.__module__}.{cls.__name__}) has no '## {cmd}' section; add one with a table "
                f"row per field: {', '.join(own)}"
            )
            continue
        missing = [n for n in own if n not in documented(body)]
        if missing:
            rows = "\n".join(f"    | `{n}` | <type> | <meaning> |" for n in missing)
            problems.append(
                f"'## {cmd}' in docs/events.md does not document {', '.join(missing)} "
                f"(fields of {cls.__name__} in minectl_py/events/model.py); add rows like:\n{rows}"
            )
    assert not problems, "docs/events.md is behind model.py:\n- " + "\n- ".join(problems)


def test_the_check_notices_a_missing_field(monkeypatch):
    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Extra(model.Poll):
        brand_new_field: int = 0

    monkeypatch.setitem(model.TYPES, "poll", Extra)
    try:
        test_every_type_and_field_is_in_docs_events_md()
    except AssertionError as e:
        assert "brand_new_field" in str(e) and "'## poll'" in str(e)
    else:  # pragma: no cover - the check is broken
        raise AssertionError("an undocumented field went unnoticed")
