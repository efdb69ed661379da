"""The base role's real effect in a container: sshd, users, firewall (probed from the host), time, upgrades."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import paramiko
import pytest

NAME = "mctl-base"
testinfra_hosts = [f"podman://{NAME}"]
ROOT = Path(__file__).resolve().parents[5]
KEY = ROOT / "molecule" / "files" / "test-pki" / "admin_ed25519"


@pytest.fixture(scope="module")
def ip() -> str:
    out = subprocess.run(["podman", "inspect", NAME], check=True, capture_output=True, text=True).stdout
    nets = json.loads(out)[0]["NetworkSettings"]["Networks"]
    return next(iter(nets.values()))["IPAddress"]


def _ssh(ip: str, **kw: object) -> paramiko.SSHClient:
    c = paramiko.SSHClient()
    c.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # a fresh test container
    c.connect(ip, username="admin", allow_agent=False, look_for_keys=False, timeout=10, **kw)
    return c


def test_systemd_is_healthy(host):
    assert host.run("systemctl is-system-running --wait").stdout.strip() == "running"


def test_sshd_runs_with_the_hardened_settings(host):
    assert host.service("ssh").is_running and host.service("ssh").is_enabled
    effective = host.check_output("/usr/sbin/sshd -T")
    for line in (
        "passwordauthentication no",
        "permitrootlogin no",
        "kbdinteractiveauthentication no",
        "authenticationmethods publickey",
        "allowgroups ssh-users",
        "x11forwarding no",
        "allowtcpforwarding no",
    ):
        assert line in effective.splitlines(), line


def test_admin_logs_in_with_the_key_and_may_sudo(ip):
    c = _ssh(ip, key_filename=str(KEY))
    try:
        _, out, _ = c.exec_command("id -nG; sudo -n true && echo sudo-ok")
        text = out.read().decode()
        assert out.channel.recv_exit_status() == 0
    finally:
        c.close()
    groups = text.splitlines()[0].split()
    assert "sudo" in groups and "ssh-users" in groups
    assert "sudo-ok" in text


def test_password_login_is_refused(ip):
    with pytest.raises(paramiko.AuthenticationException):
        _ssh(ip, password="admin")


def test_admin_files(host):
    keys = host.file("/home/admin/.ssh/authorized_keys")
    assert keys.user == "admin" and keys.mode == 0o600
    assert keys.content_string.strip() == (KEY.with_suffix(".pub")).read_text().strip()
    assert host.file("/home/admin/.ssh").mode == 0o700
    assert host.user("admin").password in ("!", "*", "!*")
    assert not host.user("former").exists
    sudoers = host.file("/etc/sudoers.d/minectl-admins")
    assert sudoers.mode == 0o440 and "%sudo ALL=(ALL:ALL) NOPASSWD: ALL" in sudoers.content_string


def test_ruleset_is_loaded(host):
    rules = host.check_output("nft list ruleset")
    assert "table inet minectl" in rules
    assert rules.count("policy drop;") == 2  # input and forward
    assert 'iifname "lan0" udp dport 67 accept' in rules
    assert 'iifname "lan0" udp dport 53 accept' in rules
    assert 'iifname "tun0" tcp dport 22 accept' in rules
    assert "ip saddr 192.0.2.0/24 tcp dport 8081 accept" in rules
    assert host.service("nftables").is_enabled


def test_firewall_drops_what_is_not_listed(host, ip):
    """A listener on 8081 answers locally but not from the host (not in the allowed sources)."""
    host.run("systemd-run --unit mctl-listen-8081 /usr/bin/python3 -m http.server 8081 --bind 0.0.0.0")
    try:
        local = host.run("curl -s -o /dev/null -w '%{http_code}' --retry 5 --retry-connrefused http://127.0.0.1:8081/")
        assert local.stdout == "200"
        with pytest.raises(OSError):  # dropped: a timeout, not even a refusal
            socket.create_connection((ip, 8081), timeout=3).close()
    finally:
        host.run("systemctl stop mctl-listen-8081")


def test_ssh_port_is_reachable_from_the_management_range(ip):
    socket.create_connection((ip, 22), timeout=5).close()


def test_no_forwarding(host):
    assert host.file("/etc/sysctl.d/60-minectl-forwarding.conf").content_string.strip().endswith(
        "net.ipv4.ip_forward = 0"
    )


def test_time_journald_and_upgrades(host):
    assert "pool 0.debian.pool.ntp.org iburst" in host.file("/etc/chrony/conf.d/minectl.conf").content_string
    assert host.service("chrony").is_enabled
    journald = host.file("/etc/systemd/journald.conf.d/60-minectl.conf").content_string
    assert "SystemMaxUse=500M" in journald
    dump = host.check_output("apt-config dump")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in dump
    assert "label=Debian-Security" in dump
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in dump
    assert host.service("apt-daily-upgrade.timer").is_enabled
