"""`minectl sim run` as a process, poked through its control socket by `minectl sim fault/show`."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from minectl_py.miner.poll import poll_miner
from tests.conftest import ROOT, run_minectl

pytestmark = pytest.mark.integration


def test_sim_process_with_control_socket(tmp_path):
    ctl, ready = tmp_path / "sim.sock", tmp_path / "ready.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for _ in range(10):
        base = f"127.20.{random.randrange(100, 199)}.1"
        cmd = [sys.executable, "-m", "minectl_py", "sim", "run", "--miners", "3", "--base-ip", base, "--seed", "4"]
        cmd += ["--no-http", "--no-ssh", "--control", str(ctl), "--ready-file", str(ready)]
        proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE)
        deadline = time.time() + 20
        while not ready.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        if ready.exists():
            break
        proc.kill()
        proc.wait()
    else:
        pytest.fail("the simulator did not start")
    try:
        ips = json.loads(ready.read_text())["miners"]
        assert len(ips) == 3 and ips[0] == base
        c = ["--control", str(ctl)]
        assert run_minectl("sim", "fault", ips[1], "refusing", *c).returncode == 0
        assert asyncio.run(poll_miner(ips[1])).reason == "refused"
        shown = json.loads(run_minectl("sim", "show", ips[1], "--json", *c).stdout)
        assert shown["faults"] == ["refusing"] and shown["listeners"]["api"] == "closed"
        assert run_minectl("sim", "clear", ips[1], *c).returncode == 0
        assert asyncio.run(poll_miner(ips[1])).ok
        listing = run_minectl("sim", "list", *c).stdout.decode()
        assert all(ip in listing for ip in ips)
        bad = run_minectl("sim", "show", "10.9.9.9", *c)
        assert bad.returncode == 1 and b"no simulated miner at 10.9.9.9" in bad.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert not ctl.exists()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_sim_usage_errors(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("miners: [{personality: s21}]\n")
    p = run_minectl("sim", "run", "--fleet", str(f))
    assert p.returncode == 2 and b"bad.yaml: miners[0].personality: unknown personality 's21'" in p.stderr
    assert run_minectl("sim", "fault", "127.20.0.1", "hot", "--control", str(tmp_path / "none.sock")).returncode == 1
    assert b"seed:" in run_minectl("sim", "example").stdout
