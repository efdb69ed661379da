"""The openvpn_client role's real effect: a tunnel to a real OpenVPN server, as an unprivileged user."""

from __future__ import annotations

import re
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


def _exposure(host, unit: str, *extra: str) -> float:
    out = host.check_output(f"systemd-analyze security --no-pager {' '.join(extra)} {unit} | tail -1")
    m = re.search(r"exposure level for \S+: (\d+\.\d+)", out)
    assert m, out
    return float(m.group(1))


def test_the_tunnel_runs_sandboxed(host):
    """The drop-in is in force on the running openvpn (and the tunnel is up: above), and the
    exposure of the unit is far below Debian's stock unit (measured here, in the container)."""
    _tunnel_address(host)
    dropin = host.file("/etc/systemd/system/openvpn-client@minectl.service.d/minectl-sandbox.conf")
    assert dropin.exists and dropin.user == "root" and dropin.mode == 0o644
    assert dropin.content_string.startswith("#")  # ansible_managed
    show = host.check_output("systemctl show -p ProtectSystem -p NoNewPrivileges -p DropInPaths openvpn-client@minectl")
    assert "ProtectSystem=strict" in show and "NoNewPrivileges=yes" in show and "minectl-sandbox.conf" in show, show
    pid = host.check_output("systemctl show -p MainPID --value openvpn-client@minectl")
    status = host.file(f"/proc/{pid}/status").content_string
    # CAP_NET_ADMIN (12), CAP_SETPCAP (8), CAP_SETUID (7), CAP_SETGID (6): 0x11c0
    assert re.search(r"^CapBnd:\s+00000000000011c0$", status, re.M), status
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M), status
    assert re.search(r"^Seccomp:\s+2$", status, re.M), status  # the system call filter
    # CAP_SYS_ADMIN in molecule.yml lets systemd build the mount namespace (else it skips it)
    root = [ln for ln in host.file(f"/proc/{pid}/mountinfo").content_string.splitlines() if ln.split()[4] == "/"]
    assert root and root[-1].split()[5].split(",")[0] == "ro", root  # the whole file system read-only
    stock = host.run("d=$(mktemp -d) && cp /lib/systemd/system/openvpn-client@.service $d/stock-openvpn-client@.service"
                     " && systemd-analyze security --offline=yes --no-pager $d/stock-openvpn-client@minectl.service"
                     " | tail -1; rm -rf $d")
    before = float(re.search(r"exposure level for \S+: (\d+\.\d+)", stock.stdout).group(1))
    after = _exposure(host, "openvpn-client@minectl.service")
    print(f"\nexposure openvpn-client@minectl: stock {before}, sandboxed {after}")
    assert after < 5.0 and after < before - 2.0, (before, after)
