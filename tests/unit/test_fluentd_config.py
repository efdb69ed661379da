"""The fluentd role's template, rendered for both roles, against the role's own checker; the RS regexp."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import jinja2
import pytest
import yaml

from minectl_py.events import record

ROLE = Path(__file__).resolve().parents[2] / "roles" / "fluentd"


def _checker() -> ModuleType:
    path = ROLE / "files" / "fluentd-config-check"
    loader = importlib.machinery.SourceFileLoader("fluentd_config_check", str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


CHECK = _checker()


def render(**overrides: object) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["comment"] = lambda s: "\n".join("# " + line for line in str(s).splitlines())
    env.filters["bool"] = lambda v: v if isinstance(v, bool) else str(v).lower() in ("true", "yes", "1")
    values = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    values.update(
        ansible_managed="Managed by Ansible",
        inventory_hostname="site-a",
        fluentd_self_hostname="site-a",
        fluentd_shared_key="unit-test-shared-key-0123",
    )
    values.update(overrides)
    return env.from_string((ROLE / "templates" / "fluentd.conf.j2").read_text()).render(**values)


def check(text: str, tmp_path: Path) -> tuple[int, str]:
    p = tmp_path / "fluentd.conf"
    p.write_text(text)
    root, problems = CHECK.parse(text, str(p))
    CHECK.check(root, str(p), problems)
    return (1 if problems else 0), "\n".join(problems)


@pytest.mark.parametrize(
    "overrides",
    [
        {"fluentd_role": "forwarder"},
        {"fluentd_role": "aggregator"},
        {"fluentd_role": "aggregator", "fluentd_kafka_enabled": True, "fluentd_kafka_ca_cert": "x"},
    ],
    ids=["forwarder", "aggregator", "aggregator-kafka"],
)
def test_rendered_configs_pass_the_check(overrides: dict, tmp_path: Path) -> None:
    rc, problems = check(render(**overrides), tmp_path)
    assert rc == 0, problems


def test_forwarder_and_aggregator_say_what_they_must() -> None:
    fwd = render(fluentd_role="forwarder")
    assert "@type tail" in fwd and "@type forward" in fwd and "transport tls" in fwd
    assert "shared_key unit-test-shared-key-0123" in fwd and "@type kafka2" not in fwd
    agg = render(fluentd_role="aggregator")
    assert "path /var/log/minectl/_data/data.%Y%m%d" in agg and "compress gzip" in agg
    assert "timekey_zone +0000" in agg and "@type kafka2" not in agg


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda t: t.replace("</security>", "", 1), "closes"),
        (lambda t: t.replace("shared_key unit-test-shared-key-0123", "shared_key", 1), "shared_key"),
        (lambda t: t.replace("  @type tail\n", "", 1), "no @type"),
        (lambda t: t.replace("expression /^\\x1E?(?<message>", "expression /^\\x1E?(?<message", 1), "regexp"),
        (lambda t: t.replace("path /var/lib/minectl/events/events.log", "path {{ x }}", 1), "unrendered"),
        (lambda t: t + "<source>\n  @type forward\n", "never closed"),
        (lambda t: t.replace("<server>", "<parse>", 1).replace("</server>", "</parse>", 1), "server"),
    ],
)
def test_checker_finds_broken_configs(breakage, message: str, tmp_path: Path) -> None:
    rc, problems = check(breakage(render(fluentd_role="forwarder")), tmp_path)
    assert rc == 1 and message in problems


def test_checker_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.conf"
    good.write_text(render(fluentd_role="forwarder"))
    assert CHECK.main(["x", str(good)]) == 0
    assert CHECK.main(["x", str(tmp_path / "missing.conf")]) == 1
    assert CHECK.main(["x"]) == 2


def test_the_tail_regexp_strips_the_rs_from_real_records() -> None:
    """What in_tail's regexp hands to the JSON parser, for lines as our writer writes them."""
    text = render(fluentd_role="forwarder")
    expr = re.search(r"^\s*expression (/.*/)$", text, re.M).group(1)
    pattern = re.compile(CHECK.ruby_regexp(expr))
    rec = record.make("time", "site-a", {"ip": "10.20.0.1"})
    line = record.encode(rec).decode()  # RS + JSON + LF, as the event log holds it
    assert line.startswith("\x1e")
    for variant in (line.rstrip("\n"), line.rstrip("\n").lstrip("\x1e"), line.rstrip("\n") + "\r"):
        m = pattern.match(variant)
        assert m, repr(variant)
        assert json.loads(m.group("message")) == rec
