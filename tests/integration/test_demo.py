"""The README's first command: the demo site comes up end to end (small fleet, then torn down)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_demo_site_end_to_end(tmp_path):
    site = tmp_path / "site"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.demo",
            "--miners",
            "24",
            "--dir",
            str(site),
            "--base-ip",
            "127.61.0.1",
            "--no-keep",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = p.stdout
    assert p.returncode == 0, out[-3000:] + p.stderr[-3000:]
    # every miner leased through the hook, inventoried, polled; the dead one shows as failing
    assert "24 leases in" in out
    assert "Site: 24 miners" in out
    assert "Not answering: s19-00010" in out or "failing 1" in out
    # an audited action and a reduction into SQLite
    assert '"cmd":"action"' in out and '"result":"ok"' in out
    assert (site / "report" / "views.sqlite").stat().st_size > 0
    # the site's processes are gone (--no-keep) and nothing is left listening
    assert not list(site.glob("*.pid"))
    miners = sorted(p for p in (site / "state" / "miners").iterdir() if not p.name.startswith("."))  # no scratch
    assert len(miners) == 24
    assert (miners[0] / "hashrate").read_text().strip()
