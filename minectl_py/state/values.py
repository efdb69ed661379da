"""A miner's values: what one event record does to them, and how its files show them.

The pure core of the state directory (layout in docs/state.md; the writing is
``minectl_py.state.project``):

* :func:`reduce` - ``(current values, record) -> new values``: what one ``lease``, ``poll``,
  ``poll_fail`` or ``inventory`` record does to one miner's values. No I/O, no clock: the
  same records give the same directory, live or rebuilt (``minectl state rebuild``).
* :func:`render` / :func:`encode_value` / :func:`encode_json` - the bytes of a value file and
  of ``miner.json``.
* :func:`link_ip` / :func:`link_name` - the ``by-ip/`` and ``by-name/`` links a miner holds.

Standard library only and import-cheap (the lease hook uses it): no ``json`` (see
``minectl_py.fastjson``), no ``re``, no ``typing`` at run time.
"""

from __future__ import annotations

from minectl_py import fastjson
from minectl_py.state import sanitize as san

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: The state directory's layout: one folder per miner, and two folders of links to them.
MINERS = "miners"
BY_IP = "by-ip"
BY_NAME = "by-name"
MINER_JSON = "miner.json"

#: Event types that change the state directory.
PROJECTED = frozenset({"lease", "poll", "poll_fail", "inventory"})
#: Values of ``state``.
STATES = ("expected", "new", "online", "failing", "offline")
#: Fields that come from the site inventory.
INVENTORY_FIELDS = ("name", "rack", "shelf", "position", "model_expected")

_TWO_DECIMALS = frozenset({"hashrate", "hashrate_avg", "nominal"})
_MAX_LIST = 16


def render(key: str, value: object) -> str:
    """A value as its one-line file shows it (without the newline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.2f}" if key in _TWO_DECIMALS else f"{value:.1f}"
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


def encode_value(key: str, value: object) -> bytes:
    """A value file's bytes."""
    return (render(key, value) + "\n").encode("utf-8", "replace")


def encode_json(vals: dict[str, Any]) -> bytes:
    """``miner.json``'s bytes: every value, keys sorted."""
    return fastjson.dumps(vals, sort_keys=True) + b"\n"


def _num(x: object, nd: int) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    f = float(x)
    if f != f or f in (float("inf"), float("-inf")) or abs(f) > 1e12:
        return None
    return round(f, nd)


def _int(x: object) -> int | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, float) and x == x and abs(x) < 1e15:
        x = int(x)
    if not isinstance(x, int) or abs(x) > 10**15:
        return None
    return x


def _seen(new: dict[str, Any], t: int) -> None:
    if "first_seen" not in new:
        new["first_seen"] = t
    if t > new.get("last_seen", -1):
        new["last_seen"] = t


def _set(new: dict[str, Any], key: str, value: object) -> None:
    if value is None:
        new.pop(key, None)
    else:
        new[key] = value


def record_time(rec: dict[str, Any]) -> int:
    """Epoch seconds of a record (``created_at_ms`` // 1000). Raises ValueError if bad."""
    t = rec.get("created_at_ms")
    if isinstance(t, str) and t.isdigit() and len(t) <= 16:
        return int(t) // 1000
    raise ValueError("created_at_ms missing or not digits")


def reduce(cur: dict[str, Any], rec: dict[str, Any], mac: str) -> dict[str, Any] | None:
    """What one record does to one miner's values; ``None`` means the miner folder goes away
    (an inventory entry removed for a miner never seen on the network)."""
    cmd = rec.get("cmd")
    t = record_time(rec)
    new = dict(cur)
    new["mac"] = mac
    if cmd == "lease":
        _lease(new, rec, t)
    elif cmd == "poll":
        _poll(new, rec, t)
    elif cmd == "poll_fail":
        new["last_poll"] = t
        reason = san.text(rec.get("reason"), 64) or "unknown"
        detail = san.text(rec.get("detail"), 160)
        new["last_error"] = f"{reason}: {detail}" if detail else reason
        if new.get("state") != "offline":
            new["state"] = "failing"
    elif cmd == "inventory":
        if rec.get("action") == "remove":
            for k in INVENTORY_FIELDS:
                new.pop(k, None)
            if new.get("state") in ("expected", None):
                return None
        else:
            new["name"] = san.label(rec.get("name"))
            for k in ("rack", "shelf", "position"):
                _set(new, k, san.text(rec.get(k), 32))
            _set(new, "model_expected", san.text(rec.get("model"), 64))
            if new["name"] is None:
                del new["name"]
            if "state" not in new:
                new["state"] = "expected"
    else:
        raise ValueError(f"record type {cmd!r} does not change the state directory")
    return new


def _lease(new: dict[str, Any], rec: dict[str, Any], t: int) -> None:
    action = rec.get("action")
    if action not in ("add", "old", "del"):
        raise ValueError(f"lease action {action!r} is not add, old or del")
    new["lease"] = action
    if action == "del":
        new["state"] = "offline"
        return
    ip = san.ipv4(rec.get("ip"))
    if ip:
        new["ip"] = ip
    # dnsmasq passes the lease's hostname whenever it has one: absent means none.
    _set(new, "hostname", san.label(rec.get("hostname")))
    # Vendor class and client id are only sent on add (and a resumed old): keep otherwise.
    vc = san.text(rec.get("vendor_class"), 64)
    if vc is not None:
        new["vendor_class"] = vc
    cid = san.hexid(rec.get("client_id"))
    if cid is not None:
        new["client_id"] = cid
    exp = _int(rec.get("expires"))
    if exp is not None and exp >= 0:
        new["lease_expires"] = exp
    if new.get("state") in (None, "offline", "expected"):
        new["state"] = "new"
    _seen(new, t)


def _poll(new: dict[str, Any], rec: dict[str, Any], t: int) -> None:
    m = rec.get("miner")
    if not isinstance(m, dict):
        m = {}
    _set(new, "make", san.text(m.get("make"), 32))
    _set(new, "model", san.text(m.get("model"), 64))
    _set(new, "firmware", san.text(m.get("firmware"), 64))
    h = _num(m.get("hashrate_ths"), 2)
    nominal = _num(m.get("nominal_ths"), 2)
    _set(new, "hashrate", h)
    _set(new, "hashrate_avg", _num(m.get("hashrate_avg_ths"), 2))
    _set(new, "nominal", nominal)
    _set(new, "hashrate_pct", round(100.0 * h / nominal, 1) if h is not None and nominal else None)
    _set(new, "temp_max", _num(m.get("temp_max"), 1))
    fans = m.get("fans")
    if isinstance(fans, list):
        fl = [f for f in (_int(x) for x in fans[:_MAX_LIST]) if f is not None]
        _set(new, "fans", fl or None)
    else:
        new.pop("fans", None)
    pool = None
    pools = m.get("pools")
    if isinstance(pools, list):
        for p in pools[:_MAX_LIST]:
            if isinstance(p, dict) and p.get("active") is True:
                pool = p
                break
    _set(new, "pool", san.text(pool.get("url"), 256) if pool else None)
    _set(new, "pool_user", san.text(pool.get("user"), 128) if pool else None)
    _set(new, "uptime", _int(m.get("uptime_s")))
    _set(new, "hw_errors", _int(m.get("hw_errors")))
    boards = m.get("boards")
    if isinstance(boards, list):
        _set(new, "boards", len(boards))
        _set(new, "boards_failed", sum(1 for b in boards if isinstance(b, dict) and b.get("status") == "failed"))
    else:
        new.pop("boards", None)
        new.pop("boards_failed", None)
    if "ip" not in new:
        ip = san.ipv4(rec.get("ip"))
        if ip:
            new["ip"] = ip
    new["last_poll"] = t
    new["last_error"] = ""
    new["state"] = "online"
    _seen(new, t)


def link_ip(vals: dict[str, Any]) -> str | None:
    """The ``by-ip/`` link a miner should hold: its address while its lease is not gone."""
    if vals.get("state") in ("offline", "expected"):
        return None
    return vals.get("ip")


def link_name(vals: dict[str, Any]) -> str | None:
    """The ``by-name/`` link: the inventory name, else the (sanitized) DHCP hostname."""
    return vals.get("name") or vals.get("hostname")
