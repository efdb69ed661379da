"""Which transport does what, per firmware family (pure): the fallback chains.

A miner's family comes from the state directory (make, model, firmware). Each action maps to
an ordered list of :class:`Step`; the engine tries them in order and moves to the next one
when a step cannot work on this miner (``denied``: the firmware refuses the privileged API
command; ``unreachable``: that port is closed; ``auth``: wrong credentials for that transport;
``unsupported``; ``nocred``: no credentials configured for that transport).

============ ===================================== ==========================================
action       antminer (stock Bitmain)              others
============ ===================================== ==========================================
reboot       HTTP reboot.cgi, then SSH reboot      SSH reboot (whatsminer: token API reboot,
                                                   then SSH)
restart      API restart, then HTTP re-apply        API restart, then SSH service restart
             config (restarts bmminer), then SSH   (whatsminer: token API restart_btminer)
locate       HTTP blink.cgi                        bosminer: SSH ``miner fault_light``;
                                                   cgminer: API ascidentify;
                                                   whatsminer: token API set_led
pools show   API pools                             API pools
pools set    API addpool/switchpool/removepool,    API (whatsminer: token API update_pools;
             then HTTP set_miner_conf              minectl takes at most 3 pools)
pools switch API switchpool, then HTTP reorder      API switchpool (whatsminer: not possible)
exec         SSH                                   SSH
============ ===================================== ==========================================

Whatsminer (btminer) takes write commands only over its token API: ``get_token``, then the
command signed and AES-encrypted with a key made from the admin password (credentials file:
``families: whatsminer: api: {password: ...}``; ``minectl_py.miner.whatsminer``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ACTIONS = ("reboot", "restart", "locate_on", "locate_off", "pools_show", "pools_set", "pools_switch", "exec")
#: Actions that change nothing on the miner: retried freely, no confirmation.
READ_ONLY = frozenset({"pools_show"})

RESTART_CMDS = {
    "antminer": "/etc/init.d/bmminer.sh restart",
    "bosminer": "/etc/init.d/bosminer restart",
    "cgminer": "/etc/init.d/cgminer.sh restart",
}


@dataclass(frozen=True, slots=True)
class Step:
    transport: str  # api | http | ssh
    op: str
    args: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        """``http reboot``, ``api restart_btminer`` (a Whatsminer token-API command by its name)."""
        return f"{self.transport} {self.args['cmd'] if self.op == 'wm' else self.op}"


def family(m: Mapping[str, Any]) -> str:
    """antminer | bosminer | whatsminer | cgminer, from make / model / firmware."""
    make = (m.get("make") or "").lower()
    model = (m.get("model") or m.get("model_expected") or "").lower()
    fw = (m.get("firmware") or "").lower()
    if "braiins" in make or "bos" in fw.split(" ")[0] or fw.startswith("boser"):
        return "bosminer"
    if "microbt" in make or "whatsminer" in model or fw.startswith("btminer"):
        return "whatsminer"
    if "bitmain" in make or model.startswith("antminer") or fw.startswith("bmminer"):
        return "antminer"
    return "cgminer"


#: why an action has no transport on a family (the result's detail)
NOT_POSSIBLE = {
    ("pools_switch", "whatsminer"): "Whatsminer firmware has no pool switch command: "
    "use 'pools set' with the pools in the order wanted",
    ("locate_off", "cgminer"): "cgminer's ascidentify cannot be turned off: the LED stops by itself",
}
#: led pattern for locate on a Whatsminer: red, lit 500 ms of every second, until set back to auto
WM_LED_ON = {"color": "red", "period": 1000, "duration": 500, "start": 0}


def wm(cmd: str, **params: Any) -> Step:
    """A Whatsminer token-API (encrypted, privileged) command."""
    return Step("api", "wm", {"cmd": cmd, "params": params})


def wm_pools(pools: list[Mapping[str, Any]]) -> dict[str, str]:
    """``update_pools`` parameters: ``pool1, worker1, passwd1`` ... for up to 3 pools."""
    out = {}
    for i, p in enumerate(pools[:3], 1):
        out.update({f"pool{i}": p["url"], f"worker{i}": p["user"], f"passwd{i}": p.get("password") or "x"})
    return out


def steps(action: str, fam: str, params: Mapping[str, Any]) -> list[Step]:
    if fam == "whatsminer" and action in WM_ACTIONS:
        return WM_ACTIONS[action](params)
    if action == "reboot":
        if fam == "antminer":
            return [Step("http", "reboot"), Step("ssh", "run", {"cmd": "reboot"})]
        return [Step("ssh", "run", {"cmd": "reboot"})]
    if action == "restart":
        chain = [Step("api", "command", {"command": "restart"})]
        if fam == "antminer":
            chain.append(Step("http", "reapply_conf"))
        if fam in RESTART_CMDS:
            chain.append(Step("ssh", "run", {"cmd": RESTART_CMDS[fam]}))
        return chain
    if action in ("locate_on", "locate_off"):
        on = action == "locate_on"
        if fam == "antminer":
            return [Step("http", "blink", {"on": on})]
        if fam == "bosminer":
            return [Step("ssh", "run", {"cmd": f"miner fault_light {'on' if on else 'off'}"})]
        return [Step("api", "command", {"command": "ascidentify", "parameter": "0"})] if on else []
    if action == "pools_show":
        return [Step("api", "pools")]
    if action == "pools_set":
        chain = [Step("api", "pools_set", dict(params))]
        if fam == "antminer":
            chain.append(Step("http", "pools_set", dict(params)))
        return chain
    if action == "pools_switch":
        chain = [Step("api", "command", {"command": "switchpool", "parameter": str(params["index"])})]
        if fam == "antminer":
            chain.append(Step("http", "pools_switch", dict(params)))
        return chain
    if action == "exec":
        return [Step("ssh", "run", {"cmd": params["cmd"], "capture": True})]
    raise ValueError(f"unknown action {action!r}")


WM_ACTIONS = {
    "reboot": lambda p: [wm("reboot"), Step("ssh", "run", {"cmd": "reboot"})],
    "restart": lambda p: [wm("restart_btminer")],
    "locate_on": lambda p: [wm("set_led", **WM_LED_ON)],
    "locate_off": lambda p: [wm("set_led", param="auto")],
    "pools_set": lambda p: [wm("update_pools", **wm_pools(p["pools"]))],
    "pools_switch": lambda p: [],
}
