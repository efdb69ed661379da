"""Hostile strings end to end: crafted DHCP hostnames, vendor classes and client ids through
the lease hook (run as dnsmasq runs it), and crafted miner API strings (pool URLs and users,
hostnames) from the simulator through the poller, into the state directory, the event log
and the output of ``minectl status``, ``show``, ``map`` and ``summary``. None may reach a path
(every state path stays inside the state directory, with safe names), a shell (a command
substitution never runs), or the terminal unescaped (no ESC, BEL, C1 or bidi control in what
minectl prints, except minectl's own colour sequences with ``--color always``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from minectl_py import hook_launcher
from minectl_py.events.reader import EventReader
from minectl_py.sim import FleetError, FleetSpec, MinerSpec, finish, run_fleet_in_thread
from minectl_py.state import project
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

#: Characters that must never reach the terminal raw from miner-supplied data.
BAD_TERMINAL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
SGR = re.compile("\x1b\\[[0-9;]*m")
SAFE_NAME = re.compile(r"\A[A-Za-z0-9._:-]+\Z")


def hostile(canary: Path) -> list[str]:
    return [
        "../../../../tmp/evil",
        f"$(touch {canary})",
        f"`touch {canary}`",
        f"x; touch {canary}",
        "\x1b[2J\x1b[H\x1b]0;owned\x07",
        "\x9b31mC1",
        "r1\u202eevil\u200b",
        "..",
        "-rf",
        "a\nInjected: line",
        "\udcff\udcfe bytes",
    ]


def _check_tree(state: Path) -> None:
    root = state.resolve()
    for dirpath, dirs, files in os.walk(state):
        for name in dirs + files:
            p = Path(dirpath) / name
            assert SAFE_NAME.match(name), f"unsafe name in the state directory: {name!r}"
            if p.is_symlink():
                assert (p.parent / os.readlink(p)).resolve().is_relative_to(root), f"{p} leads outside"
            elif p.is_file() and not name.startswith("."):
                text = p.read_text("utf-8")
                assert not BAD_TERMINAL.search(text.rstrip("\n")), f"{p}: {text!r}"


def test_dhcp_strings_through_the_lease_hook(tmp_path):
    canary = tmp_path / "pwned"
    state, log = tmp_path / "state", tmp_path / "ev" / "events.log"
    hook = tmp_path / "lease-hook"
    hook_launcher.write(
        str(hook), hook_launcher.render(root=str(ROOT), events=str(log), state_dir=str(state), nodename="ctl")
    )
    strings = hostile(canary)
    for i, s in enumerate(strings):
        env = {
            "PATH": "/usr/bin:/bin",
            "DNSMASQ_VENDOR_CLASS": s,
            "DNSMASQ_SUPPLIED_HOSTNAME": s,
            "DNSMASQ_CLIENT_ID": s,
            "DNSMASQ_USER_CLASS0": s,
            "DNSMASQ_TAGS": s,
        }
        env = {k: v.encode("utf-8", "surrogateescape") for k, v in env.items()}
        argv = [str(hook), "add", f"02:76:00:00:01:{i:02x}", f"10.76.1.{i + 1}", s]
        r = subprocess.run([a.encode("utf-8", "surrogateescape") for a in argv], env=env, capture_output=True)
        assert r.returncode == 0, r.stderr
    # a hostile MAC and IP argument: refused as a miner, still recorded as an event
    r = subprocess.run([str(hook), "add", "../../x", "../../y", "z"], env={"PATH": "/usr/bin"}, capture_output=True)
    assert r.returncode == 0, r.stderr
    assert not canary.exists(), "a shell ran a miner's string"
    assert sorted(os.listdir(tmp_path)) == ["ev", "lease-hook", "state"]  # nothing written beside
    _check_tree(state)
    raw = log.read_bytes()
    assert b"\x1b" not in raw and b"\x07" not in raw and b"\xc2\x9b" not in raw  # JSON-escaped in the log
    recs = list(EventReader([str(log)], strict=True))
    assert len(recs) == len(strings) + 1
    kept = {r["supplied_hostname"] for r in recs if "supplied_hostname" in r}
    assert "\x1b[2J\x1b[H\x1b]0;owned\x07" in kept  # the raw value survives, escaped, for forensics
    names = sorted(os.listdir(state / "by-name"))
    assert names and all(SAFE_NAME.match(n) and not n.startswith((".", "-")) for n in names)
    assert len(os.listdir(state / "miners")) == len(strings)  # not the "../../x" one


def _fleet(strings: list[str]):
    last: Exception | None = None
    for third in range(10, 60):
        miners = []
        for i, s in enumerate(strings):
            kind = ["s19", "btminer", "bosminer", "cgminer"][i % 4]
            ms = MinerSpec(ip=f"127.76.{third}.{i + 1}", personality=kind, hostname=s[:60])
            ms.pools = [{"url": f"stratum+tcp://{s}:3333", "user": s, "password": "x"}]
            miners.append(ms)
        try:
            return run_fleet_in_thread(finish(FleetSpec(miners=miners, http_port=None, ssh_port=None, seed=third)))
        except (FleetError, OSError) as e:
            last = e
    raise RuntimeError(f"no simulated fleet: {last}")


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "minectl_py", *args], env=env, capture_output=True, timeout=120)


def _terminal_safe(out: bytes, what: str, colour: bool = False) -> str:
    text = out.decode("utf-8")
    if colour:
        text = SGR.sub("", text)
    m = BAD_TERMINAL.search(text.replace("\n", "").replace("\r", ""))
    assert m is None, f"{what}: raw {m.group()!r} in {text[max(0, m.start() - 40) : m.end() + 40]!r}"
    return text


def test_miner_strings_through_the_poller_to_the_admin(tmp_path):
    canary = tmp_path / "pwned"
    strings = hostile(canary)[:-1]  # the simulator sends UTF-8 text: no undecodable bytes
    fleet = _fleet(strings)
    try:
        state, log = tmp_path / "state", tmp_path / "ev" / "events.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MINECTL_EVENTS": str(log), "MINECTL_STATE_DIR": str(state)}
        env.pop("NO_COLOR", None)
        from minectl_py.events import record
        from minectl_py.events.writer import EventWriter

        leases = [
            record.make("lease", "c", {"action": "add", "mac": fleet.show(ip)["mac"], "ip": ip})
            for ip in fleet.addresses
        ]
        project.forget_cache()
        with EventWriter(str(log)) as w:
            project.record_and_apply(str(state), leases, w.append_many)
        p = _run(env, "poll", "--once", "--connect-timeout", "1", "--timeout", "5")
        assert p.returncode in (0, 1), p.stderr
        _terminal_safe(p.stdout, "poll --once")
        _terminal_safe(p.stderr, "poll --once (stderr)")
        vals = [json.loads((d / "miner.json").read_text()) for d in (state / "miners").iterdir()]
        assert sum(1 for v in vals if v.get("state") == "online") >= len(strings) - 1, vals
        assert any("touch" in (v.get("pool_user") or "") for v in vals)  # the strings arrived, cleaned
        _check_tree(state)
        for args in (
            ["status"],
            ["status", "--color", "always"],
            ["status", "--json"],
            ["summary"],
            ["map"],
            ["map", "--color", "always"],
            ["show", fleet.addresses[4]],
            ["show", fleet.addresses[6], "--color", "always"],
            ["state", "ls"],
        ):
            r = _run(env, *args)
            assert r.returncode == 0, (args, r.stderr)
            text = _terminal_safe(r.stdout, " ".join(args), colour="always" in args)
            _terminal_safe(r.stderr, " ".join(args) + " (stderr)")
            if args == ["status", "--json"]:
                rows = json.loads(text)
                assert rows and all(not BAD_TERMINAL.search(json.dumps(row, ensure_ascii=False)) for row in rows)
        assert not canary.exists(), "a shell ran a miner's string"
    finally:
        fleet.stop()
