"""The simulator's control API: one JSON request per line on a Unix socket, one JSON reply.

Requests: ``{"op": "list"}``, ``{"op": "show", "ip": IP}``,
``{"op": "fault", "ip": IP, "fault": NAME, "params": {...}}``, ``{"op": "clear", "ip": IP[, "fault": NAME]}``,
``{"op": "reboot", "ip": IP[, "seconds": S]}``, ``{"op": "restart", "ip": IP}``,
``{"op": "set", "ip": IP, "write_access": BOOL}``. ``ip`` may be ``"*"`` for every miner (fault/clear).
Replies: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from minectl_py.sim.fleet import Fleet

ENV = "MINECTL_SIM_CONTROL"
DEFAULT_PATH = "/run/minectl-sim.sock"


def default_path() -> str:
    return os.environ.get(ENV) or DEFAULT_PATH


def execute(fleet: Fleet, req: Any) -> Any:
    if not isinstance(req, dict):
        raise ValueError("request must be a JSON object")
    op = req.get("op")
    ip = req.get("ip")
    if op == "list":
        return [{"ip": m.ip, "personality": m.key, "mac": m.mac, "faults": sorted(m.faults)} for m in fleet.miners]
    if op in ("fault", "clear") and ip == "*":
        return [execute(fleet, {**req, "ip": m.ip})["ip"] for m in fleet.miners]
    if not isinstance(ip, str):
        raise ValueError("missing 'ip'")
    if op == "show":
        return fleet.show(ip)
    if op == "fault":
        params = req.get("params") or {}
        if not isinstance(params, dict):
            raise ValueError("'params' must be an object")
        return fleet.fault(ip, str(req.get("fault")), **params)
    if op == "clear":
        f = req.get("fault")
        return fleet.clear(ip, str(f) if f else None)
    if op == "reboot":
        s = req.get("seconds")
        fleet.reboot(fleet.miner(ip), float(s) if s is not None else None)
        return fleet.show(ip)
    if op == "restart":
        fleet.restart(fleet.miner(ip))
        return fleet.show(ip)
    if op == "set":
        m = fleet.miner(ip)
        if "write_access" in req:
            m.write_access = bool(req["write_access"])
        return fleet.show(ip)
    raise ValueError(f"unknown op {op!r:.40}; known: list, show, fault, clear, reboot, restart, set")


async def _client(fleet: Fleet, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            try:
                out = {"ok": True, "result": execute(fleet, json.loads(line))}
            except (ValueError, KeyError, TypeError) as e:
                out = {"ok": False, "error": str(e).strip("'\"")}
            writer.write(json.dumps(out).encode() + b"\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def serve(fleet: Fleet, path: str) -> asyncio.AbstractServer:
    if os.path.exists(path):
        try:  # a live simulator already owns it?
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)
            raise OSError(f"control socket {path} is in use by another simulator")
        except ConnectionRefusedError:
            os.unlink(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    srv = await asyncio.start_unix_server(lambda r, w: _client(fleet, r, w), path=path)
    os.chmod(path, 0o660)
    return srv


def request(path: str, req: dict[str, Any], timeout: float = 10.0) -> Any:
    """Send one request to a running simulator; returns ``result`` or raises RuntimeError."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        try:
            s.connect(path)
        except OSError as e:
            raise RuntimeError(f"no simulator control socket at {path}: {e.strerror}") from None
        s.sendall(json.dumps(req).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    try:
        out = json.loads(buf)
    except ValueError:
        raise RuntimeError(f"bad reply from the simulator: {buf[:200]!r}") from None
    if not out.get("ok"):
        raise RuntimeError(out.get("error") or "failed")
    return out["result"]
