"""The cgminer-family API on TCP 4028, as firmware does it.

One request per connection: a single read of at most 4095 bytes, JSON when the first byte
is ``{`` else ``command|parameter`` text, the reply, a NUL byte, close. Joined commands
(``summary+pools``) where the personality allows them, privileged commands gated by the
personality's access rules (``Access denied`` on stock Antminers), STATUS codes and
messages as cgminer's ``api.c`` has them. Transport faults (slow, hanging, truncated,
garbage, invalid_json) are applied here; dead/refusing are listener states (``fleet.py``).
"""

from __future__ import annotations

import json
import random
import time
from typing import TYPE_CHECKING, Any

from minectl_py.sim import replies
from minectl_py.sim.profiles import SimMiner, SimPool

if TYPE_CHECKING:
    from minectl_py.sim.fleet import Fleet

MAX_REQUEST = 4095
WRITE_COMMANDS = frozenset(
    {
        "switchpool",
        "addpool",
        "removepool",
        "enablepool",
        "disablepool",
        "poolpriority",
        "restart",
        "quit",
        "save",
        "ascidentify",
        "privileged",
        "pause",
        "resume",
        "zero",
    }
)
_compact = json.JSONEncoder(separators=(",", ":")).encode
_spaced = json.JSONEncoder().encode  # the S19 fixtures have python-style spacing


def parse_request(data: bytes) -> tuple[str | None, str | None, dict[str, Any], int]:
    """-> (command, parameter, the JSON object or {}, error code or 0). Never raises."""
    text = data.split(b"\0", 1)[0].decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            return None, None, {}, 23
        if not isinstance(obj, dict):
            return None, None, {}, 23
        cmd = obj.get("command", obj.get("cmd"))
        if obj.get("enc") == 1:  # Whatsminer encrypted privileged command
            return "", None, obj, 0
        if not isinstance(cmd, str):
            return None, None, obj, 24
        par = obj.get("parameter")
        if isinstance(par, bool) or par is None:
            par = None
        elif isinstance(par, (int, float)):
            par = str(par)
        elif not isinstance(par, str):
            par = None
        return cmd.strip(), par, obj, 0
    cmd, sep, par = text.partition("|")
    return cmd.strip(), (par if sep else None), {}, 0


def to_text(reply: Any) -> str:
    """cgminer's plain-text form: ``STATUS=S,When=..,Code=..,Msg=..|SECTION,k=v,...|``."""
    if isinstance(reply, str):
        return reply
    out: list[str] = []

    def esc(v: Any) -> str:
        if isinstance(v, bool):
            v = "true" if v else "false"
        s = str(v)
        for ch in ("\\", "|", ",", "="):
            s = s.replace(ch, "\\" + ch)
        return s

    def section(name: str, items: Any) -> None:
        if isinstance(items, dict):
            items = [items]
        for it in items or []:
            if not isinstance(it, dict):
                continue
            keys = list(it)
            first = keys[0] if keys else ""
            lead = "" if first.upper() == name.upper() else f"{name},"
            out.append(lead + ",".join(f"{k}={esc(v)}" for k, v in it.items() if not isinstance(v, (list, dict))))

    st = reply.get("STATUS")
    if isinstance(st, list):
        section("STATUS", st)
    elif isinstance(st, str):
        out.append(f"STATUS={esc(st)}," + ",".join(f"{k}={esc(v)}" for k, v in reply.items() if k != "STATUS"))
    for k, v in reply.items():
        if k in ("STATUS", "id"):
            continue
        if isinstance(v, list) and v and isinstance(v[0], dict) and "STATUS" in v[0]:
            out.append(f"CMD={k}")  # joined reply
            out.append(to_text(v[0]).rstrip("|"))
        else:
            section(k, v)
    return "|".join(out) + "|"


def encode(m: SimMiner, reply: Any, as_json: bool) -> bytes:
    if not as_json:
        return to_text(reply).encode("utf-8", "replace")
    if isinstance(reply, str):  # RESTART / BYE
        return _compact({"STATUS": reply, "id": 1}).encode()
    if m.key == "s19":
        return _spaced(reply).encode()
    text = _compact(reply)
    if m.key == "s9":
        text = text.replace('},{"STATS":0,', '}{"STATS":0,', 1)  # bmminer's missing comma
    return text.encode("utf-8", "replace")


def respond(fleet: Fleet, m: SimMiner, data: bytes) -> tuple[bytes | None, float, Any]:
    """The bytes to send for one request -> (body or None to hang, delay in s, after-send callable)."""
    now = time.time()
    faults = m.faults
    if "hanging" in faults:
        return None, float(faults["hanging"].get("hold", 600)), None
    cmd, par, obj, err = parse_request(data[:MAX_REQUEST])
    if "dying" in faults and cmd != faults["dying"].get("spare"):  # request read, then closed without a byte
        return b"", 0.0, None
    as_json = data.lstrip()[:1] == b"{"
    after = None
    if err:
        msg = {23: "Invalid JSON", 24: "Missing JSON 'command'"}[err]
        reply: Any = replies.error(m, now, err, msg)
    else:
        reply, after = dispatch(fleet, m, cmd or "", par, obj, now)
    body = encode(m, reply, as_json)
    body = _fault_body(m, body) if faults else body + b"\0"
    delay = float(faults["slow"].get("delay", 5)) if "slow" in faults else 0.0
    return body, delay, after


def _fault_body(m: SimMiner, body: bytes) -> bytes:
    f = m.faults
    if "truncated" in f:
        return body[: max(1, len(body) // 2)]  # cut mid-reply, no NUL
    if "garbage" in f:
        rng = random.Random(m.seed ^ len(body))
        return bytes(rng.randrange(256) for _ in range(min(len(body), 300))) + b"\0"
    if "invalid_json" in f:
        half = len(body) // 2
        return body[:half] + b'"{:' + body[half:] + b"\0"
    return body + b"\0"


def dispatch(fleet: Fleet, m: SimMiner, cmd: str, par: str | None, obj: dict, now: float) -> tuple[Any, Any]:
    """-> (reply, callable to run after the reply is sent or None)."""
    if m.key == "btminer" and obj.get("enc") == 1:
        from minectl_py.sim import btminer

        return btminer.privileged(fleet, m, obj.get("data"), now)
    if "+" in cmd:
        return _joined(m, cmd, now), None
    if obj.get("new_api") and m.key == "s19" and cmd == "stats":
        return replies.stats_new_api(m, now, replies.sample(m, now)), None
    if cmd in WRITE_COMMANDS:
        if m.key == "btminer":  # its write API takes only encrypted commands (btminer.py)
            return replies.error(m, now, 45, "can't access write cmd"), None
        if not m.write_access:
            return replies.error(m, now, 45, f"Access denied to '{cmd}' command"), None
        return _write(fleet, m, cmd, par, now)
    if cmd == "check":
        exists = par is not None and (par in WRITE_COMMANDS or _exists(m, par))
        access = exists and (m.write_access or _readable(m, par or ""))
        item = {"Exists": "Y" if exists else "N", "Access": "Y" if access else "N"}
        return {"STATUS": replies.status(m, now, 72, "Check command"), "CHECK": [item], "id": 1}, None
    if cmd == "get_token" and m.key == "btminer":
        from minectl_py.sim import btminer

        return btminer.token(m, now), None
    if not _exists(m, cmd):
        if m.key == "btminer":
            return replies.error(m, now, 14, "invalid cmd"), None
        return replies.error(m, now, 14, "Invalid command"), None
    if not _readable(m, cmd):
        return replies.error(m, now, 45, f"Access denied to '{cmd}' command"), None
    return replies.read_command(m, cmd, now), None


def _exists(m: SimMiner, cmd: str) -> bool:
    return cmd in replies.COMMON or cmd in replies.EXTRA.get(m.key, {})


def _readable(m: SimMiner, cmd: str) -> bool:
    groups = m.profile.read_groups
    return m.write_access or groups is None or cmd in groups


def _joined(m: SimMiner, cmd: str, now: float) -> Any:
    if not m.profile.joinable:
        return replies.error(m, now, 14, "Invalid command")
    out: dict[str, Any] = {}
    for part in cmd.split("+"):
        part = part.strip()
        if not part or part in out:
            continue
        if not _exists(m, part) and part not in WRITE_COMMANDS:
            out[part] = [replies.error(m, now, 14, "Invalid command")]
        elif (part not in replies.JOINABLE and part not in replies.JOINABLE_EXTRA) or not _readable(m, part):
            out[part] = [replies.error(m, now, 45, f"Access denied to '{part}' command")]
        else:
            out[part] = [replies.read_command(m, part, now)]
    out["id"] = 1
    return out


def _pool_index(m: SimMiner, par: str | None, now: float) -> tuple[int | None, Any]:
    if par is None or not par.strip():
        return None, replies.error(m, now, 25, "Missing pool id parameter")
    try:
        i = int(par.strip())
    except ValueError:
        i = -1
    if not 0 <= i < len(m.pools):
        return None, replies.error(m, now, 26, f"Invalid pool id {i} - range is 0 - {len(m.pools) - 1}")
    return i, None


def _ok(m: SimMiner, now: float, code: int, msg: str, sev: str = "S") -> dict[str, Any]:
    return {"STATUS": replies.status(m, now, code, msg, sev), "id": 1}


def _write(fleet: Fleet, m: SimMiner, cmd: str, par: str | None, now: float) -> tuple[Any, Any]:
    if cmd == "restart":
        return "RESTART", lambda: fleet.restart(m)
    if cmd == "quit":
        return "BYE", lambda: fleet.quit(m)
    if cmd == "privileged":
        return _ok(m, now, 46, "Privileged access OK, welcome"), None
    if cmd == "save":
        return _ok(m, now, 44, f"Configuration saved to file '/config/{m.key}.conf'"), None
    if cmd == "zero":
        return _ok(m, now, 96, "Zeroed all stats"), None
    if cmd in ("pause", "resume"):
        m.sleeping = cmd == "pause"
        return _ok(m, now, 210 if cmd == "pause" else 211, "Mining paused" if m.sleeping else "Mining resumed"), None
    if cmd == "ascidentify":
        if m.key != "cgminer":
            return _ok(m, now, 114, f"ASC{par or 0} does not support identify", "W"), None
        fleet.set_led(m, True, duration=float(fleet.spec.identify_seconds))
        return _ok(m, now, 113, f"Identify command sent to ASC{par or 0}"), None
    if cmd == "addpool":
        parts = [p.strip() for p in (par or "").split(",")]
        if not par or not parts[0]:
            return replies.error(m, now, 52, "Missing addpool details"), None
        if len(parts) < 2 or ("://" not in parts[0] and ":" not in parts[0]):
            return replies.error(m, now, 53, f"Invalid addpool details '{par[:200]}'"), None
        m.pools.append(SimPool(url=parts[0], user=parts[1], password=parts[2] if len(parts) > 2 else ""))
        return _ok(m, now, 55, f"Added pool {len(m.pools) - 1}: '{parts[0]}'"), None
    if cmd == "poolpriority":
        try:
            order = [int(x) for x in (par or "").split(",") if x.strip()]
        except ValueError:
            order = []
        if not order or len(set(order)) != len(order) or any(not 0 <= i < len(m.pools) for i in order):
            return replies.error(m, now, 74, f"Invalid pool priority '{(par or '')[:200]}'"), None
        rest = [i for i in range(len(m.pools)) if i not in order]
        m.pools = [m.pools[i] for i in order + rest]
        return _ok(m, now, 73, "Changed pool priorities"), None
    i, err = _pool_index(m, par, now)
    if err is not None:
        return err, None
    assert i is not None
    pool = m.pools[i]
    if cmd == "switchpool":
        pool.enabled = True
        m.pools.insert(0, m.pools.pop(i))
        return _ok(m, now, 27, f"Switching to pool {i}:'{pool.url}'"), None
    if cmd == "enablepool":
        if pool.enabled:
            return _ok(m, now, 49, f"Pool {i}:'{pool.url}' already enabled", "I"), None
        pool.enabled = True
        return _ok(m, now, 47, f"Enabling pool {i}:'{pool.url}'"), None
    if cmd == "disablepool":
        if not pool.enabled:
            return _ok(m, now, 50, f"Pool {i}:'{pool.url}' already disabled", "I"), None
        if sum(1 for p in m.pools if p.enabled) <= 1:
            return replies.error(m, now, 51, f"Cannot disable last active pool {i}:'{pool.url}'"), None
        pool.enabled = False
        return _ok(m, now, 48, f"Disabling pool {i}:'{pool.url}'"), None
    # removepool
    if len(m.pools) <= 1:
        return replies.error(m, now, 66, "Cannot remove last pool"), None
    if i == m.active_pool():
        return replies.error(m, now, 67, f"Cannot remove active pool {i}:'{pool.url}'"), None
    m.pools.pop(i)
    return _ok(m, now, 68, f"Removed pool {i}:'{pool.url}'"), None
