"""SSH for actions (paramiko): one command per connection, host keys remembered on first use
(or checked strictly), output bounded, every failure classified (no exceptions escape).

The command is a fixed string from :mod:`minectl_py.admin.plan` or the admin's own ``exec``
command; nothing a miner sent is ever part of it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from minectl_py.admin.credentials import Cred
from minectl_py.admin.outcome import MAX_OUTPUT, Outcome, net_error, short
from minectl_py.admin.plan import Step


class HostKeys:
    """Known SSH host keys shared by every connection of one command (TOFU or strict)."""

    def __init__(self, path: str, policy: str) -> None:
        import paramiko

        self.path = path
        self.policy = policy
        self.keys = paramiko.HostKeys()
        self.lock = threading.Lock()
        self.changed = False
        if policy != "off":
            with contextlib.suppress(FileNotFoundError):
                self.keys.load(path)

    def save(self) -> None:
        import os

        if not self.changed or self.policy == "off":
            return
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        with self.lock:
            self.keys.save(tmp)
        os.replace(tmp, self.path)


def run_ssh(ip: str, port: int, step: Step, cred: Cred | None, timeout: float, hostkeys: HostKeys | None) -> Outcome:
    import paramiko

    if cred is None or not cred.user:
        return Outcome("nocred", "ssh", "no SSH credentials configured for this miner")
    name = ip if port == 22 else f"[{ip}]:{port}"
    client = paramiko.SSHClient()
    store = client.get_host_keys()
    if hostkeys is not None and hostkeys.policy != "off":
        with hostkeys.lock:
            known = hostkeys.keys.lookup(name)
        if known is not None:
            for ktype, key in known.items():
                store.add(name, ktype, key)
    client.set_missing_host_key_policy(_Policy(hostkeys))
    sent = False
    try:
        try:
            client.connect(
                ip,
                port=port,
                username=cred.user,
                password=cred.password,
                key_filename=cred.key_file,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                allow_agent=False,
                look_for_keys=False,
            )
        except paramiko.BadHostKeyException:
            why = f"host key of {ip} changed: check the miner, then remove it from known_hosts"
            return Outcome("hostkey", "ssh", why)
        except paramiko.AuthenticationException:
            return Outcome("auth", "ssh", "SSH authentication failed: wrong user, password or key")
        except paramiko.SSHException as e:
            if "host key" in str(e).lower() or "not found in known_hosts" in str(e):
                return Outcome("hostkey", "ssh", short(e))
            return Outcome("unreachable", "ssh", short(f"SSH handshake failed: {e}"))
        cmd = step.args["cmd"]
        chan = client.get_transport().open_session(timeout=timeout)  # type: ignore[union-attr]
        chan.settimeout(timeout)
        chan.exec_command(cmd)
        sent = True
        out, err = _drain(chan, timeout)
        status = chan.recv_exit_status() if chan.exit_status_ready() else None
        text = out.decode("utf-8", "replace")
        etext = err.decode("utf-8", "replace")
        if status is None or status == -1:  # paramiko's -1: the channel closed without an exit status
            why = "connection dropped before the command finished: the miner may have acted"
            return Outcome("lost", "ssh", why, output=text)
        res = Outcome("ok" if status == 0 else "fail", "ssh", "", output=text, exit_status=status)
        if status != 0:
            res.detail = short(f"exit {status}: {etext or text}")
        elif not step.args.get("capture"):
            res.detail = short(f"ran {cmd!r}")
        return res
    except TimeoutError as e:
        return net_error(e, "ssh", sent)
    except (OSError, EOFError, paramiko.SSHException) as e:
        if sent:
            return Outcome("lost", "ssh", short(f"connection lost during the command: {e}"))
        return net_error(e, "ssh", sent=False)
    finally:
        client.close()


def _drain(chan: Any, timeout: float) -> tuple[bytes, bytes]:
    out = bytearray()
    err = bytearray()
    deadline = time.monotonic() + timeout
    while True:
        got = False
        if chan.recv_ready():
            b = chan.recv(65536)
            if len(out) < MAX_OUTPUT:
                out += b
            got = True
        if chan.recv_stderr_ready():
            b = chan.recv_stderr(65536)
            if len(err) < MAX_OUTPUT:
                err += b
            got = True
        if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
            break
        if chan.closed and not got:
            break
        if time.monotonic() > deadline:
            raise TimeoutError("command did not finish in time")
        if not got:
            time.sleep(0.01)
    return bytes(out[:MAX_OUTPUT]), bytes(err[:MAX_OUTPUT])


class _Policy:
    def __init__(self, hostkeys: HostKeys | None) -> None:
        self.hostkeys = hostkeys

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        import paramiko

        hk = self.hostkeys
        if hk is None or hk.policy == "off":
            return
        if hk.policy == "strict":
            raise paramiko.SSHException(f"host key of {hostname} not found in known_hosts (ssh_host_keys: strict)")
        with hk.lock:
            hk.keys.add(hostname, key.get_name(), key)
            hk.changed = True
