"""The dnsmasq role's lease hook launcher: the same text as ``minectl_py.hook_launcher.render``
(the reference), and it works: run as dnsmasq would, it appends the lease and projects it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jinja2
import yaml

from minectl_py import hook_launcher

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "roles" / "dnsmasq" / "templates" / "lease-hook.j2"
MANAGED = "Ansible managed: TEST"


def render_template(**overrides: object) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True)
    env.filters["comment"] = lambda s: "\n".join("# " + line for line in str(s).splitlines())
    defaults = yaml.safe_load((ROOT / "roles" / "dnsmasq" / "defaults" / "main.yml").read_text())
    values = {
        "ansible_managed": MANAGED,
        "dnsmasq_hook_python": defaults["dnsmasq_hook_python"],
        "dnsmasq_hook_root": "/opt/minectl/venv/lib/python3.11/site-packages",
        "dnsmasq_script_environment": {
            "MINECTL_EVENTS": "/var/lib/minectl/events/events.log",
            "MINECTL_STATE_DIR": "/var/lib/minectl/state",
            "MINECTL_NODENAME": "site-ctl",
        },
    }
    values.update(overrides)
    return env.from_string(TEMPLATE.read_text()).render(**values)


def strip_managed(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if line.strip() != f"# {MANAGED}")


def test_the_template_renders_what_the_reference_writes() -> None:
    want = hook_launcher.render(
        root="/opt/minectl/venv/lib/python3.11/site-packages",
        events="/var/lib/minectl/events/events.log",
        state_dir="/var/lib/minectl/state",
        nodename="site-ctl",
    )
    got = render_template()
    assert got.startswith("#!/usr/bin/python3 -IS\n")
    assert strip_managed(got) == want


def test_an_empty_setting_is_left_out_like_the_reference() -> None:
    env = {"MINECTL_EVENTS": "/e/events.log", "MINECTL_STATE_DIR": "/s", "MINECTL_NODENAME": ""}
    got = strip_managed(render_template(dnsmasq_hook_root="/r", dnsmasq_script_environment=env))
    assert got == hook_launcher.render(root="/r", events="/e/events.log", state_dir="/s")


def test_the_rendered_launcher_records_a_lease(tmp_path: Path) -> None:
    events, state = tmp_path / "events" / "events.log", tmp_path / "state"
    events.parent.mkdir()
    state.mkdir()
    launcher = tmp_path / "lease-hook"
    launcher.write_text(
        render_template(
            dnsmasq_hook_python=sys.executable,
            dnsmasq_hook_root=hook_launcher.package_root(),
            dnsmasq_script_environment={
                "MINECTL_EVENTS": str(events),
                "MINECTL_STATE_DIR": str(state),
                "MINECTL_NODENAME": "site-ctl",
            },
        )
    )
    launcher.chmod(0o755)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DNSMASQ_INTERFACE": "eth1"}  # dnsmasq's, no MINECTL_*
    r = subprocess.run(
        [str(launcher), "add", "02:00:0a:14:00:01", "10.20.1.7", "r01-s1-p1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    text = events.read_text()
    assert text.startswith("\x1e") and '"mac":"02:00:0a:14:00:01"' in text.replace(" ", "")
    assert '"nodename":"site-ctl"' in text.replace(" ", "")
    assert (state / "miners" / "02:00:0a:14:00:01" / "ip").read_text().strip() == "10.20.1.7"
