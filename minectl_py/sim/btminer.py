"""The simulated Whatsminer's privileged API: ``get_token`` and encrypted commands.

Password: the miner's ``web_password`` (default ``admin``). A token is valid for 30 minutes.
Commands: ``reboot``, ``restart_btminer``, ``power_off``/``power_on`` (sleep), ``set_led``
(``param: auto`` returns the LED to normal, ``color``/``period``/``duration``/``start`` make it
flash until then; ``duration`` is the lit part of each ``period`` in ms, as MicroBT documents
it), ``update_pools`` (``pool1, worker1, passwd1`` ... ``pool3``),
``set_low_power``/``set_normal_power``/``set_high_power`` (accepted).
Replies are encrypted (``{"enc": "..."}``); errors are plain, as the firmware sends them
(MicroBT's codes): the write API not enabled (``write_access: false``): 45 ``can't access
write cmd``; data that does not decrypt to JSON (a wrong password): 23 ``json error``; a
token that is unknown or older than 30 minutes: 135 ``check token err``.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from minectl_py.miner import whatsminer as wm
from minectl_py.sim.profiles import SimMiner, SimPool

if TYPE_CHECKING:
    from minectl_py.sim.fleet import Fleet

TOKEN_TTL = 1800.0
_SALT = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _key(m: SimMiner) -> str:
    salt = m.extra.setdefault("wm_salt", "".join(random.Random(m.seed).choice(_SALT) for _ in range(8)))
    cached = m.extra.get("wm_key")
    if cached is None or cached[0] != m.web_password:
        cached = (m.web_password, wm.passwd_md5(m.web_password, salt))
        m.extra["wm_key"] = cached
    return cached[1]


def token(m: SimMiner, now: float) -> dict[str, Any]:
    key = _key(m)
    t = str(int(now))[-4:]
    newsalt = "".join(m.rng.choice(_SALT) for _ in range(8))
    tokens: dict[str, float] = m.extra.setdefault("wm_tokens", {})
    for k in [k for k, at in tokens.items() if now - at > TOKEN_TTL][:64]:
        del tokens[k]
    tokens[wm.sign(key, t, newsalt)] = now
    msg = {"time": t, "salt": m.extra["wm_salt"], "newsalt": newsalt}
    return {"STATUS": "S", "When": int(now), "Code": 134, "Msg": msg, "Description": ""}


def _err(now: float, code: int, msg: str) -> dict[str, Any]:
    return {"STATUS": "E", "When": int(now), "Code": code, "Msg": msg, "Description": ""}


def privileged(fleet: Fleet, m: SimMiner, data: Any, now: float) -> tuple[dict[str, Any], Any]:
    if not m.write_access:  # the API's write side is off until enabled (WhatsMinerTool)
        return _err(now, 45, "can't access write cmd"), None
    key = _key(m)
    try:
        cmd = wm.decrypt(key, data if isinstance(data, str) else "")
    except ValueError:
        return _err(now, 23, "json error"), None
    tokens: dict[str, float] = m.extra.get("wm_tokens", {})
    tok = cmd.get("token") if isinstance(cmd, dict) else None
    if not isinstance(tok, str) or now - tokens.get(tok, -1e12) > TOKEN_TTL:
        return _err(now, 135, "check token err"), None
    name = cmd.get("cmd")
    after = None
    ok = {"STATUS": "S", "When": int(now), "Code": 131, "Msg": "API command OK", "Description": ""}
    if name == "reboot":
        after = lambda: fleet.reboot(m)  # noqa: E731
    elif name == "restart_btminer":
        after = lambda: fleet.restart(m)  # noqa: E731
    elif name in ("power_off", "power_on"):
        m.sleeping = name == "power_off"
    elif name == "set_led":
        fleet.set_led(m, cmd.get("param") != "auto")
    elif name == "update_pools":
        pools = [
            SimPool(
                url=str(cmd[f"pool{i}"])[:256],
                user=str(cmd.get(f"worker{i}", ""))[:128],
                password=str(cmd.get(f"passwd{i}", "")),
            )
            for i in (1, 2, 3)
            if cmd.get(f"pool{i}")
        ]
        if not pools:
            return {"enc": wm.encrypt(key, _err(now, 14, "invalid pools"))}, None
        m.pools = pools
    elif name in ("set_low_power", "set_normal_power", "set_high_power"):
        pass
    else:
        return {"enc": wm.encrypt(key, _err(now, 14, "invalid cmd"))}, None
    return {"enc": wm.encrypt(key, ok)}, after
