"""Hostile miner strings on the admin's terminal: every view (status, show, map, summary) in a
pseudo-terminal, with terminal escapes, control characters and bidi overrides written straight
into the state directory (as if a writer had not cleaned them: minectl must not trust it)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests import admin_site
from tests.admin_pty import run_in_pty

#: OSC title change + bell, clear screen, a red SGR, a C1 CSI, a right-to-left override, a NUL-free DEL
EVIL_HOST = "evil\x1b]0;pwned\x07\x1b[2J\u202eoh"
EVIL_POOL = "stratum+tcp://pool.example:3333\x1b[31m\x9b2J\x7f"
EVIL_FW = "bmminer\x1b[8m hidden\u2066"
EVIL_ERR = "timeout: \x1b]52;c;cHduZWQ=\x07clipboard"
OUR_SGR = re.compile(r"\x1b\[[0-9;]*m|\x1b\[K")


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[dict[str, str], list[str]]:
    state = tmp_path / "state"
    site = admin_site.generate(24, ip_base="127.74", ip_start=250 * 202)
    admin_site.apply(str(state), site)
    evil = []
    for i, m in enumerate(site.miners[:3]):
        p = state / "miners" / m.mac / "miner.json"
        doc = json.loads(p.read_text())
        doc.pop("name", None)  # shown by its (hostile) hostname
        doc.update(hostname=f"{EVIL_HOST}{i}", pool=EVIL_POOL, firmware=EVIL_FW, pool_user=EVIL_HOST)
        if i == 1:
            doc.update(state="failing", last_error=EVIL_ERR, hashrate=1.0, hashrate_pct=1.0)
        p.write_text(json.dumps(doc))
        evil.append(m.ip)
    (tmp_path / "events").mkdir()
    env = {
        "MINECTL_STATE_DIR": str(state),
        "MINECTL_EVENTS": str(tmp_path / "events" / "events.log"),
        "MINECTL_CONFIG_DIR": str(tmp_path),
        "MINECTL_NODENAME": "test-controller",
    }
    return env, evil


def assert_terminal_safe(screen: str) -> str:
    """Nothing but our own colour codes reaches the terminal; the hostile text is visible, escaped."""
    rest = OUR_SGR.sub("", screen)
    for bad in ("\x1b", "\x07", "\x9b", "\x7f", "\u202e", "\u2066"):
        assert bad not in rest, (bad, rest[:2000])
    return rest


@pytest.mark.parametrize(
    "args",
    [
        ["status", "--columns", "name,ip,firmware,pool,state"],
        ["status", "--sort", "hashrate"],
        ["summary"],
        ["map"],
        ["map", "--by", "temp"],
    ],
)
def test_views_never_pass_miner_escapes_to_the_terminal(hostile, args):
    env, _ = hostile
    code, screen = run_in_pty(args, env, cols=200)
    assert code == 0, screen
    rest = assert_terminal_safe(screen)
    if args[0] == "status":
        assert "evil\\x1b]0;pwned\\x07" in rest  # shown, escaped, not obeyed (cut to the column)
        assert "bmminer\\x1b[8m hi" in rest
    if args[0] == "summary":
        assert "evil\\x1b" in rest  # the failing hostile miner is named among those not answering


def test_show_of_a_hostile_miner_is_escaped(hostile):
    env, evil = hostile
    code, screen = run_in_pty(["show", evil[1]], env, cols=200)
    assert code == 0, screen
    rest = assert_terminal_safe(screen)
    assert "evil\\x1b]0;pwned" in rest and "\\x1b]52;c;cHduZWQ=\\x07clipboard" in rest and "\\u2066" in rest
    assert "pool.example:3333\\x1b[31m\\x9b2J\\x7f" in rest


def test_actions_table_and_prompt_escape_hostile_names(hostile):
    """The confirmation question and the dry-run table name miners too."""
    env, evil = hostile
    code, screen = run_in_pty(["reboot", *evil, "--dry-run"], env, cols=200)
    assert code == 0, screen
    rest = assert_terminal_safe(screen)
    assert "evil\\x1b]0;pwned" in rest
