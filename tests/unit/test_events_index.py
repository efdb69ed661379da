"""Temporal index: seeking gives exactly the records of a full scan; stale indexes are rebuilt."""

from __future__ import annotations

import contextlib
import gzip
import itertools
import json
import os
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minectl_py.events import compact, index, record
from minectl_py.events.generate import generate, write
from minectl_py.events.reader import EventReader, ReadStats
from minectl_py.events.segments import log_set
from minectl_py.events.writer import EventWriter
from tests.conftest import run_minectl


@contextlib.contextmanager
def tiny_blocks(plain: int = 200, gz: int = 0) -> Iterator[None]:
    """Many small blocks, so small inputs exercise seeking."""
    saved = index.BLOCK_BYTES, index.GZIP_BLOCK_BYTES
    index.BLOCK_BYTES, index.GZIP_BLOCK_BYTES = plain, gz
    try:
        yield
    finally:
        index.BLOCK_BYTES, index.GZIP_BLOCK_BYTES = saved


def both(path: str, since: int | None, until: int | None) -> tuple[list, list, ReadStats, ReadStats]:
    s1, s2 = ReadStats(), ReadStats()
    full = list(EventReader([path], since_ms=since, until_ms=until, stats=s1))
    seek = list(index.IndexedReader([path], since_ms=since, until_ms=until, stats=s2, min_bytes=0))
    return full, seek, s1, s2


def assert_same(path: str, since: int | None, until: int | None) -> ReadStats:
    full, seek, s1, s2 = both(path, since, until)
    assert seek == full
    # Bad records seen with the index are a subset of a full scan's, with the same lines.
    full_bad = {(b.line, b.reason) for b in s1.samples}
    if s1.bad <= len(s1.samples):
        assert {(b.line, b.reason) for b in s2.samples} <= full_bad, (s1.samples, s2.samples)
    return s2


# ------------------------------------------------------------------ property: random files
def _line(rec: dict | None, junk: bytes, form: int) -> bytes:
    if form == 8 and rec is not None:  # pretty-printed, as `jq --seq .` writes
        return b"\x1e" + json.dumps(rec, indent=2).encode() + b"\n"
    body = json.dumps(rec, separators=(",", ":")).encode() if rec is not None else junk
    prefix = [b"", b"\x1e", b"20180704T143646-0700\tmainstream\t", b"20180704T143646-0700\tmainstream\t\x1e"][form % 4]
    return prefix + body + (b"\r\n" if form >= 4 else b"\n")


record_st = st.one_of(
    st.builds(
        lambda t, kind, n: (
            {"created_at_ms": str(t) if kind == 0 else t, "cmd": "x", "n": n} if kind < 2 else {"cmd": "x", "n": n}
        ),
        st.integers(1_000, 1_040),
        st.integers(0, 2),
        st.integers(0, 9),
    ),
    st.none(),
)
items_st = st.lists(
    st.tuples(record_st, st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")), st.integers(0, 8)),
    min_size=1,
    max_size=80,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=items_st,
    as_gzip=st.booleans(),
    cuts=st.lists(st.integers(0, 10_000), max_size=8),
    chop=st.integers(0, 30),
    flip=st.one_of(st.none(), st.tuples(st.integers(0, 1 << 20), st.integers(1, 255))),
    data=st.data(),
)
def test_seek_equals_scan_on_random_files(items, as_gzip, cuts, chop, flip, data):
    text = b"".join(_line(rec, junk, form) for rec, junk, form in items)
    if as_gzip:
        # members cut anywhere (even inside a line), and maybe a truncated last member
        points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
        blob = b"".join(gzip.compress(text[a:b], mtime=0) for a, b in itertools.pairwise(points) if b > a)
        blob = blob[: max(len(blob) - chop, 0)] if chop > 20 else blob
    else:
        blob = text[: max(len(text) - chop, 0)] if chop > 20 else text
    if flip and blob:  # one corrupt byte anywhere (in gzip: a broken member mid-file)
        i = flip[0] % len(blob)
        blob = blob[:i] + bytes([blob[i] ^ flip[1]]) + blob[i + 1 :]
    # Window edges on record times (where off-by-one errors live) or anywhere near them.
    times = [r["created_at_ms"] for r, _, _ in items if r is not None and "created_at_ms" in r]
    edge = st.sampled_from([int(t) for t in times]) if times else st.integers(990, 1050)
    since = data.draw(st.one_of(edge, st.integers(990, 1050)), label="since")
    span = data.draw(st.integers(0, 30), label="span")
    with tempfile.TemporaryDirectory() as d, tiny_blocks():
        p = os.path.join(d, "f.log")
        Path(p).write_bytes(blob)
        assert_same(p, since, since + span)
        assert_same(p, since, None)
        assert_same(p, None, since)


# ------------------------------------------------------------------ realistic files
def test_generated_site_files_seek_and_skip(tmp_path):
    for fmt, name, kw in (("fluentd", "a.log.gz", {"member_bytes": 200_000}), ("rs", "a.log", {})):
        p = str(tmp_path / name)
        write(p, generate(records=6000, miners=100, seed=1), fmt=fmt, bad_every=500, **kw)
        with tiny_blocks(plain=200_000, gz=0):
            full = list(EventReader([p]))
            t0, t1 = int(full[0]["created_at_ms"]), int(full[-1]["created_at_ms"])
            mid = (t0 + t1) // 2
            st = assert_same(p, mid, mid + (t1 - t0) // 10)
            assert st.blocks_skipped > 0
            assert_same(p, t0, t1 + 1)
            assert_same(p, t1 + 1, None)
        assert os.path.exists(tmp_path / f".{name}.idx")


def test_append_extends_and_rewrite_rebuilds(tmp_path):
    p = tmp_path / "ev.log"
    write(str(p), generate(records=800, miners=20, seed=2), fmt="rs")
    with tiny_blocks(plain=20_000), open(p, "rb") as f:
        _, how = index.ensure(str(p), f)
        assert how == "built"
    with tiny_blocks(plain=20_000), open(p, "rb") as f:
        assert index.ensure(str(p), f)[1] == "fresh"
    more = list(generate(records=1600, miners=20, seed=2))[800:]
    with open(p, "ab") as out:
        out.write(b"".join(record.encode(r) for r in more) + b'\x1e{"created_at_ms":"1')  # partial last line
    with tiny_blocks(plain=20_000):
        with open(p, "rb") as f:
            idx, how = index.ensure(str(p), f)
        assert how == "extended" and idx.end < p.stat().st_size
        t = int(more[300]["created_at_ms"])
        assert_same(str(p), t, t + 60_000)
        assert_same(str(p), t, None)
        # Same size, other bytes: rebuilt, and the results follow the new content.
        data = p.read_bytes().replace(b'"cmd":"poll"', b'"cmd":"llop"')
        p.write_bytes(data)
        with open(p, "rb") as f:
            assert index.ensure(str(p), f)[1] == "built"
        full, seek, _, _ = both(str(p), t, t + 60_000)
        assert seek == full and any(r["cmd"] == "llop" for r in seek)


def test_gzip_appended_member_extends(tmp_path):
    p = tmp_path / "data.log.gz"
    recs = list(generate(records=1200, miners=20, seed=3))
    p.write_bytes(gzip.compress(b"".join(record.encode(r) for r in recs[:600])))
    with tiny_blocks(gz=0), open(p, "rb") as f:
        index.ensure(str(p), f)
    with open(p, "ab") as out:  # fluentd appends one member per chunk
        for k in range(600, 1200, 200):
            out.write(gzip.compress(b"".join(record.encode(r) for r in recs[k : k + 200])))
    with tiny_blocks(plain=1, gz=0):
        with open(p, "rb") as f:
            idx, how = index.ensure(str(p), f)
        assert how == "extended" and len(idx.blocks) == 4
        t = int(recs[900]["created_at_ms"])
        assert_same(str(p), t, t + 1)
        assert_same(str(p), t, None)


def test_unwritable_sidecar_goes_to_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MINECTL_INDEX_DIR", str(tmp_path / "cache"))
    p = tmp_path / "ev.log"
    write(str(p), generate(records=300, miners=10, seed=4), fmt="rs")
    os.mkdir(index.sidecar_path(str(p)))  # a directory where the sidecar would go
    with open(p, "rb") as f:
        index.ensure(str(p), f)
    assert os.path.exists(index.cache_path(str(p)))
    assert index.load(str(p)) is not None


def test_rotation_carries_the_sidecar_and_compaction_keeps_records(tmp_path):
    live = tmp_path / "events.log"
    day = 1_699_920_000.0  # 2023-11-14T00:00Z
    now = [day]
    w = EventWriter(str(live), clock=lambda: now[0], fsync=False)
    sent = []
    for d in range(4):
        for _ in range(400):
            r = record.make("time", "n", {"pad": "x" * 200}, at_ms=int(now[0] * 1000))
            sent.append(r)
            w.append(r)
            os.utime(live, (now[0], now[0]))  # rotation goes by the live file's mtime
            now[0] += 60
        if d == 0:
            with open(live, "rb") as f:
                index.ensure(str(live), f)
        now[0] = day + (d + 1) * 86_400
    w.close()
    segs = log_set(str(live))
    assert len(segs) == 4
    assert os.path.exists(index.sidecar_path(segs[0]))  # renamed along with its file
    # now is 2023-11-18T00:00Z: the segments of the 14th and 15th are at least 3 days old
    done = compact.compact(str(live), older_than_days=3, member_bytes=20_000, now=now[0])
    assert [Path(d["segment"]).name for d in done] == [Path(s).name for s in segs[:2]]
    assert all(d["members"] > 3 for d in done)
    segs2 = log_set(str(live))
    assert [s.endswith(".gz") for s in segs2] == [True, True, False, False]
    assert list(EventReader(segs2)) == sent
    t = int(sent[150]["created_at_ms"])
    with tiny_blocks(gz=0):
        full = list(EventReader(segs2, since_ms=t, until_ms=t + 3_600_000))
        st = ReadStats()
        seek = list(index.IndexedReader(segs2, since_ms=t, until_ms=t + 3_600_000, stats=st, min_bytes=0))
    assert seek == full and len(full) == 60 and st.blocks_skipped > 0
    assert compact.compact(str(live), older_than_days=3, now=now[0]) == []


def test_compaction_members_are_cut_at_line_ends(tmp_path):
    src = tmp_path / "s.log"
    src.write_bytes(b"".join(b"\x1e" + json.dumps({"i": i}).encode() + b"\n" for i in range(5000)))
    crc, members = compact.gzip_members(str(src), str(tmp_path / "s.gz"), member_bytes=1000)
    data = (tmp_path / "s.gz").read_bytes()
    assert zlib.crc32(gzip.decompress(data)) == crc and members > 40
    d = zlib.decompressobj(wbits=31)
    rest, texts = data, []
    while rest:
        d = zlib.decompressobj(wbits=31)
        texts.append(d.decompress(rest))
        rest = d.unused_data
    assert len(texts) == members and all(t.endswith(b"\n") for t in texts)


def test_cli_index_and_since_with_and_without_index(site):
    live = site / "events" / "events.log"
    write(str(live), generate(records=3000, miners=50, seed=5), fmt="rs")
    p = run_minectl("events", "index", "--json")
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert rows[0]["status"] == "built" and rows[0]["blocks"] >= 3
    assert rows[0]["lines"] == 2999 and rows[0]["unindexed_bytes"] > 0  # the last record is read as the tail
    args = ["events", "cat", "--since", "1530687900000", "--until", "1530688000000"]
    a, b = run_minectl(*args), run_minectl(*args, "--no-index")
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout and a.stdout.count(b"\x1e") > 50
    p = run_minectl("events", "index")
    assert p.returncode == 0 and b"fresh" in p.stdout
