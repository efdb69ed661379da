"""Permissions for real: minectl run as an unprivileged user (nobody) is told what it lacks."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from minectl_py.admin.perms import may_act, person
from tests import admin_site

ROOT = Path(__file__).resolve().parent.parent.parent


def test_may_act_rule():
    assert may_act(0, set(), None)
    assert may_act(1000, {5, 77}, 77)
    assert not may_act(1000, {5}, 77)
    assert not may_act(1000, {5}, None)


def test_the_audit_names_the_person_behind_sudo_only_where_sudo_set_it():
    assert person("minectl", "minectl", "ana", "minectl") == "ana"  # sudo -u minectl minectl reboot
    assert person("root", "root", "ana", "minectl") == "ana"  # sudo minectl reboot
    assert person("root", "root", None, "minectl") == "root"
    assert person("minectl", "minectl", None, "minectl") == "minectl"  # the rules service
    assert person("bob", "bob", "ana", "minectl") == "bob"  # anyone else cannot pose as ana


@pytest.fixture
def world(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to run commands as another user")
    d = Path(tempfile.mkdtemp(prefix="minectl-perm-"))
    os.chmod(d, 0o755)
    try:
        admin_site.apply(str(d / "state"), admin_site.generate(12, ip_base="127.74", ip_start=250 * 201))
        for p in [d / "state", *(d / "state").rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def as_nobody(
    *args: str, state: Path, config: Path | None = None, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    nobody = pwd.getpwnam("nobody")
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "MINECTL_STATE_DIR": str(state),
        "MINECTL_EVENTS": str(state.parent / "events.log"),
        "MINECTL_CONFIG_DIR": str(config or state.parent),
        "HOME": "/",
        **(extra or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "minectl_py", *args],
        env=env,
        capture_output=True,
        user=nobody.pw_uid,
        group=nobody.pw_gid,
        extra_groups=[],
        cwd="/",
        timeout=120,
    )


def test_reading_needs_access_to_the_state(world):
    r = as_nobody("status", state=world / "state")
    assert r.returncode == 0 and b"r1-s1-p1" in r.stdout  # world-readable here: allowed
    os.chmod(world / "state", 0o750)
    for cmd in (["status"], ["summary"], ["map"], ["show", "r1-s1-p1"]):
        r = as_nobody(*cmd, state=world / "state")
        assert r.returncode == 4, (cmd, r.stderr)
        assert b"permission denied: reading the site state" in r.stderr and b"group minectl" in r.stderr


def test_acting_needs_root_or_minectl_admin(world):
    r = as_nobody("reboot", "r1-s1-p1", state=world / "state")
    assert r.returncode == 4
    assert b"needs root or group minectl-admin" in r.stderr and b"user nobody" in r.stderr
    # a dry run only reads: allowed
    r = as_nobody("reboot", "r1-s1-p1", "--dry-run", state=world / "state")
    assert r.returncode == 0 and b"would act on 1 miners" in r.stdout


def test_sudo_user_is_trusted_only_from_root(world):
    """SUDO_USER names the person only when sudo made us root; anyone can set it otherwise."""
    r = as_nobody("reboot", "r1-s1-p1", state=world / "state", extra={"SUDO_USER": "root"})
    assert r.returncode == 4 and b"user nobody" in r.stderr
