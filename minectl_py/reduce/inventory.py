"""Where each miner is: name, rack, shelf, position and expected model, by MAC.

Sources, later ones filling what earlier ones left empty:

1. the site CSV (``--inventory FILE``): header ``mac,name,rack,shelf,position,model``
   (extra columns are ignored, ``#`` lines are comments);
2. the records themselves: ``inventory`` events (``action`` set/remove, ``mac``, ``name``,
   ``rack``, written by ``minectl inventory apply``), or a ``rack``/``name`` field on a poll
   record or inside its ``miner`` object;
3. lease records: the sanitized DHCP ``hostname`` as the name when nothing else names it.

Miner-supplied strings are untrusted: values are cut to 64 characters and control
characters are dropped before they reach any view.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from typing import Any

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_CTRL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAXLEN = 64


def clean(value: Any) -> str:
    """A short, printable string from anything a record carried ('' for None)."""
    if value is None:
        return ""
    s = value if isinstance(value, str) else str(value)
    return _CTRL.sub("", s)[:MAXLEN]


def norm_mac(value: Any) -> str | None:
    """``AA-BB-CC-DD-EE-FF`` / ``aa:bb:...`` -> ``aa:bb:cc:dd:ee:ff``; None if not a MAC."""
    if not isinstance(value, str):
        return None
    m = value.strip().lower().replace("-", ":")
    return m if _MAC.match(m) else None


@dataclass(slots=True)
class Place:
    name: str = ""
    rack: str = ""
    shelf: str = ""
    position: str = ""
    model: str = ""
    from_csv: bool = False


class InventoryError(ValueError):
    pass


class Inventory:
    def __init__(self) -> None:
        self.by_mac: dict[str, Place] = {}

    def __len__(self) -> int:
        return len(self.by_mac)

    @classmethod
    def from_csv(cls, path: str) -> Inventory:
        inv = cls()
        inv.load_csv(path)
        return inv

    def load_csv(self, path: str) -> None:
        try:
            f = open(path, newline="", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as e:
            raise InventoryError(f"inventory {path}: {e.strerror}") from None
        with f:
            lines = (ln for ln in f if not ln.lstrip().startswith("#"))
            rd = csv.DictReader(lines)
            fields = [h.strip().lower() for h in (rd.fieldnames or [])]
            if "mac" not in fields:
                raise InventoryError(f"inventory {path}: no 'mac' column in the header (want mac,name,rack,...)")
            rd.fieldnames = fields
            for n, row in enumerate(rd, start=2):
                mac = norm_mac(row.get("mac"))
                if mac is None:
                    raise InventoryError(f"inventory {path}:{n}: not a MAC address: {clean(row.get('mac'))!r}")
                self.by_mac[mac] = Place(
                    name=clean(row.get("name")),
                    rack=clean(row.get("rack")),
                    shelf=clean(row.get("shelf")),
                    position=clean(row.get("position")),
                    model=clean(row.get("model")),
                    from_csv=True,
                )

    def get(self, mac: str) -> Place:
        p = self.by_mac.get(mac)
        if p is None:
            p = self.by_mac[mac] = Place()
        return p

    def rack(self, mac: str) -> str:
        p = self.by_mac.get(mac)
        return p.rack if p is not None else ""

    def learn(self, rec: Any, mac: str) -> None:
        """Fill what the CSV did not say from a record's own ``rack``/``name`` fields
        (a lease's ``hostname`` names a miner nothing else names)."""
        if rec.cmd == "inventory" and rec.action == "remove":
            p = self.by_mac.get(mac)
            if p is not None and not p.from_csv:
                p.rack = p.name = ""
            return
        rack = rec.rack
        if rack is None and rec.miner is not None:
            rack = rec.miner.rack
        name = rec.name
        if name is None and rec.cmd == "lease":
            name = rec.hostname
        if rack is None and name is None:
            return
        p = self.get(mac)
        if rack is not None and not (p.from_csv and p.rack):
            p.rack = clean(rack)
        if name is not None and not (p.from_csv and p.name):
            p.name = clean(name)
