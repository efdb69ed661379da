"""Loading the site from the state directory (docs/state.md): the edge the views read.

No network: every view works from the state directory alone. Reading goes through
``minectl_py.state.read.load_all`` (the state projection's own reader) when present.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

from minectl_py.admin.fields import ip_key, natural_key, normalize
from minectl_py.admin.health import DEFAULT, Thresholds, level


class StateError(OSError):
    """The state directory cannot be read; the message says why and what to do."""


def _read_raw(state_dir: str) -> list[Mapping[str, Any]]:
    try:
        from minectl_py.state.read import load_all  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        load_all = None
    if load_all is not None:
        got = load_all(state_dir)
        vals = got.values() if isinstance(got, Mapping) else got
        return [v if isinstance(v, Mapping) else _as_dict(v) for v in vals]
    return list(_read_json_files(state_dir))


def _as_dict(v: Any) -> Mapping[str, Any]:
    if hasattr(v, "to_dict"):
        return v.to_dict()  # type: ignore[no-any-return]
    if hasattr(v, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(v)
    return dict(v)


def _read_json_files(state_dir: str) -> Iterable[Mapping[str, Any]]:
    base = os.path.join(state_dir, "miners")
    try:
        names = os.listdir(base)
    except FileNotFoundError:
        return
    for n in names:
        if n.startswith("."):  # writers' scratch folders (docs/state.md)
            continue
        try:
            with open(os.path.join(base, n, "miner.json"), "rb") as f:
                rec = json.loads(f.read())
        except (FileNotFoundError, NotADirectoryError, ValueError):
            continue
        if isinstance(rec, dict):
            rec.setdefault("mac", n)
            yield rec


def check_readable(state_dir: str) -> None:
    """Raise :class:`StateError` (permission or absence) with a clear message."""
    if not os.path.exists(state_dir):
        raise StateError(
            f"state directory {state_dir} does not exist (set MINECTL_STATE_DIR, or is the lease hook installed?)"
        )
    if not os.access(state_dir, os.R_OK | os.X_OK):
        raise PermissionError(f"cannot read the state directory {state_dir}")


def load(state_dir: str, now: float | None = None, thresholds: Thresholds = DEFAULT) -> list[dict[str, Any]]:
    """Every miner, normalized, with its ``health``."""
    check_readable(state_dir)
    now = time.time() if now is None else now
    out = []
    for raw in _read_raw(state_dir):
        m = normalize(raw, now)
        m["health"] = level(m, thresholds)
        out.append(m)
    return out


def default_order(m: Mapping[str, Any]) -> tuple[Any, ...]:
    """Racks, shelves and positions in natural order; then name; then IP."""
    return (
        natural_key(m.get("rack")),
        natural_key(m.get("shelf")),
        natural_key(m.get("position")),
        natural_key(m.get("name") or m.get("hostname")),
        ip_key(m.get("ip")),
    )
