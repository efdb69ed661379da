"""An asyncio client for the cgminer-family API (TCP 4028): one request per connection.

Built for polling thousands of miners from one process: no streams, no tasks per request,
just a non-blocking socket driven by loop callbacks, a connect timer, a reply timer and a
size cap. It never raises on what a miner sends or does: every outcome is a
:class:`Reply` whose ``reason`` classifies the failure (see ``REASONS``).

Known firmware JSON bugs are repaired (``repair``): bmminer's ``}{`` between stats objects,
``[,{``, trailing ``,}``, raw newlines, ``""key`` missing commas, bare ``inf``/``nan``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import re
import resource
import socket
import time
from dataclasses import dataclass, field
from typing import Any

#: every failure reason a Reply can carry
REASONS = (
    "refused",  # connection refused (port closed: rebooting, API off)
    "connect_timeout",  # no answer to the connect (host down, filtered, dead)
    "unreachable",  # no route / host unreachable
    "timeout",  # connected, but the reply did not complete in time
    "reset",  # connection reset by the miner
    "empty",  # closed without a byte (e.g. our address is not in api-allow)
    "truncated",  # reply cut short (no NUL terminator, JSON incomplete)
    "garbage",  # bytes that are not a cgminer reply at all
    "invalid_json",  # looks like JSON, cannot be parsed even after repairs
    "too_large",  # reply over the size cap
    "denied",  # STATUS E code 45: Access denied (privileged command on stock firmware)
    "error",  # STATUS E for another reason (invalid command, bad parameter...)
    "oserror",  # any other socket error
)

DEFAULT_PORT = 4028
DEFAULT_CONNECT_TIMEOUT = 3.0
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_BYTES = 1 << 20


@dataclass(slots=True)
class Reply:
    ok: bool
    data: Any = None  # the parsed JSON object
    raw: bytes = b""
    reason: str = ""
    detail: str = ""
    elapsed_ms: int = 0
    repairs: list[str] = field(default_factory=list)

    @property
    def status(self) -> dict[str, Any]:
        return status_of(self.data)


def raise_fd_limit(need: int) -> int:
    """Raise this process's open-file limit towards ``need`` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return soft
    if hard != resource.RLIM_INFINITY and hard < need:
        with contextlib.suppress(ValueError, OSError):  # root (CAP_SYS_RESOURCE) may raise the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            return need
    target = need if hard == resource.RLIM_INFINITY else min(need, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def status_of(data: Any) -> dict[str, Any]:
    """The STATUS entry of a reply, whatever its shape (array, object, plain string)."""
    if not isinstance(data, dict):
        return {}
    st = data.get("STATUS")
    if isinstance(st, list) and st and isinstance(st[0], dict):
        return st[0]
    if isinstance(st, dict):
        return st
    if isinstance(st, str):
        return {"STATUS": st, "Code": data.get("Code"), "Msg": data.get("Msg")}
    return {}


_REPAIRS: list[tuple[str, re.Pattern[bytes], bytes]] = [
    ("}{", re.compile(rb"\}\s*\{"), b"},{"),
    ("[,{", re.compile(rb"\[\s*,\s*\{"), b"[{"),
    (",}", re.compile(rb",\s*([}\]])"), rb"\1"),
    ("newline", re.compile(rb"[\r\n]+"), b""),
    ('""key', re.compile(rb'""(?=[A-Za-z_])'), b'","'),
    ("inf/nan", re.compile(rb"(?<=[:\[,])\s*-?(?:inf|nan|Infinity|NaN)\b", re.I), b"null"),
]


def repair(body: bytes) -> tuple[Any, list[str]]:
    """Parse a reply body, repairing known firmware bugs. Raises ValueError if beyond repair
    (also for JSON nested too deeply to parse: a hostile reply must not crash the poller)."""
    try:
        return _repair(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _repair(body: bytes) -> tuple[Any, list[str]]:
    try:
        return json.loads(body), []
    except ValueError:
        pass
    if b"}{" in body:  # bmminer stats: by far the most common bug, try it alone first
        try:
            return json.loads(body.replace(b"}{", b"},{")), ["}{"]
        except ValueError:
            pass
    applied: list[str] = []
    fixed = body
    if fixed.lstrip().startswith(b","):  # Avalon: reply starts with ,"id":1}
        fixed = b"{" + fixed.lstrip()[1:]
        applied.append("leading ,")
    for name, rx, rep in _REPAIRS:
        new = rx.sub(rep, fixed)
        if new != fixed:
            fixed = new
            applied.append(name)
    return json.loads(fixed), applied


_CONTROL = bytes(c for c in range(32) if c not in (9, 10, 13)) + b"\x7f"


def _printable_ratio(b: bytes) -> float:
    if not b:
        return 0.0
    sample = b[:256]
    return len(sample.translate(None, _CONTROL)) / len(sample)


def classify(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Reply:
    """A complete raw reply (read to EOF) -> Reply. Pure; never raises."""
    if not raw:
        return Reply(False, raw=raw, reason="empty", detail="closed without a reply")
    if len(raw) > max_bytes:
        return Reply(False, raw=raw[:256], reason="too_large", detail=f"over {max_bytes} bytes")
    nul = raw.find(b"\0")
    terminated = nul >= 0
    body = raw[:nul] if terminated else raw
    head = body.lstrip()[:1]
    if head not in (b"{", b",") or _printable_ratio(body) < 0.95:
        if head == b"S" and body.startswith(b"STATUS="):
            return Reply(False, raw=raw, reason="error", detail="text-form reply to a JSON request")
        return Reply(False, raw=raw, reason="garbage", detail=f"starts with {raw[:16]!r}")
    try:
        data, repairs = repair(body)
    except ValueError as e:
        if not terminated:
            return Reply(False, raw=raw, reason="truncated", detail=f"{len(raw)} bytes, no NUL terminator")
        return Reply(False, raw=raw, reason="invalid_json", detail=str(e)[:120])
    if not isinstance(data, dict):
        return Reply(False, raw=raw, reason="invalid_json", detail="not a JSON object")
    st = status_of(data)
    sev = st.get("STATUS")
    if sev in ("E", "F"):
        code = st.get("Code")
        msg = str(st.get("Msg", ""))[:200]
        denied = code == 45 or ("access" in msg.lower() and ("denied" in msg.lower() or "can't" in msg.lower()))
        return Reply(False, data=data, raw=raw, reason="denied" if denied else "error", detail=msg, repairs=repairs)
    return Reply(True, data=data, raw=raw, repairs=repairs)


def request_bytes(command: str, parameter: str | None = None, **extra: Any) -> bytes:
    obj: dict[str, Any] = {"command": command}
    if parameter is not None:
        obj["parameter"] = parameter
    obj.update(extra)
    return json.dumps(obj, separators=(",", ":")).encode()


_ERRNO_REASON = {
    errno.ECONNREFUSED: "refused",
    errno.ECONNRESET: "reset",
    errno.EPIPE: "reset",
    errno.ETIMEDOUT: "connect_timeout",
    errno.EHOSTUNREACH: "unreachable",
    errno.ENETUNREACH: "unreachable",
    errno.EHOSTDOWN: "unreachable",
    errno.ENETDOWN: "unreachable",
}


class _Call:
    """One request on one connection, driven by loop callbacks (no task, no stream)."""

    __slots__ = ("buf", "connected", "fut", "loop", "max_bytes", "payload", "size", "sock", "t0", "timeout", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, payload: bytes, timeout: float, max_bytes: int) -> None:
        self.loop = loop
        self.payload = payload
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.fut: asyncio.Future[Reply] = loop.create_future()
        self.buf: list[bytes] = []
        self.size = 0
        self.connected = False
        self.sock: socket.socket | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.t0 = time.monotonic()

    def start(self, ip: str, port: int, connect_timeout: float) -> None:
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError as e:
            self._fail("oserror", e.strerror or str(e))
            return
        self.sock = s
        s.setblocking(False)
        try:
            s.connect((ip, port))
        except BlockingIOError:
            pass
        except OSError as e:
            self._fail(_ERRNO_REASON.get(e.errno or 0, "oserror"), e.strerror or str(e))
            return
        try:  # often already connected (loopback, LAN): skip a loop iteration and two epoll calls
            s.send(self.payload)
        except (BlockingIOError, InterruptedError):
            self.loop.add_writer(s.fileno(), self._on_connect)
            self.timer = self.loop.call_later(connect_timeout, self._on_timer)
            return
        except OSError as e:
            self._fail(_ERRNO_REASON.get(e.errno or 0, "oserror"), e.strerror or str(e))
            return
        self.connected = True
        self.timer = self.loop.call_later(self.timeout, self._on_timer)
        self.loop.add_reader(s.fileno(), self._on_read)

    def _on_connect(self) -> None:
        s = self.sock
        assert s is not None
        self.loop.remove_writer(s.fileno())
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._fail(_ERRNO_REASON.get(err, "oserror"), errno.errorcode.get(err, str(err)))
            return
        self.connected = True
        if self.timer:
            self.timer.cancel()
        self.timer = self.loop.call_later(self.timeout, self._on_timer)
        try:
            s.send(self.payload)  # < 4 KB into a fresh socket buffer: one send
        except OSError as e:
            self._fail(_ERRNO_REASON.get(e.errno or 0, "oserror"), e.strerror or str(e))
            return
        self.loop.add_reader(s.fileno(), self._on_read)

    def _on_read(self) -> None:
        s = self.sock
        assert s is not None
        try:
            chunk = s.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self._fail(_ERRNO_REASON.get(e.errno or 0, "oserror"), e.strerror or str(e))
            return
        if chunk:
            self.buf.append(chunk)
            self.size += len(chunk)
            if self.size > self.max_bytes:
                self._fail("too_large", f"over {self.max_bytes} bytes")
            return
        raw = b"".join(self.buf)
        self._close()
        rep = classify(raw, self.max_bytes)
        rep.elapsed_ms = int((time.monotonic() - self.t0) * 1000)
        if not self.fut.done():
            self.fut.set_result(rep)

    def _on_timer(self) -> None:
        self.timer = None
        if self.connected:
            self._fail("timeout", f"reply incomplete after {self.timeout:g} s ({self.size} bytes)")
        else:
            self._fail("connect_timeout", "no answer to connect")

    def _close(self) -> None:
        if self.timer:
            self.timer.cancel()
            self.timer = None
        s = self.sock
        if s is not None:
            fd = s.fileno()
            if fd >= 0:
                self.loop.remove_reader(fd)
                self.loop.remove_writer(fd)
            s.close()
            self.sock = None

    def _fail(self, reason: str, detail: str) -> None:
        raw = b"".join(self.buf)[:512]
        self._close()
        if not self.fut.done():
            ms = int((time.monotonic() - self.t0) * 1000)
            self.fut.set_result(Reply(False, raw=raw, reason=reason, detail=detail, elapsed_ms=ms))

    def cancel(self) -> None:
        self._close()


async def send(
    ip: str,
    payload: bytes,
    *,
    port: int = DEFAULT_PORT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Reply:
    """Send raw request bytes, read to EOF, classify."""
    loop = asyncio.get_running_loop()
    call = _Call(loop, payload, timeout, max_bytes)
    call.start(ip, port, connect_timeout)
    try:
        return await call.fut
    except asyncio.CancelledError:
        call.cancel()
        raise


async def command(
    ip: str,
    cmd: str,
    parameter: str | None = None,
    *,
    port: int = DEFAULT_PORT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    **extra: Any,
) -> Reply:
    """One API command (``summary``, ``switchpool`` with parameter ``"1"``, ``summary+pools``...)."""
    return await send(
        ip,
        request_bytes(cmd, parameter, **extra),
        port=port,
        connect_timeout=connect_timeout,
        timeout=timeout,
        max_bytes=max_bytes,
    )


def split_joined(data: Any) -> dict[str, Any]:
    """``{"summary":[{...}],"pools":[{...}],"id":1}`` -> ``{"summary": {...}, "pools": {...}}``.

    A section that failed (its own STATUS E) is left out."""
    out: dict[str, Any] = {}
    if not isinstance(data, dict):
        return out
    for k, v in data.items():
        if k == "id" or not isinstance(v, list) or not v or not isinstance(v[0], dict):
            continue
        sec = v[0]
        if status_of(sec).get("STATUS") in ("E", "F"):
            continue
        out[k] = sec
    return out
