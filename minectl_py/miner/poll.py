"""Poll one miner: the fewest connections that get its stats, then the normalized model.

The first contact sends one joined command (``version+summary+pools+stats+devs+devdetails``).
Firmware that joins (cgminer, bmminer S9, btminer, bosminer) answers everything at once
and tells us its family; stock S19 firmware refuses joins (``Invalid command``), so we send
``stats`` and ``pools`` on two parallel connections. The plan is returned so the caller can
reuse it next time (one connection per poll for most firmware).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

from minectl_py.miner import api
from minectl_py.miner.model import MinerData
from minectl_py.miner.normalize import NormalizeError, detect, normalize

FIRST = "version+summary+pools+stats+devs+devdetails"
#: plan name -> (commands, each on its own connection; the family for normalize)
PLANS: dict[str, tuple[tuple[str, ...], str]] = {
    "antminer": (("stats", "pools"), "antminer"),
    "antminer_joined": (("version+stats+pools+summary",), "antminer"),
    "btminer": (("version+summary+pools+devs+devdetails",), "btminer"),
    "bosminer": (("version+summary+pools+devs+devdetails+fans+temps",), "bosminer"),
    "cgminer": (("version+summary+pools+devs+devdetails",), "cgminer"),
}


@dataclass(slots=True)
class PollResult:
    ip: str
    ok: bool
    data: MinerData | None = None
    reason: str = ""
    detail: str = ""
    elapsed_ms: int = 0
    digest: str = ""
    plan: str | None = None  # what to pass next time


@dataclass(slots=True)
class Options:
    port: int = api.DEFAULT_PORT
    connect_timeout: float = api.DEFAULT_CONNECT_TIMEOUT
    timeout: float = api.DEFAULT_TIMEOUT
    max_bytes: int = api.DEFAULT_MAX_BYTES


async def _many(ip: str, cmds: tuple[str, ...], o: Options) -> list[api.Reply]:
    loop = asyncio.get_running_loop()
    calls = []
    for c in cmds:
        call = api._Call(loop, api.request_bytes(c), o.timeout, o.max_bytes)
        call.start(ip, o.port, o.connect_timeout)
        calls.append(call)
    try:
        return [await c.fut for c in calls]
    except asyncio.CancelledError:
        for c in calls:
            c.cancel()
        raise


def _sections(cmd: str, rep: api.Reply) -> dict[str, Any]:
    if "+" in cmd:
        return api.split_joined(rep.data)
    return {cmd: rep.data}


async def poll_miner(ip: str, plan: str | None = None, opts: Options | None = None) -> PollResult:
    """Poll ``ip``; never raises for anything the miner does."""
    o = opts or Options()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    digest = hashlib.sha256()
    sections: dict[str, Any] = {}
    if plan not in PLANS:
        (rep,) = await _many(ip, (FIRST,), o)
        digest.update(rep.raw)
        if rep.ok:
            sections = api.split_joined(rep.data)
            fam = detect(sections)
            plan = "antminer_joined" if fam == "antminer" else fam
            first = set(FIRST.split("+"))
            if any(set(c.split("+")) - first for c in PLANS[plan][0]):
                sections = {}  # the family has more to say (bosminer fans, temps)
        elif rep.reason == "error" and rep.status.get("Code") == 14:
            plan = "antminer"  # stock S19: joins are an invalid command
        else:
            return PollResult(ip, False, reason=rep.reason, detail=rep.detail, elapsed_ms=rep.elapsed_ms)
    cmds, family = PLANS[plan]
    if not sections:
        reps = await _many(ip, cmds, o)
        for c, rep in zip(cmds, reps, strict=True):
            digest.update(rep.raw)
            if not rep.ok:
                ms = int((loop.time() - t0) * 1000)
                keep = plan if rep.reason not in ("error", "invalid_json") else None
                return PollResult(ip, False, reason=rep.reason, detail=f"{c}: {rep.detail}", elapsed_ms=ms, plan=keep)
            sections.update(_sections(c, rep))
    ms = int((loop.time() - t0) * 1000)
    try:
        data = normalize(sections, family)
    except (NormalizeError, ValueError, TypeError, KeyError, AttributeError) as e:
        return PollResult(ip, False, reason="unexpected", detail=str(e)[:200], elapsed_ms=ms)
    return PollResult(ip, True, data=data, elapsed_ms=ms, digest=digest.hexdigest(), plan=plan)
