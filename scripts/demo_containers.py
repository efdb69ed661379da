"""``./dev demo``: the whole appliance in containers, as an admin sees it.

The same simulated site as the Molecule scenario ``molecule/default`` (docs/appliance.md),
brought up by its own create (networks, three systemd containers, the test VPN server, 50
miners that lease their addresses by DHCP) and converge (the real ``ansible/site.yml``).
Then, through the tunnel with the admin's key, as an admin at home would:
``minectl summary`` and ``minectl status`` on the controller; the controller's event log
shipped to the metrics host (MariaDB, InfluxDB); a reduction report written here.
It leaves the site running and prints how to get a shell, fault a miner, and tear it down
(``./dev demo --down``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from scripts import image, molecule_run, wheelhouse

ROOT = Path(__file__).resolve().parent.parent
SITE_CSV = ROOT / "molecule" / "default" / "files" / "site.csv"
SSH = "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o ConnectTimeout=5"
SIM = "/opt/mapp/venv/bin/minectl sim"
SIM_CTL = "--control /run/mapp-sim.sock"


def say(msg: str) -> None:
    print(f"\n\033[1m==> {msg}\033[0m" if sys.stdout.isatty() else f"\n==> {msg}", flush=True)


def molecule(stage: str) -> None:
    t = time.monotonic()
    rc = subprocess.run(["molecule", stage, "-s", "default"], cwd=ROOT, env=molecule_run.env()).returncode
    if rc != 0:
        raise SystemExit(f"demo: 'molecule {stage} -s default' failed (exit {rc}); tear down: ./dev demo --down")
    print(f"   molecule {stage}: {time.monotonic() - t:.0f} s", flush=True)


def pexec(container: str, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(["podman", "exec", container, "sh", "-c", command], text=True, capture_output=True)
    if check and p.returncode != 0:
        raise SystemExit(f"demo: in {container}: {command!r} failed (exit {p.returncode}): {p.stderr.strip()}")
    return p


def wait(what: str, fn, timeout: float, step: float = 3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if got := fn():
            return got
        time.sleep(step)
    raise SystemExit(f"demo: {what}: not there after {timeout:.0f} s")


def running() -> bool:
    p = subprocess.run(
        ["podman", "container", "inspect", "-f", "{{.State.Running}}", "mapp-controller"],
        text=True,
        capture_output=True,
    )
    return p.stdout.strip() == "true"


def vpn_ip() -> str:
    def addr():
        r = pexec("mapp-controller", "ip -j -4 addr show dev tun0", check=False)
        return r.returncode == 0 and json.loads(r.stdout)[0]["addr_info"][0]["local"]

    return wait("the controller's tunnel address", addr, 120)


def polled(n: int) -> int:
    out = pexec("mapp-controller", "cat /var/lib/minectl/state/miners/*/miner.json", check=False).stdout
    ok = [m for m in map(json.loads, out.splitlines()) if m.get("state") == "online" and m.get("hashrate")]
    return len(ok) >= n and len(ok)


def admin(ip: str, command: str, show: bool = True) -> str:
    """``command`` on the controller as the admin: SSH with the key, over the VPN, from the central side."""
    if show:
        print(f"admin@controller$ {command}", flush=True)
    p = pexec("mapp-central", f"{SSH} admin@{ip} {shlex.quote(command)}", check=False)
    if show:
        print(p.stdout, end="", flush=True)
    if p.returncode not in (0, 1):  # 1: minectl found something unhealthy, which is the point of the views
        raise SystemExit(f"demo: '{command}' over the VPN failed (exit {p.returncode}): {p.stderr.strip()}")
    return p.stdout


def miner_ip(mac: str) -> str:
    out = pexec("mapp-controller", f"cat /var/lib/minectl/state/miners/{mac}/ip").stdout.strip()
    return out


def up(report: Path, converge: bool) -> int:
    n = sum(1 for r in SITE_CSV.read_text().splitlines()[1:] if r and not r.startswith("#"))
    t0 = time.monotonic()
    say("0. what the scenario needs: the wheelhouse, the images, the podman collection (cached)")
    wheelhouse.build()
    image.collections()
    image.build()
    if running() and not converge:
        say("1. the site is already up (mapp-* containers); --converge runs site.yml again")
    else:
        say("1. create: networks mapp-wan/mapp-lan, mapp-controller, mapp-central (VPN server), mapp-miners")
        molecule("create")
        say("2. converge: ansible/site.yml against the example inventory (the slow part: ~200 tasks)")
        molecule("converge")
    ip = vpn_ip()
    say(f"3. the tunnel is up (controller {ip}); waiting for all {n} miners to be leased and polled")
    got = wait(f"all {n} miners polled online", lambda: polled(n), 300)
    print(f"   {got} miners online in the state directory", flush=True)
    faulty = miner_ip("02:4d:a0:00:00:04")
    pexec("mapp-miners", f"{SIM} fault {faulty} hot {SIM_CTL}")
    print(f"   fault injected: {faulty} hot (two more run at low hashrate from the start)", flush=True)
    pexec(
        "mapp-central",
        "systemctl is-active -q mapp-ship || systemd-run --unit mapp-ship -p Restart=always "
        f"-p RestartSec=2 /usr/local/sbin/mapp-ship-events {ip}",
    )
    time.sleep(25)  # two poll intervals, so the fault shows

    say("4. what an admin sees (ssh admin@controller over the VPN, key only)")
    admin(ip, "minectl summary")
    admin(ip, "minectl status --sort hashrate_pct --limit 15")

    say("5. a reduction report of the controller's event log (written here)")
    report.mkdir(parents=True, exist_ok=True)
    events = report / "events.log"
    with events.open("w") as f:
        subprocess.run(
            ["podman", "exec", "mapp-controller", "cat", "/var/lib/minectl/events/events.log"], stdout=f, check=True
        )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "minectl_py",
            "reduce",
            "all",
            str(events),
            "--inventory",
            str(SITE_CSV),
            "--report",
            str(report),
        ],
        check=True,
        cwd=ROOT,
        env={**molecule_run.env(), "PYTHONPATH": str(ROOT)},
    )
    print(f"   {report}/index.html (plots), {report}/views.sqlite", flush=True)
    rows = pexec("mapp-central", "mariadb -N -B -D minectl -e 'SELECT COUNT(*) FROM hashrate_miner'", check=False)
    if rows.returncode == 0:
        print(
            f"   metrics host: MariaDB minectl.hashrate_miner has {rows.stdout.strip()} rows (the reducer follows the "
            "shipped log; Grafana's queries read these tables)"
        )

    say(f"the site is up ({time.monotonic() - t0:.0f} s)")
    print(f"""
A shell on the controller (root), or as the admin over the VPN:
  podman exec -it mapp-controller bash
  podman exec -it mapp-central ssh admin@{ip}
    then: minectl summary; minectl status; ls /var/lib/minectl/state/miners/
Fault a miner and watch it show up (the poller runs every 10 s):
  podman exec mapp-miners {SIM} fault {faulty} refusing {SIM_CTL}
  sleep 25; podman exec mapp-central ssh admin@{ip} minectl status {faulty}
  podman exec mapp-miners {SIM} clear {faulty} {SIM_CTL}
Prove it all (the scenario's testinfra checks, against these containers):
  ./dev molecule-site --stages verify --keep
Tear it all down (containers mapp-*, networks mapp-wan, mapp-lan):
  ./dev demo --down
""")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="./dev demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--down", action="store_true", help="remove the containers and networks")
    ap.add_argument("--converge", action="store_true", help="run site.yml again even if the site is up")
    ap.add_argument("--report", default=str(ROOT / "site-containers"), help="where the reduction report goes")
    a = ap.parse_args(argv)
    if a.down:
        molecule("destroy")
        print("containers mapp-controller, mapp-central, mapp-miners and networks mapp-wan, mapp-lan removed")
        return 0
    return up(Path(a.report).resolve(), a.converge)


if __name__ == "__main__":
    raise SystemExit(main())
