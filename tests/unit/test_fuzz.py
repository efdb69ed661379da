"""Fuzzing (hypothesis) of what reads hostile bytes: the event reader, the miner API client's
reply classification and JSON repairs, normalization, the inventory CSV loader, and the lease
hook's arguments and environment. Bounded here; ``./dev fuzz`` runs the same properties with
``MINECTL_FUZZ_EXAMPLES`` (default there 20,000 per property).

Each property says what must hold for any input, not just "no exception": the reader counts
every line as a record or a bad record, ``classify`` answers one of the documented reasons,
the CSV loader reports problems as ``file:line: ...`` and accepts only valid rows, the hook
writes one whole record with safe state paths. Crashes found are kept as explicit examples.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import string

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from minectl_py import fastjson, lease_hook
from minectl_py.events.reader import EventReader, ReadStats
from minectl_py.inventory import csvfile
from minectl_py.miner import api
from minectl_py.miner.normalize import NormalizeError, normalize
from minectl_py.state import project
from minectl_py.state import sanitize as san

EXAMPLES = int(os.environ.get("MINECTL_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=not os.environ.get("MINECTL_FUZZ_EXAMPLES"),  # CI: the same examples every run
)

HOSTILE = [
    "../../etc/passwd",
    "..",
    ".",
    "a/b",
    "\x1b[2J\x1b[H",
    "\x1b]0;title\x07",
    "\x9b31m",
    "$(reboot)",
    "`id`",
    "a;rm -rf /",
    "x\u202eevil",
    "\u200bzero",
    "\x00nul",
    "\udcff\udcfe",
    "-n",
    "'\"",
    "\r\nInjected: 1",
]
hostile_text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=80), st.text(string.printable, max_size=40))
record_obj = st.fixed_dictionaries(
    {"created_at_ms": st.from_regex(r"\A[0-9]{13}\Z"), "id": st.text("0123456789abcdef", min_size=32, max_size=32)},
    optional={"cmd": st.sampled_from(["lease", "poll", "time", "x"]), "s": hostile_text},
)
line_piece = st.one_of(
    record_obj.map(lambda r: b"\x1e" + json.dumps(r).encode() + b"\n"),
    record_obj.map(lambda r: json.dumps(r).encode() + b"\r\n"),
    record_obj.map(lambda r: b"20180704T143646-0700\tmainstream\t" + json.dumps(r).encode() + b"\n"),
    st.binary(max_size=40),
    st.sampled_from([b"\x1e", b"\n", b"\r\n", b"\t", b"{", b"}", b"[", b"\x1e{\n", b"\xff\xfe", b"[" * 3000]),
)


# ------------------------------------------------------------------------ the event reader
def _read(data: bytes, tmp_path, name: str = "f.log") -> tuple[list[dict], ReadStats]:
    p = tmp_path / name
    p.write_bytes(data)
    stats = ReadStats()
    recs = list(EventReader([str(p)], stats=stats))
    return recs, stats


@FUZZ
@given(pieces=st.lists(line_piece, max_size=30))
@example(pieces=[b"[" * 5000 + b"\n"])
@example(pieces=[b"\x1e{" + b'"a":' * 2000 + b"\n"])
def test_reader_takes_any_bytes(tmp_path_factory, pieces):
    tmp = tmp_path_factory.mktemp("r")
    data = b"".join(pieces)
    recs, stats = _read(data, tmp)
    assert all(type(r) is dict for r in recs)
    assert stats.records == len(recs)
    assert all(b.line >= 1 and "\x1b" not in b.sample for b in stats.samples)  # terminal-safe samples
    # a good record after anything is never swallowed by what came before it
    good = {"created_at_ms": "1790000000000", "id": "f" * 32, "cmd": "time"}
    recs2, _ = _read(data + b"\n\x1e" + json.dumps(good).encode() + b"\n", tmp, "g.log")
    assert recs2 and recs2[-1] == good
    # the same bytes gzipped read the same
    gz, gstats = _read(gzip.compress(data), tmp, "f.log.gz")
    assert gz == recs and gstats.bad == stats.bad


# ---------------------------------------------------------------- the miner API client
json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), hostile_text),
    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(hostile_text, c, max_size=4)),
    max_leaves=20,
)
FIRMWARE_BUGS = [b"}{", b"[,{", b",}", b"\n", b'""', b"inf", b"nan", b"\x00", b",", b"{", b"]"]


@st.composite
def reply_bytes(draw) -> bytes:
    base = json.dumps(
        {
            "STATUS": [{"STATUS": draw(st.sampled_from("SIWEF")), "Code": 11, "Msg": draw(hostile_text)}],
            "X": draw(json_value),
        }
    ).encode()
    for _ in range(draw(st.integers(0, 4))):  # break it the ways firmware does
        i = draw(st.integers(0, len(base)))
        base = base[:i] + draw(st.sampled_from(FIRMWARE_BUGS)) + base[i:]
    return base + draw(st.sampled_from([b"\x00", b"", b"\x00junk"]))


@FUZZ
@given(raw=st.one_of(reply_bytes(), st.binary(max_size=200)))
@example(raw=b"{" + b'"a":[' * 50000 + b"\x00")
@example(raw=b'{"a":' + b"[" * 100000 + b"\x00")
@example(raw=b"," + b"[" * 100000)
def test_classify_answers_a_documented_reason(raw):
    rep = api.classify(raw)
    assert rep.ok or rep.reason in api.REASONS, rep.reason
    if rep.ok:
        assert isinstance(rep.data, dict)
    assert len(rep.detail) <= 400


@FUZZ
@given(
    replies=st.dictionaries(st.sampled_from(["summary", "stats", "pools", "devs", "version", "devdetails"]), json_value)
)
def test_normalize_raises_only_what_the_poller_catches(replies):
    try:
        d = normalize(replies)
    except (NormalizeError, ValueError, TypeError, KeyError, AttributeError):
        return
    out = d.to_dict()
    json.dumps(out)  # the poll event can always be written


# ---------------------------------------------------------------- the inventory CSV loader
csv_cell = st.one_of(
    hostile_text, st.sampled_from(["aa:bb:cc:dd:ee:01", "AA-BB-CC-DD-EE-01", "r1-s1-p1", "10.0.0.1", '"', "#"])
)


@FUZZ
@given(
    header=st.lists(st.sampled_from([*csvfile.COLUMNS, "x", "", "MAC", " name "]), max_size=8),
    rows=st.lists(st.lists(csv_cell, max_size=9), max_size=8),
    bom=st.booleans(),
)
def test_inventory_loader_reports_problems_and_keeps_only_valid_rows(header, rows, bom):
    buf = io.StringIO()
    import csv

    w = csv.writer(buf)
    w.writerow(header)
    for r in rows:
        w.writerow(r)
    text = ("\ufeff" if bom else "") + buf.getvalue()
    inv = csvfile.parse(text)
    for p in inv.errors + inv.warnings:
        assert p.line >= 1 and p.format("site.csv").startswith(f"site.csv:{p.line}")
        assert p.format("x").isprintable()  # a crafted header or cell never reaches the terminal raw
    if inv.ok:
        for row in inv.rows:
            assert san.mac(row.mac) == row.mac and csvfile.check_name(row.name) is None
            assert san.label(row.name) == row.name  # usable as a file name
    else:
        pass  # `apply` changes nothing when there are errors (tests/unit/test_inventory*.py)


# ---------------------------------------------------------------- the lease hook
env_keys = st.sampled_from(
    [
        "DNSMASQ_SUPPLIED_HOSTNAME",
        "DNSMASQ_VENDOR_CLASS",
        "DNSMASQ_CLIENT_ID",
        "DNSMASQ_INTERFACE",
        "DNSMASQ_TAGS",
        "DNSMASQ_USER_CLASS0",
        "DNSMASQ_LEASE_EXPIRES",
        "DNSMASQ_TIME_REMAINING",
        "DNSMASQ_OLD_HOSTNAME",
        "DNSMASQ_DATA_MISSING",
    ]
)


@FUZZ
@given(
    action=st.sampled_from(["add", "old", "del"]),
    mac=st.one_of(st.sampled_from(["02:00:00:00:00:01", "02-00-00-00-00-01", "../../x", ""]), hostile_text),
    ip=st.one_of(st.sampled_from(["10.0.0.1", "999.1.1.1", "../"]), hostile_text),
    host=st.one_of(st.none(), hostile_text, st.text(min_size=500, max_size=3000)),
    env=st.dictionaries(env_keys, st.one_of(hostile_text, st.text(min_size=1000, max_size=5000)), max_size=6),
)
def test_lease_hook_fields_are_one_whole_record_and_safe_state(tmp_path_factory, action, mac, ip, host, env):
    argv = [action, mac, ip] + ([host] if host is not None else [])
    fields = lease_hook.lease_fields(argv, env)
    rec = lease_hook.make_record(fields, "ctl", at_ms=1_790_000_000_000)
    data = b"\x1e" + fastjson.dumps(rec) + b"\n"
    data.decode("utf-8")  # always valid UTF-8 (lone surrogates escaped)
    assert data.count(b"\x1e") == 1 and data.count(b"\n") == 1  # never a raw RS or LF inside
    assert json.loads(data[1:]) == json.loads(json.dumps(rec))
    for k in ("hostname_raw", "vendor_class", "supplied_hostname"):
        assert len(fields.get(k) or "") <= lease_hook.RAW_MAX
    state = tmp_path_factory.mktemp("s")
    project.forget_cache()
    project.apply(str(state), rec)
    for p in state.rglob("*"):  # nothing outside the state directory, only safe names inside
        assert p.resolve().is_relative_to(state.resolve()) or p.is_symlink()
        assert p.name not in (".", "..") and "\x1b" not in p.name
        if p.is_file() and not p.name.startswith("."):
            text = p.read_text()
            assert text.count("\n") == 1 and all(c.isprintable() or c == "\n" for c in text), (p, text)


@FUZZ
@given(argv=st.lists(hostile_text, max_size=6))
def test_lease_hook_main_never_raises(tmp_path_factory, monkeypatch, argv):
    d = tmp_path_factory.mktemp("h")
    monkeypatch.setenv("MINECTL_EVENTS", str(d / "ev" / "events.log"))
    monkeypatch.setenv("MINECTL_STATE_DIR", str(d / "state"))
    monkeypatch.setattr(lease_hook._signal, "alarm", lambda s: 0)
    project.forget_cache()
    rc = lease_hook.main(argv)
    assert rc in (0, 1, 2)
    if argv and argv[0] in lease_hook.ACTIONS and len(argv) >= 3:
        assert rc == 0
        assert (d / "ev" / "events.log").read_bytes().count(b"\n") == 1
