"""Rule actions through minectl's own action engine (:mod:`minectl_py.admin.engine`): the same
transports, fallbacks, credentials and timeouts as ``minectl restart|reboot|pools switch``.
Each result becomes an ``action`` event like an admin's, with ``rule`` set and ``user`` naming
the Unix user the service runs as (``rules:<user>``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from minectl_py import config
from minectl_py.admin.credentials import Credentials
from minectl_py.admin.engine import Options, Result, run_all
from minectl_py.admin.plan import family
from minectl_py.admin.transports import short
from minectl_py.events import record
from minectl_py.rules.engine import ActionRequest

log = logging.getLogger("minectl.rules")

#: rule step -> (minectl action, params from the step)
_MAP: dict[str, Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]] = {
    "restart": lambda p: ("restart", {}),
    "reboot": lambda p: ("reboot", {}),
    "switch_pool": lambda p: ("pools_switch", {"index": int(p["pool"])}),
}


class AdminActuator:
    def __init__(
        self,
        creds: Credentials,
        *,
        user: str,
        nodename: str,
        opts: Options | None = None,
    ) -> None:
        self.creds = creds
        self.user = user
        self.nodename = nodename
        self.opts = opts or Options(timeout=10.0, retries=1, concurrency=20)

    def run(self, requests: list[ActionRequest], miners: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
        groups: dict[tuple[str, str], list[ActionRequest]] = {}
        for rq in requests:
            action, params = _MAP[rq.action](rq.params)
            groups.setdefault((action, repr(sorted(params.items()))), []).append(rq)
        out: list[dict[str, Any]] = []
        for (action, _), rqs in groups.items():
            _, params = _MAP[rqs[0].action](rqs[0].params)
            targets = [dict(miners.get(rq.mac) or {"mac": rq.mac, "ip": rq.ip, "name": rq.name}) for rq in rqs]
            batch = record.new_id()
            try:
                results = run_all(targets, action, params, self.creds, self.opts)
            except Exception as e:  # the engine never raises by contract; a bug must not stop the watchdog
                log.exception("action engine failed for %s", action)
                results = None
                err = f"internal error: {type(e).__name__}: {e}"
            for i, rq in enumerate(rqs):
                if results is not None:
                    out.append(self._record(rq, action, params, batch, results[i]))
                else:
                    out.append(self._failed(rq, action, params, batch, err))
        return out

    def _fields(self, rq: ActionRequest, action: str, params: dict[str, Any], batch: str) -> dict[str, Any]:
        return {
            "user": self.user,
            "action": action,
            "target": rq.ip or "",
            "mac": rq.mac,
            "name": rq.name,
            "params": params or None,
            "batch": batch,
            "rule": rq.rule,
        }

    def _record(self, rq: ActionRequest, action: str, params: dict[str, Any], batch: str, r: Result) -> dict[str, Any]:
        o = r.outcome
        f = self._fields(rq, action, params, batch)
        f.update(
            result=o.result,
            detail=short(o.detail, 300),
            transport=o.transport,
            family=family(r.miner),
            attempts=r.attempts,
            elapsed_ms=r.elapsed_ms,
            tried=o.tried or None,
        )
        return record.make("action", self.nodename, {k: v for k, v in f.items() if v is not None})

    def _failed(self, rq: ActionRequest, action: str, params: dict[str, Any], batch: str, err: str) -> dict[str, Any]:
        f = self._fields(rq, action, params, batch)
        f.update(result="fail", detail=short(err, 300))
        return record.make("action", self.nodename, {k: v for k, v in f.items() if v is not None})


def make_actuator(creds_path: str | None = None) -> AdminActuator:
    """The actuator with the site's credentials file. Without one, the API transport (which
    needs no credentials) still works and the others report ``nocred``; a file that exists
    but is unsafe or malformed raises :class:`CredentialsError` (fix it rather than act half-blind)."""
    import os

    from minectl_py.admin import credentials
    from minectl_py.admin.perms import unix_user

    p = creds_path or credentials.path()
    if not os.path.lexists(p):
        log.warning("no credentials file at %s: rule actions use the API only (others report nocred)", p)
        creds = Credentials()
    else:
        creds = credentials.load(p)
    return AdminActuator(creds, user=f"rules:{unix_user()}", nodename=config.nodename())
