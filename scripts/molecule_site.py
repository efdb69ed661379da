"""``./dev molecule-site``: the whole appliance in containers (molecule/default), stage by stage.

Prepares what the scenario needs (the wheelhouse, the images, the containers.podman
collection: each skipped when up to date), then runs the scenario's stages one molecule
command at a time, so each stage is timed: destroy, syntax, create, prepare, converge,
idempotence, verify, destroy. The containers are destroyed at the end even when a stage
fails, unless ``--keep`` (then ``podman exec -it mapp-controller bash`` gets a shell).
Timings go to stdout and, with ``--json FILE``, to a file (docs/benchmarks.md quotes them).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from scripts import image, molecule_run, wheelhouse

ROOT = Path(__file__).resolve().parent.parent
STAGES = ["destroy", "syntax", "create", "prepare", "converge", "idempotence", "verify"]


def run_stage(stage: str) -> tuple[int, float]:
    print(f"\n==> molecule {stage} (molecule/default)", flush=True)
    t = time.monotonic()
    rc = subprocess.run(["molecule", stage, "-s", "default"], cwd=ROOT, env=molecule_run.env()).returncode
    return rc, time.monotonic() - t


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keep", action="store_true", help="leave the containers running at the end")
    p.add_argument("--stages", default=",".join(STAGES), help="comma-separated stages (default: all)")
    p.add_argument("--json", metavar="FILE", help="also write the timings here")
    a = p.parse_args(argv)
    stages = [s for s in a.stages.split(",") if s]
    bad = set(stages) - set(STAGES) - {"destroy"}
    if bad:
        print(f"molecule-site: unknown stages {', '.join(sorted(bad))} (known: {', '.join(STAGES)})", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    wheelhouse.build()
    image.collections()
    image.build()
    times: dict[str, float] = {"preparation (wheel, collection, images)": time.monotonic() - t0}
    failed = ""
    for stage in stages:
        rc, secs = run_stage(stage)
        times[stage if stage not in times else f"{stage} (again)"] = secs
        if rc != 0:
            failed = stage
            break
    if not a.keep:
        rc, secs = run_stage("destroy")
        times["destroy (end)"] = secs
    times["total"] = time.monotonic() - t0
    print("\nmolecule-site timings (s):")
    for k, v in times.items():
        print(f"  {k:<42} {v:7.0f}")
    if a.json:
        Path(a.json).write_text(json.dumps({"failed": failed, "seconds": times}, indent=1) + "\n")
    if failed:
        print(f"molecule-site: stage {failed} FAILED", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
