"""dnsmasq's ``dhcp-script``: every lease change becomes a ``lease`` event and a state update.

dnsmasq runs it as ``<hook> ACTION MAC IP [HOSTNAME]`` with ``DNSMASQ_*`` variables, one at a
time, waiting for each (see docs/state.md and docs/events.md, "lease"):

* ``add``, ``old``, ``del``: append a ``lease`` event (durable before we return) and project it
  into the state directory, both under the state lock. Repeated ``old`` changes nothing.
* ``init`` (with ``leasefile-ro``): print the lease database in dnsmasq's lease-file format
  from the state directory, so a dnsmasq restart keeps every lease. Never fails: a broken
  ``init`` would stop dnsmasq from starting, so errors go to stderr and the output is empty.
* anything else (``tftp``, ``arp-add``, ``arp-del``, ``relay-snoop``, future actions): ignored.

Bounded in time: ``alarm(2)`` ends the process (SIGALRM, default action) after
:data:`TIMEOUT_S` (``init``: :data:`INIT_TIMEOUT_S`); dnsmasq logs it and goes on, and the
state self-heals on the next ``old``. Fast: the standard library's builtins only (no ``json``,
no ``re``, no ``typing``); ``python -X importtime`` shows what it loads. Install the launcher
(``python -m minectl_py.hook_launcher``) as the ``dhcp-script``: it runs ``python3 -I -S``.
"""

from __future__ import annotations

import _signal
import fcntl
import os
import sys
import time

from minectl_py import config, fastjson
from minectl_py.state import project, values
from minectl_py.state import sanitize as san

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

TIMEOUT_S = 10
INIT_TIMEOUT_S = 60
#: Raw strings from the client are kept in the event up to this many characters.
RAW_MAX = 1024
ACTIONS = ("add", "old", "del")
SCHEMA_VERSION = 1


def _raw(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    return value[:RAW_MAX]


def _int(value: str | None) -> int | None:
    if value and value.isdigit() and len(value) < 16:
        return int(value)
    return None


def lease_fields(argv: list[str], env: Mapping[str, str]) -> dict[str, object]:
    """The ``lease`` event's own fields from dnsmasq's arguments and environment (pure)."""
    action, mac, ip = argv[0], argv[1], argv[2]
    host_arg = argv[3] if len(argv) > 3 else None
    f: dict[str, object] = {"action": action, "mac": (_raw(mac) or "").lower(), "ip": _raw(ip) or ""}
    host = san.label(host_arg)
    if host is not None:
        f["hostname"] = host
    if host_arg and host_arg != host:
        f["hostname_raw"] = _raw(host_arg)
    g = env.get
    for key, var in (
        ("supplied_hostname", "DNSMASQ_SUPPLIED_HOSTNAME"),
        ("vendor_class", "DNSMASQ_VENDOR_CLASS"),
        ("client_id", "DNSMASQ_CLIENT_ID"),
        ("interface", "DNSMASQ_INTERFACE"),
        ("domain", "DNSMASQ_DOMAIN"),
        ("old_hostname", "DNSMASQ_OLD_HOSTNAME"),
        ("relay", "DNSMASQ_RELAY_ADDRESS"),
        ("requested_options", "DNSMASQ_REQUESTED_OPTIONS"),
    ):
        v = _raw(g(var))
        if v is not None:
            f[key] = v
    tags = g("DNSMASQ_TAGS")
    if tags:
        f["tags"] = [t[:64] for t in tags.split()[:32]]
    classes = []
    for i in range(16):
        v = g(f"DNSMASQ_USER_CLASS{i}")
        if v is None:
            break
        classes.append(v[:RAW_MAX])
    if classes:
        f["user_class"] = classes
    exp = _int(g("DNSMASQ_LEASE_EXPIRES"))
    if exp is not None:
        f["expires"] = exp
    rem = _int(g("DNSMASQ_TIME_REMAINING"))
    if rem is not None:
        f["remaining_s"] = rem
    if g("DNSMASQ_DATA_MISSING"):
        f["data_missing"] = True
    return f


def make_record(fields: dict[str, object], nodename: str, at_ms: int | None = None) -> dict[str, object]:
    """The same envelope as ``minectl_py.events.record.make`` (without importing json)."""
    rec: dict[str, object] = {
        "created_at_ms": str(time.time_ns() // 1_000_000 if at_ms is None else at_ms),
        "id": os.urandom(16).hex(),
        "cmd": "lease",
        "nodename": nodename,
        "v": SCHEMA_VERSION,
    }
    rec.update(fields)
    return rec


# ---------------------------------------------------------------- appending to the event log
def _own_like_dir(fd: int, d: str) -> None:
    """The event writer's rule for files created as root (``minectl_py.events.owner``),
    imported only when a file was just created."""
    from minectl_py.events.owner import own_like_dir

    own_like_dir(fd, d)


def lock_path(live: str) -> str:
    """Same lock file as ``minectl_py.events.writer.lock_path`` (a test keeps them equal)."""
    d, base = os.path.split(live)
    return os.path.join(d, f".{base}.lock")


def _utc_day(ts: float) -> str:
    return time.strftime("%Y%m%d", time.gmtime(ts))


def append_event(path: str, data: bytes) -> None:
    """Append one encoded record with the event writer's protocol (flock on the lock file,
    one ``write`` on ``O_APPEND``, ``fdatasync``, cut back on error). When the live file is
    from an earlier UTC day, the real writer is used: it rotates first (once a day)."""
    try:
        _append_event(path, data)
    except OSError as e:
        if (e.strerror or "").startswith("cannot append"):
            raise
        raise OSError(e.errno, f"cannot append to event log {path}: {e.strerror or e}") from e


def _append_event(path: str, data: bytes) -> None:
    d = os.path.dirname(path) or "."
    if not os.path.isdir(d):
        os.makedirs(d, mode=0o750, exist_ok=True)
    try:
        lfd = os.open(lock_path(path), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        lfd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        _own_like_dir(lfd, d)
    try:
        fcntl.flock(lfd, fcntl.LOCK_EX)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        if st is not None and st.st_size > 0 and _utc_day(st.st_mtime) != _utc_day(time.time()):
            os.close(lfd)
            lfd = -1
            from minectl_py.events.writer import EventWriter

            with EventWriter(path) as w:
                w.append_bytes(data)
            return
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            size = os.fstat(fd).st_size
            if size == 0:  # a new day's file, maybe created by us as root
                _own_like_dir(fd, d)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fdatasync(fd)
            except OSError:
                try:  # noqa: SIM105 - no contextlib here (import cost)
                    os.ftruncate(fd, size)  # no torn record stays
                except OSError:
                    pass
                raise
        finally:
            os.close(fd)
    finally:
        if lfd >= 0:
            os.close(lfd)


# ---------------------------------------------------------------- init: the lease database
def lease_lines(miners: list[dict[str, object]]) -> list[str]:
    """dnsmasq lease-file lines ``<expiry> <mac> <ip> <hostname|*> <client-id|*>`` for every
    miner whose lease is not gone (pure). Expired ones are listed too: dnsmasq then sends
    ``del`` for them at start-up, which records their end."""
    out = []
    for m in miners:
        if m.get("lease") not in ("add", "old") or m.get("state") == "offline":
            continue
        mac, ip, exp = san.mac(m.get("mac")), san.ipv4(m.get("ip")), m.get("lease_expires")
        if not mac or not ip or not isinstance(exp, int):
            continue
        host = san.label(m.get("hostname")) or "*"
        cid = san.hexid(m.get("client_id")) or "*"
        out.append(f"{exp} {mac} {ip} {host} {cid}")
    return out


def _load_all(state_dir: str) -> list[dict[str, object]]:
    root = os.path.join(state_dir, values.MINERS)
    out = []
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return out
    for name in names:
        if name[0] == ".":  # writers' scratch: a folder being made, a shadow (docs/state.md)
            continue
        try:
            with open(os.path.join(root, name, values.MINER_JSON), "rb") as f:
                vals = fastjson.loads(f.read())
        except (OSError, ValueError, UnicodeDecodeError) as e:
            print(f"minectl-lease-hook init: skipping {name}: {e}", file=sys.stderr)
            continue
        if isinstance(vals, dict):
            out.append(vals)
    return out


def init(state_dir: str) -> int:
    try:
        text = "".join(line + "\n" for line in lease_lines(_load_all(state_dir)))
    except Exception as e:  # never keep dnsmasq from starting
        print(f"minectl-lease-hook init: cannot read {state_dir}: {e!r}; starting with no leases", file=sys.stderr)
        return 0
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0


# ---------------------------------------------------------------- main
def handle(argv: list[str], env: Mapping[str, str], events: str, state_dir: str, nodename: str) -> int:
    fields = lease_fields(argv, env)
    rec = make_record(fields, nodename)
    data = b"\x1e" + fastjson.dumps(rec) + b"\n"
    try:
        project.record_and_apply(state_dir, [rec], lambda _recs: append_event(events, data), swap=False, log=events)
    except OSError as e:
        # dnsmasq logs this line: the client's MAC and IP arguments shown escaped, never raw.
        what = " ".join(repr(a)[1:-1][:64] for a in argv[:3])
        print(f"minectl-lease-hook: {what}: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: minectl-lease-hook add|old|del MAC IP [HOSTNAME] | init  (dhcp-script)", file=sys.stderr)
        return 2
    action = args[0]
    if action == "init":
        _signal.alarm(INIT_TIMEOUT_S)
        return init(config.state_dir())
    if action not in ACTIONS:
        return 0  # tftp, arp-add, arp-del, relay-snoop and future actions
    if len(args) < 3:
        print(f"minectl-lease-hook: {action}: expected MAC and IP arguments", file=sys.stderr)
        return 2
    _signal.alarm(TIMEOUT_S)
    return handle(args, os.environ, config.events_path(), config.state_dir(), config.nodename())


if __name__ == "__main__":
    sys.exit(main())
