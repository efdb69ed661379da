"""Every firmware's replies -> the normalized :class:`MinerData` (docs/miners.md).

Input is a dict of command -> reply object (``{"version": {...}, "stats": {...}, ...}``) as
the poller collected it. Pure functions; miner-supplied strings are sanitized; a missing or
malformed value becomes ``None`` (never a guessed 0). ``NormalizeError`` means the replies
do not even say what the miner is doing (no hashrate anywhere).
"""

from __future__ import annotations

import re
from typing import Any

from minectl_py.miner.model import KNOWN_MODELS, BoardData, MinerData, PoolData

FAMILIES = ("antminer", "btminer", "bosminer", "cgminer")
_CTRL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class NormalizeError(ValueError):
    pass


def clean(v: Any, limit: int = 200) -> str:
    """A miner-supplied value as safe text: no control or bidi characters, bounded length."""
    s = v if isinstance(v, str) else ("" if v is None else str(v))
    return _CTRL.sub("", s).strip()[:limit]


def num(v: Any) -> float | None:
    """A number from a number or a numeric string (``"11781.40"``); else None."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v) if v == v and abs(v) != float("inf") else None
    if isinstance(v, str):
        try:
            f = float(v.strip())
        except ValueError:
            return None
        return f if f == f and abs(f) != float("inf") else None
    return None


def integer(v: Any) -> int | None:
    f = num(v)
    return int(f) if f is not None else None


def mac(v: Any) -> str | None:
    s = clean(v, 40).lower().replace("-", ":")
    return s if _MAC.match(s) else None


def _items(reply: Any, key: str) -> list[dict[str, Any]]:
    if not isinstance(reply, dict):
        return []
    v = reply.get(key)
    if isinstance(v, dict):
        return [v]
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


def _first(reply: Any, key: str) -> dict[str, Any]:
    it = _items(reply, key)
    return it[0] if it else {}


def _ths(v: Any, per_th: float) -> float | None:
    f = num(v)
    return round(f / per_th, 4) if f is not None else None


def detect(replies: dict[str, Any]) -> str:
    """Which family the replies come from: antminer, btminer, bosminer or cgminer."""
    ver = _first(replies.get("version"), "VERSION")
    desc = ""
    for r in replies.values():
        if isinstance(r, dict):
            st = r.get("STATUS")
            st = st[0] if isinstance(st, list) and st else st
            if isinstance(st, dict):
                desc = str(st.get("Description", ""))
                break
    keys = " ".join(ver).upper()
    if "BOSMINER" in keys or "BOSER" in keys or desc.upper().startswith("BOS"):
        return "bosminer"
    if "btminer" in (str(ver.get("CGMiner", "")) + desc).lower():
        return "btminer"
    stats = _items(replies.get("stats"), "STATS")
    if "BMMiner" in ver or "Antminer" in str(ver.get("Type", "")) or any("Type" in s for s in stats):
        return "antminer"
    return "cgminer"


def _pools(replies: dict[str, Any]) -> list[PoolData]:
    out: list[PoolData] = []
    items = _items(replies.get("pools"), "POOLS")
    has_active = any("Stratum Active" in p for p in items)
    for i, p in enumerate(items):
        st = clean(p.get("Status"), 20).lower()
        status = st if st in ("alive", "dead", "disabled") else "dead"
        idx = integer(p.get("POOL"))
        out.append(
            PoolData(
                index=idx if idx is not None else i,
                url=clean(p.get("URL"), 300),
                user=clean(p.get("User"), 200),
                status=status,
                active=bool(p.get("Stratum Active")) if has_active else False,
                priority=integer(p.get("Priority")),
                accepted=integer(p.get("Accepted")),
                rejected=integer(p.get("Rejected")),
            )
        )
    if out and not has_active:  # cgminer without stratum info: best-priority alive pool
        alive = [p for p in out if p.status == "alive"]
        if alive:
            min(alive, key=lambda p: (p.priority if p.priority is not None else 99, p.index)).active = True
    return out


def _max_temp(s: Any) -> float | None:
    """``"55-66-78-91"`` (S19 sensor strings) or a number -> the hottest, 0 meaning absent."""
    if isinstance(s, str) and "-" in s.strip("-"):
        vals = [num(x) for x in s.split("-")]
        good = [v for v in vals if v]
        return max(good) if good else None
    f = num(s)
    return f if f else None


def _finish(d: MinerData) -> MinerData:
    temps = [t for b in d.boards for t in (b.temp_board, b.temp_chip) if t is not None]
    if temps:
        d.temp_max = max(max(temps), d.temp_max or 0.0)
    known = KNOWN_MODELS.get(d.model)
    if known:
        if d.nominal_ths is None:
            d.nominal_ths = known[0]
        for b in d.boards:
            if b.chips_expected is None:
                b.chips_expected = known[2]
    return d


def _antminer(r: dict[str, Any]) -> MinerData:
    stats = _items(r.get("stats"), "STATS")
    ver = _first(r.get("version"), "VERSION") or next((s for s in stats if "Type" in s), {})
    st = next((s for s in stats if "ID" in s or ("STATS" in s and "Type" not in s)), {})
    summ = _first(r.get("summary"), "SUMMARY")
    model = clean(ver.get("Type"), 80) or "Antminer"
    model, _, variant = model.partition(" (")  # "Antminer S9 (vnish 3.8.6)"
    if model.upper().endswith(" HIVEON"):
        model, variant = model[:-7], "Hiveon"
    soft = "bmminer" if "BMMiner" in ver else "cgminer"
    fw = f"{soft} {clean(ver.get('BMMiner') or ver.get('CGMiner'), 40)}".strip()
    if variant:
        fw += f" {variant.rstrip(')')}"
    if ver.get("Miner"):
        fw += f" ({clean(ver.get('Miner'), 40)})"
    unit = {"TH": 1.0, "GH": 1000.0, "MH": 1e6}.get(clean(st.get("rate_unit"), 4).upper()[:2], 1000.0)
    d = MinerData(make="Bitmain", model=model, firmware=fw)
    d.hashrate_ths = _ths(st.get("GHS 5s", summ.get("GHS 5s")), 1000.0)
    d.hashrate_avg_ths = _ths(st.get("GHS av", summ.get("GHS av")), 1000.0)
    d.nominal_ths = _ths(st.get("total_rateideal"), unit)
    d.uptime_s = integer(st.get("Elapsed", summ.get("Elapsed")))
    hw = summ.get("Hardware Errors", st.get("no_matching_work"))
    d.hw_errors = integer(hw)
    known = KNOWN_MODELS.get(model)
    for n in range(1, 17):
        rate = st.get(f"chain_rate{n}")
        raw_acn = st.get(f"chain_acn{n}")
        if (rate is None or rate == "") and not raw_acn:  # an empty slot (S9 reports all 16)
            continue
        acn = integer(raw_acn)
        if (rate is None or rate == "") and not acn:
            continue
        acs = clean(st.get(f"chain_acs{n}"), 400)
        pcb = _max_temp(st.get(f"temp_pcb{n}")) or _max_temp(st.get(f"temp{n}"))
        chip = _max_temp(st.get(f"temp_chip{n}")) or _max_temp(st.get(f"temp2_{n}"))
        chips = acn if acn is not None else None
        expected = known[2] if known else None
        failed = not chips or (num(rate) or 0.0) <= 0.0
        d.boards.append(
            BoardData(
                index=len(d.boards),
                hashrate_ths=_ths(rate, 1000.0) if rate not in (None, "") else 0.0,
                temp_board=pcb,
                temp_chip=chip,
                chips=chips,
                chips_expected=expected,
                status="failed" if failed else "ok",
            )
        )
        bad = acs.count("x")
        if bad:
            d.errors.append(f"board {len(d.boards) - 1}: {bad} chips marked x")
    if expected_missing := [b.chips for b in d.boards if b.chips_expected is None]:
        exp = max(c or 0 for c in expected_missing) or None
        for b in d.boards:
            b.chips_expected = b.chips_expected or exp
    fan_num = integer(st.get("fan_num")) or 0
    fans = [integer(st.get(f"fan{i}")) or 0 for i in range(1, 9)]
    if fan_num:
        starts = [s for s in (1, 3, 5) if s - 1 + fan_num <= 8]
        start = max(starts, key=lambda s: (sum(1 for f in fans[s - 1 : s - 1 + fan_num] if f), -s)) if starts else 1
        d.fans = fans[start - 1 : start - 1 + fan_num]
    else:
        d.fans = [f for f in fans if f]
    tmax = num(st.get("temp_max"))
    d.temp_max = tmax if tmax else None
    d.pools = _pools(r)
    return _finish(d)


#: a device status that makes a board failed (cgminer's own words; the others say only Dead)
_CGMINER_DEAD = ("Dead", "Sick", "NoStart")


def _mhs_board(
    i: int,
    dev: dict[str, Any],
    *,
    temp_board: float | None = None,
    temp_chip: float | None = None,
    chips: int | None = None,
    failed: bool = False,
    dead: tuple[str, ...] = ("Dead",),
) -> BoardData:
    """Board ``i`` from a cgminer-family ``devs`` item (``MHS 5s``): failed when it hashes
    nothing, its Status is one of ``dead``, or the caller says so (``failed``)."""
    rate = _ths(dev.get("MHS 5s"), 1e6)
    bad = failed or not rate or clean(dev.get("Status")) in dead
    status = "failed" if bad else "ok"
    return BoardData(i, rate, temp_board=temp_board, temp_chip=temp_chip, chips=chips, status=status)


def _mhs_family(r: dict[str, Any], make: str, model: str, fw: str) -> MinerData:
    summ = _first(r.get("summary"), "SUMMARY")
    d = MinerData(make=make, model=model, firmware=fw)
    d.hashrate_ths = _ths(summ.get("MHS 5s", summ.get("MHS 1m")), 1e6)
    d.hashrate_avg_ths = _ths(summ.get("MHS av"), 1e6)
    d.uptime_s = integer(summ.get("Elapsed"))
    d.hw_errors = integer(summ.get("Hardware Errors"))
    d.pools = _pools(r)
    return d


def _btminer(r: dict[str, Any]) -> MinerData:
    ver = _first(r.get("version"), "VERSION")
    det = _first(r.get("devdetails"), "DEVDETAILS")
    raw_model = clean(det.get("Model") or ver.get("Type"), 60)
    m = re.match(r"^(?:Whatsminer\s+)?([A-Za-z]\d+[A-Za-z+]*)", re.split(r"[_.]", raw_model)[0])
    model = f"Whatsminer {m.group(1).upper()}" if m else (raw_model or "Whatsminer")
    fw_ver = ver.get("Miner")
    gv = r.get("get_version")
    if isinstance(gv, dict) and isinstance(gv.get("Msg"), dict):
        fw_ver = gv["Msg"].get("fw_ver") or fw_ver
    d = _mhs_family(r, "MicroBT", model, f"btminer {clean(fw_ver, 40)}".strip())
    summ = _first(r.get("summary"), "SUMMARY")
    d.nominal_ths = _ths(summ.get("Factory GHS"), 1000.0)
    d.mac = mac(summ.get("MAC"))
    info = r.get("get_miner_info")
    if d.mac is None and isinstance(info, dict) and isinstance(info.get("Msg"), dict):
        d.mac = mac(info["Msg"].get("mac"))
    d.fans = [f for f in (integer(summ.get("Fan Speed In")), integer(summ.get("Fan Speed Out"))) if f is not None]
    for i, dev in enumerate(_items(r.get("devs"), "DEVS")):
        chips = integer(dev.get("Effective Chips"))
        board, chip = num(dev.get("Temperature")), num(dev.get("Chip Temp Max", dev.get("Chip Temp Avg")))
        d.boards.append(_mhs_board(i, dev, temp_board=board, temp_chip=chip, chips=chips, failed=not chips))
    codes = r.get("get_error_code")
    if isinstance(codes, dict) and isinstance(codes.get("Msg"), dict):
        for c in codes["Msg"].get("error_code") or []:
            if isinstance(c, dict):
                d.errors += [f"error code {clean(k, 10)}" for k in c]
            else:
                d.errors.append(f"error code {clean(c, 10)}")
    t = num(summ.get("Temperature"))
    d.temp_max = t if t else None
    return _finish(d)


def _bosminer(r: dict[str, Any]) -> MinerData:
    ver = _first(r.get("version"), "VERSION")
    key = next((k for k in ver if k.upper().startswith("BOS")), "BOSminer")
    det = _first(r.get("devdetails"), "DEVDETAILS")
    model = clean(det.get("Model"), 80).removeprefix("Bitmain ") or "Braiins OS miner"
    d = _mhs_family(r, "Braiins", model, f"{clean(key, 12)} {clean(ver.get(key), 60)}".strip())
    temps = _items(r.get("temps"), "TEMPS")
    for i, dev in enumerate(_items(r.get("devs"), "DEVS")):
        t = temps[i] if i < len(temps) else {}
        chip = _max_temp(t.get("Chip", dev.get("Temperature")))
        d.boards.append(_mhs_board(i, dev, temp_board=_max_temp(t.get("Board")), temp_chip=chip))
    d.fans = [integer(f.get("RPM")) or 0 for f in _items(r.get("fans"), "FANS")]
    return _finish(d)


def _cgminer(r: dict[str, Any]) -> MinerData:
    ver = _first(r.get("version"), "VERSION")
    det = _first(r.get("devdetails"), "DEVDETAILS")
    model = clean(det.get("Model"), 80) or clean(det.get("Name"), 40) or "cgminer"
    d = _mhs_family(r, "cgminer", model, f"cgminer {clean(ver.get('CGMiner'), 40)}".strip())
    for i, dev in enumerate(_items(r.get("devs"), "DEVS")):
        d.boards.append(_mhs_board(i, dev, temp_chip=_max_temp(dev.get("Temperature")), dead=_CGMINER_DEAD))
    return _finish(d)


def normalize(replies: dict[str, Any], family: str | None = None) -> MinerData:
    """The normalized data from one poll's replies (``family`` as :func:`detect` says)."""
    fam = family or detect(replies)
    fn = {"antminer": _antminer, "btminer": _btminer, "bosminer": _bosminer}.get(fam, _cgminer)
    d = fn(replies)
    if d.hashrate_ths is None and d.uptime_s is None:
        raise NormalizeError(f"no hashrate or uptime in the {fam} replies ({', '.join(sorted(replies))})")
    return d
