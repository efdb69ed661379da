"""Driving ``minectl`` in a pseudo-terminal: what a person at the console sees."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_in_pty(
    args: list[str], env: dict[str, str], answers: dict[str, str] | None = None, timeout: float = 60.0, cols: int = 160
) -> tuple[int, str]:
    """Run ``python -m minectl_py ARGS`` on a pty (stdin, stdout, stderr); type ``answers[prompt]``
    when ``prompt`` appears. Returns the exit code and everything the terminal showed."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, cols, 0, 0))
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    e["TERM"] = "xterm-256color"
    e.update(env)
    e["PYTHONPATH"] = str(ROOT)
    e["COLUMNS"] = str(cols)
    proc = subprocess.Popen(
        [sys.executable, "-m", "minectl_py", *args], stdin=slave, stdout=slave, stderr=slave, env=e, close_fds=True
    )
    os.close(slave)
    out = b""
    pending = dict(answers or {})
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
                for prompt in list(pending):
                    if prompt.encode() in out:
                        os.write(master, pending.pop(prompt).encode())
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            raise TimeoutError(f"minectl {' '.join(args)} did not finish: {out[-500:]!r}")
        code = proc.wait(timeout=10)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return code, out.decode("utf-8", "replace")
