"""Action results: the documented list is the code's, and the pure classification of what a
miner answered (Whatsminer token API, HTTP replies cut short) into those results."""

from __future__ import annotations

import http.client
import re
from pathlib import Path

import pytest

from minectl_py.admin import plan
from minectl_py.admin.outcome import RESULTS
from minectl_py.admin.transports import _http_error, classify_wm
from minectl_py.miner.api import Reply, classify

ROOT = Path(__file__).resolve().parents[2]


def _doc_results(text: str) -> list[str]:
    return re.findall(r"`([a-z_]+)`", text)


def test_events_doc_lists_exactly_the_results_the_code_gives():
    doc = (ROOT / "docs" / "events.md").read_text()
    action = doc[doc.index("\n## action\n") :]
    row = next(ln for ln in action.splitlines() if ln.startswith("| `result` |"))
    assert _doc_results(row.split("|")[3]) == list(RESULTS)


def test_runbook_lists_every_result_the_code_gives():
    doc = (ROOT / "docs" / "runbook.md").read_text()
    para = doc[doc.index("`RESULT` is one of") :].split("\n* ")[0]
    assert [w for w in _doc_results(para) if w in RESULTS] == list(RESULTS)


def test_action_help_explains_every_result():
    from minectl_py.admin.actions_cli import COMMON_EPILOG

    text = COMMON_EPILOG[COMMON_EPILOG.index("Results per miner") :].split("\n\n")[0]
    assert [w for w in re.findall(r"[a-z]+", text) if w in RESULTS and w != "ok"] == list(RESULTS[1:])


def wm_reply(raw: bytes) -> Reply:
    return classify(raw)


@pytest.mark.parametrize(
    ("raw", "sent", "result", "needle"),
    [
        (b'{"STATUS":"S","When":1,"Code":131,"Msg":"API command OK","Description":""}\0', True, "ok", "reboot"),
        (b'{"STATUS":"E","When":1,"Code":45,"Msg":"can\'t access write cmd"}\0', True, "denied", "WhatsMinerTool"),
        (b'{"STATUS":"E","When":1,"Code":23,"Msg":"json error"}\0', True, "auth", "password"),
        (b'{"STATUS":"E","When":1,"Code":135,"Msg":"check token err"}\0', True, "auth", "password"),
        (b'{"STATUS":"E","When":1,"Code":136,"Msg":"token over max times"}\0', True, "fail", "max times"),
        (b'{"STATUS":"E","When":1,"Code":14,"Msg":"invalid cmd"}\0', False, "unsupported", "no token API"),
        (b"", False, "unreachable", "nothing was sent"),  # get_token closed without a word
        (b"", True, "lost", "went away"),  # the signed command was sent, then silence
    ],
)
def test_whatsminer_answers(raw, sent, result, needle):
    out = classify_wm("reboot", wm_reply(raw), sent)
    assert out.result == result and needle in out.detail and out.transport == "api"


@pytest.mark.parametrize(
    ("reason", "sent", "result"),
    [("refused", False, "unreachable"), ("timeout", False, "unreachable"), ("timeout", True, "timeout")],
)
def test_whatsminer_network_failures(reason, sent, result):
    assert classify_wm("restart_btminer", Reply(False, reason=reason, detail="x"), sent).result == result


def test_http_reply_cut_short_or_garbled_is_lost():
    assert _http_error(http.client.IncompleteRead(b'{"st', 55)).result == "lost"
    assert _http_error(http.client.RemoteDisconnected("closed")).result == "lost"
    assert _http_error(http.client.BadStatusLine("garbage")).result == "lost"
    assert _http_error(TimeoutError()).result == "timeout"


def test_whatsminer_chains_use_the_token_api():
    assert [s.label() for s in plan.steps("reboot", "whatsminer", {})] == ["api reboot", "ssh run"]
    assert [s.label() for s in plan.steps("restart", "whatsminer", {})] == ["api restart_btminer"]
    (led,) = plan.steps("locate_off", "whatsminer", {})
    assert led.args == {"cmd": "set_led", "params": {"param": "auto"}}
    pools = [{"url": f"stratum+tcp://p{i}:3333", "user": f"u{i}", "password": None} for i in range(2)]
    (up,) = plan.steps("pools_set", "whatsminer", {"pools": pools})
    assert up.args["params"] == {
        "pool1": "stratum+tcp://p0:3333",
        "worker1": "u0",
        "passwd1": "x",
        "pool2": "stratum+tcp://p1:3333",
        "worker2": "u1",
        "passwd2": "x",
    }
    assert plan.steps("pools_switch", "whatsminer", {"index": 1}) == []
    assert "pools set" in plan.NOT_POSSIBLE[("pools_switch", "whatsminer")]
