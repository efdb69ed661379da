"""Who may do what: reading needs group ``minectl``, acting needs root or ``minectl-admin``.

The state directory and event log are installed ``root:minectl`` (group-readable), so the
file system enforces reading; these checks turn a bare ``EACCES`` into a clear message
(exit code 4). Acting is checked here before any miner is touched.
"""

from __future__ import annotations

import grp
import os
import pwd

READ_GROUP = "minectl"
ADMIN_GROUP = "minectl-admin"
EXIT_PERM = 4


class PermissionDenied(PermissionError):
    """Raised with the message a person should read; the CLI exits with code 4."""


def unix_user() -> str:
    """The person behind this command: ``$SUDO_USER`` under sudo, else the real user."""
    if os.geteuid() == 0 and os.environ.get("SUDO_USER"):
        return os.environ["SUDO_USER"]
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid{os.getuid()}"


def group_gid(name: str) -> int | None:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def in_group(name: str) -> bool:
    gid = group_gid(name)
    return gid is not None and (gid in os.getgroups() or gid == os.getegid())


def may_act(euid: int, groups: set[int], admin_gid: int | None) -> bool:
    """Pure rule: root, or a member of the admin group."""
    return euid == 0 or (admin_gid is not None and admin_gid in groups)


def check_act(action: str) -> None:
    groups = set(os.getgroups()) | {os.getegid()}
    if not may_act(os.geteuid(), groups, group_gid(ADMIN_GROUP)):
        raise PermissionDenied(
            f"permission denied: '{action}' acts on miners and needs root or group {ADMIN_GROUP} "
            f"(user {unix_user()} is in neither). Ask a site admin to run "
            f"'usermod -aG {ADMIN_GROUP} {unix_user()}', or use sudo."
        )


def check_read(path: str, what: str = "the site state") -> None:
    if os.path.exists(path) and not os.access(path, os.R_OK | os.X_OK if os.path.isdir(path) else os.R_OK):
        raise PermissionDenied(
            f"permission denied: reading {what} ({path}) needs group {READ_GROUP} "
            f"(user {unix_user()} is not a member). Ask a site admin to run "
            f"'usermod -aG {READ_GROUP} {unix_user()}', then log in again."
        )
