"""The main job: bring up a simulated mine site end to end and show it as an admin sees it.

This grows with each capability (see docs/runbook.md). Today it writes a site event log
with the real writer from several concurrent processes and reads it back with the reader.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from minectl_py.events import record
from minectl_py.events.writer import EventWriter


def main() -> int:
    site = os.environ.get("MINECTL_DEMO_DIR") or tempfile.mkdtemp(prefix="minectl-demo-")
    log = os.path.join(site, "events", "events.log")
    os.environ["MINECTL_EVENTS"] = log
    print(f"demo site in {site}")
    with EventWriter(log) as w:
        for i in range(10):
            w.append(record.make("time", "demo-controller", {"ip": f"10.20.0.{i + 1}"}))
    run = [sys.executable, "-m", "minectl_py"]
    subprocess.run([*run, "events", "count"], check=True)
    subprocess.run([*run, "events", "cat", "--lines"], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
