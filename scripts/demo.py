"""The main job: a simulated mine site, end to end, as an admin sees it.

``./dev demo --loopback`` brings up, on this machine, in ``./site/`` (override with ``--dir``):

1. a fleet of simulated miners on loopback (``minectl sim``: cgminer API on 4028, Antminer
   HTTP digest CGI, SSH), each with its own address in 127.60.0.0/16;
2. their DHCP leases, reported through the real lease hook exactly as dnsmasq calls it
   (``minectl-lease-hook add MAC IP HOSTNAME`` with the ``DNSMASQ_*`` environment), into the
   site event log and the per-miner state directory;
3. the site inventory (racks, shelves, positions) from a CSV;
4. the poller (a first full pass, then as a service every 15 s), with a few faults injected
   (hot, low hashrate, a dead miner, a failed fan) so the views have something to show;
5. ``minectl summary``, ``minectl status`` and ``minectl map`` as an admin sees them, the
   watchdog rules in dry-run, one audited action, and a reduction of the event log into
   SQLite with a report.

It leaves the simulator and the poller running and prints how to look around, how to fault a
miner and watch it show up, and how to tear it all down (``./dev demo --loopback --down``).
The whole appliance in containers (dnsmasq, OpenVPN, metrics host) is ``./dev demo`` without
``--loopback`` (scripts/demo_containers.py).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from minectl_py.sim.spec import FleetSpec, finish, from_flags

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BASE_IP = "127.60.0.1"
SEED = 7
MODELS = {
    "s9": "Antminer S9",
    "s19": "Antminer S19 Pro",
    "btminer": "Whatsminer M30S",
    "bosminer": "Antminer S19",
    "cgminer": "Generic SHA256 ASIC",
}
FAULTS = [("hot", 0), ("hot", 7), ("low_hashrate", 3), ("low_hashrate", 11), ("fan_failed", 5), ("dead", 9)]


def say(msg: str) -> None:
    print(f"\n\033[1m==> {msg}\033[0m" if sys.stdout.isatty() else f"\n==> {msg}", flush=True)


class Site:
    def __init__(self, d: Path) -> None:
        self.dir = d
        self.events = d / "events" / "events.log"
        self.state = d / "state"
        self.config = d / "config"
        self.sock = d / "sim.sock"
        self.env = dict(os.environ)
        self.env.update(
            MINECTL_EVENTS=str(self.events),
            MINECTL_STATE_DIR=str(self.state),
            MINECTL_CONFIG_DIR=str(self.config),
            MINECTL_SIM_CONTROL=str(self.sock),
            MINECTL_NODENAME="demo-controller",
            PYTHONPATH=str(ROOT),
        )
        self.py = sys.executable

    def minectl(self, *args: str, check: bool = True, show: bool = True) -> subprocess.CompletedProcess[str]:
        if show:
            print(f"$ minectl {' '.join(args)}", flush=True)
        p = subprocess.run(
            [self.py, "-m", "minectl_py", *args], env=self.env, text=True, capture_output=not show, check=False
        )
        if check and p.returncode != 0:
            raise SystemExit(f"demo: 'minectl {' '.join(args)}' failed with exit code {p.returncode}")
        return p

    def start(self, name: str, *args: str) -> int:
        log = open(self.dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        p = subprocess.Popen(
            [self.py, "-m", "minectl_py", *args], env=self.env, stdout=log, stderr=log, start_new_session=True
        )
        (self.dir / f"{name}.pid").write_text(f"{p.pid}\n")
        return p.pid

    def stop_all(self) -> None:
        for pidfile in sorted(self.dir.glob("*.pid")):
            try:
                pid = int(pidfile.read_text())
                os.killpg(pid, signal.SIGTERM)
                for _ in range(50):
                    os.kill(pid, 0)
                    time.sleep(0.1)
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, ValueError, PermissionError):
                pass
            pidfile.unlink(missing_ok=True)


def fleet(n: int, base_ip: str) -> FleetSpec:
    return finish(FleetSpec(miners=from_flags(n, base_ip, SEED), seed=SEED))


def write_inventory(site: Site, spec: FleetSpec) -> Path:
    """Racks of 4 shelves x 10 positions, names like the ops spreadsheet's."""
    path = site.dir / "site.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["mac", "name", "rack", "shelf", "position", "model"])
        for i, m in enumerate(spec.miners):
            rack, rest = divmod(i, 40)
            shelf, pos = divmod(rest, 10)
            w.writerow(
                [
                    m.mac,
                    f"r{rack + 1:02d}-s{shelf + 1}-p{pos + 1:02d}",
                    f"R{rack + 1:02d}",
                    shelf + 1,
                    pos + 1,
                    MODELS.get(m.personality, m.personality),
                ]
            )
    return path


def leases(site: Site, spec: FleetSpec) -> None:
    """Every miner asks for an address: the lease hook runs as dnsmasq runs it."""
    hook = [
        site.py,
        "-I",
        "-S",
        "-c",
        "import sys; sys.path.insert(0, sys.argv.pop(1)); "
        "from minectl_py.lease_hook import main; raise SystemExit(main())",
        str(ROOT),
    ]
    expires = int(time.time()) + 12 * 3600
    for m in spec.miners:
        env = dict(
            site.env,
            DNSMASQ_INTERFACE="eth1",
            DNSMASQ_SUPPLIED_HOSTNAME=m.hostname,
            DNSMASQ_LEASE_EXPIRES=str(expires),
            DNSMASQ_TIME_REMAINING=str(12 * 3600),
            DNSMASQ_VENDOR_CLASS="udhcp 1.30.1" if m.personality in ("s9", "s19") else "dhcpcd-9.4.1",
        )
        p = subprocess.run(
            [*hook, "add", m.mac, m.ip, m.hostname], env=env, capture_output=True, text=True, check=False
        )
        if p.returncode != 0:
            raise SystemExit(f"demo: lease hook failed for {m.mac} {m.ip}: {p.stderr.strip()}")


def poll(site: Site, *extra: str) -> None:
    """One poller pass; its per-miner table is long, so show its closing line only."""
    print(f"$ minectl poll --once {' '.join(extra)}".rstrip(), flush=True)
    p = site.minectl("poll", "--once", *extra, check=False, show=False)
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    print("   " + (lines[-1] if lines else p.stderr.strip()))
    if p.returncode not in (0, 1):  # 1: some miners did not answer, which the demo expects
        raise SystemExit(f"demo: the poller failed (exit {p.returncode}): {p.stderr.strip()}")


def wait_for_sim(site: Site, n: int, timeout_s: float = 300.0) -> None:
    """Until the simulator answers on its control socket with every miner (slow machines: minutes)."""
    deadline = time.monotonic() + timeout_s
    pid = int((site.dir / "sim.pid").read_text())
    while time.monotonic() < deadline:
        if site.sock.exists():
            p = site.minectl("sim", "list", "--json", check=False, show=False)
            if p.returncode == 0 and p.stdout.count('"ip"') >= n:
                return
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            log = (site.dir / "sim.log").read_text(errors="replace")[-2000:]
            raise SystemExit(f"demo: the simulator exited during start-up:\n{log}") from None
        time.sleep(0.5)
    raise SystemExit(f"demo: the simulator did not come up in {timeout_s:.0f} s; see {site.dir / 'sim.log'}")


def credentials(site: Site) -> None:
    site.config.mkdir(parents=True, exist_ok=True)
    path = site.config / "credentials.yml"
    path.write_text(
        "# demo site: the simulator's default credentials (docs/simulator.md)\n"
        "default:\n  ssh: {user: root, password: root}\n"
        "families:\n  antminer:\n    http: {user: root, password: root}\n    ssh: {user: root, password: admin}\n"
        "ssh_host_keys: accept-new\n"
        f"known_hosts: {site.config / 'ssh_known_hosts'}\n"
    )
    path.chmod(0o600)


def demo_rules(site: Site, spec: FleetSpec) -> Path:
    """The example rules, with this site's primary pool (the simulator's first pool)."""
    text = (ROOT / "files/rules/example.yml").read_text()
    pool = (spec.miners[0].pools or [{"url": "stratum+tcp://pool1.example.com:3333"}])[0]["url"]
    path = site.config / "rules.yml"
    path.write_text(text.replace("stratum+tcp://pool.example.com:3333", pool))
    return path


def up(site: Site, n: int, base_ip: str, keep_running: bool) -> int:
    site.stop_all()
    for sub in ("events", "state", "config", "report", "dhcp-hosts"):
        shutil.rmtree(site.dir / sub, ignore_errors=True)
    site.events.parent.mkdir(parents=True)
    site.state.mkdir()
    credentials(site)
    spec = fleet(n, base_ip)

    say(f"1. {n} simulated miners from {base_ip} (cgminer API :4028, Antminer HTTP :80, SSH :22)")
    site.start(
        "sim", "sim", "run", "--miners", str(n), "--base-ip", base_ip, "--seed", str(SEED), "--control", str(site.sock)
    )
    wait_for_sim(site, n)
    site.minectl("sim", "list", show=False)
    print(
        f"   {n} miners up; personalities: "
        + ", ".join(
            f"{k} x{sum(m.personality == k for m in spec.miners)}" for k in sorted({m.personality for m in spec.miners})
        )
    )

    say("2. DHCP: every miner's lease through the real lease hook (as dnsmasq runs it)")
    t0 = time.time()
    leases(site, spec)
    print(f"   {n} leases in {time.time() - t0:.1f} s -> {site.events} and {site.state}/miners/")

    say("3. the site inventory: racks, shelves, positions")
    inv = write_inventory(site, spec)
    site.minectl("inventory", "apply", str(inv), "--hostsdir", str(site.dir / "dhcp-hosts"))

    say("4. the poller: a first pass over every miner")
    poll(site)
    for fault, i in FAULTS:
        if i < n:
            site.minectl("sim", "fault", spec.miners[i].ip, fault, show=False)
    print("   faults injected: " + ", ".join(f"{spec.miners[i].hostname} {f}" for f, i in FAULTS if i < n))
    poll(site, "--connect-timeout", "1", "--timeout", "3")

    say("5. what an admin sees")
    site.minectl("summary")
    site.minectl("status", "--sort", "hashrate_pct", "--limit", "12")
    site.minectl("map")

    say("6. the watchdog rules, dry run (what they would do now)")
    site.minectl("rules", "run", "--once", "--dry-run", "--rules", str(demo_rules(site, spec)), check=False)

    say("7. one audited action: turn on the locate LED of the hottest miner")
    hot = spec.miners[0]
    site.minectl("locate", "on", hot.ip, "--yes")
    site.minectl("events", "cat", "--type", "action", "--lines")

    say("8. reductions: the event log replayed into SQLite views")
    db = site.dir / "report" / "views.sqlite"
    db.parent.mkdir(exist_ok=True)
    site.minectl("reduce", "all", str(site.events), "--inventory", str(inv), "--db", str(db))
    site.minectl("reduce", "hashrate", str(site.events), "--view", "hashrate_rack", "--inventory", str(inv))
    site.minectl("events", "count")

    if keep_running:
        site.start("poller", "poll", "--interval", "15", "--connect-timeout", "1", "--timeout", "3")
    env = (
        f"export MINECTL_EVENTS={site.events} MINECTL_STATE_DIR={site.state} "
        f"MINECTL_CONFIG_DIR={site.config} MINECTL_SIM_CONTROL={site.sock}"
    )
    say("the site is up" if keep_running else "done")
    print(f"""
Look around (this machine plays the controller; the Molecule scenario builds the real appliance):
  {env}
  export PATH={ROOT / ".venv/bin"}:$PATH
  minectl summary; minectl status --where 'hashrate_pct<80'; minectl map --by temp
  ls {site.state}/miners/{spec.miners[0].mac}/ && cat {site.state}/miners/{spec.miners[0].mac}/hashrate
  minectl events tail --type poll_fail          # the poller runs every 15 s
Fault a miner and watch it show up at the next poll:
  minectl sim fault {spec.miners[1].ip} hot && sleep 20 && minectl status {spec.miners[1].ip}
  minectl sim clear {spec.miners[1].ip}
Tear it all down:
  ./dev demo --loopback --down
""")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="./dev demo --loopback", description=__doc__.split("\n\n")[0])
    ap.add_argument("--miners", type=int, default=200, help="how many simulated miners (default 200)")
    ap.add_argument("--base-ip", default=DEFAULT_BASE_IP, help=f"first miner's address (default {DEFAULT_BASE_IP})")
    ap.add_argument("--dir", default=str(ROOT / "site"), help="where the demo site lives (default ./site)")
    ap.add_argument("--down", action="store_true", help="stop the simulator and poller and remove the site")
    ap.add_argument("--no-keep", action="store_true", help="stop everything when done (used by the tests)")
    a = ap.parse_args(argv)
    if not 1 <= a.miners <= 10_000:
        ap.error("--miners must be between 1 and 10000")
    site = Site(Path(a.dir).resolve())
    site.dir.mkdir(parents=True, exist_ok=True)
    if a.down:
        site.stop_all()
        shutil.rmtree(site.dir, ignore_errors=True)
        print(f"demo site {site.dir} stopped and removed")
        return 0
    try:
        return up(site, a.miners, a.base_ip, keep_running=not a.no_keep)
    finally:
        if a.no_keep:
            site.stop_all()


if __name__ == "__main__":
    raise SystemExit(main())
