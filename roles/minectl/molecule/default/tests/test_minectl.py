"""The minectl role's real effect: the venv from the wheelhouse, groups, folders, services, retention."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time

import pytest

testinfra_hosts = ["podman://mctl-minectl"]


def test_installed_from_the_wheelhouse(host):
    out = host.check_output("/usr/local/bin/minectl --version")
    assert out.startswith("minectl ")
    assert host.file("/opt/minectl/venv/.minectl-wheelhouse").exists


def test_groups_and_admins(host):
    assert host.group("minectl").exists and host.group("minectl-admin").exists
    assert {"minectl", "minectl-admin"} <= set(host.user("admin").groups)
    assert host.user("minectl").shell == "/usr/sbin/nologin"


def test_folders_owners_and_modes(host):
    for path, mode in (("/var/lib/minectl", 0o750), ("/var/lib/minectl/events", 0o2750), ("/var/lib/minectl/state", 0o2750)):
        f = host.file(path)
        assert f.is_directory and f.user == "minectl" and f.group == "minectl" and f.mode == mode, path
    conf = host.file("/etc/minectl")
    assert conf.user == "root" and conf.group == "minectl" and conf.mode == 0o750
    creds = host.file("/etc/minectl/credentials.yml")
    assert creds.user == "minectl" and creds.mode == 0o600 and "test-only" in creds.content_string
    assert "known_hosts: /var/lib/minectl/ssh_known_hosts" in creds.content_string
    assert host.file("/etc/minectl/site.csv").content_string.startswith("mac,name,rack,shelf,position,model")
    assert "MINECTL_EVENTS=/var/lib/minectl/events/events.log" in host.file("/etc/minectl/minectl.env").content_string


def test_poller_runs_hardened_as_the_service_user(host):
    svc = host.service("minectl-poller")
    for _ in range(10):  # give a crash loop the time to show
        if svc.is_running:
            break
        time.sleep(1)
    assert svc.is_running and svc.is_enabled
    show = host.check_output("systemctl show -p User -p ExecStart -p NRestarts minectl-poller")
    assert "User=minectl" in show and "poll --interval 60" in show and "NRestarts=0" in show
    pid = host.check_output("systemctl show -p MainPID --value minectl-poller")
    assert host.check_output(f"ps -o user= -p {pid}") == "minectl"
    exposure = host.check_output("systemd-analyze security minectl-poller --no-pager | tail -1")
    score = float(re.search(r"exposure level for \S+: (\d+\.\d+)", exposure).group(1))
    assert score < 4.0, exposure


def run_as(host, user: str, cmd: str):
    return host.run(f"runuser -u {user} -- sh -c {shlex.quote(cmd)}")


@pytest.fixture(scope="module")
def viewer(host) -> str:
    """A member of group minectl only: may read, may not act."""
    host.run("id viewer || useradd -M -s /bin/sh -G minectl viewer")
    return "viewer"


def test_the_site_csv_became_locations_in_the_state(host):
    names = {m["name"] for m in json.loads(run_as(host, "admin", "minectl status --json all").stdout)}
    assert {"r01-s1-p1", "r02-s1-p1"} <= names, names


def test_a_reader_reads_but_cannot_act(host, viewer):
    out = run_as(host, viewer, "minectl status")
    assert out.rc == 0 and "r01-s1-p1" in out.stdout and "R01" in out.stdout, out.stderr
    act = run_as(host, viewer, "minectl locate on r01-s1-p1 --yes")
    assert act.rc == 4 and "needs root or group minectl-admin" in act.stderr, act.stderr
    sudo = run_as(host, viewer, "sudo -n -u minectl minectl locate on r01-s1-p1")
    assert sudo.rc != 0 and "password is required" in sudo.stderr, sudo.stderr
    assert run_as(host, viewer, "cat /etc/minectl/credentials.yml").rc != 0


def test_an_admin_dry_runs_and_acts_as_the_service_user_audited_by_name(host):
    dry = run_as(host, "admin", "minectl reboot r01-s1-p1 --dry-run")
    assert dry.rc == 0 and "nothing was done" in dry.stdout, dry.stderr
    assert run_as(host, "admin", "cat /etc/minectl/credentials.yml").rc != 0  # not directly
    act = run_as(host, "admin", "sudo -n -u minectl minectl locate on r01-s1-p1 --timeout 1 --retries 0 --json")
    # privilege is fine (not 4); the miner has no address in this scenario, so the action itself fails (1)
    assert act.rc == 1, act.stdout + act.stderr
    log = host.file("/var/lib/minectl/events/events.log").content_string
    recs = [json.loads(r) for r in log.split("\x1e") if r.strip()]
    audit = [r for r in recs if r["cmd"] == "action" and r["action"] == "locate_on"]
    assert audit and audit[-1]["user"] == "admin" and audit[-1]["name"] == "r01-s1-p1", audit
    assert audit[-1]["nodename"] == "mctl-minectl"  # the wrapper gave sudo the site's settings
    assert host.file("/var/lib/minectl/events/events.log").user == "minectl"


def test_admin_may_not_become_root(host):
    assert run_as(host, "admin", "sudo -n -u root true").rc != 0
    assert run_as(host, "admin", "sudo -n -u minectl /bin/sh -c true").rc != 0
    assert host.run("visudo -cf /etc/sudoers.d/minectl").rc == 0


def test_the_rules_service_runs_hardened_with_the_deployed_rules(host):
    rules = host.file("/etc/minectl/rules.yml")
    assert rules.user == "root" and rules.group == "minectl" and rules.mode == 0o640
    assert "name: hot" in rules.content_string
    assert host.run("/opt/minectl/venv/bin/minectl rules check /etc/minectl/rules.yml").rc == 0
    svc = host.service("minectl-rules")
    for _ in range(10):
        if svc.is_running:
            break
        time.sleep(1)
    assert svc.is_running and svc.is_enabled
    show = host.check_output("systemctl show -p User -p NRestarts -p ExecStart minectl-rules")
    assert "User=minectl" in show and "NRestarts=0" in show and "rules run --rules /etc/minectl/rules.yml" in show
    exposure = host.check_output("systemd-analyze security minectl-rules --no-pager | tail -1")
    score = float(re.search(r"exposure level for \S+: (\d+\.\d+)", exposure).group(1))
    assert score < 4.0, exposure


def test_a_bad_rules_file_fails_the_play_and_changes_nothing(host, tmp_path):
    before = host.file("/etc/minectl/rules.yml").content_string
    pid = host.check_output("systemctl show -p MainPID --value minectl-rules")
    project = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", ".."))
    (tmp_path / "hosts").write_text(
        "mctl-minectl ansible_connection=containers.podman.podman ansible_python_interpreter=/usr/bin/python3\n"
    )
    (tmp_path / "bad.yml").write_text(
        "minectl_rules:\n  version: 1\n  rules:\n    - name: hot\n      when: temp_max >>> 90\n"
    )
    (tmp_path / "play.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  roles: [minectl]\n"
    )
    env = dict(os.environ, ANSIBLE_ROLES_PATH=os.path.join(project, "roles"), ANSIBLE_FORCE_COLOR="0")
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", os.path.join(project, ".cache", "collections"))
    env.setdefault("CONTAINERS_CONF", os.path.join(project, "molecule", "containers.conf"))
    playbook = os.path.join(project, ".venv", "bin", "ansible-playbook")
    r = subprocess.run(
        [playbook if os.path.exists(playbook) else "ansible-playbook", "-i", str(tmp_path / "hosts"), str(tmp_path / "play.yml"), "--tags", "minectl_rules",
         "-e", f"@{tmp_path / 'bad.yml'}", "-e", f"minectl_wheelhouse_archive={project}/build/minectl-wheelhouse.tar"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "failed to validate" in out and "rules[0].when" in out, out  # the field at fault, named
    assert host.file("/etc/minectl/rules.yml").content_string == before
    assert host.check_output("systemctl show -p MainPID --value minectl-rules") == pid


def test_retention_compacts_and_deletes_old_segments(host):
    d = "/var/lib/minectl/events"
    day = lambda ago: time.strftime("%Y%m%d", time.gmtime(time.time() - ago * 86400))  # noqa: E731
    rec = {"created_at_ms": "1530740205000", "id": "c2cd10a50b068e0e696771621d61fb60", "cmd": "time", "nodename": "t"}
    write = "import sys; open(sys.argv[1], 'w').write(chr(30) + sys.argv[2] + chr(10))"
    old, mid = f"{d}/events-{day(60)}.log", f"{d}/events-{day(3)}.log"
    for path, ago in ((old, 60), (mid, 3)):
        cmd = ["runuser", "-u", "minectl", "--", "python3", "-c", write, path, json.dumps(rec)]
        host.check_output(" ".join(shlex.quote(c) for c in cmd))
        host.check_output(f"touch -d '{ago} days ago' {path}")
    assert host.run("systemctl start minectl-retention.service").rc == 0
    assert not host.file(old).exists, "a segment older than the retention is deleted"
    assert not host.file(mid).exists and host.file(mid + ".gz").exists, "a 3-day-old segment is compacted"
    assert host.file(mid + ".gz").user == "minectl"
    text = host.check_output(f"zcat {mid}.gz")
    assert text.startswith("\x1e") and json.loads(text[1:]) == rec
    assert host.service("minectl-retention.timer").is_enabled


def _exposure(host, unit: str) -> float:
    out = host.check_output(f"systemd-analyze security --no-pager {unit} | tail -1")
    m = re.search(r"exposure level for \S+: (\d+\.\d+)", out)
    assert m, out
    return float(m.group(1))


def test_every_unit_we_ship_is_sandboxed(host):
    """Measured here, in the container, on the loaded units (docs/security.md)."""
    got = {u: _exposure(host, u) for u in ("minectl-poller.service", "minectl-rules.service",
                                           "minectl-retention.service", "minectl-state-recover.service")}
    print(f"\nexposure: {got}")
    assert all(v < 4.0 for v in got.values()), got
    # in force on the running poller (CAP_SYS_ADMIN in molecule.yml lets systemd build the
    # mount namespace; without it systemd skips ProtectSystem & co. silently)
    pid = host.check_output("systemctl show -p MainPID --value minectl-poller")
    mounts = {ln.split()[4]: ln.split()[5] for ln in host.file(f"/proc/{pid}/mountinfo").content_string.splitlines()}
    assert mounts["/"].split(",")[0] == "ro" and mounts["/var/lib/minectl"].split(",")[0] == "rw", mounts


def test_the_state_repair_runs_at_boot_before_the_writers(host):
    svc = host.service("minectl-state-recover")
    assert svc.is_enabled
    show = host.check_output("systemctl show -p ActiveState -p Result -p ExecMainStatus -p Before -p After -p User"
                             " minectl-state-recover")
    props = dict(ln.split("=", 1) for ln in show.splitlines())
    assert props["ActiveState"] == "active" and props["Result"] == "success" and props["ExecMainStatus"] == "0", show
    assert props["User"] == "minectl"
    before = props["Before"].split()
    assert {"minectl-poller.service", "minectl-rules.service", "dnsmasq.service"} <= set(before), before
    assert "local-fs.target" in props["After"].split()
    assert "minectl-state-recover.service" in host.check_output("systemctl show -p After --value minectl-poller").split()
    assert "minectl-state-recover.service" in host.check_output(
        "systemctl list-dependencies --plain --no-pager multi-user.target")


def test_a_lost_state_write_is_repaired_by_the_unit(host):
    """A power cut as the unit meets it at boot: the writers stopped, a miner's folder and a link
    lost (the log has their records); the unit rebuilds, and rebuild == live."""
    host.run("systemctl stop minectl-poller minectl-rules")
    try:
        state = "/var/lib/minectl/state"
        mac = "02:00:0a:14:00:01"  # r01-s1-p1, recorded by the inventory apply of converge
        assert host.file(f"{state}/miners/{mac}").is_directory
        host.check_output(f"rm -rf {state}/miners/{mac} {state}/by-name/r01-s1-p1")
        check = run_as(host, "minectl", "minectl state repair --check")
        assert check.rc == 1 and "behind the log" in check.stdout, check.stdout + check.stderr
        restart = host.run("systemctl restart minectl-state-recover")
        log = host.check_output("journalctl -u minectl-state-recover -n 30 --no-pager -o cat")
        assert restart.rc == 0, log
        assert "rebuilt from" in log and "swapped in" in log, log
        assert host.file(f"{state}/miners/{mac}/name").content_string == "r01-s1-p1\n"
        f = host.file(state)
        assert f.user == "minectl" and f.group == "minectl" and f.mode == 0o2750
        assert run_as(host, "minectl", "minectl state verify").rc == 0
        again = run_as(host, "minectl", "minectl state repair --check")
        assert again.rc == 0 and "consistent with the log" in again.stdout, again.stdout
    finally:
        host.run("systemctl start minectl-poller minectl-rules")
