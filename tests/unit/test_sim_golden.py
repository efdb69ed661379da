"""The simulator's replies pinned byte for byte, per firmware personality.

The pyasic test, the protocol tests and the site scenario depend on the exact replies, so a
change to the simulator's code that is meant to keep its behaviour (a refactor) must keep
every byte: this test replays each read command of each personality for a fixed seed and
clock (healthy, and with the state faults) and compares the encoded bodies (JSON and the
plain-text form) with ``golden/sim_replies.json``. The replies of ``summary``, ``stats``,
``pools`` and ``devs`` are kept whole (a failure shows the difference); the others by digest.

A change that is meant to alter replies regenerates the file:
``MINECTL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_sim_golden.py``
and the diff of the file is then part of the review.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from minectl_py.sim import apiserver, replies
from minectl_py.sim.fleet import make_miner
from minectl_py.sim.profiles import PROFILES
from minectl_py.sim.spec import FleetSpec, MinerSpec, finish

GOLDEN = Path(__file__).parent / "golden" / "sim_replies.json"
NOW = 1_790_000_000.0  # a fixed clock
UP = 86_400 + 3_601  # seconds the mining software has run
SEED = 42
WHOLE = ("summary", "stats", "pools", "devs")
VARIANTS = {"healthy": "", "faulty": "hot,board_failed,fan_failed,low_hashrate"}


def _requests(key: str) -> list[tuple[str, str | None, dict]]:
    reads = sorted(set(replies.COMMON) | set(replies.EXTRA.get(key, {})))
    out: list[tuple[str, str | None, dict]] = [(c, None, {}) for c in reads]
    out += [
        ("summary+pools+devs", None, {}),
        ("version+fans+restart+nosuch", None, {}),
        ("check", "stats", {}),
        ("check", "restart", {}),
        ("nosuch", None, {}),
        ("stats", None, {"new_api": True}),
    ]
    return out


def _bodies() -> dict[str, str]:
    """Every pinned body, by ``personality/variant/command[/parameter][/new_api]/form``."""
    out: dict[str, str] = {}
    for key in PROFILES:
        for variant, faults in VARIANTS.items():
            for cmd, par, obj in _requests(key):
                for as_json in (True, False) if "+" not in cmd else (True,):  # joined: JSON only
                    # a fresh miner per request: a reply does not depend on the ones before it
                    ms = MinerSpec(ip="10.9.0.1", personality=key)
                    ms.faults = {f: {} for f in faults.split(",") if f}
                    m = make_miner(finish(FleetSpec(miners=[ms], seed=SEED)), 0)
                    m.started_at = NOW - UP
                    reply, after = apiserver.dispatch(None, m, cmd, par, obj, NOW)  # type: ignore[arg-type]
                    assert after is None
                    try:
                        body = apiserver.encode(m, reply, as_json).decode("utf-8")
                    except TypeError as e:  # pinned too: Whatsminer's object STATUS has no text form
                        body = f"<{type(e).__name__}: {e}>"
                    name = "/".join(
                        x
                        for x in (key, variant, cmd, par, "new_api" if obj else None, "json" if as_json else "text")
                        if x
                    )
                    whole = cmd in WHOLE and as_json and variant == "healthy" and not obj
                    out[name] = body if whole else hashlib.sha256(body.encode()).hexdigest()
    return out


def test_every_personality_answers_as_pinned():
    got = _bodies()
    if os.environ.get("MINECTL_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        pytest.skip("golden file rewritten")
    want = json.loads(GOLDEN.read_text())
    assert sorted(got) == sorted(want)
    for name in sorted(want):
        assert got[name] == want[name], name


def test_the_pins_cover_each_personality_and_differ_between_them():
    """The golden is not vacuous: every personality is pinned, and their bodies differ."""
    want = json.loads(GOLDEN.read_text())
    for key in PROFILES:
        assert f"{key}/healthy/summary/json" in want
        assert want[f"{key}/healthy/summary/json"] != want[f"{key}/faulty/summary/json"]
    summaries = {want[f"{k}/healthy/summary/json"] for k in PROFILES}
    assert len(summaries) == len(PROFILES)
