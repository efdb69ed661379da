"""A fleet of simulated miners in one asyncio loop, each on its own address.

Embedding::

    async with Fleet(spec) as fleet:          # in a running loop
        fleet.fault("127.20.0.5", "hot")

    with run_fleet_in_thread(spec) as fleet:  # from synchronous code (tests): sim/fleet_thread.py
        fleet.addresses; fleet.fault(ip, "dead"); fleet.show(ip)

Port 4028 is served with raw non-blocking sockets (one request per connection is cheap
that way); HTTP (digest CGI) and SSH are served by ``httpd`` and ``sshd``. Listener state
per miner and port is reconciled by :meth:`Fleet._apply`: ``open``, ``closed`` (connection
refused: rebooting, refusing, after ``quit``) or ``blackhole`` (connect times out: dead).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import random
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from minectl_py.miner.api import raise_fd_limit
from minectl_py.sim import apiserver
from minectl_py.sim.profiles import FAULTS, SimMiner, SimPool, profile
from minectl_py.sim.spec import FleetSpec

log = logging.getLogger("minectl.sim")


class FleetError(RuntimeError):
    pass


class _Listener:
    __slots__ = ("fillers", "mode", "sock")

    def __init__(self) -> None:
        self.mode = "closed"
        self.sock: socket.socket | None = None
        self.fillers: list[socket.socket] = []


def _bind(ip: str, port: int, backlog: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, port))
        s.listen(backlog)
        s.setblocking(False)
    except OSError:
        s.close()
        raise
    return s


def make_miner(spec: FleetSpec, i: int) -> SimMiner:
    ms = spec.miners[i]
    p = profile(ms.personality)
    rng = random.Random(spec.seed * 7919 + i)
    pools = [
        SimPool(url=d.get("url", ""), user=d.get("user", ""), password=d.get("password", "x")) for d in ms.pools or []
    ] or [
        SimPool(url=f"stratum+tcp://pool{k}.example.com:3333", user=f"site.{ms.hostname}", password="x")
        for k in (1, 2, 3)
    ]
    m = SimMiner(
        index=i,
        ip=ms.ip,
        mac=ms.mac,
        profile=p,
        hostname=ms.hostname,
        serial=f"SIM{spec.seed % 1000:03d}{i:07d}{p.key[:2].upper()}",
        pools=pools,
        seed=rng.randrange(1 << 30),
        faults={k: dict(v) for k, v in ms.faults.items()},
        write_access=p.write_access if ms.write_access is None else ms.write_access,
        web_password=ms.web_password or p.web_password,
        ssh_password=ms.ssh_password or p.ssh_password,
        rng=rng,
    )
    # miners have been up for a while when the simulation starts
    m.started_at = time.time() - rng.randrange(600, 30 * 86400)
    return m


class Fleet:
    def __init__(self, spec: FleetSpec) -> None:
        self.spec = spec
        self.miners = [make_miner(spec, i) for i in range(len(spec.miners))]
        self.by_ip = {m.ip: m for m in self.miners}
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self._ports: dict[str, dict[str, _Listener]] = {}
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._conns: dict[socket.socket, float] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._http: Any = None
        self._ssh: Any = None
        self._control: Any = None
        self.started = False

    # -- lifecycle ----------------------------------------------------------------------
    async def __aenter__(self) -> Fleet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def addresses(self) -> list[str]:
        return [m.ip for m in self.miners]

    def kinds(self, m: SimMiner) -> list[str]:
        k = ["api"]
        if self.spec.http_port and m.profile.http:
            k.append("http")
        if self.spec.ssh_port and m.profile.ssh_user:
            k.append("ssh")
        return k

    def port_of(self, kind: str) -> int:
        return {"api": self.spec.api_port, "http": self.spec.http_port, "ssh": self.spec.ssh_port}[kind] or 0

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        raise_fd_limit(sum(len(self.kinds(m)) for m in self.miners) * 2 + 4096)
        if any("http" in self.kinds(m) for m in self.miners):
            from minectl_py.sim import httpd

            self._http = httpd.HttpService(self)
        if any("ssh" in self.kinds(m) for m in self.miners):
            from minectl_py.sim import sshd

            self._ssh = sshd.SshService(self)
        try:
            for m in self.miners:
                self._ports[m.ip] = {k: _Listener() for k in self.kinds(m)}
                self._apply(m, strict=True)
                if "reboot_loop" in m.faults:
                    self._schedule_loop_reboot(m)
        except BaseException:
            await self.stop()
            raise
        if self.spec.control:
            from minectl_py.sim import control

            self._control = await control.serve(self, self.spec.control)
        self._sweeper = self.loop.call_later(1.0, self._sweep)
        self.started = True
        log.info("fleet up: %d miners from %s", len(self.miners), self.miners[0].ip if self.miners else "-")

    async def stop(self) -> None:
        if self._control is not None:
            self._control.close()
            with contextlib.suppress(Exception):
                await self._control.wait_closed()
            self._control = None
            with contextlib.suppress(OSError):
                os.unlink(self.spec.control or "")
        for h in self._timers.values():
            h.cancel()
        self._timers.clear()
        if self._sweeper:
            self._sweeper.cancel()
        for ports in self._ports.values():
            for lst in ports.values():
                self._close_listener(lst)
        for c in list(self._conns):
            self._drop(c)
        if self._ssh is not None:
            self._ssh.close()
        if self._http is not None:
            self._http.close()
        self.started = False

    # -- listeners ----------------------------------------------------------------------
    def _desired(self, m: SimMiner, kind: str, now: float) -> str:
        if now < m.dark_until:
            return "closed"
        if "dead" in m.faults:
            return "blackhole"
        if kind == "api" and ("refusing" in m.faults or m.api_down or now < m.extra.get("restart_until", 0)):
            return "closed"
        return "open"

    def _apply(self, m: SimMiner, strict: bool = False) -> None:
        now = time.time()
        for kind, lst in self._ports.get(m.ip, {}).items():
            want = self._desired(m, kind, now)
            if want == lst.mode:
                continue
            self._close_listener(lst)
            try:
                if want == "open":
                    lst.sock = _bind(m.ip, self.port_of(kind), 128)
                    self.loop.add_reader(lst.sock.fileno(), self._on_accept, lst.sock, m, kind)
                elif want == "blackhole":
                    lst.sock = _bind(m.ip, self.port_of(kind), 0)
                    for _ in range(2):
                        f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                        f.setblocking(False)
                        with contextlib.suppress(BlockingIOError):
                            f.connect((m.ip, self.port_of(kind)))
                        lst.fillers.append(f)
                lst.mode = want
            except OSError as e:
                msg = f"cannot listen on {m.ip}:{self.port_of(kind)} ({kind}): {e.strerror}"
                if strict:
                    raise FleetError(msg) from None
                log.warning("%s; retrying in 1 s", msg)
                self._later(m, f"retry-{kind}", 1.0, lambda m=m: self._apply(m))

    def _close_listener(self, lst: _Listener) -> None:
        if lst.sock is not None:
            if lst.mode == "open":
                with contextlib.suppress(Exception):
                    self.loop.remove_reader(lst.sock.fileno())
            lst.sock.close()
            lst.sock = None
        for f in lst.fillers:
            f.close()
        lst.fillers.clear()
        lst.mode = "closed"

    def _on_accept(self, lsock: socket.socket, m: SimMiner, kind: str) -> None:
        for _ in range(64):
            try:
                conn, _addr = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE):
                    log.warning("out of file descriptors accepting on %s", m.ip)
                return
            if kind == "api":
                conn.setblocking(False)
                self._conns[conn] = time.monotonic() + 30.0
                try:  # the request is often there already: answer without an epoll round
                    data = conn.recv(apiserver.MAX_REQUEST)
                except (BlockingIOError, InterruptedError):
                    self.loop.add_reader(conn.fileno(), self._on_api_readable, conn, m)
                    continue
                except OSError:
                    data = b""
                self._answer(conn, m, data)
            elif kind == "http":
                self._http.accept(conn, m)
            else:
                self._ssh.accept(conn, m)

    def _on_api_readable(self, conn: socket.socket, m: SimMiner) -> None:
        try:
            data = conn.recv(apiserver.MAX_REQUEST)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        self.loop.remove_reader(conn.fileno())
        self._answer(conn, m, data)

    def _answer(self, conn: socket.socket, m: SimMiner, data: bytes) -> None:
        if not data:
            self._drop(conn)
            return
        if "resetting" in m.faults:  # read the request, then a TCP reset instead of a reply
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._drop(conn)
            return
        try:
            body, delay, after = apiserver.respond(self, m, data)
        except Exception:  # a simulator bug must not kill the fleet
            log.exception("reply failed on %s", m.ip)
            self._drop(conn)
            return
        if body is None:  # hanging: keep the connection, say nothing
            self._conns[conn] = time.monotonic() + delay
            return
        if delay:
            self._conns[conn] = time.monotonic() + delay + 30.0
            self.loop.call_later(delay, self._send, conn, body, after)
        else:
            self._send(conn, body, after)

    def _send(self, conn: socket.socket, body: bytes, after: Callable[[], None] | None) -> None:
        if conn in self._conns:
            try:
                n = conn.send(body)
            except OSError:
                n = len(body)
            if n < len(body):
                self.loop.add_writer(conn.fileno(), self._send_rest, conn, memoryview(body)[n:])
            else:
                self._drop(conn)
        if after is not None:
            after()

    def _send_rest(self, conn: socket.socket, rest: memoryview) -> None:
        try:
            n = conn.send(rest)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            n = len(rest)
        if n < len(rest):
            self.loop.remove_writer(conn.fileno())
            self.loop.add_writer(conn.fileno(), self._send_rest, conn, rest[n:])
            return
        self.loop.remove_writer(conn.fileno())
        self._drop(conn)

    def _drop(self, conn: socket.socket) -> None:
        if self._conns.pop(conn, None) is not None:
            with contextlib.suppress(Exception):
                self.loop.remove_reader(conn.fileno())
            with contextlib.suppress(Exception):
                self.loop.remove_writer(conn.fileno())
        conn.close()

    def _sweep(self) -> None:
        now = time.monotonic()
        for c in [c for c, dl in self._conns.items() if dl < now]:
            self._drop(c)
        self._sweeper = self.loop.call_later(1.0, self._sweep)

    # -- timers -------------------------------------------------------------------------
    def _later(self, m: SimMiner, what: str, delay: float, fn: Callable[[], None]) -> None:
        key = (m.ip, what)
        old = self._timers.pop(key, None)
        if old:
            old.cancel()

        def run() -> None:
            self._timers.pop(key, None)
            fn()

        self._timers[key] = self.loop.call_later(max(0.0, delay), run)

    # -- actions (also used by the API, HTTP and SSH servers) ---------------------------
    def reboot(self, m: SimMiner, seconds: float | None = None) -> None:
        """The miner goes dark (all ports refuse) and comes back with uptime reset."""
        secs = self.spec.reboot_seconds if seconds is None else seconds
        now = time.time()
        m.reboots += 1
        m.dark_until = now + secs
        m.api_down = False
        m.led = False
        m.started_at = now + secs
        m.extra.pop("restart_until", None)
        self._apply(m)
        self._later(m, "up", secs + 0.01, lambda: self._came_up(m))
        log.info("%s rebooting for %.1f s", m.ip, secs)

    def _came_up(self, m: SimMiner) -> None:
        m.dark_until = 0.0  # listeners reopen now; `dark` in snapshots turns false with them
        self._apply(m)
        if "reboot_loop" in m.faults:
            self._schedule_loop_reboot(m)

    def _schedule_loop_reboot(self, m: SimMiner) -> None:
        period = float(m.faults["reboot_loop"].get("period", 30))
        self._later(m, "loop", period, lambda: "reboot_loop" in m.faults and self.reboot(m))

    def restart(self, m: SimMiner) -> None:
        """The mining software restarts: port 4028 refuses for a moment, uptime resets."""
        secs = self.spec.restart_seconds
        now = time.time()
        m.restarts += 1
        m.extra["restart_until"] = now + secs
        m.started_at = now + secs
        self._apply(m)
        self._later(m, "restart", secs + 0.01, lambda: self._apply(m))

    def quit(self, m: SimMiner) -> None:
        m.api_down = True
        self._apply(m)

    def set_led(self, m: SimMiner, on: bool, duration: float = 0.0) -> None:
        m.led = on
        m.led_until = time.time() + duration if on and duration else 0.0

    # -- run-time control (control API, tests) ------------------------------------------
    def miner(self, ip: str) -> SimMiner:
        m = self.by_ip.get(ip)
        if m is None:
            raise KeyError(f"no simulated miner at {ip}")
        return m

    def fault(self, ip: str, name: str, **params: Any) -> dict[str, Any]:
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(FAULTS))}")
        m = self.miner(ip)
        m.faults[name] = dict(params)
        if name == "reboot_loop":
            self._schedule_loop_reboot(m)
        self._apply(m)
        return m.snapshot()

    def clear(self, ip: str, name: str | None = None) -> dict[str, Any]:
        m = self.miner(ip)
        if name is None:
            m.faults.clear()
        else:
            m.faults.pop(name, None)
        self._apply(m)
        return m.snapshot()

    def show(self, ip: str) -> dict[str, Any]:
        m = self.miner(ip)
        snap = m.snapshot()
        snap["listeners"] = {k: lst.mode for k, lst in self._ports.get(ip, {}).items()}
        return snap
