"""Talking to one miner for an action: cgminer API (TCP 4028), the Whatsminer token API (the
same port), Antminer HTTP digest CGI; SSH is in :mod:`minectl_py.admin.ssh_transport`.

Each ``run_*`` function performs one :class:`~minectl_py.admin.plan.Step` and returns an
:class:`Outcome`; it never raises for a miner's misbehaviour. Results:

``ok``, ``fail`` (the miner said no, or the command failed), ``denied`` (privileged command
refused), ``auth`` (wrong credentials), ``nocred`` (none configured), ``unreachable`` (port
closed, no route, connect timeout), ``timeout`` (no answer after the request was sent),
``lost`` (connection dropped after the request was sent: the miner may have acted),
``unsupported``, ``hostkey`` (SSH host key changed or unknown under ``strict``).

Nothing a miner sends is passed to a shell; SSH commands are the admin's (``exec``) or fixed
strings from :mod:`plan`.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from minectl_py.admin.credentials import Cred, Credentials
from minectl_py.admin.outcome import FALL_THROUGH, MAX_REPLY, Outcome, net_error, short
from minectl_py.admin.plan import Step
from minectl_py.admin.ssh_transport import HostKeys, run_ssh

__all__ = ["FALL_THROUGH", "HostKeys", "Outcome", "run_step", "short"]


# -- cgminer API -------------------------------------------------------------------------
def _api_escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace(",", "\\,")


#: minectl_py.miner.api Reply.reason -> our result
_API_REASON = {
    "refused": ("unreachable", "API port closed (connection refused)"),
    "connect_timeout": ("unreachable", "API connect timed out"),
    "unreachable": ("unreachable", "no route to the miner"),
    "oserror": ("unreachable", "socket error"),
    "timeout": ("timeout", "no API answer in time after the request was sent"),
    "reset": ("lost", "connection reset after the request was sent: the miner may have acted"),
    # cgminer also closes without a word when our address is not in its api-allow list
    "empty": ("lost", "closed without a reply after the request was sent (miner went away, or api-allow)"),
}


def api_request(ip: str, port: int, command: str, parameter: str | None, timeout: float) -> Any:
    """One request over the project's API client (asyncio; run in this worker thread)."""
    import asyncio

    from minectl_py.miner import api as client

    return asyncio.run(client.command(ip, command, parameter, port=port, connect_timeout=timeout, timeout=timeout))


def _status(doc: Mapping[str, Any]) -> tuple[str, int | None, str]:
    from minectl_py.miner.api import status_of

    st = status_of(doc)
    code = st.get("Code")
    return (
        str(st.get("STATUS", "?")),
        code if isinstance(code, int) else None,
        str(st.get("Msg") or st.get("STATUS") or ""),
    )


def _classify_api(doc: Mapping[str, Any]) -> Outcome:
    sev, code, msg = _status(doc)
    if sev in ("RESTART", "BYE", "S", "I"):
        return Outcome("ok", "api", short(msg))
    if code == 45 or "access denied" in msg.lower() or "can't access" in msg.lower():
        return Outcome("denied", "api", short(msg))
    if code == 14 or "invalid command" in msg.lower() or "invalid cmd" in msg.lower():
        return Outcome("unsupported", "api", short(msg))
    return Outcome("fail", "api", short(msg or f"status {sev}"))


def _api_call(ip: str, port: int, command: str, parameter: str | None, timeout: float) -> tuple[Outcome, Any]:
    reply = api_request(ip, port, command, parameter, timeout)
    if reply.ok:
        return _classify_api(reply.data), reply.data
    if reply.reason in _API_REASON:
        res, why = _API_REASON[reply.reason]
        return Outcome(res, "api", why), None
    if reply.reason == "denied":
        return Outcome("denied", "api", short(reply.detail)), None
    if reply.reason == "error":
        out = _classify_api(reply.data) if isinstance(reply.data, dict) else Outcome("fail", "api", short(reply.detail))
        return out, None
    return Outcome("fail", "api", short(f"bad reply ({reply.reason}): {reply.detail}")), None


def pools_of(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in doc.get("POOLS") or []:
        if isinstance(p, Mapping):
            out.append(
                {
                    "index": p.get("POOL"),
                    "url": str(p.get("URL", "")),
                    "user": str(p.get("User", "")),
                    "status": str(p.get("Status", "")),
                    "priority": p.get("Priority"),
                    "active": bool(p.get("Stratum Active")),
                }
            )
    return out


def run_api(ip: str, port: int, step: Step, timeout: float, cred: Cred | None = None) -> Outcome:
    if step.op == "wm":
        return run_wm(ip, port, step, cred, timeout)
    if step.op == "command":
        out, _ = _api_call(ip, port, step.args["command"], step.args.get("parameter"), timeout)
        return out
    if step.op == "pools":
        out, doc = _api_call(ip, port, "pools", None, timeout)
        if out.ok and doc is not None:
            out.data = pools_of(doc)
        return out
    if step.op == "pools_set":
        return _api_pools_set(ip, port, step.args, timeout)
    return Outcome("unsupported", "api", f"no API operation {step.op}")


def _api_pools_set(ip: str, port: int, args: Mapping[str, Any], timeout: float) -> Outcome:
    """Add the new pools, switch to the first, remove the others, order the new ones.

    Pool numbers shift as pools are removed (and on some firmware when switching), so every
    step re-reads the list and finds pools by URL and user, never by a remembered number."""
    new = list(args["pools"])
    want = [(p["url"], p["user"]) for p in new]

    def current() -> tuple[Outcome, list[dict[str, Any]]]:
        out, doc = _api_call(ip, port, "pools", None, timeout)
        return out, (pools_of(doc) if out.ok and doc is not None else [])

    out, have = current()
    if not out.ok:
        return out
    present = {(p["url"], p["user"]) for p in have}
    for p in new:
        if (p["url"], p["user"]) in present:
            continue
        param = ",".join(_api_escape(x) for x in (p["url"], p["user"], p.get("password") or "x"))
        out, _ = _api_call(ip, port, "addpool", param, timeout)
        if not out.ok:
            return out
    out, have = current()
    if not out.ok:
        return out
    first = next((p["index"] for p in have if (p["url"], p["user"]) == want[0]), None)
    if first is None:
        return Outcome("fail", "api", "the new pool did not appear in the miner's pool list")
    out, _ = _api_call(ip, port, "switchpool", str(first), timeout)
    if not out.ok:
        return out
    for _ in range(16):
        out, have = current()
        if not out.ok:
            return out
        old = [p for p in have if (p["url"], p["user"]) not in want and isinstance(p["index"], int)]
        if not old:
            break
        victim = max(old, key=lambda p: p["index"])
        out, _ = _api_call(ip, port, "removepool", str(victim["index"]), timeout)
        if not out.ok:
            return Outcome(out.result, "api", f"new pools added, but removing an old one failed: {out.detail}")
    by_key = {(p["url"], p["user"]): p["index"] for p in have}
    order = [by_key[k] for k in want if k in by_key]
    if len(order) > 1:
        _api_call(ip, port, "poolpriority", ",".join(str(i) for i in order), timeout)
    return Outcome("ok", "api", f"pools set: {', '.join(p['url'] for p in new)}")


# -- Whatsminer token API ------------------------------------------------------------------
#: Whatsminer codes for a signed command the miner could not read or verify: with a token just
#: fetched, that is a wrong admin password (23 invalid JSON, 135 check token error, 137 base64)
WM_AUTH_CODES = frozenset({23, 135, 137})
#: transport failures of get_token: nothing privileged was sent, so it is safe to try again
_WM_TOKEN_REASON = {
    "timeout": "no answer to get_token in time (nothing was sent)",
    "reset": "connection reset during get_token (nothing was sent)",
    "empty": "closed without answering get_token (nothing was sent)",
}


def wm_request(
    ip: str, port: int, cmd: str, password: str, params: Mapping[str, Any], timeout: float
) -> tuple[Any, bool]:
    """get_token, then the signed encrypted command -> (Reply, whether the command was sent)."""
    import asyncio

    from minectl_py.miner import whatsminer as wm

    async def go() -> tuple[Any, bool]:
        tok = await wm.token(ip, port=port, timeout=timeout)
        if not tok.ok:
            return tok, False
        msg = tok.data["Msg"]
        return await wm.send_privileged(ip, msg, cmd, password, port=port, timeout=timeout, **params), True

    return asyncio.run(go())


def run_wm(ip: str, port: int, step: Step, cred: Cred | None, timeout: float) -> Outcome:
    """One Whatsminer token-API command, classified (pure apart from :func:`wm_request`)."""
    if cred is None or not cred.password:
        why = "no Whatsminer admin password configured (credentials.yml: families: whatsminer: api: {password: ...})"
        return Outcome("nocred", "api", why)
    cmd = step.args["cmd"]
    rep, sent = wm_request(ip, port, cmd, cred.password, step.args.get("params") or {}, timeout)
    return classify_wm(cmd, rep, sent)


def classify_wm(cmd: str, rep: Any, sent: bool) -> Outcome:
    """A Reply of :func:`wm_request` -> Outcome (pure)."""
    if rep.ok:
        out = _classify_api(rep.data)
        if out.ok:
            out.detail = f"{cmd}: {out.detail}"
        return out
    code = rep.status.get("Code") if isinstance(rep.data, dict) else None
    msg = short(rep.detail or rep.reason)
    if not sent:
        if rep.reason in _WM_TOKEN_REASON:
            return Outcome("unreachable", "api", _WM_TOKEN_REASON[rep.reason])
        if rep.reason == "error" and (code == 14 or "invalid" in msg.lower()):
            return Outcome("unsupported", "api", f"this firmware has no token API (get_token: {msg})")
    if rep.reason == "denied":
        return Outcome("denied", "api", f"{msg}: the miner's write API is off (enable it with WhatsMinerTool)")
    if rep.reason == "error" and code in WM_AUTH_CODES:
        return Outcome("auth", "api", f"wrong Whatsminer admin password: the miner answered {code} {msg!r}")
    if rep.reason in _API_REASON:
        res, why = _API_REASON[rep.reason]
        return Outcome(res, "api", why)
    if rep.reason == "error":
        return Outcome("fail", "api", msg)
    return Outcome("fail", "api", short(f"bad reply ({rep.reason}): {rep.detail}"))


# -- Antminer HTTP CGI (digest) ----------------------------------------------------------
def _opener(base: str, cred: Cred) -> urllib.request.OpenerDirector:
    mgr = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    mgr.add_password(None, base, cred.user, cred.password or "")
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPDigestAuthHandler(mgr))


def _http(opener: Any, url: str, body: Any, timeout: float) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with opener.open(req, timeout=timeout) as r:
        raw = r.read(MAX_REPLY + 1)
        missing = r.length  # bytes the Content-Length promised that never came (None: no length)
    if len(raw) > MAX_REPLY:
        raise ValueError("reply larger than 1 MiB")
    if missing:
        raise http.client.IncompleteRead(raw, missing)
    text = raw.decode("utf-8", "replace").strip()
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return {"_text": text[:200]}


def _http_error(e: BaseException) -> Outcome:
    if isinstance(e, urllib.error.HTTPError):
        if e.code == 401:
            return Outcome("auth", "http", "HTTP 401: wrong user or password")
        if e.code == 403:
            return Outcome("denied", "http", "HTTP 403 forbidden")
        if e.code == 404:
            return Outcome("unsupported", "http", "HTTP 404: this firmware has no such page")
        return Outcome("fail", "http", f"HTTP {e.code}")
    if isinstance(e, urllib.error.URLError):
        r = e.reason
        if isinstance(r, BaseException):
            return net_error(r, "http", sent=False)  # urllib wraps errors of the connect phase
        return Outcome("unreachable", "http", short(r))
    if isinstance(e, ValueError):
        return Outcome("fail", "http", short(f"bad reply: {e}"))
    if isinstance(e, http.client.IncompleteRead):
        return Outcome("lost", "http", "connection dropped in the middle of the reply: the miner may have acted")
    if isinstance(e, http.client.BadStatusLine) and not isinstance(e, http.client.RemoteDisconnected):
        return Outcome("lost", "http", "the miner sent no valid answer and closed: it may have acted")
    return net_error(e, "http", sent=True)


def run_http(ip: str, port: int, step: Step, cred: Cred | None, timeout: float) -> Outcome:
    if cred is None:
        return Outcome("nocred", "http", "no HTTP credentials configured for this miner")
    base = f"http://{ip}:{port}" if port != 80 else f"http://{ip}"
    op = _opener(base, cred)
    cgi = base + "/cgi-bin/"
    try:
        if step.op == "reboot":
            _http(op, cgi + "reboot.cgi", None, timeout)
            return Outcome("ok", "http", "reboot.cgi accepted")
        if step.op == "blink":
            on = bool(step.args["on"])
            doc = _http(op, cgi + "blink.cgi", {"blink": on}, timeout)
            code = str(doc.get("code", "")) if isinstance(doc, Mapping) else ""
            want = "B000" if on else "B100"
            if code == want:
                return Outcome("ok", "http", f"LED {'blinking' if on else 'off'}")
            return Outcome("fail", "http", short(f"blink.cgi answered {doc}"))
        if step.op in ("reapply_conf", "pools_set", "pools_switch"):
            conf = _http(op, cgi + "get_miner_conf.cgi", None, timeout)
            if not isinstance(conf, dict) or not isinstance(conf.get("pools"), list):
                return Outcome("fail", "http", "get_miner_conf.cgi gave no pools")
            conf = _new_conf(conf, step)
            doc = _http(op, cgi + "set_miner_conf.cgi", conf, timeout)
            if isinstance(doc, Mapping) and (doc.get("stats") == "success" or doc.get("code") == "M000"):
                what = {"reapply_conf": "config re-applied: mining software restarts"}.get(step.op, "pools written")
                return Outcome("ok", "http", what)
            return Outcome("fail", "http", short(f"set_miner_conf.cgi answered {doc}"))
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:
        if step.op == "reboot" and isinstance(e, (http.client.RemoteDisconnected, ConnectionResetError)):
            return Outcome("lost", "http", "connection dropped after reboot.cgi: the miner may be rebooting")
        return _http_error(e)
    return Outcome("unsupported", "http", f"no HTTP operation {step.op}")


def _new_conf(conf: dict[str, Any], step: Step) -> dict[str, Any]:
    out = {k: v for k, v in conf.items() if k != "pools"}
    pools = [dict(p) for p in conf["pools"] if isinstance(p, Mapping)]
    if step.op == "pools_set":
        pools = [{"url": p["url"], "user": p["user"], "pass": p.get("password") or "x"} for p in step.args["pools"]]
    elif step.op == "pools_switch":
        i = int(step.args["index"])
        if not 0 <= i < len(pools):
            raise ValueError(f"no pool {i} (the miner has {len(pools)})")
        pools = [pools[i], *pools[:i], *pools[i + 1 :]]
    while len(pools) < 3:
        pools.append({"url": "", "user": "", "pass": ""})
    out["pools"] = pools[:3]
    return out


def run_step(
    m: Mapping[str, Any], fam: str, step: Step, creds: Credentials, timeout: float, hk: HostKeys | None
) -> Outcome:
    ip = m.get("ip")
    if not ip:
        return Outcome("unreachable", step.transport, "no IP address known for this miner")
    cred = creds.for_miner(m, fam, step.transport)
    if step.transport == "api":
        return run_api(ip, creds.ports["api"], step, timeout, cred)
    if step.transport == "http":
        return run_http(ip, creds.ports["http"], step, cred, timeout)
    return run_ssh(ip, creds.ports["ssh"], step, cred, timeout, hk)
