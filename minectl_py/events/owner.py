"""Files created as root in a service's directory get that directory's owner and group.

Shared by the event writer and the lease hook (import-cheap: ``os`` only). An admin running
``minectl`` as root, or dnsmasq running the hook as root, may be the first to create the day's
log file or its lock file; the poller, running as the service user, must still append to it.
"""

from __future__ import annotations

import os


def own_like_dir(fd: int, d: str) -> None:
    """Run as root: give the empty file behind ``fd`` the owner and group of directory ``d``.
    A file that already has content is left alone (someone else created it); errors are
    ignored (the append itself does not depend on this)."""
    if os.geteuid() != 0:
        return
    try:
        st, dst = os.fstat(fd), os.stat(d)
        if (st.st_uid, st.st_gid) != (dst.st_uid, dst.st_gid) and st.st_size == 0:
            os.fchown(fd, dst.st_uid, dst.st_gid)
    except OSError:
        pass
