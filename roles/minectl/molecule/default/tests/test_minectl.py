"""The minectl role's real effect: the venv from the wheelhouse, groups, folders, services, retention."""

from __future__ import annotations

import json
import re
import shlex
import time

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


def test_admin_may_act_as_the_service_user(host):
    out = host.run("runuser -u admin -- sudo -n -u minectl /opt/minectl/venv/bin/minectl --version")
    assert out.rc == 0 and out.stdout.startswith("minectl ")
    assert host.run("runuser -u admin -- sudo -n -u root true").rc != 0


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
