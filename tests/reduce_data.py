"""Small hand-made event records for the reduction tests (values chosen to check sums by hand)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

T0 = 1_530_687_600_000  # 2018-07-04T07:00:00Z, a minute boundary
MACS = ["00:0e:00:00:00:01", "00:0e:00:00:00:02", "00:0e:00:00:00:03"]
_n = 0


def _id() -> str:
    global _n
    _n += 1
    return f"{_n:032x}"


def env(t_ms: int, cmd: str, **fields: Any) -> dict[str, Any]:
    return {"created_at_ms": str(t_ms), "id": _id(), "cmd": cmd, "nodename": "overlord", "v": 1, **fields}


def poll(
    t_ms: int,
    mac: str,
    ths: float,
    nominal: float = 13.5,
    temp: float = 70.0,
    fans: list[int] | None = None,
    uptime: int = 1000,
    model: str = "Antminer S9",
    **extra: Any,
) -> dict[str, Any]:
    miner = {
        "make": "Bitmain",
        "model": model,
        "mac": mac,
        "hashrate_ths": ths,
        "nominal_ths": nominal,
        "boards": [{"index": 6, "hashrate_ths": ths, "temp_chip": temp}],
        "temp_max": temp,
        "fans": fans if fans is not None else [5400, 5500],
        "uptime_s": uptime,
        "errors": [],
    }
    return env(t_ms, "poll", ip="10.0.0." + mac[-1], mac=mac, elapsed_ms=30, digest="0" * 64, miner=miner, **extra)


def poll_fail(t_ms: int, mac: str, reason: str = "timeout") -> dict[str, Any]:
    return env(t_ms, "poll_fail", ip="10.0.0." + mac[-1], mac=mac, reason=reason, detail=f"{reason} after 5000 ms")


def lease(t_ms: int, mac: str, action: str = "add", ip: str | None = None, hostname: str = "") -> dict[str, Any]:
    return env(t_ms, "lease", action=action, mac=mac, ip=ip or "10.0.0." + mac[-1], hostname=hostname or None)


def fluentd_line(rec: dict[str, Any]) -> bytes:
    return b"20180704T000000-0700\tmainstream\t" + json.dumps(rec, separators=(",", ":")).encode() + b"\n"


def write(path: Path, recs: list[dict[str, Any]], form: str = "fluentd", gz: bool = False) -> Path:
    if form == "fluentd":
        data = b"".join(fluentd_line(r) for r in recs)
    elif form == "rs":
        data = b"".join(b"\x1e" + json.dumps(r).encode() + b"\n" for r in recs)
    else:
        data = b"".join(json.dumps(r).encode() + b"\r\n" for r in recs)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def site(minutes: int = 12, fail_at: int = 5) -> list[dict[str, Any]]:
    """Three S9s polled twice a minute; miner 3 fails for two minutes at ``fail_at``, an admin
    reboots it, its uptime restarts; miner 2 runs at half speed and hot."""
    recs = [lease(T0 - 1000, m, "add", hostname=f"r1-s9-{i + 1}") for i, m in enumerate(MACS)]
    for k in range(minutes):
        for half in (0, 30_000):
            t = T0 + k * 60_000 + half
            recs.append(poll(t + 100, MACS[0], 13.0 + (half / 30_000), uptime=1000 + k * 60))
            recs.append(poll(t + 200, MACS[1], 6.75, temp=88.0, fans=[6000, 0], uptime=1000 + k * 60))
            if fail_at <= k < fail_at + 2:
                recs.append(poll_fail(t + 300, MACS[2]))
            else:
                up = 1000 + k * 60 if k < fail_at else (k - fail_at - 2) * 60 + 30
                recs.append(poll(t + 300, MACS[2], 14.0, uptime=up))
        if k == fail_at + 1:
            act = {"user": "ops", "action": "reboot", "target": "10.0.0.3", "mac": MACS[2], "result": "ok"}
            recs.append(env(T0 + k * 60_000 + 50_000, "action", detail="reboot accepted", **act))
    recs.sort(key=lambda r: int(r["created_at_ms"]))
    return recs


INVENTORY = "mac,name,rack,shelf,position,model\n" + "".join(
    f"{m},s9-{i + 1},R{1 if i < 2 else 2},1,{i + 1},Antminer S9\n" for i, m in enumerate(MACS)
)
