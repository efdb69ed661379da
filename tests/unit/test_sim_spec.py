"""Fleet files and flags: deterministic for a seed, clear errors naming where."""

from __future__ import annotations

import pytest

from minectl_py.sim.spec import EXAMPLE, SpecError, addresses, from_flags, from_yaml_text, parse_mix


def test_example_file_parses():
    spec = from_yaml_text(EXAMPLE, "example.yaml")
    assert spec.seed == 7 and spec.api_port == 4028 and spec.http_port == 80
    assert len(spec.miners) == 32
    assert spec.miners[0].ip == "127.20.0.1" and spec.miners[20].ip == "127.20.0.21"
    bos = spec.miners[30]
    assert (bos.ip, bos.personality, sorted(bos.faults)) == ("127.20.1.1", "bosminer", ["hot", "slow"])
    assert bos.faults["slow"] == {"delay": 4}
    last = spec.miners[31]
    assert last.ip == "127.20.1.2" and last.write_access is True and last.pools[0]["user"] == "site.worker1"
    assert len({m.mac for m in spec.miners}) == 32


def test_same_seed_same_fleet():
    a = [m.personality for m in from_flags(200, "10.0.0.1", seed=5)]
    assert a == [m.personality for m in from_flags(200, "10.0.0.1", seed=5)]
    assert a != [m.personality for m in from_flags(200, "10.0.0.1", seed=6)]
    assert {"s19", "s9", "btminer", "bosminer", "cgminer"} == set(a)


def test_addresses_skip_network_and_broadcast():
    assert addresses("10.0.0.254", 3) == ["10.0.0.254", "10.0.1.1", "10.0.1.2"]


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("[1]", "expected a mapping at the top"),
        ("miners: [{personality: s21}]", "miners[0].personality: unknown personality 's21'"),
        ("miners: [{personality: s9, faults: [melting]}]", "miners[0].faults: unknown fault 'melting'"),
        ("miners: [{personality: s9, colour: red}]", "miners[0]: unknown key 'colour'"),
        ("miners: [{count: 2}]", "miners[0]: needs personality"),
        ("ports: {api: 99999}", "ports.api: expected an integer"),
        ("base_ip: 300.1.1.1\nminers: [{personality: s9}]", "not an IPv4 address"),
        ("miners: [{personality: s9, ip: 10.0.0.1}, {personality: s9, ip: 10.0.0.1}]", "already used by miners[0]"),
        ("seed: [", "not valid YAML"),
    ],
)
def test_errors_name_the_place(text, msg):
    with pytest.raises(SpecError, match=r"site\.yaml") as e:
        from_yaml_text(text, "site.yaml")
    assert msg in str(e.value)


def test_mix():
    assert parse_mix("s19=3,antminer=1") == {"s19": 1}  # alias of s19, last wins
    with pytest.raises(SpecError):
        parse_mix("s19=x")
