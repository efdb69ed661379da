"""Where things live on the controller, with the environment overrides tests and admins use.

Standard library only (the lease hook imports this).
"""

from __future__ import annotations

import os

#: The live site event log. Rotated daily segments sit beside it (see docs/events.md).
DEFAULT_EVENTS = "/var/lib/minectl/events/events.log"
#: One folder of small files per miner (see docs/state.md).
DEFAULT_STATE_DIR = "/var/lib/minectl/state"
#: Site configuration (credentials, site name, nominal values).
DEFAULT_CONFIG_DIR = "/etc/minectl"


def events_path() -> str:
    """Path of the live event log: ``$MINECTL_EVENTS`` or the default."""
    return os.environ.get("MINECTL_EVENTS") or DEFAULT_EVENTS


def state_dir() -> str:
    """Path of the state directory: ``$MINECTL_STATE_DIR`` or the default."""
    return os.environ.get("MINECTL_STATE_DIR") or DEFAULT_STATE_DIR


def config_dir() -> str:
    return os.environ.get("MINECTL_CONFIG_DIR") or DEFAULT_CONFIG_DIR


def nodename() -> str:
    """The controller's name as recorded in every event (``$MINECTL_NODENAME`` overrides)."""
    return os.environ.get("MINECTL_NODENAME") or os.uname().nodename
