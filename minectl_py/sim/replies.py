"""Read-command replies of the cgminer-family API, in each firmware personality's own shapes.

Field names, STATUS codes and quirks follow docs/simulator.md (sources in the research notes):
cgminer's ``MHS`` keys, bmminer's ``GHS 5s`` (a string on S9), the S9 chain slots 6-8 and
fans 5-6, the S19's ``BTM_SOC0`` layout with ``"total rate"``, ``temp_pcbN`` strings and
``"Pool Stale%%"``, Whatsminer's MH/s figures and object-shaped STATUS, Braiins'
``BOSer`` version and ``fans``/``temps``.

Every builder returns a JSON-ready dict; ``None`` means the personality has no such command.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from minectl_py.sim.profiles import Reading, SimMiner, sample

Reply = dict[str, Any]


def status(m: SimMiner, now: float, code: int, msg: str, sev: str = "S") -> list[dict[str, Any]]:
    st: dict[str, Any] = {"STATUS": sev, "When": int(now), "Code": code, "Msg": msg}
    if code != 14:  # cgminer omits Description for invalid commands
        st["Description"] = m.profile.description
    return [st]


def error(m: SimMiner, now: float, code: int, msg: str) -> Reply:
    if m.key == "btminer":  # Whatsminer: STATUS is an object, not an array
        return {"STATUS": "E", "When": int(now), "Code": code, "Msg": msg, "Description": ""}
    return {"STATUS": status(m, now, code, msg, "E"), "id": 1}


def _ok(m: SimMiner, now: float, code: int, msg: str, section: str, items: list[dict[str, Any]]) -> Reply:
    return {"STATUS": status(m, now, code, msg), section: items, "id": 1}


def _soft_msg(m: SimMiner, what: str) -> str:
    names = {"BMMiner": "BMMiner", "BOSer": "BOSer", "BOSminer": "BOSminer"}
    lead = names.get(m.profile.software, "CGMiner")
    if m.key == "s19":
        lead = "CGMiner"
    return f"{lead} {what}"


# -- version ------------------------------------------------------------------------------
def version(m: SimMiner, now: float, r: Reading | None) -> Reply:
    p = m.profile
    if m.key == "cgminer":
        v = {"CGMiner": p.software_version, "API": p.api_version}
    elif m.key in ("s9", "s19"):
        v = {"BMMiner": p.software_version, "API": p.api_version, "Miner": p.miner_version}
        v |= {"CompileTime": p.compile_time, "Type": p.model}
    elif m.key == "btminer":
        v = {"CGMiner": "btminer", "API": p.api_version, "Miner": p.software_version, "Type": p.model}
    else:
        v = {"API": p.api_version, p.software: p.software_version}
    return _ok(m, now, 22, _soft_msg(m, "versions"), "VERSION", [v])


# -- summary ------------------------------------------------------------------------------
def summary(m: SimMiner, now: float, r: Reading) -> Reply:
    s: dict[str, Any] = {"Elapsed": r.uptime_s}
    if m.key in ("s9", "s19"):
        s["GHS 5s"] = f"{r.ghs_5s:.2f}"
        s["GHS av"] = round(r.ghs_av, 2)
    else:
        mhs5, mhsav = round(r.ghs_5s * 1000, 2), round(r.ghs_av * 1000, 2)
        s |= {"MHS av": mhsav, "MHS 5s": mhs5, "MHS 1m": mhs5, "MHS 5m": mhsav, "MHS 15m": mhsav}
    s |= {
        "Found Blocks": 0,
        "Getworks": r.uptime_s // 30,
        "Accepted": r.accepted,
        "Rejected": r.rejected,
        "Hardware Errors": r.hw_errors,
        "Utility": round(r.accepted * 60.0 / max(1, r.uptime_s), 2),
        "Discarded": r.uptime_s // 3,
        "Stale": 0,
        "Get Failures": 0,
        "Local Work": r.uptime_s * 17,
        "Remote Failures": 0,
        "Network Blocks": r.uptime_s // 600,
        "Total MH": round(r.ghs_av * 1000 * r.uptime_s, 4),
        "Work Utility": round(r.ghs_av * 14.0, 2),
        "Difficulty Accepted": float(r.accepted * 65536),
        "Difficulty Rejected": float(r.rejected * 65536),
        "Difficulty Stale": 0.0,
        "Best Share": 1000003 + r.uptime_s * 13,
        "Device Hardware%": round(100.0 * r.hw_errors / max(1, r.accepted * 65536), 4),
        "Device Rejected%": round(100.0 * r.rejected / max(1, r.accepted), 4),
        "Pool Rejected%": round(100.0 * r.rejected / max(1, r.accepted), 4),
        "Pool Stale%": 0.0,
        "Last getwork": int(now),
    }
    if m.key == "btminer":
        s |= {
            "Temperature": float(r.temp_max - 10),
            "freq_avg": r.freq + 111,
            "Fan Speed In": r.fans[0],
            "Fan Speed Out": r.fans[-1],
            "Voltage": 1170,
            "Power": int(r.ghs_5s * 0.038),
            "Power Rate": 38.0,
            "Uptime": r.uptime_s + 97,
            "Chip Data": "K46K241-1918 BIN2-B",
            "Power Fanspeed": 8160,
            "Error Code Count": 0,
            "Factory GHS": int(r.ideal_ghs),
            "Security Mode": 0,
            "MAC": m.mac.upper(),
        }
    return _ok(m, now, 11, "Summary", "SUMMARY", [s])


# -- pools --------------------------------------------------------------------------------
def pools(m: SimMiner, now: float, r: Reading) -> Reply:
    active = m.active_pool()
    items = []
    for i, p in enumerate(m.pools):
        st = "Disabled" if not p.enabled else ("Dead" if m.pool_dead(i) else "Alive")
        acc = r.accepted if i == active else 0
        host = p.url.split("://", 1)[-1]
        d: dict[str, Any] = {
            "POOL": i,
            "URL": p.url,
            "Status": st,
            "Priority": i,
            "Quota": 1,
            "Long Poll": "N",
            "Getworks": r.uptime_s // 30 if i == active else 0,
            "Accepted": acc,
            "Rejected": r.rejected if i == active else 0,
        }
        if m.key != "s19":
            d["Works"] = acc * 4
        d |= {"Discarded": r.uptime_s // 3 if i == active else 0, "Stale": 0, "Get Failures": 0}
        d |= {"Remote Failures": 0, "User": p.user}
        if m.key == "s19":
            d |= {"Last Share Time": "0", "Diff": "32.8K"}
        elif m.key == "s9":
            d |= {"Last Share Time": "0:00:08" if i == active else "0", "Diff": "8.19K"}
        else:
            d["Last Share Time"] = int(now) - 8 if i == active else 0
        d |= {
            "Diff1 Shares": acc * 65536,
            "Proxy Type": "",
            "Proxy": "",
            "Difficulty Accepted": float(acc * 65536),
            "Difficulty Rejected": 0.0,
            "Difficulty Stale": 0.0,
            "Last Share Difficulty": 65536.0 if i == active else 0.0,
        }
        if m.key != "s19":
            d["Work Difficulty"] = 65536.0 if i == active else 0.0
        d |= {
            "Has Stratum": True,
            "Stratum Active": i == active,
            "Stratum URL": host.split(":")[0] if i == active else "",
        }
        if m.key != "s19":
            d["Stratum Difficulty"] = 65536.0 if i == active else 0.0
        d |= {"Has GBT": False, "Best Share": float(1000003 + r.uptime_s * 13) if i == active else 0.0}
        d["Pool Rejected%"] = 0.0
        d["Pool Stale%%" if m.key == "s19" else "Pool Stale%"] = 0.0
        items.append(d)
    if not items:
        return error(m, now, 8, "No pools")
    return _ok(m, now, 7, f"{len(items)} Pool(s)", "POOLS", items)


# -- devs / devdetails --------------------------------------------------------------------
def devs(m: SimMiner, now: float, r: Reading) -> Reply:
    items = []
    for b in r.boards:
        mhs = round(b.rate_ghs * 1000, 2)
        d: dict[str, Any] = {"ASC": b.index, "Name": "BTM", "ID": b.index, "Enabled": "Y"}
        d["Status"] = "Alive" if b.ok else "Dead"
        d["Temperature"] = float(b.temp_chip)
        d |= {"MHS av": mhs, "MHS 5s": mhs, "MHS 1m": mhs, "MHS 5m": mhs, "MHS 15m": mhs}
        d |= {"Accepted": r.accepted // len(r.boards), "Rejected": 0, "Hardware Errors": b.hw}
        d |= {"Utility": 0.0, "Last Share Pool": 0, "Last Share Time": int(now) - 8}
        d |= {"Total MH": round(mhs * r.uptime_s, 4), "Diff1 Work": 0, "Difficulty Accepted": 0.0}
        d |= {"Difficulty Rejected": 0.0, "Last Share Difficulty": 65536.0, "Last Valid Work": int(now)}
        d |= {"Device Hardware%": 0.0, "Device Rejected%": 0.0, "Device Elapsed": r.uptime_s}
        if m.key == "btminer":
            d = {"ASC": b.index, "Slot": b.index, "Enabled": "Y", "Status": d["Status"]}
            d |= {"Temperature": float(b.temp_pcb), "Chip Frequency": r.freq + 111}
            d |= {"MHS av": mhs, "MHS 5s": mhs, "MHS 1m": mhs, "MHS 5m": mhs, "MHS 15m": mhs}
            d |= {"Effective Chips": b.chips, "PCB SN": f"{m.serial}B{b.index}"}
            d |= {"Chip Temp Min": float(b.temp_chip - 8), "Chip Temp Max": float(b.temp_chip)}
            d |= {"Chip Temp Avg": float(b.temp_chip - 4), "Upfreq Complete": 1}
        items.append(d)
    return _ok(m, now, 9, f"{len(items)} ASC(s)", "DEVS", items)


def devdetails(m: SimMiner, now: float, r: Reading | None) -> Reply:
    model = {"btminer": "M30S_V10", "bosminer": f"Bitmain {m.profile.model}"}.get(m.key, m.profile.model)
    driver = {"btminer": "bitmicro", "bosminer": "bosminer"}.get(m.key, "bitmain_soc")
    items = [
        {"DEVDETAILS": i, "Name": "BTM", "ID": i, "Driver": driver, "Kernel": "", "Model": model, "Device Path": ""}
        for i in range(m.profile.boards)
    ]
    return _ok(m, now, 69, "Device Details", "DEVDETAILS", items)


# -- stats --------------------------------------------------------------------------------
def _version_obj(m: SimMiner) -> dict[str, Any]:
    p = m.profile
    return {"BMMiner": p.software_version, "Miner": p.miner_version, "CompileTime": p.compile_time, "Type": p.model}


def stats(m: SimMiner, now: float, r: Reading) -> Reply:
    if m.key == "s9":
        return _ok(m, now, 70, "BMMiner stats", "STATS", [_version_obj(m), _stats_s9(m, r)])
    if m.key == "s19":
        return _ok(m, now, 70, "CGMiner stats", "STATS", [_version_obj(m), _stats_s19(m, r)])
    if m.key == "btminer":
        return error(m, now, 14, "invalid cmd")
    base = {"STATS": 0, "ID": "BTM0", "Elapsed": r.uptime_s, "Calls": 0, "Wait": 0.0, "Max": 0.0, "Min": 99999999.0}
    return _ok(m, now, 70, _soft_msg(m, "stats"), "STATS", [base])


def _stats_head(r: Reading, ident: str) -> dict[str, Any]:
    return {"STATS": 0, "ID": ident, "Elapsed": r.uptime_s, "Calls": 0, "Wait": 0.0, "Max": 0.0, "Min": 99999999.0}


def _stats_s9(m: SimMiner, r: Reading) -> dict[str, Any]:
    d = _stats_head(r, "BC50")
    d |= {"GHS 5s": f"{r.ghs_5s:.2f}", "GHS av": round(r.ghs_av, 2), "miner_count": len(r.boards)}
    d |= {"frequency": str(r.freq), "fan_num": len(r.fans)}
    for i in range(1, 9):
        d[f"fan{i}"] = r.fans[i - 5] if 5 <= i < 5 + len(r.fans) else 0
    slots = {6 + b.index: b for b in r.boards}
    d["temp_num"] = len(r.boards)
    for i in range(1, 17):
        d[f"temp{i}"] = slots[i].temp_pcb if i in slots else 0
    for i in range(1, 17):
        d[f"temp2_{i}"] = slots[i].temp_chip if i in slots else 0
    for i in range(1, 17):
        d[f"freq_avg{i}"] = float(r.freq) if i in slots else 0.0
    d |= {"total_rateideal": round(r.ideal_ghs, 2), "total_freqavg": float(r.freq)}
    d |= {"total_acn": sum(b.chips for b in r.boards), "total_rate": round(r.ghs_5s, 2)}
    for i in range(1, 17):
        d[f"chain_rateideal{i}"] = round(slots[i].ideal_ghs, 2) if i in slots else 0.0
    d |= {"temp_max": r.temp_max, "Device Hardware%": 0.0, "no_matching_work": r.hw_errors}
    for i in range(1, 17):
        d[f"chain_acn{i}"] = slots[i].chips if i in slots else 0
    for i in range(1, 17):
        d[f"chain_acs{i}"] = _acs(slots[i].chips) if i in slots else ""
    for i in range(1, 17):
        d[f"chain_hw{i}"] = slots[i].hw if i in slots else 0
    for i in range(1, 17):
        d[f"chain_rate{i}"] = f"{slots[i].rate_ghs:.2f}" if i in slots else ""
    d["miner_version"] = m.profile.miner_version
    return d


def _acs(chips: int) -> str:
    return "".join((" " if i % 8 == 0 else "") + "o" for i in range(chips))


def _stats_s19(m: SimMiner, r: Reading) -> dict[str, Any]:
    d = _stats_head(r, "BTM_SOC0")
    d |= {"GHS 5s": round(r.ghs_5s, 2), "GHS av": round(r.ghs_av, 2), "rate_30m": round(r.ghs_av, 2)}
    d |= {"Mode": 1 if m.sleeping else 2, "miner_count": sum(1 for b in r.boards if b.ok)}
    d |= {"frequency": r.freq, "fan_num": len(r.fans)}
    for i, f in enumerate(r.fans, 1):
        d[f"fan{i}"] = f
    d["temp_num"] = len(r.boards)
    for b in r.boards:
        d[f"temp{b.index + 1}"] = b.temp_pcb
        d[f"temp2_{b.index + 1}"] = b.temp_chip
    for kind, off in (("pcb", 0), ("chip", 1), ("pic", -1)):
        for i in range(1, 5):
            b = r.boards[i - 1] if i <= len(r.boards) else None
            if b is None or not b.ok:
                d[f"temp_{kind}{i}"] = "0-0-0-0"
            else:
                t = b.temp_chip if off == 1 else (b.temp_pcb - 10 if off == -1 else b.temp_pcb)
                d[f"temp_{kind}{i}"] = f"{t - 20}-{t - 12}-{t - 5}-{t}"
    d |= {"total_rateideal": round(r.ideal_ghs, 2), "rate_unit": "GH", "total_freqavg": r.freq}
    d |= {"total_acn": sum(b.chips for b in r.boards), "total rate": round(r.ghs_5s, 2), "temp_max": 0}
    d["no_matching_work"] = r.hw_errors
    for i in range(1, 5):
        b = r.boards[i - 1] if i <= len(r.boards) else None
        d[f"chain_acn{i}"] = b.chips if b else 0
        d[f"chain_acs{i}"] = _acs(b.chips) if b else ""
        d[f"chain_hw{i}"] = b.hw if b else 0
        d[f"chain_rate{i}"] = f"{b.rate_ghs:.2f}" if b else ""
        d[f"freq{i}"] = r.freq if b and b.ok else 0
    d |= {"miner_version": m.profile.miner_version, "miner_id": m.serial.lower()[:16]}
    return d


def stats_new_api(m: SimMiner, now: float, r: Reading) -> dict[str, Any]:
    """The 2022+ Antminer layout (`stats` with ``new_api``, and HTTP ``stats.cgi``)."""
    chains = []
    for b in r.boards:
        pcb = [b.temp_pcb - 20, b.temp_pcb - 12, b.temp_pcb - 5, b.temp_pcb] if b.ok else [0, 0, 0, 0]
        chip = [b.temp_chip - 20, b.temp_chip - 12, b.temp_chip - 5, b.temp_chip] if b.ok else [0, 0, 0, 0]
        pic = [t - 10 if t else 0 for t in pcb]
        chains.append(
            {
                "index": b.index,
                "freq_avg": r.freq if b.ok else 0,
                "rate_ideal": round(b.ideal_ghs, 2),
                "rate_real": round(b.rate_ghs, 2),
                "asic_num": b.chips,
                "temp_pic": pic,
                "temp_pcb": pcb,
                "temp_chip": chip,
                "hw": b.hw,
                "eeprom_loaded": True,
                "sn": f"{m.serial}B{b.index}",
            }
        )
    info = {"miner_version": m.profile.miner_version, "CompileTime": m.profile.compile_time, "type": m.profile.model}
    st = {
        "elapsed": r.uptime_s,
        "rate_5s": round(r.ghs_5s, 2),
        "rate_30m": round(r.ghs_av, 2),
        "rate_avg": round(r.ghs_av, 2),
        "rate_ideal": round(r.ideal_ghs, 2),
        "rate_unit": "GH/s",
        "chain_num": len(chains),
        "fan_num": len(r.fans),
        "fan": list(r.fans),
        "hwp_total": 0.0001,
        "miner-mode": 1 if m.sleeping else 0,
        "freq-level": 100,
        "chain": chains,
    }
    return {
        "STATUS": {"STATUS": "S", "when": int(now), "Msg": "stats", "api_version": "1.0.0"},
        "INFO": info,
        "STATS": [st],
    }


# -- small generic commands ---------------------------------------------------------------
def config(m: SimMiner, now: float, r: Reading | None) -> Reply:
    c = {"ASC Count": m.profile.boards, "PGA Count": 0, "Pool Count": len(m.pools), "Strategy": "Failover"}
    c |= {"Log Interval": 5, "Device Code": "ICA ", "OS": "Linux", "Hotplug": "None"}
    return _ok(m, now, 33, _soft_msg(m, "config").replace("CGMiner", "CGMiner"), "CONFIG", [c])


def coin(m: SimMiner, now: float, r: Reading | None) -> Reply:
    c = {"Hash Method": "sha256", "Current Block Time": round(now - 120, 6), "Current Block Hash": "0" * 19 + "a1b2c3"}
    c |= {"LP": False, "Network Difficulty": 62463471666732.0}
    return _ok(m, now, 78, _soft_msg(m, "coin"), "COIN", [c])


def asccount(m: SimMiner, now: float, r: Reading | None) -> Reply:
    return _ok(m, now, 104, "ASC count", "ASCS", [{"Count": m.profile.boards}])


def lcd(m: SimMiner, now: float, r: Reading) -> Reply:
    a = m.active_pool()
    pool = m.pools[a] if a is not None else None
    d = {"Elapsed": r.uptime_s, "GHS av": round(r.ghs_av, 2), "GHS 5m": round(r.ghs_av, 2)}
    d |= {"GHS 5s": round(r.ghs_5s, 2), "Temperature": float(r.temp_max), "Last Share Difficulty": 65536.0}
    d |= {"Last Share Time": int(now) - 8, "Best Share": 1000003, "Last Valid Work": int(now), "Found Blocks": 0}
    d |= {"Current Pool": pool.url if pool else "", "User": pool.user if pool else ""}
    return _ok(m, now, 125, "LCD", "LCD", [d])


# -- Braiins extras -----------------------------------------------------------------------
def fans(m: SimMiner, now: float, r: Reading) -> Reply:
    items = [{"FAN": i, "ID": i, "RPM": f, "Speed": min(100, f // 60)} for i, f in enumerate(r.fans)]
    return _ok(m, now, 202, f"{len(items)} Fan(s)", "FANS", items)


def temps(m: SimMiner, now: float, r: Reading) -> Reply:
    items = [{"TEMP": b.index, "ID": b.index, "Board": float(b.temp_pcb), "Chip": float(b.temp_chip)} for b in r.boards]
    return _ok(m, now, 201, f"{len(items)} Temp(s)", "TEMPS", items)


def tempctrl(m: SimMiner, now: float, r: Reading | None) -> Reply:
    t = {"Mode": "Automatic", "Target": 89.0, "Hot": 100.0, "Dangerous": 110.0}
    return _ok(m, now, 200, "Temperature control", "TEMPCTRL", [t])


# -- Whatsminer extras (STATUS is a string, Msg an object) --------------------------------
def _wm(now: float, code: int, msg: Any) -> Reply:
    return {"STATUS": "S", "When": int(now), "Code": code, "Msg": msg, "Description": ""}


def get_version(m: SimMiner, now: float, r: Reading | None) -> Reply:
    return _wm(now, 131, {"api_ver": m.profile.api_version, "fw_ver": m.profile.software_version, "platform": "H6OS"})


def get_miner_info(m: SimMiner, now: float, r: Reading | None) -> Reply:
    info = {"ip": m.ip, "proto": "dhcp", "netmask": "255.255.255.0", "gateway": "", "dns": ""}
    info |= {"mac": m.mac.upper(), "ledstat": "manual" if m.led_on(now) else "auto", "hostname": m.hostname}
    return _wm(now, 131, info)


def wm_status(m: SimMiner, now: float, r: Reading | None) -> Reply:
    fw = f"'{m.profile.software_version}'"
    return _wm(now, 131, {"btmineroff": "true" if m.sleeping else "false", "Firmware Version": fw})


def get_psu(m: SimMiner, now: float, r: Reading) -> Reply:
    psu = {"name": "P221B", "hw_version": "V01.00", "sw_version": "V01.00.V01.03", "model": "P221B"}
    psu |= {"iin": "1020", "vin": "22000", "fan_speed": "6784", "serial_no": f"{m.serial}P"}
    return _wm(now, 131, psu)


def get_error_code(m: SimMiner, now: float, r: Reading) -> Reply:
    codes = []
    if "fan_failed" in m.faults:
        codes.append({"110": "2026-01-01 00:00:00"})
    if "board_failed" in m.faults:
        codes.append({"202": "2026-01-01 00:00:00"})
    return _wm(now, 131, {"error_code": codes})


Builder = Callable[[SimMiner, float, Any], Reply]

#: command -> builder; per personality below. The ``bool`` says whether it needs a Reading.
COMMON: dict[str, tuple[Builder, bool]] = {
    "version": (version, False),
    "summary": (summary, True),
    "pools": (pools, True),
    "devs": (devs, True),
    "edevs": (devs, True),
    "devdetails": (devdetails, False),
    "stats": (stats, True),
    "estats": (stats, True),
    "config": (config, False),
    "coin": (coin, False),
    "asccount": (asccount, False),
    "lcd": (lcd, True),
}
EXTRA: dict[str, dict[str, tuple[Builder, bool]]] = {
    "bosminer": {"fans": (fans, True), "temps": (temps, True), "tempctrl": (tempctrl, False)},
    "btminer": {
        "get_version": (get_version, False),
        "get_miner_info": (get_miner_info, False),
        "status": (wm_status, False),
        "get_psu": (get_psu, True),
        "get_error_code": (get_error_code, True),
    },
}
#: read commands that may be joined with `+` (cgminer's "joinable")
JOINABLE = frozenset({"version", "summary", "pools", "devs", "edevs", "devdetails", "stats", "estats", "config"})
JOINABLE_EXTRA = frozenset({"coin", "asccount", "lcd", "fans", "temps", "tempctrl"})


def read_command(m: SimMiner, cmd: str, now: float) -> Reply | None:
    """The reply to a read command, or None when this personality has no such command."""
    entry = EXTRA.get(m.key, {}).get(cmd) or COMMON.get(cmd)
    if entry is None:
        return None
    fn, needs = entry
    return fn(m, now, sample(m, now) if needs else None)
