"""Proof of the log format: a real peer (Debian's jq) reads what we write and we read what it
writes; round trips; random corruption never crashes the reader nor costs a valid record."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minectl_py.events import record
from minectl_py.events.reader import BadRecordError, EventReader, ReadStats
from minectl_py.events.writer import EventWriter
from tests.conftest import run_minectl

# JSON values jq 1.6 keeps exactly: no lone surrogates (it swaps them for U+FFFD) and
# integers within 2**53 (it keeps numbers as doubles).
jtext = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
jscalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    jtext,
)
jvalue = st.recursive(
    jscalar, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(jtext, inner, max_size=4), max_leaves=12
)
fields_st = st.dictionaries(jtext.filter(lambda k: k not in record.ENVELOPE), jvalue, max_size=6)


def as_double(v):
    """jq keeps numbers as doubles: compare numbers as doubles."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, list):
        return [as_double(x) for x in v]
    return {k: as_double(x) for k, x in v.items()}


def jq(args: list[str], data: bytes) -> bytes:
    p = subprocess.run(["jq", *args], input=data, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def read_all(data: bytes, **kw) -> tuple[list[dict], ReadStats]:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "f"
        p.write_bytes(data)
        stats = ReadStats()
        return list(EventReader([str(p)], stats=stats, **kw)), stats


# ------------------------------------------------------------------------ jq interop
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(fields_st, min_size=1, max_size=25))
def test_jq_seq_reads_what_we_write(tmp_path, many):
    log = tmp_path / "events.log"
    log.unlink(missing_ok=True)
    recs = [record.make("x", "n", f) for f in many]
    with EventWriter(str(log), fsync=False) as w:
        w.append(recs[0])
        w.append_many(recs[1:])
    out = jq(["--seq", "-c", "."], log.read_bytes())
    assert out.count(b"\x1e") == len(recs)
    got = [json.loads(t) for t in out.split(b"\x1e") if t]
    assert as_double(got) == as_double(recs)


@settings(max_examples=30, deadline=None)
@given(st.lists(fields_st, min_size=1, max_size=25), st.sampled_from(["compact", "pretty", "lines"]))
def test_we_read_what_jq_writes(many, style):
    recs = [record.make("x", "n", f) for f in many]
    src = b"".join(record.encode(r) for r in recs)
    args = {"compact": ["--seq", "-c", "."], "pretty": ["--seq", "."], "lines": ["-c", "--seq", "--ascii-output"]}
    out = jq(args[style], src)
    if style == "lines":  # jq's plain JSON lines (no RS) from its RS output
        out = jq(["-c", "."], out.replace(b"\x1e", b""))
    got, stats = read_all(out)
    assert stats.bad == 0, stats.samples
    assert as_double(got) == as_double(recs)


def test_jq_generated_stream_and_garbage_between():
    out = jq(["-n", "--seq", "-c", 'range(5) | {created_at_ms: (1000 + . | tostring), cmd: "t", i: .}'], b"")
    got, stats = read_all(out + b"\x1egarbage\n" + out)
    assert [r["i"] for r in got] == [0, 1, 2, 3, 4] * 2 and stats.bad == 1


# --------------------------------------------------------------------- round trip
FORMS = [
    lambda j: b"\x1e" + j + b"\n",
    lambda j: j + b"\n",
    lambda j: b"\x1e" + j + b"\r\n",
    lambda j: b"20180704T143646-0700\tmainstream\t" + j + b"\n",
    lambda j: b"20180704T143646-0700\tmainstream\t\x1e" + j + b"\r\n",
    lambda j: b"\x1e\x1e" + j + b"\n",
    lambda j: b"  " + j + b"\n",
]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(fields_st, st.integers(0, len(FORMS) - 1)), max_size=12), st.booleans())
def test_round_trip_any_line_form(items, as_gzip):
    recs = [record.make("x", "n", f) for f, _ in items]
    data = b"".join(FORMS[k](record.dumps(r)) for r, (_, k) in zip(recs, items, strict=True))
    got, stats = read_all(gzip.compress(data) if as_gzip else data)
    assert got == recs and stats.bad == 0


def test_lone_surrogates_and_control_characters_round_trip():
    r = record.make("x", "n", {"h": "a\udcff\x00\x1e\n\u2028", "k\x1b": [1.5, -0.0, 2**63]})
    got, _ = read_all(record.encode(r))
    assert got == [r]


# ----------------------------------------------------------------------- corruption
def _corrupt(line: bytes, how: int, rnd: random.Random) -> bytes:
    """Damage one line without touching its LF: the model of a torn or garbled record."""
    body = line[:-1]
    if how == 0:  # truncated
        return body[: rnd.randrange(len(body) + 1)] + b"\n"
    if how == 1:  # some bytes replaced by anything but LF
        b = bytearray(body)
        for _ in range(rnd.randrange(1, 4)):
            if b:
                b[rnd.randrange(len(b))] = rnd.choice([x for x in range(256) if x != 10])
        return bytes(b) + b"\n"
    if how == 2:  # two records glued together (a torn write followed by the next)
        return body[: len(body) // 2] + body + b"\n"
    return bytes(rnd.choice([x for x in range(256) if x != 10]) for _ in range(rnd.randrange(40))) + b"\n"


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(fields_st, st.integers(0, len(FORMS) - 1), st.integers(-4, 3)), min_size=1, max_size=15),
    st.integers(0, 2**32),
)
def test_corruption_never_crashes_nor_loses_a_following_valid_record(items, seed):
    rnd = random.Random(seed)
    lines, intact = [], []
    for f, form, how in items:
        r = record.make("x", "n", f)
        line = FORMS[form](record.dumps(r))
        if how < 0:  # untouched
            lines.append(line)
            intact.append(r)
        else:
            lines.append(_corrupt(line, how, rnd))
        if rnd.random() < 0.2:  # a whole garbage line between records
            lines.append(_corrupt(b"{}\n", 3, rnd))
    got, stats = read_all(b"".join(lines))
    # Every untouched record is read, in order (damaged ones may or may not still parse).
    it = iter(got)
    assert all(any(g == r for g in it) for r in intact), (intact, got)
    assert stats.records == len(got)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300), st.booleans(), st.booleans())
def test_arbitrary_bytes_never_crash(data, as_gzip, strict):
    if as_gzip:
        data = gzip.compress(data)[: len(data) // 2 + 10]
    try:
        read_all(data, strict=strict)
    except BadRecordError:
        assert strict


# ------------------------------------------------------------------------ --strict
def test_strict_cli_is_fatal_and_names_the_line(tmp_path):
    p = tmp_path / "e.log"
    p.write_bytes(b'\x1e{"a":1}\n\x1e{"a":\n\x1e{"a":3}\n')
    lax = run_minectl("events", "count", "--json", str(p))
    assert lax.returncode == 0 and json.loads(lax.stdout)["bad"] == 1
    strict = run_minectl("events", "count", "--strict", str(p))
    assert strict.returncode == 1
    assert f"{p}:2: not JSON" in strict.stderr.decode() and b"strict" in strict.stderr
    cat = run_minectl("events", "cat", "--strict", "--lines", str(p))
    assert cat.returncode == 1 and cat.stdout.count(b"\n") <= 1


@pytest.mark.parametrize("sub", ["cat", "count", "index"])
def test_missing_file_is_an_input_error(tmp_path, sub):
    p = run_minectl("events", sub, str(tmp_path / "nope.log"))
    assert p.returncode == 2 and b"nope.log" in p.stderr
