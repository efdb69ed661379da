"""The event log core: records, the reader's input forms, bad records, the writer."""

from __future__ import annotations

import gzip
import io
import json
import os

import pytest

from minectl_py.events import model, record
from minectl_py.events.reader import BadRecordError, EventReader, ReadStats, strip_prefix
from minectl_py.events.writer import EventWriter, segment_name
from tests.conftest import run_minectl

SEED = (
    b'20180704T143646-0700\tmainstream\t{"created_at_ms":"1530740205000","id":"c2cd10a50b068e0e696771621d61fb60",'
    b'"ip":"34.220.251.198","cmd":"time","nodename":"overlord"}\n'
    b'20180704T143651-0700\tmainstream\t{"created_at_ms":"1530740211000","id":"211c590441101f66c2e4c74b25d23721",'
    b'"ip":"34.220.251.198","cmd":"time","nodename":"overlord"}\n'
)


def read_bytes(data: bytes, tmp_path, name="f.log", **kw):
    p = tmp_path / name
    p.write_bytes(data)
    stats = ReadStats()
    recs = list(EventReader([str(p)], stats=stats, **kw))
    return recs, stats


def test_seed_records_with_fluentd_prefix(tmp_path):
    recs, stats = read_bytes(SEED, tmp_path)
    assert [r["created_at_ms"] for r in recs] == ["1530740205000", "1530740211000"]
    assert stats.bad == 0
    ev = model.parse(recs[0])
    assert isinstance(ev, model.Time) and ev.ip == "34.220.251.198" and ev.v == 0


@pytest.mark.parametrize(
    "line",
    [
        b'{"a":1}',
        b'\x1e{"a":1}',
        b'\x1e\x1e{"a":1}',
        b'T\ttag\t{"a":1}',
        b'T\ttag\t\x1e{"a":1}',
    ],
)
@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_every_line_form(tmp_path, line, eol):
    recs, stats = read_bytes(line + eol + line + eol, tmp_path)
    assert recs == [{"a": 1}, {"a": 1}]
    assert stats.bad == 0


def test_gzip_multi_member_and_plain_give_same(tmp_path):
    one = gzip.compress(SEED[: SEED.index(b"\n") + 1])
    two = gzip.compress(SEED[SEED.index(b"\n") + 1 :])
    recs_gz, _ = read_bytes(one + two, tmp_path, "d.log.gz")
    recs_plain, _ = read_bytes(SEED, tmp_path)
    assert recs_gz == recs_plain and len(recs_gz) == 2


def test_bad_records_reported_with_line_and_reading_goes_on(tmp_path):
    data = (
        b'\x1e{"a":1}\n'
        b"\x1enot json\n"
        b"\x1e[1,2]\n"
        b'\x1e{"a":"\xff"}\n'
        b'\x1e{"a":2}\n'
        b'\x1e{"a":3'  # truncated last line
    )
    recs, stats = read_bytes(data, tmp_path)
    assert recs == [{"a": 1}, {"a": 2}]
    assert stats.bad == 4
    got = [(b.line, b.reason) for b in stats.samples]
    assert got == [(2, "not JSON"), (3, "not an object"), (4, "invalid UTF-8"), (6, "truncated last line")]
    assert all(b.source.endswith("f.log") for b in stats.samples)


def test_strict_raises_on_first_bad(tmp_path):
    p = tmp_path / "f.log"
    p.write_bytes(b'{"a":1}\ngarbage\n{"a":2}\n')
    with pytest.raises(BadRecordError, match=r"f.log:2: not JSON"):
        list(EventReader([str(p)], strict=True))


def test_sample_is_terminal_safe(tmp_path):
    _, stats = read_bytes(b"\x1b[2J\x07evil\n", tmp_path)
    s = stats.samples[0].sample
    assert "\x1b" not in s and "\x07" not in s and "\\x1b" in s


def test_strip_prefix_keeps_plain_json():
    assert strip_prefix(b'{"x":"a\\tb"}') == b'{"x":"a\\tb"}'


def test_writer_appends_rs_framed_records_jq_compatible(tmp_path):
    log = tmp_path / "events.log"
    with EventWriter(str(log)) as w:
        w.append(record.make("time", "n1", {"ip": "1.2.3.4"}))
        w.append_many([record.make("time", "n1", {"ip": "h\u00e9\n\x1e"}) for _ in range(3)])
    data = log.read_bytes()
    assert data.count(b"\x1e") == 4 and data.count(b"\n") == 4
    assert all(line.startswith(b"\x1e{") for line in data.splitlines())
    assert oct(os.stat(log).st_mode & 0o777) == "0o640"


def test_writer_rotates_on_new_day(tmp_path):
    log = tmp_path / "events.log"
    now = [1_700_000_000.0]
    w = EventWriter(str(log), clock=lambda: now[0])
    w.append(record.make("time", "n", {}))
    os.utime(log, (now[0], now[0]))
    now[0] += 86_400
    w.append(record.make("time", "n", {}))
    seg = segment_name(str(log), "20231114")
    assert os.path.exists(seg)
    assert log.read_bytes().count(b"\n") == 1
    w.close()


def test_lone_surrogates_stay_valid_utf8():
    data = record.encode({"h": "bad\udcff"})
    data.decode("utf-8")
    assert json.loads(data[1:])["h"] == "bad\udcff"


def test_model_errors_name_the_field():
    rec = record.make("lease", "n", {"action": "add", "mac": "aa:bb:cc:dd:ee:ff"})
    with pytest.raises(model.EventError, match=r"field lease\.ip: missing"):
        model.parse(rec)
    rec = record.make("lease", "n", {"action": "add", "mac": "aa", "ip": 5})
    with pytest.raises(model.EventError, match=r"field lease\.ip: expected string, got int"):
        model.parse(rec)
    bad = dict(record.make("time", "n", {}), created_at_ms=12)
    with pytest.raises(model.EventError, match="created_at_ms"):
        model.parse(bad)


def test_model_round_trip_and_unknown_kept():
    ev = model.Lease.new("n", action="add", mac="aa:bb:cc:dd:ee:ff", ip="10.0.0.5", hostname="s9")
    assert model.parse(ev.to_record()) == ev
    rec = record.make("future_thing", "n", {"x": 1})
    u = model.parse(rec)
    assert isinstance(u, model.Unknown) and u.to_record() == rec


def test_cli_cat_count_stdin():
    p = run_minectl("events", "count", "--json", "-", input=SEED + b"junk\n")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["records"] == 2 and d["bad"] == 1
    p = run_minectl("events", "cat", "-", "--since", "1530740210000", input=gzip.compress(SEED))
    assert p.returncode == 0
    assert p.stdout.count(b"\x1e") == 1 and b"1530740211000" in p.stdout


def test_cli_help_teaches():
    p = run_minectl("--help")
    assert p.returncode == 0 and b"minectl events" not in p.stderr
    assert b"Seeing the site" in p.stdout and b"Exit codes" in p.stdout
    p = run_minectl("events", "cat", "--help")
    assert b"--since" in p.stdout


def test_unknown_command_is_usage_error():
    p = run_minectl("frobnicate")
    assert p.returncode == 2 and b"unknown command" in p.stderr


def test_stdin_file_like(monkeypatch, tmp_path):
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(SEED))))
    assert len(list(EventReader(["-"]))) == 2


def test_read_ahead_gives_the_same_records_and_closes_early(tmp_path, monkeypatch):
    from minectl_py.events import reader

    recs = [record.make("time", "n", {"i": i, "pad": "x" * 300}) for i in range(3000)]
    data = gzip.compress(b"".join(record.encode(r) for r in recs))
    p = tmp_path / "big.log.gz"
    p.write_bytes(data[: len(data) - 7])  # truncated: the last member is incomplete
    plain_stats, ahead_stats = ReadStats(), ReadStats()
    plain = list(EventReader([str(p)], stats=plain_stats))
    monkeypatch.setattr(reader, "READ_AHEAD_BYTES", 1)
    from minectl_py.events.readahead import ReadAhead

    assert isinstance(reader.open_binary(str(p)), ReadAhead)
    ahead = list(EventReader([str(p)], stats=ahead_stats))
    assert ahead == plain and len(plain) > 2900
    assert [b.reason for b in ahead_stats.samples] == [b.reason for b in plain_stats.samples]
    assert "truncated or corrupt gzip data" in ahead_stats.reasons
    for _ in EventReader([str(p)]):  # stop after one record: the thread must not hang
        break


def test_root_created_log_files_belong_to_the_directory_owner(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    d = tmp_path / "events"
    d.mkdir()
    os.chown(d, 65534, 65534)
    with EventWriter(str(d / "events.log")) as w:
        w.append(record.make("time", "n", {}))
    for name in ("events.log", ".events.log.lock"):
        st = os.stat(d / name)
        assert (st.st_uid, st.st_gid) == (65534, 65534), name


def test_read_ahead_is_still_a_gzip_stream_for_other_readers(tmp_path, monkeypatch):
    from minectl_py.events import reader

    p = tmp_path / "t.log.gz"
    p.write_bytes(gzip.compress(SEED)[:-5])
    monkeypatch.setattr(reader, "READ_AHEAD_BYTES", 1)
    s = reader.open_binary(str(p))
    assert isinstance(s, reader.GzipStream)
    while s.read():
        pass
    assert s.truncated
    s.close()
