"""What one step of an action on one miner came to (:class:`Outcome`), and the network errors
every transport classifies the same way (:func:`net_error`). Results: see
:mod:`minectl_py.admin.transports`."""

from __future__ import annotations

import http.client
import socket
from dataclasses import dataclass, field
from typing import Any

MAX_REPLY = 1 << 20
MAX_OUTPUT = 64 * 1024
#: every result an action on one miner can have (docs/events.md, docs/runbook.md)
RESULTS = ("ok", "fail", "denied", "auth", "nocred", "unreachable", "timeout", "lost", "unsupported", "hostkey")
#: results after which the next transport in the chain is tried
FALL_THROUGH = frozenset({"denied", "auth", "nocred", "unreachable", "unsupported"})


@dataclass(slots=True)
class Outcome:
    result: str
    transport: str | None = None
    detail: str = ""
    output: str | None = None  # exec stdout, pools listing
    exit_status: int | None = None
    data: Any = None
    tried: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result == "ok"


def short(text: Any, n: int = 200) -> str:
    s = str(text).replace("\n", " ").strip()
    return s if len(s) <= n else s[: n - 1] + "…"


class ConnectTimeout(TimeoutError):
    """The TCP connect itself timed out: nothing was sent."""


def net_error(e: BaseException, transport: str, sent: bool) -> Outcome:
    if isinstance(e, ConnectionRefusedError):
        return Outcome("unreachable", transport, "connection refused")
    if isinstance(e, ConnectTimeout):
        return Outcome("unreachable", transport, "connect timed out")
    if isinstance(e, (TimeoutError, socket.timeout)):
        return (
            Outcome("timeout", transport, "no answer in time")
            if sent
            else Outcome("unreachable", transport, "connect timed out")
        )
    if isinstance(e, (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected, EOFError)):
        if not sent:
            return Outcome("unreachable", transport, "connection reset before the request was sent")
        return Outcome("lost", transport, "connection lost after the request was sent: the miner may have acted")
    if isinstance(e, OSError):
        return Outcome("unreachable", transport, short(e.strerror or e))
    return Outcome("fail", transport, short(f"{type(e).__name__}: {e}"))
