"""SSH on the simulated miners (paramiko's server side): password login, exec and a shell.

Credentials per personality (docs/simulator.md): Antminer S19 ``miner``/``miner``, S9
``root``/``admin``, Braiins and cgminer ``root``/``root``. Commands a controller uses:
``reboot`` (``/sbin/reboot``), ``/etc/init.d/{bosminer,bmminer.sh,cgminer.sh} restart``,
``miner fault_light on|off`` (Braiins), ``cat /proc/uptime``, ``uptime``, ``hostname``,
``cat`` of the miner's config file, ``ip addr``, ``echo``; anything else is
``sh: X: not found`` with exit status 127. One thread per connection; state changes are
handed to the fleet's event loop.
"""

from __future__ import annotations

import io
import json
import logging
import shlex
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import paramiko

if TYPE_CHECKING:
    from minectl_py.sim.fleet import Fleet
    from minectl_py.sim.profiles import SimMiner

log = logging.getLogger("minectl.sim.ssh")
_KEY: paramiko.PKey | None = None
_KEY_LOCK = threading.Lock()


def host_key() -> paramiko.PKey:
    """One Ed25519 host key per simulator process (generated, never written to disk)."""
    global _KEY
    with _KEY_LOCK:
        if _KEY is None:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
            )
            _KEY = paramiko.Ed25519Key(file_obj=io.StringIO(pem.decode()))
        return _KEY


def run_command(fleet: Fleet, m: SimMiner, line: str) -> tuple[str, int]:
    """-> (output, exit status). State changes are scheduled on the fleet's loop."""
    try:
        argv = shlex.split(line)
    except ValueError:
        return "sh: syntax error: unterminated quoted string\n", 2
    if not argv:
        return "", 0
    cmd, args = argv[0], argv[1:]
    now = time.time()
    later = fleet.loop.call_soon_threadsafe
    if cmd in ("reboot", "/sbin/reboot", "/bin/reboot"):
        later(lambda: fleet.loop.call_later(0.2, fleet.reboot, m))
        return "", 0
    if cmd in ("/etc/init.d/bosminer", "/etc/init.d/bmminer.sh", "/etc/init.d/cgminer.sh") and args[:1] == ["restart"]:
        later(fleet.restart, m)
        return "", 0
    if cmd == "miner" and args[:1] == ["fault_light"] and m.key == "bosminer":
        if args[1:2] in (["on"], ["off"]):
            later(fleet.set_led, m, args[1] == "on")
            return "", 0
        return "usage: miner fault_light on|off\n", 2
    if cmd == "uptime":
        up = m.uptime(now)
        return f" {time.strftime('%H:%M:%S', time.gmtime(now))} up {up // 86400} days, {up % 86400 // 60} min\n", 0
    if cmd == "hostname":
        return m.hostname + "\n", 0
    if cmd == "echo":
        return " ".join(args) + "\n", 0
    if cmd in ("true", ":"):
        return "", 0
    if cmd == "false":
        return "", 1
    if cmd in ("ip", "ifconfig"):
        return f"eth0: link/ether {m.mac} inet {m.ip}/24\n", 0
    if cmd == "cat" and args:
        return _cat(m, args[0], now)
    return f"sh: {cmd}: not found\n", 127


def _cat(m: SimMiner, path: str, now: float) -> tuple[str, int]:
    if path == "/proc/uptime":
        up = m.uptime(now)
        return f"{up}.00 {up * 2}.00\n", 0
    if path in ("/config/bmminer.conf", "/config/cgminer.conf") and m.key in ("s9", "s19", "cgminer"):
        pools = [{"url": p.url, "user": p.user, "pass": p.password} for p in m.pools]
        conf = {"pools": pools, "api-listen": True, "api-network": True}
        conf["api-allow"] = "W:0/0" if m.write_access else "A:0/0,W:*"
        return json.dumps(conf, indent=1) + "\n", 0
    if path == "/etc/bosminer.toml" and m.key == "bosminer":
        out = ["[format]", 'version = "1.2+"', 'model = "Antminer S19"', "", "[[group]]", "name = 'Default'"]
        for p in m.pools:
            out += [
                "",
                "[[group.pool]]",
                f"url = '{p.url}'",
                f"user = '{p.user}'",
                f"enabled = {str(p.enabled).lower()}",
            ]
        return "\n".join(out) + "\n", 0
    return f"cat: can't open '{path}': No such file or directory\n", 1


class _Server(paramiko.ServerInterface):
    def __init__(self, m: SimMiner) -> None:
        self.m = m
        self.command: str | None = None
        self.shell = False
        self.ready = threading.Event()

    def get_allowed_auths(self, username: str) -> str:
        return "password"

    def check_auth_password(self, username: str, password: str) -> int:
        ok = username == self.m.profile.ssh_user and password == self.m.ssh_password
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: Any, command: bytes) -> bool:
        self.command = command.decode("utf-8", "replace")
        self.ready.set()
        return True

    def check_channel_shell_request(self, channel: Any) -> bool:
        self.shell = True
        self.ready.set()
        return True

    def check_channel_pty_request(self, *args: Any) -> bool:
        return True


class SshService:
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.transports: set[paramiko.Transport] = set()
        host_key()

    def accept(self, conn: socket.socket, m: SimMiner) -> None:
        conn.setblocking(True)
        threading.Thread(target=self._serve, args=(conn, m), name=f"sim-ssh-{m.ip}", daemon=True).start()

    def _serve(self, conn: socket.socket, m: SimMiner) -> None:
        t = paramiko.Transport(conn)
        self.transports.add(t)
        try:
            t.add_server_key(host_key())
            srv = _Server(m)
            t.start_server(server=srv)
            chan = t.accept(20)
            if chan is None or not srv.ready.wait(10):
                return
            if srv.command is not None and ("dying" in m.faults or "hanging" in m.faults):
                self._fault(conn, t, chan, m)
                return
            if srv.command is not None:
                out, code = run_command(self.fleet, m, srv.command)
                chan.sendall(out.encode())
                chan.send_exit_status(code)
            else:
                self._shell(chan, m)
            chan.shutdown_write()
            deadline = time.monotonic() + 5.0  # let the client read the exit status and hang up
            while t.is_active() and not chan.closed and time.monotonic() < deadline:
                time.sleep(0.01)
            chan.close()
        except (paramiko.SSHException, OSError, EOFError) as e:
            log.debug("ssh %s: %s", m.ip, e)
        finally:
            t.close()
            self.transports.discard(t)

    def _fault(self, conn: socket.socket, t: paramiko.Transport, chan: Any, m: SimMiner) -> None:
        """``dying``: the command starts (a line of output) and the connection drops, no exit
        status. ``hanging``: the command never finishes (closed after ``hold`` s)."""
        if "dying" in m.faults:
            chan.sendall(b"...\n")
            time.sleep(0.05)
            conn.shutdown(socket.SHUT_RDWR)  # no exit status, no channel close: the wire goes dead
            return
        deadline = time.monotonic() + float(m.faults.get("hanging", {}).get("hold", 600))
        while t.is_active() and not chan.closed and time.monotonic() < deadline:
            time.sleep(0.05)

    def _shell(self, chan: Any, m: SimMiner) -> None:
        prompt = f"root@{m.hostname}:~# ".encode()
        chan.sendall(prompt)
        buf = b""
        while True:
            data = chan.recv(4096)
            if not data:
                return
            buf += data
            while b"\n" in buf or b"\r" in buf:
                cut = min(i for i in (buf.find(b"\n"), buf.find(b"\r")) if i >= 0)
                line, buf = buf[:cut].decode("utf-8", "replace").strip(), buf[cut + 1 :]
                if line in ("exit", "logout"):
                    chan.send_exit_status(0)
                    return
                out, _code = run_command(self.fleet, m, line)
                chan.sendall(out.replace("\n", "\r\n").encode() + prompt)

    def close(self) -> None:
        for t in list(self.transports):
            t.close()
