"""The Ansible roles' contracts: defaults and argument_specs in step, prefixes, templates, docs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").exists())
TYPES = {"str": str, "int": int, "bool": bool, "list": list, "dict": dict}


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def test_there_are_roles() -> None:
    assert {r.name for r in ROLES} >= {"base", "dnsmasq", "openvpn_client", "fluentd", "minectl", "metrics"}


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_defaults_and_argument_specs_in_step(role: Path) -> None:
    defaults = _load(role / "defaults" / "main.yml")
    options = _load(role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert sorted(set(defaults) - set(options)) == [], "defaults missing from meta/argument_specs.yml"
    assert sorted(set(options) - set(defaults)) == [], "argument_specs options missing from defaults/main.yml"
    for name, spec in options.items():
        value = defaults[name]
        assert spec.get("description"), f"{name}: no description"
        if isinstance(value, str) and "{{" in value:
            assert "default" not in spec, f"{name}: a templated default belongs in defaults/main.yml only"
            continue
        want = TYPES[spec["type"]]
        assert isinstance(value, want) and not (want is int and isinstance(value, bool)), (
            f"{name}: default {value!r} is not of type {spec['type']}"
        )
        if "default" in spec:
            assert spec["default"] == value, f"{name}: argument_specs default differs from defaults/main.yml"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_variables_carry_the_role_prefix(role: Path) -> None:
    for f in ("defaults/main.yml", "vars/main.yml"):
        path = role / f
        if path.exists():
            for name in _load(path):
                assert name.startswith(role.name + "_"), f"{f}: {name} lacks the prefix {role.name}_"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_templates_say_they_are_managed(role: Path) -> None:
    for t in sorted((role / "templates").glob("*.j2")):
        lines = t.read_text().splitlines()
        head = lines[1] if lines[0].startswith("#!") else lines[0]
        assert head.startswith("{{ ansible_managed | comment"), f"{t.name}: first line is not ansible_managed"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_readme_lists_every_variable(role: Path) -> None:
    text = (role / "README.md").read_text()
    for name in _load(role / "defaults" / "main.yml"):
        assert f"`{name}`" in text, f"README.md does not list {name}"


def test_example_inventory_sets_only_known_variables() -> None:
    known: set[str] = set()
    for role in ROLES:
        known |= set(_load(role / "defaults" / "main.yml"))
    inv = ROOT / "inventory" / "example"
    for f in sorted((inv / "group_vars").rglob("*.yml")):
        if f.name == "vault.yml":
            assert f.read_text().startswith("$ANSIBLE_VAULT;"), "the vault file must stay encrypted"
            continue
        for name in _load(f):
            assert name in known, f"{f.relative_to(ROOT)}: {name} is no role's variable"
    assert "TEST" in (inv / "vault-password.TEST-ONLY.txt").read_text()


def test_example_site_csv_passes_the_checks_the_roles_run() -> None:
    """The minectl role copies it only if `minectl inventory check` accepts it (and the reducer reads it)."""
    import subprocess
    import sys

    csv = ROOT / "inventory" / "example" / "files" / "site.csv"
    r = subprocess.run(
        [sys.executable, "-m", "minectl_py", "inventory", "check", str(csv)], capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "6 miners, ok" in r.stdout


def test_default_rules_pass_the_check_the_role_runs(tmp_path: Path) -> None:
    import subprocess
    import sys

    rules = _load(ROOT / "roles" / "minectl" / "defaults" / "main.yml")["minectl_rules"]
    f = tmp_path / "rules.yml"
    f.write_text(yaml.safe_dump(rules, sort_keys=False))
    r = subprocess.run(
        [sys.executable, "-m", "minectl_py", "rules", "check", str(f)], capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 0, r.stdout + r.stderr
