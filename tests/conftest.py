"""Shared fixtures. Integration fixtures for real daemons live in tests/integration/conftest.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private site: MINECTL_EVENTS and MINECTL_STATE_DIR point into tmp_path."""
    (tmp_path / "events").mkdir()
    (tmp_path / "miners").mkdir()
    monkeypatch.setenv("MINECTL_EVENTS", str(tmp_path / "events" / "events.log"))
    monkeypatch.setenv("MINECTL_STATE_DIR", str(tmp_path / "miners"))
    monkeypatch.setenv("MINECTL_NODENAME", "test-controller")
    return tmp_path


def run_minectl(
    *args: str, input: bytes | None = None, env: dict[str, str] | None = None, check: bool = False
) -> subprocess.CompletedProcess[bytes]:
    """Run the real CLI in a subprocess (as an admin would), capturing output."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT)
    if env:
        e.update(env)
    return subprocess.run(
        [sys.executable, "-m", "minectl_py", *args],
        input=input,
        capture_output=True,
        env=e,
        check=check,
        timeout=300,
    )
