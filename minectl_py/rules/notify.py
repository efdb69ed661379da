"""Telling people: a webhook with a JSON body, syslog (journald reads /dev/log too), and email
through the local MTA. One batch per cycle and channel; every attempt becomes a ``notify``
event (ok or fail, with the reason); a failure is logged and never raises.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from minectl_py.events import record
from minectl_py.rules.ruleset import Notify

log = logging.getLogger("minectl.rules")

#: syslog severities (RFC 5424) and facilities
_SEVERITY = {"critical": 2, "warning": 4, "info": 6}
_FACILITY = {"user": 1, "daemon": 3, **{f"local{i}": 16 + i for i in range(8)}}
#: the fields of an alert that go out (the whole record minus nothing secret: alerts hold none)
ALERT_FIELDS = (
    "id",
    "created_at_ms",
    "rule",
    "state",
    "kind",
    "severity",
    "mac",
    "ip",
    "name",
    "detail",
    "value",
    "values",
    "since_ms",
    "raised_id",
)
MAX_PER_MESSAGE = 500  # alerts in one webhook body / email; more are counted, not listed


def clean(v: Any, limit: int = 200) -> str:
    """Text safe for a log line or a mail header: no control characters, bounded length."""
    s = "" if v is None else str(v)
    s = "".join(ch if ch.isprintable() else "?" for ch in s)
    return s[:limit]


def summary_line(a: dict[str, Any]) -> str:
    who = a.get("name") or a.get("mac") or "site"
    where = f" {a['ip']}" if a.get("ip") else ""
    kind = "" if a.get("kind", "condition") == "condition" else f" ({a['kind']})"
    return clean(
        f"{a.get('state', '?').upper()} {a.get('severity', '')} {a['rule']}{kind}: {who}{where}: {a.get('detail', '')}",
        400,
    )


@dataclass(slots=True)
class Notifier:
    config: Notify
    nodename: str
    clock: Callable[[], float] = time.time

    def send(self, notices: Sequence[tuple[dict[str, Any], tuple[str, ...]]]) -> list[dict[str, Any]]:
        """Send each channel's batch; returns the ``notify`` records to append."""
        by_channel: dict[str, list[dict[str, Any]]] = {}
        for alert, channels in notices:
            for ch in channels:
                by_channel.setdefault(ch, []).append(alert)
        out = []
        for ch in ("webhook", "syslog", "email"):
            alerts = by_channel.get(ch)
            if not alerts:
                continue
            target, fn = self._channel(ch)
            if fn is None:
                continue  # the rule asks for a channel the site did not configure
            try:
                fn(alerts)
                result, detail = "ok", f"{len(alerts)} alert(s)"
            except Exception as e:  # a notification must never stop the watchdog
                result, detail = "fail", clean(f"{type(e).__name__}: {e}", 300)
                log.warning("notify %s to %s failed: %s", ch, target, detail)
            out.append(
                record.make(
                    "notify",
                    self.nodename,
                    {
                        "channel": ch,
                        "result": result,
                        "target": target,
                        "alerts": [a["id"] for a in alerts[:MAX_PER_MESSAGE]],
                        "rules": sorted({a["rule"] for a in alerts}),
                        "detail": detail,
                    },
                    at_ms=int(self.clock() * 1000),
                )
            )
        return out

    def _channel(self, ch: str) -> tuple[str, Callable[[list[dict[str, Any]]], None] | None]:
        c = self.config
        if ch == "webhook" and c.webhook is not None:
            return c.webhook.url, self.webhook
        if ch == "syslog" and c.syslog:
            return c.syslog_facility, self.syslog
        if ch == "email" and c.email is not None:
            return ",".join(c.email.to), self.email
        return "", None

    def body(self, alerts: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "source": "minectl-rules",
            "site": self.nodename,
            "sent_at_ms": int(self.clock() * 1000),
            "count": len(alerts),
            "alerts": [{k: a[k] for k in ALERT_FIELDS if k in a} for a in alerts[:MAX_PER_MESSAGE]],
        }

    # -- channels ------------------------------------------------------------------------
    def webhook(self, alerts: list[dict[str, Any]]) -> None:
        w = self.config.webhook
        assert w is not None
        data = json.dumps(self.body(alerts), separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "minectl-rules", **w.headers}
        req = urllib.request.Request(w.url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=w.timeout_s) as resp:
                resp.read(65536)
                if not 200 <= resp.status < 300:
                    raise OSError(f"HTTP {resp.status}")
        except urllib.error.HTTPError as e:
            raise OSError(f"HTTP {e.code} {clean(e.reason, 80)}") from None
        except urllib.error.URLError as e:
            raise OSError(f"cannot reach {w.url}: {clean(e.reason, 120)}") from None

    def syslog(self, alerts: list[dict[str, Any]]) -> None:
        """RFC 3164 datagrams to the local syslog socket (rsyslog or journald)."""
        fac = _FACILITY.get(self.config.syslog_facility, 3)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(self.config.syslog_socket)
            for a in alerts:
                sev = _SEVERITY.get(str(a.get("severity")), 4) if a.get("state") == "raised" else 5
                msg = f"<{fac * 8 + sev}>minectl-rules[{os.getpid()}]: {summary_line(a)}"
                s.send(msg.encode("utf-8", "replace"))

    def email(self, alerts: list[dict[str, Any]]) -> None:
        e = self.config.email
        assert e is not None
        if not os.access(e.sendmail, os.X_OK):
            raise FileNotFoundError(f"no local MTA: {e.sendmail} is missing or not executable")
        msg = EmailMessage()
        raised = sum(1 for a in alerts if a.get("state") == "raised")
        msg["Subject"] = clean(f"[minectl {self.nodename}] {raised} raised, {len(alerts) - raised} cleared", 150)
        msg["From"] = e.sender
        msg["To"] = ", ".join(e.to)
        lines = [summary_line(a) for a in alerts[:MAX_PER_MESSAGE]]
        if len(alerts) > MAX_PER_MESSAGE:
            lines.append(f"... and {len(alerts) - MAX_PER_MESSAGE} more")
        msg.set_content("\n".join(lines) + "\n")
        p = subprocess.run(
            [e.sendmail, "-t", "-oi"], input=msg.as_bytes(), capture_output=True, timeout=30, check=False
        )
        if p.returncode != 0:
            raise OSError(f"{e.sendmail} exited {p.returncode}: {clean(p.stderr.decode('utf-8', 'replace'), 200)}")
