"""The site event generator: deterministic, ordered, valid records in the documented shape."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from minectl_py.events import model
from minectl_py.events.generate import generate, write, write_daily
from minectl_py.events.reader import EventReader, ReadStats

ROOT = Path(__file__).resolve().parents[2]


def _doc_fields() -> set[str]:
    """The field names of the table in docs/miners.md (first column, in backticks)."""
    text = (ROOT / "docs" / "miners.md").read_text()
    return set(re.findall(r"^\| `([a-z_0-9]+)` \|", text, re.M))


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    digests = []
    for seed in (7, 7, 8):
        p = tmp_path / f"g{len(digests)}.log.gz"
        write(str(p), generate(records=3000, miners=50, seed=seed))
        digests.append(hashlib.sha256(p.read_bytes()).hexdigest())
    assert digests[0] == digests[1] != digests[2]


def test_records_are_time_ordered_valid_and_typed():
    counts: Counter[str] = Counter()
    last = 0
    for rec in generate(records=30_000, miners=200, seed=1, fault_rate=0.02):
        t = int(rec["created_at_ms"])
        assert t >= last
        last = t
        ev = model.parse(rec)  # raises naming the field if anything is off
        assert not isinstance(ev, model.Unknown)
        counts[rec["cmd"]] += 1
    assert counts["poll"] > 20_000
    for cmd in ("time", "lease", "poll_fail", "action", "alert"):
        assert counts[cmd] > 0, (cmd, counts)


def test_miner_dict_follows_docs_miners_md_and_values_are_plausible():
    documented = _doc_fields()
    assert {"make", "model", "boards", "pools", "temp_max"} <= documented
    nominal = {"Antminer S9": (13.0, 14.5), "Antminer S19": (90.0, 100.0), "Whatsminer M30S": (80.0, 90.0)}
    seen_models = set()
    for rec in generate(records=5000, miners=300, seed=2, fault_rate=0):
        if rec["cmd"] != "poll":
            continue
        m = rec["miner"]
        assert set(m) == documented, set(m) ^ documented
        seen_models.add(m["model"])
        lo, hi = nominal[m["model"]]
        assert lo <= m["hashrate_ths"] <= hi * 1.03, m
        assert 55 <= m["temp_max"] <= 85
        assert all(b["status"] == "ok" and b["chips"] == b["chips_expected"] for b in m["boards"])
        assert sum(p["active"] for p in m["pools"]) == 1
        assert m["mac"] == rec["mac"] and re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", m["mac"])
    assert {"Antminer S9", "Antminer S19", "Whatsminer M30S"} <= seen_models


def test_faults_show_in_the_data():
    failed_boards = hot = dead_fans = 0
    for rec in generate(records=40_000, miners=100, seed=3, fault_rate=0.05):
        if rec["cmd"] == "poll":
            m = rec["miner"]
            failed_boards += any(b["status"] == "failed" for b in m["boards"])
            hot += m["temp_max"] > 85
            dead_fans += 0 in m["fans"]
    assert failed_boards and hot and dead_fans


def test_gzip_members_seed_line_form_and_zcat(tmp_path):
    p = tmp_path / "site.log.gz"
    st = write(str(p), generate(records=4000, miners=100, seed=4), member_bytes=200_000)
    assert st["records"] == 4000 and st["members"] > 5
    data = subprocess.run(["zcat", str(p)], capture_output=True, check=True).stdout
    lines = data.splitlines()
    assert len(lines) == 4000
    stamp, tag, body = lines[0].split(b"\t")
    assert re.fullmatch(rb"\d{8}T\d{6}-0700", stamp) and tag == b"mainstream"
    assert json.loads(body)["created_at_ms"] == str(st["first_ms"])
    stats = ReadStats()
    assert sum(1 for _ in EventReader([str(p)], stats=stats)) == 4000 and stats.bad == 0


@pytest.mark.parametrize("fmt,first", [("rs", b"\x1e{"), ("lines", b"{")])
def test_other_line_forms(tmp_path, fmt, first):
    p = tmp_path / "ev.log"
    write(str(p), generate(records=50, miners=5, seed=5), fmt=fmt)
    lines = p.read_bytes().splitlines()
    assert len(lines) == 50 and all(ln.startswith(first) for ln in lines)


def test_bad_every_gives_counted_bad_lines_and_keeps_every_good_one(tmp_path):
    p = tmp_path / "bad.log.gz"
    st = write(str(p), generate(records=900, miners=20, seed=6), bad_every=100)
    assert st["bad"] == 9
    stats = ReadStats()
    assert sum(1 for _ in EventReader([str(p)], stats=stats)) == 900
    assert stats.bad == 9 and len(stats.reasons) >= 2


def test_daily_files_split_on_local_midnight(tmp_path):
    st = write_daily(str(tmp_path / "agg"), generate(duration_s=2 * 86400 + 600, miners=3, seed=7))
    names = [Path(f).name for f in st["files"]]
    assert names == ["data.20180704.log.gz", "data.20180705.log.gz", "data.20180706.log.gz"]
    total = 0
    for f in st["files"]:
        day = Path(f).name[5:13]
        for line in gzip.decompress(Path(f).read_bytes()).splitlines():
            assert line[:8].decode() == day
            total += 1
    assert total == st["records"]


def test_cli(tmp_path):
    import sys

    out = tmp_path / "x.log.gz"
    p = subprocess.run(
        [sys.executable, "-m", "minectl_py.events.generate", "--records", "100", "--miners", "10", "-o", str(out)],
        capture_output=True,
        cwd=ROOT,
    )
    assert p.returncode == 0, p.stderr
    assert len(gzip.decompress(out.read_bytes()).splitlines()) == 100
    p = subprocess.run([sys.executable, "-m", "minectl_py.events.generate"], capture_output=True, cwd=ROOT)
    assert p.returncode == 2 and b"--records" in p.stderr
