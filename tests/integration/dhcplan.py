"""A mine LAN in network namespaces: a bridge, a controller namespace running Debian's
dnsmasq with our generated config and lease hook, and miners each in their own namespace
running busybox udhcpc (a real DHCP client). Names use this area's reserved prefixes:
namespaces ``dh-*``, bridge ``dhbr*``, addresses 10.77.0.0/16 inside the namespaces only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from minectl_py import hook_launcher
from minectl_py.inventory.dnsmasq_conf import DnsmasqSite, render
from tests.conftest import ROOT

UDHCPC_SCRIPT = """#!/bin/sh
# udhcpc event script: configure eth0, never touch the host's resolv.conf
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-16}" dev "$interface" ;;
esac
exit 0
"""


def sh(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=timeout)


def miner_mac(i: int) -> str:
    return f"02:77:00:00:{i >> 8:02x}:{i & 0xFF:02x}"


def wait_for(cond: Callable[[], object], timeout: float, what: str, step: float = 0.2) -> object:
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


class Lan:
    def __init__(self, work: Path, lease_time: str = "2m") -> None:
        self.id = f"{os.getpid() % 10000:04d}"
        self.work = work
        self.bridge = f"dhbr{self.id}"
        self.ctl = f"dh-{self.id}-c"
        self.events = work / "events" / "events.log"
        self.state = work / "state"
        self.hostsdir = work / "hosts"
        self.hook = work / "lease-hook"
        self.conf = work / "dnsmasq.conf"
        self.log = work / "dnsmasq.log"
        self.pidfile = work / "dnsmasq.pid"
        self.lease_time = lease_time
        self.dnsmasq: subprocess.Popen[bytes] | None = None
        self.clients: dict[int, subprocess.Popen[bytes]] = {}
        self.namespaces: list[str] = []
        self.links: list[str] = []

    # -- set-up --------------------------------------------------------------------------
    def up(self) -> None:
        self.hostsdir.mkdir(parents=True, exist_ok=True)
        (self.work / "udhcpc.sh").write_text(UDHCPC_SCRIPT)
        os.chmod(self.work / "udhcpc.sh", 0o755)
        hook_launcher.write(
            str(self.hook),
            hook_launcher.render(root=str(ROOT), events=str(self.events), state_dir=str(self.state), nodename="ctl"),
        )
        site = DnsmasqSite(
            interface="eth0",
            address="10.77.0.1",
            subnet="10.77.0.0/16",
            range_start="10.77.1.1",
            range_end="10.77.3.254",
            lease_time=self.lease_time,
            domain="mine.lan",
            hook=str(self.hook),
            hostsdir=str(self.hostsdir),
            log_dhcp=True,
            log_facility=str(self.log),
            pid_file=str(self.pidfile),
            user="root",
        )
        self.conf.write_text(render(site))
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        self.links.append(self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        self._ns(self.ctl, f"dh{self.id}c", None)
        sh("ip", "-n", self.ctl, "addr", "add", "10.77.0.1/16", "dev", "eth0")
        self.start_dnsmasq()

    def _ns(self, ns: str, veth: str, mac: str | None) -> None:
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        peer = ["peer", "name", "eth0", "netns", ns] + (["address", mac] if mac else [])
        sh("ip", "link", "add", veth, "type", "veth", *peer)
        sh("ip", "link", "set", veth, "master", self.bridge, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")

    def start_dnsmasq(self) -> None:
        self.dnsmasq = subprocess.Popen(
            ["ip", "netns", "exec", self.ctl, "dnsmasq", "--keep-in-foreground", f"--conf-file={self.conf}"],
            stdout=subprocess.DEVNULL,
            stderr=open(self.work / "dnsmasq.stderr", "ab"),  # noqa: SIM115 - lives as long as dnsmasq
        )
        wait_for(lambda: self.pidfile.exists() and self.pidfile.read_text().strip(), 20, "dnsmasq's pid file")

    def stop_dnsmasq(self) -> None:
        if self.dnsmasq is not None:
            self.dnsmasq.terminate()
            try:
                self.dnsmasq.wait(20)
            except subprocess.TimeoutExpired:
                self.dnsmasq.kill()
                self.dnsmasq.wait(5)
            self.dnsmasq = None
            self.pidfile.unlink(missing_ok=True)

    def add_miner(self, i: int, hostname: str | None = None, vendor: str = "bmminer-S19") -> str:
        ns = f"dh-{self.id}-{i}"
        mac = miner_mac(i)
        self._ns(ns, f"dh{self.id}m{i}", mac)
        self.start_client(i, hostname or f"miner{i}", vendor)
        return mac

    def start_client(self, i: int, hostname: str, vendor: str = "bmminer-S19") -> None:
        ns = f"dh-{self.id}-{i}"
        cmd = ["ip", "netns", "exec", ns, "busybox", "udhcpc", "-f", "-R", "-i", "eth0"]
        cmd += ["-s", str(self.work / "udhcpc.sh"), "-x", f"hostname:{hostname}", "-V", vendor, "-t", "20", "-T", "1"]
        self.clients[i] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop_client(self, i: int, sig: int = signal.SIGTERM) -> None:
        p = self.clients.pop(i)
        p.send_signal(sig)
        p.wait(20)

    # -- looking -------------------------------------------------------------------------
    def dig(self, *args: str) -> str:
        r = sh("ip", "netns", "exec", self.ctl, "dig", "+short", "+time=2", "+tries=2", "@10.77.0.1", *args)
        return r.stdout.strip()

    # -- tear-down -----------------------------------------------------------------------
    def down(self) -> None:
        for i in list(self.clients):
            with contextlib.suppress(Exception):  # best effort: keep tearing down
                self.stop_client(i, signal.SIGKILL)
        self.stop_dnsmasq()
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns, check=False)
        for link in self.links:
            sh("ip", "link", "del", link, check=False)
