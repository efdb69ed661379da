"""The lease hook: arguments and environment into events and state; init; other actions."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from minectl_py import hook_launcher, lease_hook
from minectl_py.events import model
from minectl_py.events.reader import EventReader
from minectl_py.events.writer import lock_path
from minectl_py.state import project, read
from tests.conftest import ROOT

MAC = "02:00:00:00:00:01"


@pytest.fixture
def hook(tmp_path):
    """The launcher as dnsmasq runs it (python3 -I -S), with private paths baked in."""
    path = tmp_path / "lease-hook"
    ev, st = tmp_path / "ev" / "events.log", tmp_path / "state"
    hook_launcher.write(
        str(path), hook_launcher.render(root=str(ROOT), events=str(ev), state_dir=str(st), nodename="ctl")
    )
    project.forget_cache()

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        e = {"PATH": "/usr/bin:/bin", **env}  # dnsmasq passes its own environment plus DNSMASQ_*
        return subprocess.run([str(path), *args], env=e, capture_output=True, text=True, timeout=30)

    run.events = ev  # type: ignore[attr-defined]
    run.state = st  # type: ignore[attr-defined]
    return run


def events(path) -> list[dict]:
    return list(EventReader([str(path)], strict=True)) if path.exists() else []


def test_add_old_del_events_and_state(hook):
    exp = int(time.time()) + 3600
    r = hook(
        "add",
        MAC.upper(),
        "10.77.0.5",
        "s9-0001",
        DNSMASQ_LEASE_EXPIRES=str(exp),
        DNSMASQ_TIME_REMAINING="3600",
        DNSMASQ_INTERFACE="dhbr0",
        DNSMASQ_SUPPLIED_HOSTNAME="s9-0001",
        DNSMASQ_VENDOR_CLASS="bmminer",
        DNSMASQ_CLIENT_ID="01:02:00:00:00:00:01",
        DNSMASQ_TAGS="known s9 dhbr0",
        DNSMASQ_USER_CLASS0="a",
        DNSMASQ_USER_CLASS1="b",
    )
    assert r.returncode == 0, r.stderr
    (rec,) = events(hook.events)
    ev = model.parse(rec)
    assert isinstance(ev, model.Lease)
    assert (ev.action, ev.mac, ev.ip, ev.hostname, ev.expires) == ("add", MAC, "10.77.0.5", "s9-0001", exp)
    assert ev.tags == ["known", "s9", "dhbr0"] and ev.user_class == ["a", "b"] and ev.interface == "dhbr0"
    v = read.load_one(str(hook.state), "s9-0001")
    assert v["ip"] == "10.77.0.5" and v["state"] == "new" and v["vendor_class"] == "bmminer"
    assert v["client_id"] == "01:02:00:00:00:00:01" and v["lease_expires"] == exp
    # repeated old: events recorded, state unchanged after the first
    for _ in range(3):
        assert hook("old", MAC, "10.77.0.5", "s9-0001", DNSMASQ_LEASE_EXPIRES=str(exp)).returncode == 0
    snap = read.load_one(str(hook.state), MAC)
    assert snap["lease"] == "old" and snap["vendor_class"] == "bmminer"  # kept: old does not carry it
    assert hook("old", MAC, "10.77.0.5", "s9-0001", DNSMASQ_LEASE_EXPIRES=str(exp)).returncode == 0
    again = read.load_one(str(hook.state), MAC)
    assert again["last_seen"] >= snap["last_seen"]  # a renewal is a sighting
    assert {**again, "last_seen": 0} == {**snap, "last_seen": 0}
    assert hook("del", MAC, "10.77.0.5", "s9-0001").returncode == 0
    v = read.load_one(str(hook.state), MAC)
    assert v["state"] == "offline" and v["lease"] == "del"
    assert not (hook.state / "by-ip" / "10.77.0.5").exists()
    assert [e["action"] for e in events(hook.events)] == ["add", "old", "old", "old", "old", "del"]


def test_hostile_strings_stay_raw_only_in_the_event(hook):
    evil = "../../x\x1b[2J\u202e"
    r = hook("add", MAC, "10.77.0.6", evil, DNSMASQ_SUPPLIED_HOSTNAME=evil, DNSMASQ_VENDOR_CLASS="v\x07" + "x" * 5000)
    assert r.returncode == 0, r.stderr
    (rec,) = events(hook.events)
    assert rec["hostname_raw"] == evil and rec["supplied_hostname"] == evil
    assert len(rec["vendor_class"]) == lease_hook.RAW_MAX
    assert "/" not in rec["hostname"] and not rec["hostname"].startswith(".")
    names = os.listdir(hook.state / "by-name")
    assert names == [rec["hostname"]]
    v = read.load_one(str(hook.state), MAC)
    assert "\x07" not in v["vendor_class"] and len(v["vendor_class"]) <= 64
    # the raw log line is valid JSON with the control characters escaped
    assert b"\x1b" not in hook.events.read_bytes()


def test_other_actions_ignored_and_bad_usage(hook):
    others = (("tftp", "1234", "10.77.0.9", "/srv/tftp/x"), ("arp-add", MAC, "10.77.0.9"), ("relay-snoop", "a", "b"))
    for args in others:
        r = hook(*args)
        assert r.returncode == 0 and r.stdout == "" and r.stderr == ""
    assert not hook.events.exists()
    assert hook().returncode == 2
    r = hook("add", MAC)
    assert r.returncode == 2 and "expected MAC and IP" in r.stderr
    # a non-Ethernet hardware address is recorded, but names no miner folder
    assert hook("add", "06-" + MAC, "10.77.0.9").returncode == 0
    assert len(events(hook.events)) == 1
    assert read.load_all(str(hook.state)) == []


def test_init_prints_the_lease_database(hook):
    exp = int(time.time()) + 600
    hook("add", MAC, "10.77.0.5", "s9-1", DNSMASQ_LEASE_EXPIRES=str(exp), DNSMASQ_CLIENT_ID="01:02:00:00:00:00:01")
    hook("add", "02:00:00:00:00:02", "10.77.0.6", DNSMASQ_LEASE_EXPIRES=str(exp))
    hook("add", "02:00:00:00:00:03", "10.77.0.7", "gone", DNSMASQ_LEASE_EXPIRES=str(exp))
    hook("del", "02:00:00:00:00:03", "10.77.0.7", "gone")
    r = hook("init")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        f"{exp} {MAC} 10.77.0.5 s9-1 01:02:00:00:00:00:01",
        f"{exp} 02:00:00:00:00:02 10.77.0.6 * *",
    ]
    # an empty or missing state directory: no leases, still exit 0 (dnsmasq must start)
    r = subprocess.run(
        [str(hook.state.parent / "lease-hook"), "init"],
        env={"MINECTL_STATE_DIR": str(hook.state.parent / "nothing")},
        capture_output=True,
        text=True,
    )
    # the baked-in path wins only as a default; the environment overrides it
    assert r.returncode == 0 and r.stdout == ""


def test_same_lock_as_the_event_writer():
    assert lease_hook.lock_path("/a/b/events.log") == lock_path("/a/b/events.log")


def test_hook_rotates_a_stale_live_file_through_the_writer(tmp_path):
    live = tmp_path / "events.log"
    live.write_bytes(b'\x1e{"x":1}\n')
    old = time.time() - 3 * 86400
    os.utime(live, (old, old))
    lease_hook.append_event(str(live), b'\x1e{"y":2}\n')
    segs = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert len(segs) == 2 and live.read_bytes() == b'\x1e{"y":2}\n'


def test_hook_imports_only_builtins_and_its_own_modules(tmp_path):
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); before = set(sys.modules);"
        "import minectl_py.lease_hook; print(' '.join(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run(["/usr/bin/python3", "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    heavy = {"json", "re", "typing", "enum", "dataclasses", "collections", "functools", "ctypes", "signal"}
    assert not loaded & heavy, loaded & heavy


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the hook runs as root under dnsmasq")
def test_hook_as_root_gives_new_log_files_the_directory_owner(hook):
    """dnsmasq runs the hook as root; the poller (a service user) appends to the same log, so
    a log or lock file the hook creates takes the log directory's owner, as the writer does."""
    d = hook.events.parent
    d.mkdir(parents=True)
    os.chown(d, 65534, 65534)
    r = hook("add", MAC, "10.77.0.5", "s9-0001")
    assert r.returncode == 0, r.stderr
    for p in (hook.events, d / lock_path(str(hook.events)).rsplit("/", 1)[1]):
        st = os.stat(p)
        assert (st.st_uid, st.st_gid) == (65534, 65534), p
    # a file that someone else created keeps its owner
    os.chown(hook.events, 0, 0)
    assert hook("old", MAC, "10.77.0.5", "s9-0001").returncode == 0
    assert os.stat(hook.events).st_uid == 0
    assert len(events(hook.events)) == 2
