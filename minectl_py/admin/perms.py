"""Who may do what: reading needs group ``minectl``, acting needs root or ``minectl-admin``.

The state directory and event log belong to the service user ``minectl`` with group
``minectl`` (group-readable), so the file system enforces reading; these checks turn a bare
``EACCES`` into a clear message (exit code 4). Acting is checked here before any miner is
touched; on a site built by the Ansible role, admins act as the service user
(``sudo -u minectl minectl reboot ...``), which owns the credentials and the log.
"""

from __future__ import annotations

import grp
import os
import pwd

READ_GROUP = "minectl"
ADMIN_GROUP = "minectl-admin"
#: The service user: owns the event log, the state and the credentials; admins act as it through sudo.
SERVICE_USER = "minectl"
EXIT_PERM = 4


class PermissionDenied(PermissionError):
    """Raised with the message a person should read; the CLI exits with code 4."""


def _name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid{uid}"


def person(euid_name: str, real_name: str, sudo_user: str | None, service: str) -> str:
    """Pure rule: who to name in the audit trail.

    ``$SUDO_USER`` is trusted only where sudo set it: when running as root or as the service
    user (admins act through ``sudo -u minectl minectl ...``; nobody else can become either).
    Anyone else is named by their real user, whatever their environment says.
    """
    if sudo_user and euid_name in ("root", service):
        return sudo_user
    return real_name


def unix_user() -> str:
    """The person behind this command: ``$SUDO_USER`` under sudo (to root or the service user), else the real user."""
    euid = os.geteuid()
    name = "root" if euid == 0 else _name(euid)
    return person(name, _name(os.getuid()), os.environ.get("SUDO_USER"), SERVICE_USER)


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
