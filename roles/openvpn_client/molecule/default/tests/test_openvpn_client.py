"""The openvpn_client role's real effect: a tunnel to a real OpenVPN server, as an unprivileged user."""

from __future__ import annotations

import time

import testinfra

testinfra_hosts = ["podman://mctl-ovpn-client"]


def _tunnel_address(host) -> str:
    for _ in range(30):
        out = host.run("ip -4 -o addr show dev tun0")
        if out.rc == 0 and "inet 10.8.0." in out.stdout:
            return out.stdout.split("inet ")[1].split("/")[0]
        time.sleep(1)
    raise AssertionError("tun0 never got a 10.8.0.x address: " + host.run("journalctl -u openvpn-client@minectl -n 30").stdout)


def test_tunnel_is_up_both_ways(host):
    ip = _tunnel_address(host)
    assert host.run("ping -c 2 -W 3 10.8.0.1").rc == 0
    server = testinfra.get_host("podman://mctl-ovpn-server")
    assert server.run(f"ping -c 2 -W 3 {ip}").rc == 0


def test_service_runs_as_the_dedicated_user(host):
    svc = host.service("openvpn-client@minectl")
    assert svc.is_running and svc.is_enabled
    _tunnel_address(host)  # privileges are dropped once the tunnel is up
    pid = host.check_output("systemctl show -p MainPID --value openvpn-client@minectl")
    assert host.check_output(f"ps -o user= -p {pid}") == "openvpn"
    assert host.user("openvpn").shell == "/usr/sbin/nologin"


def test_config_and_keys(host):
    conf = host.file("/etc/openvpn/client/minectl.conf")
    assert conf.mode == 0o600 and conf.user == "root"
    text = conf.content_string.splitlines()
    for line in ("remote-cert-tls server", "verify-x509-name vpn-server name", "keepalive 5 30", "user openvpn",
                 "tls-crypt /etc/openvpn/client/minectl/tls-crypt.key"):
        assert line in text, line
    for f in ("ca.crt", "client.crt", "client.key", "tls-crypt.key"):
        k = host.file(f"/etc/openvpn/client/minectl/{f}")
        assert k.mode == 0o600 and k.user == "root", f
    assert host.file("/etc/openvpn/client/minectl").mode == 0o700
