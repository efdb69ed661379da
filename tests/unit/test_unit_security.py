"""systemd sandboxing of the units the roles write: ``systemd-analyze security --offline``
exposure per unit (0 = locked down, 10 = unprotected), rendered from the templates with the
roles' defaults. The thresholds are the figures of docs/security.md: a change that loosens a
unit fails here."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest
import yaml

from tests.conftest import ROOT

#: unit -> highest exposure allowed (measured: docs/security.md, "systemd units")
LIMITS = {
    "minectl-poller.service": 1.6,
    "minectl-retention.service": 1.1,
    "minectl-reducer.service": 1.8,
    "minectl-lan-address.service": 2.4,
    "minectl-state-recover.service": 1.1,
}


def _vars() -> dict:
    out: dict = {}
    for role in ("minectl", "metrics", "dnsmasq"):
        for f in sorted((ROOT / "roles" / role / "defaults").glob("*.yml")):
            out.update(yaml.safe_load(f.read_text()) or {})
    out.update(ansible_managed="Ansible managed", minectl_bin="/opt/minectl/venv/bin/minectl")
    out.setdefault("metrics_setup_dir", "/etc/minectl-metrics")
    return out


def render(name: str) -> str:
    env = jinja2.Environment(undefined=jinja2.ChainableUndefined)
    env.filters["comment"] = lambda s: f"# {s}"
    env.filters["dirname"] = lambda s: str(s).rsplit("/", 1)[0] or "/"
    vals = _vars()
    for _ in range(3):  # defaults that refer to other defaults
        for k, v in list(vals.items()):
            if isinstance(v, str) and "{{" in v:
                with contextlib.suppress(jinja2.TemplateError):
                    vals[k] = env.from_string(v).render(**vals)
    (tpl,) = ROOT.glob(f"roles/*/templates/{name}.j2")
    return env.from_string(tpl.read_text()).render(**vals)


def exposure(path: Path) -> float:
    p = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", p.stdout + p.stderr)
    assert m, p.stdout + p.stderr
    return float(m.group(1))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is part of systemd")
@pytest.mark.parametrize("unit", sorted(LIMITS))
def test_unit_exposure(tmp_path, unit):
    path = tmp_path / unit
    path.write_text(render(unit))
    got = exposure(path)
    assert got <= LIMITS[unit], f"{unit}: exposure {got} > {LIMITS[unit]} (docs/security.md)"
    text = path.read_text()
    assert "NoNewPrivileges=yes" in text and "ProtectSystem=strict" in text
