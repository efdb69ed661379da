#!/usr/bin/python3
"""TEST-ONLY stand-in for fluentd (fluent-package is not installable here), on the central side.

What it stands in for: the controller's fluentd `in_tail` (with `pos_file`) + `forward` over
the VPN + the aggregator's output, reduced to the part the scenario needs: the controller's
event log, byte for byte, appended to the file the reducer follows. It runs as a service
(`systemd-run --unit mapp-ship ... mapp-ship-events CONTROLLER_VPN_IP`) and reaches the
controller over the VPN as the admin (SSH key login; the controller's firewall allows SSH from
tun0 only).

Like in_tail's pos_file it keeps a position: `OUT.pos` holds the inode of the controller's live
log and the byte offset shipped from it, written (temp file, fsync, rename) after every append
of whole records. After a restart it resumes there, so a restart does not ship a record twice;
a crash between an append and the position write re-sends that one chunk (at least once, as
fluentd's forward with acknowledgements). When the live log is rotated (renamed away, a new
one started), the remote side reads the old file to its end and exits; the next connection
sees a new inode and starts that file from its head (what `follow_inodes` does).

Not like fluentd: no disk buffer on the controller (while the VPN is down nothing moves; the
controller's log is the buffer), no TLS forward, no aggregator daily gzip files, no record
parsing (bytes are copied; the reducer counts bad records).

Usage: mapp-ship-events CONTROLLER_IP [OUT]   (OUT: /var/lib/minectl-ship/controller/events.log)
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time

LOG = "/var/lib/minectl/events/events.log"
SSH = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"]
SSH += ["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3", "-o", "ConnectTimeout=10"]
# Runs on the controller: the header "INODE OFFSET" (offset 0 if the live file is not the one the
# position names), then the file's bytes from there, following; exits once the file was rotated
# away and read to its end.
REMOTE = r"""
import os, sys, time
path, ino, off = sys.argv[1], sys.argv[2], int(sys.argv[3])
f = open(path, "rb")
st = os.fstat(f.fileno())
if str(st.st_ino) != ino or off > st.st_size:
    off = 0
out = sys.stdout.buffer
out.write(b"%d %d\n" % (st.st_ino, off))
out.flush()
f.seek(off)
while True:
    b = f.read(1 << 16)
    if b:
        out.write(b)
        out.flush()
        continue
    try:
        rotated = os.stat(path).st_ino != st.st_ino
    except FileNotFoundError:
        rotated = False
    if rotated:
        time.sleep(1)
        b = f.read()
        out.write(b)
        out.flush()
        sys.exit(0)
    time.sleep(0.5)
"""


def load(pos: str) -> tuple[str, int]:
    try:
        with open(pos) as f:
            ino, off = f.read().split()
        return ino, int(off)
    except (FileNotFoundError, ValueError):
        return "0", 0


def save(pos: str, ino: str, off: int) -> None:
    tmp = pos + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{ino} {off}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, pos)


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    ip = argv[0]
    out = argv[1] if len(argv) > 1 else "/var/lib/minectl-ship/controller/events.log"
    pos = out + ".pos"
    stop = False
    proc: subprocess.Popen[bytes] | None = None

    def term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True
        if proc is not None:
            proc.terminate()  # its output up to here is still read and shipped below

    signal.signal(signal.SIGTERM, term)
    signal.signal(signal.SIGINT, term)
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    while not stop:
        ino, off = load(pos)
        remote = "python3 -c " + shlex.join([REMOTE, LOG, ino, str(off)])
        proc = subprocess.Popen([*SSH, f"admin@{ip}", remote], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        head = proc.stdout.readline().split()
        if len(head) == 2:
            ino, off = head[0].decode(), int(head[1])
            buf = b""
            while chunk := proc.stdout.read1(1 << 16):
                buf += chunk
                cut = buf.rfind(b"\n") + 1  # whole records only; a partial one waits for its end
                if cut:
                    data, buf = buf[:cut], buf[cut:]
                    while data:
                        data = data[os.write(fd, data) :]
                    os.fsync(fd)
                    off += cut
                    save(pos, ino, off)
        proc.wait()
        if not stop:
            time.sleep(2)  # the VPN is down, or the log was rotated: connect again
    os.close(fd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
