"""The reductions' fast reader gives exactly what the event reader gives.

:class:`FastReader` decodes the usual lines with one ``msgspec`` call each and hands
everything else to :class:`EventReader`. Property: for any mix of good records in every
line form and hostile lines (bad JSON, invalid UTF-8, wrong field types, several records on
a line, pretty-printed records, blank lines, a truncated last line), in chunks of any size,
plain or gzip, the records, bad-record reports (file, line, reason) and invalid-record
reports equal those of the event reader followed by the same conversion.
"""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from minectl_py.events import gzipstream
from minectl_py.events.gzipstream import FastGzipStream, GzipStream
from minectl_py.events.reader import EventReader
from minectl_py.reduce import source
from minectl_py.reduce.record import HashRec, Rec, ValidationError, from_dict
from minectl_py.reduce.source import FastReader
from tests import reduce_data as D


def reference(path: str, rec_type: type, prefilter: bytes | None = None) -> tuple[list, list, list, int]:
    """What the event reader reads, converted as the reductions convert dicts."""
    r = EventReader([path], prefilter=prefilter)
    recs, invalid = [], []
    for d in r:
        try:
            recs.append(from_dict(d, rec_type))
        except (ValidationError, TypeError) as e:
            invalid.append(f"{path}:{r.pos.line}: {e}")
    bad = [(b.line, b.reason) for b in r.stats.samples]
    return recs, invalid, bad, r.stats.records


def fast(path: str, rec_type: type, prefilters=None) -> tuple[list, list, list, int]:
    invalid: list[str] = []
    r = FastReader([path], rec_type=rec_type, on_invalid=invalid.append, prefilters=prefilters)
    recs = [x for batch in r.batches() for x in batch]
    bad = [(b.line, b.reason) for b in r.stats.samples]
    return recs, invalid, bad, r.stats.records


def rec_line(rec: dict, form: str) -> bytes:
    text = json.dumps(rec, separators=(",", ":")).encode()
    return {
        "plain": text + b"\n",
        "rs": b"\x1e" + text + b"\n",
        "crlf": b"\x1e" + text + b"\r\n",
        "fluentd": b"20180704T000000-0700\tmainstream\t" + text + b"\n",
        "fluentd_rs": b"20180704T000000-0700\tmainstream\t\x1e" + text + b"\n",
        "spaced": b"  " + text + b" \n",
        "two_rs": b"\x1e\x1e" + text + b"\n",
    }[form]


#: hostile lines that do not depend on the records around them
FIXED = {
    "not_json": b"20180704T000000-0700\tmainstream\t{not json\n",
    "garbage": b"garbage\x01\n",
    "pretty_fluentd_open": b"20180704T000000-0700\tmainstream\t{\n",
    "blank": b"\n",
    "spaces": b"  \t \r\n",
    "array": b"[1,2]\n",
    "nan": b'{"cmd":"poll","created_at_ms":"1","x":NaN}\n',
    "surrogate": b'{"cmd":"poll","created_at_ms":"1","x":"\\ud800"}\n',
    "dup_key": b'{"cmd":"poll","created_at_ms":"1","cmd":"lease","mac":"00:11:22:33:44:55"}\n',
    "escaped_key": b'{"c\\u006dd":"poll","created_at_ms":"2","miner":{"hashrate_ths":1}}\n',
    "big_int": b'{"cmd":"poll","created_at_ms":123456789012345678901234567890}\n',
    "deep": b'{"cmd":"poll","x":' + b"[" * 3000 + b"]" * 3000 + b"}\n",
}


def hostile(kind: str, i: int) -> bytes:
    rec = D.poll(D.T0 + i * 1000, D.MACS[i % len(D.MACS)], 10.0 + i)  # for every kind: ids run on as before
    if kind in FIXED:
        return FIXED[kind]
    if kind == "bad_utf8_skipped":  # in a field no reduction reads: msgspec would skip it
        return json.dumps(rec).encode()[:-1] + b',"junk":"\xff\xfe"}\n'
    if kind == "wrong_type":
        rec["miner"]["hashrate_ths"] = "fast"
        return rec_line(rec, "fluentd")
    if kind == "wrong_type_unread":  # a field only the full Rec reads
        rec["miner"]["fans"] = "many"
        return rec_line(rec, "plain")
    if kind == "two_records":
        return b"\x1e" + json.dumps(rec).encode() + b"\x1e" + json.dumps(D.poll_fail(D.T0, D.MACS[0])).encode() + b"\n"
    if kind == "pretty":
        return b"\x1e" + json.dumps(rec, indent=2).encode() + b"\n"
    if kind == "one_tab":
        return b"a\t" + json.dumps(rec).encode() + b"\n"
    if kind == "lease":
        return rec_line(D.lease(D.T0 + i, D.MACS[i % len(D.MACS)], hostname="r1-s1"), "rs")
    raise AssertionError(kind)


FORMS = ["plain", "rs", "crlf", "fluentd", "fluentd_rs", "spaced", "two_rs"]
KINDS = [
    "not_json", "garbage", "bad_utf8_skipped", "wrong_type", "wrong_type_unread", "two_records", "pretty",
    "pretty_fluentd_open", "blank", "spaces", "array", "one_tab", "nan", "surrogate", "dup_key", "escaped_key",
    "big_int", "deep", "lease",
]  # fmt: skip

lines_st = st.lists(
    st.one_of(
        st.tuples(st.just("good"), st.sampled_from(FORMS)),
        st.tuples(st.just("bad"), st.sampled_from(KINDS)),
    ),
    max_size=40,
)


def build(spec: list[tuple[str, str]], truncated_tail: bool) -> bytes:
    out = []
    for i, (what, kind) in enumerate(spec):
        if what == "good":
            out.append(rec_line(D.poll(D.T0 + i * 1000, D.MACS[i % len(D.MACS)], 10.0 + i), kind))
        else:
            out.append(hostile(kind, i))
    if truncated_tail:
        out.append(b'20180704T000000-0700\tmainstream\t{"created_at_ms":"15306')
    return b"".join(out)


def same(a, b) -> None:
    recs_a, inv_a, bad_a, n_a = a
    recs_b, inv_b, bad_b, n_b = b
    assert recs_a == recs_b
    assert inv_a == inv_b
    assert bad_a == bad_b
    assert n_a == n_b


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    spec=lines_st,
    tail=st.booleans(),
    chunk=st.sampled_from([7, 64, 700, 4 << 20]),
    rec_type=st.sampled_from([Rec, HashRec]),
)
@example(spec=[("bad", "bad_utf8_skipped"), ("bad", "pretty")], tail=False, chunk=7, rec_type=Rec)
@example(spec=[("bad", "big_int"), ("bad", "deep"), ("good", "fluentd")], tail=True, chunk=4 << 20, rec_type=Rec)
def test_fast_reader_reads_exactly_what_the_event_reader_reads(tmp_path, monkeypatch, spec, tail, chunk, rec_type):
    monkeypatch.setattr(source, "READ", chunk)
    p = tmp_path / "in.log"
    p.write_bytes(build(spec, tail))
    same(fast(str(p), rec_type), reference(str(p), rec_type))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=lines_st, tail=st.booleans())
def test_gzip_and_prefilters_read_the_same(tmp_path, spec, tail):
    data = build(spec, tail)
    p = tmp_path / "in.log.gz"
    p.write_bytes(gzip.compress(data[: len(data) // 2]) + gzip.compress(data[len(data) // 2 :]))
    same(fast(str(p), Rec), reference(str(p), Rec))
    plain = tmp_path / "in.log"
    plain.write_bytes(data)
    # lines without the prefilter are not looked at, by either reader
    same(fast(str(plain), Rec, (b'"lease"',)), reference(str(plain), Rec, b'"lease"'))


def test_a_pretty_record_across_a_chunk_boundary_is_joined(tmp_path, monkeypatch):
    monkeypatch.setattr(source, "READ", 16)
    recs = [D.poll(D.T0 + i * 1000, D.MACS[i], 10.0) for i in range(3)]
    data = rec_line(recs[0], "rs") + b"\x1e" + json.dumps(recs[1], indent=2).encode() + b"\n" + rec_line(recs[2], "rs")
    p = tmp_path / "pretty.log"
    p.write_bytes(data)
    got = fast(str(p), Rec)
    assert len(got[0]) == 3 and got[2] == []
    same(got, reference(str(p), Rec))


# ------------------------------------------------------------------------------ gzip
def _read_all(s) -> bytes:
    out = []
    while True:
        b = s.read()
        if not b:
            return b"".join(out)
        out.append(b)


@pytest.mark.parametrize("isal", [True, False])
@pytest.mark.parametrize("damage", ["none", "truncated", "corrupt_middle", "zero_padding", "trailing_garbage", "empty"])
def test_fast_gzip_stream_gives_the_bytes_gzipstream_gives(tmp_path, monkeypatch, isal, damage):
    if not isal:
        monkeypatch.setattr(gzipstream, "_isal", None)
    elif not gzipstream.HAVE_ISAL:
        pytest.skip("isal not installed")
    text = b"".join(rec_line(D.poll(D.T0 + i, D.MACS[i % 3], float(i)), "fluentd") for i in range(3000))
    members = [gzip.compress(text[i : i + 100_000]) for i in range(0, len(text), 100_000)]
    data = b"".join(members)
    if damage == "truncated":
        data = data[: len(data) - 777]
    elif damage == "corrupt_middle":
        mid = len(members[0]) + len(members[1]) // 2
        data = data[:mid] + bytes(b ^ 0x5A for b in data[mid : mid + 64]) + data[mid + 64 :]
    elif damage == "zero_padding":
        data = members[0] + b"\0" * 1000 + b"".join(members[1:]) + b"\0" * 10
    elif damage == "trailing_garbage":
        data += b"not gzip at all"
    elif damage == "empty":
        data = b""
    p = tmp_path / "x.gz"
    p.write_bytes(data)
    with open(p, "rb") as f:
        ref = GzipStream(f)
        want = _read_all(ref)
        want_trunc = ref.truncated
    with open(p, "rb") as f:
        fs = FastGzipStream(f)
        got = _read_all(fs)
        assert got == want
        assert fs.truncated == want_trunc
    if damage == "none":
        assert got == text and not want_trunc
    if damage in ("truncated", "corrupt_middle"):
        assert want_trunc and 0 < len(got) < len(text)


def test_gzip_is_inflated_ahead_and_reported_when_truncated(tmp_path):
    text = b"".join(rec_line(D.poll(D.T0 + i, D.MACS[i % 3], float(i)), "fluentd") for i in range(2000))
    p = tmp_path / "t.log.gz"
    p.write_bytes(gzip.compress(text)[:-500])
    got = fast(str(p), Rec)
    assert got[2][-1][1] == "truncated or corrupt gzip data"
    assert 0 < len(got[0]) < 2000
    same(got, reference(str(p), Rec))


@pytest.mark.parametrize("form", ["plain", "rs", "crlf", "fluentd", "fluentd_rs"])
def test_usual_lines_never_go_the_slow_way(tmp_path, monkeypatch, form):
    """The property above would hold if everything went to the event reader: check it does not."""

    def no(*a, **k):
        raise AssertionError("read by the event reader")

    monkeypatch.setattr(FastReader, "_by_reader", no)
    recs = [D.poll(D.T0 + i * 1000, D.MACS[i % 3], 10.0 + i) for i in range(500)]
    p = tmp_path / "in.log"
    p.write_bytes(b"".join(rec_line(r, form) for r in recs))
    got = fast(str(p), HashRec)
    assert len(got[0]) == 500 and got[3] == 500 and got[0][7].miner.hashrate_ths == 17.0
