"""Which transport does what, per firmware family (pure): the fallback chains.

A miner's family comes from the state directory (make, model, firmware). Each action maps to
an ordered list of :class:`Step`; the engine tries them in order and moves to the next one
when a step cannot work on this miner (``denied``: the firmware refuses the privileged API
command; ``unreachable``: that port is closed; ``auth``: wrong credentials for that transport;
``unsupported``; ``nocred``: no credentials configured for that transport).

============ ===================================== ==========================================
action       antminer (stock Bitmain)              others
============ ===================================== ==========================================
reboot       HTTP reboot.cgi, then SSH reboot      SSH reboot (whatsminer: API reboot)
restart      API restart, then HTTP re-apply        API restart, then SSH service restart
             config (restarts bmminer), then SSH
locate       HTTP blink.cgi                        bosminer: SSH ``miner fault_light``;
                                                   cgminer: API ascidentify
pools show   API pools                             API pools
pools set    API addpool/switchpool/removepool,    API (as left)
             then HTTP set_miner_conf
pools switch API switchpool, then HTTP reorder      API switchpool
exec         SSH                                   SSH
============ ===================================== ==========================================
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
    "cgminer": "/etc/init.d/cgminer restart",
}


@dataclass(frozen=True, slots=True)
class Step:
    transport: str  # api | http | ssh
    op: str
    args: dict[str, Any] = field(default_factory=dict)


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


def steps(action: str, fam: str, params: Mapping[str, Any]) -> list[Step]:
    if action == "reboot":
        if fam == "antminer":
            return [Step("http", "reboot"), Step("ssh", "run", {"cmd": "reboot"})]
        if fam == "whatsminer":
            return [Step("api", "command", {"command": "reboot"}), Step("ssh", "run", {"cmd": "reboot"})]
        return [Step("ssh", "run", {"cmd": "reboot"})]
    if action == "restart":
        chain = [Step("api", "command", {"command": "restart_btminer" if fam == "whatsminer" else "restart"})]
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
        if fam == "whatsminer":
            return [Step("api", "command", {"command": "set_led", "parameter": "auto" if not on else "red,1,1000,0"})]
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
