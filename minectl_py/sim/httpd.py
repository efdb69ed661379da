"""Antminer-style HTTP on port 80: lighttpd CGI endpoints behind HTTP Digest auth.

Realm ``antMiner Configuration``, MD5, ``qop=auth`` (RFC 7616 / 2617), keep-alive, default
``root``/``root``. Endpoints (``/cgi-bin/NAME.cgi``): get_system_info, get_network_info,
get_miner_conf, set_miner_conf (JSON or form: pools, work mode -> sleep), blink (JSON
``{"blink": true}`` or form ``action=startBlink``), get_blink_status, reboot, summary, stats,
pools (the 2022+ layouts), set_network_conf. Braiins personalities answer ``/`` with a page
naming "Braiins OS" (how pyasic tells them apart). Changes are the same state the API and
SSH see: pools set here show in ``pools`` on 4028.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from minectl_py.sim import replies
from minectl_py.sim.profiles import SimMiner, SimPool, sample

if TYPE_CHECKING:
    from minectl_py.sim.fleet import Fleet

log = logging.getLogger("minectl.sim.http")
REALM = "antMiner Configuration"
MAX_HEAD = 16384
MAX_BODY = 65536
_SECRET = os.urandom(16)


def _md5(s: str) -> str:
    return hashlib.md5(s.encode("utf-8", "replace")).hexdigest()  # Digest auth is MD5 by definition


def make_nonce(now: float | None = None) -> str:
    ts = f"{int(now if now is not None else time.time()):x}"
    return ts + hmac.new(_SECRET, ts.encode(), "sha256").hexdigest()[:16]


def nonce_ok(nonce: str, now: float | None = None, max_age: float = 3600.0) -> bool:
    ts, mac = nonce[:-16], nonce[-16:]
    try:
        age = (now if now is not None else time.time()) - int(ts, 16)
    except ValueError:
        return False
    good = hmac.new(_SECRET, ts.encode(), "sha256").hexdigest()[:16]
    return hmac.compare_digest(mac, good) and -60 <= age <= max_age


def parse_auth(header: str) -> dict[str, str]:
    if not header.lower().startswith("digest "):
        return {}
    out: dict[str, str] = {}
    rest = header[7:]
    i = 0
    while i < len(rest):
        while i < len(rest) and rest[i] in " ,":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        if i < len(rest) and rest[i] == '"':
            end = rest.find('"', i + 1)
            end = len(rest) if end < 0 else end
            out[key] = rest[i + 1 : end]
            i = end + 1
        else:
            end = rest.find(",", i)
            end = len(rest) if end < 0 else end
            out[key] = rest[i:end].strip()
            i = end
    return out


def check_digest(fields: dict[str, str], method: str, user: str, password: str, realm: str = REALM) -> bool:
    if fields.get("username") != user or fields.get("realm") != realm or not nonce_ok(fields.get("nonce", "")):
        return False
    ha1 = _md5(f"{user}:{realm}:{password}")
    ha2 = _md5(f"{method}:{fields.get('uri', '')}")
    if fields.get("qop"):
        want = _md5(f"{ha1}:{fields['nonce']}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:{fields['qop']}:{ha2}")
    else:
        want = _md5(f"{ha1}:{fields['nonce']}:{ha2}")
    return hmac.compare_digest(want, fields.get("response", ""))


class HttpService:
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.tasks: set[asyncio.Task[Any]] = set()

    def accept(self, conn: socket.socket, m: SimMiner) -> None:
        conn.setblocking(False)
        t = self.fleet.loop.create_task(
            self.fleet.loop.connect_accepted_socket(lambda: HttpProtocol(self.fleet, m), conn)
        )
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    def close(self) -> None:
        for t in list(self.tasks):
            t.cancel()


class HttpProtocol(asyncio.Protocol):
    def __init__(self, fleet: Fleet, m: SimMiner) -> None:
        self.fleet = fleet
        self.m = m
        self.buf = b""
        self.t: asyncio.Transport | None = None
        self.idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport  # type: ignore[assignment]
        self.idle = self.fleet.loop.call_later(30, transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle:
            self.idle.cancel()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.t is not None and not self.t.is_closing():
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                if len(self.buf) > MAX_HEAD:
                    self._reply(431, b"header too large", close=True)
                return
            head = self.buf[:head_end].decode("latin-1")
            lines = head.split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3:
                self._reply(400, b"bad request", close=True)
                return
            headers = {}
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                headers[k.strip().lower()] = v.strip()
            try:
                n = int(headers.get("content-length", "0"))
            except ValueError:
                n = -1
            if not 0 <= n <= MAX_BODY:
                self._reply(413, b"bad body", close=True)
                return
            if len(self.buf) < head_end + 4 + n:
                return
            body = self.buf[head_end + 4 : head_end + 4 + n]
            self.buf = self.buf[head_end + 4 + n :]
            close = headers.get("connection", "").lower() == "close"
            self.handle(parts[0].upper(), parts[1], headers, body, close)

    def _reply(self, code: int, body: bytes, ctype: str = "text/plain", extra: str = "", close: bool = False) -> None:
        if self.t is None:
            return
        reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 400: "Bad Request"}.get(code, "Error")
        head = f"HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
        head += f"Server: lighttpd/1.4.32\r\n{extra}"
        if close:
            head += "Connection: close\r\n"
        self.t.write(head.encode("latin-1") + b"\r\n" + body)
        if close:
            self.t.close()

    def _json(self, obj: Any, close: bool) -> None:
        self._reply(200, json.dumps(obj).encode(), "application/json", close=close)

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes, close: bool) -> None:
        m = self.m
        path = target.split("?", 1)[0]
        if m.profile.http == "bosminer":
            page = b"<html><head><title>Braiins OS</title></head><body>Braiins OS</body></html>"
            if path in ("/", "/index.html", "/cgi-bin/luci"):
                self._reply(200, page, "text/html", close=close)
            else:
                self._reply(404, b"not found", close=close)
            return
        fields = parse_auth(headers.get("authorization", ""))
        if not fields or not check_digest(fields, method, m.profile.web_user, m.web_password):
            chal = f'WWW-Authenticate: Digest realm="{REALM}", nonce="{make_nonce()}", algorithm="MD5", qop="auth"\r\n'
            self._reply(401, b"401 - Unauthorized", "text/html", chal, close=close)
            return
        if path in ("/", "/index.html"):
            page = f"<html><head><title>{m.profile.model}</title></head><body>Antminer</body></html>"
            self._reply(200, page.encode(), "text/html", close=close)
            return
        if self._faulted():
            return
        name = path.removeprefix("/cgi-bin/").removesuffix(".cgi")
        fn = getattr(self, f"cgi_{name}", None)
        if fn is None or "/" in name:
            self._reply(404, b"404 - Not Found", "text/html", close=close)
            return
        fn(body, headers, close)

    def _faulted(self) -> bool:
        """``dying``: headers promising a body, a few bytes of it, then the connection drops.
        ``hanging``: the request is read and never answered (closed after ``hold`` s)."""
        f = self.m.faults
        if self.t is None:
            return False
        if "dying" in f:
            head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 64\r\n"
            self.t.write(f"{head}Server: lighttpd/1.4.32\r\n\r\n".encode() + b'{"stats":')
            self.t.close()
            return True
        if "hanging" in f:
            if self.idle:
                self.idle.cancel()
            self.idle = self.fleet.loop.call_later(float(f["hanging"].get("hold", 600)), self.t.close)
            self.buf = b""
            self.t.pause_reading()
            return True
        return False

    # -- endpoints ------------------------------------------------------------------------
    def _form(self, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        text = body.decode("utf-8", "replace").strip()
        if text.startswith("{"):
            try:
                obj = json.loads(text)
                return obj if isinstance(obj, dict) else {}
            except ValueError:
                return {}
        return {k: v[-1] for k, v in parse_qs(text).items()}

    def cgi_get_system_info(self, body: bytes, h: dict[str, str], close: bool) -> None:
        m = self.m
        info = {"minertype": m.profile.model, "nettype": "DHCP", "netdevice": "eth0", "macaddr": m.mac.upper()}
        info |= {"hostname": m.hostname, "ipaddress": m.ip, "netmask": "255.255.255.0", "gateway": "", "dnsservers": ""}
        info |= {"system_mode": "GNU/Linux", "system_kernel_version": "Linux 4.9.38 #1 SMP PREEMPT"}
        info |= {"system_filesystem_version": m.profile.compile_time, "firmware_type": "Release"}
        info |= {"Algorithm": "SHA256", "serinum": m.serial}
        self._json(info, close)

    def cgi_get_network_info(self, body: bytes, h: dict[str, str], close: bool) -> None:
        m = self.m
        info = {"nettype": "DHCP", "netdevice": "eth0", "macaddr": m.mac.upper(), "ipaddress": m.ip}
        info |= {"netmask": "255.255.255.0", "conf_nettype": "DHCP", "conf_hostname": m.hostname}
        info |= {"conf_ipaddress": "", "conf_netmask": "", "conf_gateway": "", "conf_dnsservers": ""}
        self._json(info, close)

    def cgi_set_network_conf(self, body: bytes, h: dict[str, str], close: bool) -> None:
        f = self._form(body, h)
        host = f.get("ipHost") or f.get("conf_hostname")
        if isinstance(host, str) and host:
            self.m.hostname = host[:64]
        self._json({"stats": "success", "code": "N000", "msg": "OK!"}, close)

    def cgi_get_miner_conf(self, body: bytes, h: dict[str, str], close: bool) -> None:
        m = self.m
        pools = [{"url": p.url, "user": p.user, "pass": p.password} for p in m.pools[:3]]
        pools += [{"url": "", "user": "", "pass": ""}] * (3 - len(pools))
        conf = {"pools": pools, "api-listen": True, "api-network": True}
        conf |= {
            "api-groups": "A:stats:pools:devs:summary:version",
            "api-allow": "W:0/0" if m.write_access else "A:0/0,W:*",
        }
        conf |= {"bitmain-fan-ctrl": False, "bitmain-fan-pwm": "100", "bitmain-use-vil": True, "bitmain-freq": "525"}
        conf |= {"bitmain-voltage": "1400", "bitmain-ccdelay": "0", "bitmain-pwth": "0"}
        conf |= {"bitmain-work-mode": "1" if m.sleeping else "0", "bitmain-freq-level": "100"}
        self._json(conf, close)

    def cgi_set_miner_conf(self, body: bytes, h: dict[str, str], close: bool) -> None:
        m = self.m
        f = self._form(body, h)
        pools = f.get("pools")
        if isinstance(pools, list):
            new = [
                SimPool(
                    url=str(p.get("url", ""))[:256], user=str(p.get("user", ""))[:128], password=str(p.get("pass", ""))
                )
                for p in pools[:3]
                if isinstance(p, dict) and p.get("url")
            ]
            if new:
                m.pools = new
        elif "_ant_pool1url" in f:  # old S9 form
            new = [
                SimPool(
                    url=f[f"_ant_pool{i}url"],
                    user=f.get(f"_ant_pool{i}user", ""),
                    password=f.get(f"_ant_pool{i}pw", ""),
                )
                for i in (1, 2, 3)
                if f.get(f"_ant_pool{i}url")
            ]
            if new:
                m.pools = new
        mode = f.get("miner-mode", f.get("bitmain-work-mode"))
        if mode is not None:
            m.sleeping = str(mode) == "1"
        self._json({"stats": "success", "code": "M000", "msg": "OK!"}, close)
        self.fleet.loop.call_later(0.05, self.fleet.restart, m)  # bmminer restarts with the new config

    def cgi_blink(self, body: bytes, h: dict[str, str], close: bool) -> None:
        f = self._form(body, h)
        if "action" in f:  # old firmware form
            act = f["action"]
            if act in ("startBlink", "stopBlink"):
                self.fleet.set_led(self.m, act == "startBlink")
            self._json({"isBlinking": self.m.led_on(time.time())}, close)
            return
        on = f.get("blink")
        on = on if isinstance(on, bool) else str(on).lower() == "true"
        self.fleet.set_led(self.m, on)
        self._json({"code": "B000" if on else "B100"}, close)

    def cgi_get_blink_status(self, body: bytes, h: dict[str, str], close: bool) -> None:
        self._json({"blink": self.m.led_on(time.time())}, close)

    def cgi_reboot(self, body: bytes, h: dict[str, str], close: bool) -> None:
        self._json({"stats": "success", "code": "R000", "msg": "OK!"}, True)
        self.fleet.loop.call_later(0.05, self.fleet.reboot, self.m)

    def _head(self, what: str) -> dict[str, Any]:
        return {"STATUS": "S", "when": int(time.time()), "Msg": what, "api_version": "1.0.0"}

    def _info(self) -> dict[str, Any]:
        p = self.m.profile
        return {"miner_version": p.miner_version, "CompileTime": p.compile_time, "type": p.model}

    def cgi_stats(self, body: bytes, h: dict[str, str], close: bool) -> None:
        m = self.m
        now = time.time()
        self._json(replies.stats_new_api(m, now, sample(m, now)), close)

    def cgi_summary(self, body: bytes, h: dict[str, str], close: bool) -> None:
        m = self.m
        now = time.time()
        r = sample(m, now)
        fan_bad = any(f == 0 for f in r.fans)
        status = [
            {"type": "rate", "status": "w" if r.ghs_5s < 0.8 * r.ideal_ghs else "s", "code": 0, "msg": ""},
            {"type": "network", "status": "s", "code": 0, "msg": ""},
            {"type": "fans", "status": "e" if fan_bad else "s", "code": 0, "msg": "Fan failure" if fan_bad else ""},
            {"type": "temp", "status": "e" if r.temp_max >= 95 else "s", "code": 0, "msg": ""},
        ]
        s = {"elapsed": r.uptime_s, "rate_5s": round(r.ghs_5s, 2), "rate_30m": round(r.ghs_av, 2)}
        s |= {"rate_avg": round(r.ghs_av, 2), "rate_ideal": round(r.ideal_ghs, 2), "rate_unit": "GH/s"}
        s |= {"hw_all": r.hw_errors, "bestshare": 1000003 + r.uptime_s * 13, "status": status}
        self._json({"STATUS": self._head("summary"), "INFO": self._info(), "SUMMARY": [s]}, close)

    def cgi_pools(self, body: bytes, h: dict[str, str], close: bool) -> None:
        m = self.m
        r = sample(m, time.time())
        active = m.active_pool()
        items = []
        for i, p in enumerate(m.pools):
            st = "Disabled" if not p.enabled else ("Dead" if m.pool_dead(i) else "Alive")
            acc = r.accepted if i == active else 0
            items.append(
                {"index": i, "url": p.url, "user": p.user, "status": st, "priority": i, "getworks": acc // 3}
                | {"accepted": acc, "rejected": r.rejected if i == active else 0, "stale": 0, "discarded": 0}
                | {"diff": "32.8K", "diff1": 0, "diffa": float(acc * 65536), "diffr": 0.0, "diffs": 0.0}
                | {"lsdiff": 65536.0 if i == active else 0.0, "lstime": "0:00:08" if i == active else "0"}
            )
        self._json({"STATUS": self._head("pools"), "INFO": self._info(), "POOLS": items}, close)
