"""Miner-supplied strings are hostile: properties of the cleaners, for any input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from minectl_py.state import sanitize as san

ALLOWED = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
hostile = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.sampled_from(["\x1b", "[", "]", "\x07", "\x9b", "\u202e", "\u200b", "/", ".", "\n", "\ud800", "\x00"]),
    ),
    max_size=600,
)


@settings(max_examples=200, deadline=None)
@given(hostile)
def test_label_is_always_a_safe_file_name(s):
    out = san.label(s)
    if out is not None:
        assert set(out) <= ALLOWED
        assert 1 <= len(out) <= 63
        assert out[0] not in ".-" and out not in (".", "..")
        assert san.label(out) == out  # idempotent


@settings(max_examples=200, deadline=None)
@given(hostile, st.integers(min_value=1, max_value=300))
def test_text_is_always_printable_one_line_and_bounded(s, limit):
    out = san.text(s, limit)
    if out is not None:
        assert len(out) <= limit
        assert out.isprintable()
        assert "\x1b" not in out and "\n" not in out and "\u202e" not in out
        assert out == out.strip()
        out.encode("utf-8")  # no lone surrogates


def test_formats():
    assert san.mac("AA-BB-CC-DD-EE-FF") == "aa:bb:cc:dd:ee:ff"
    assert san.mac("aa:bb:cc:dd:ee:fg") is None and san.mac("06-aa:bb:cc:dd:ee:ff") is None
    assert san.ipv4("10.77.0.1") == "10.77.0.1"
    for bad in ("10.77.0.256", "010.1.1.1", "1.2.3", "1.2.3.4.5", "١.2.3.4", "a.b.c.d"):
        assert san.ipv4(bad) is None, bad
    assert san.hexid("01:AA:bb") == "01:aa:bb" and san.hexid("01:zz") is None
