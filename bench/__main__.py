"""Run every ``bench/bench_*.py`` (or ``--only a,b``); print and save each one's figures."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path

import bench

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    ap = argparse.ArgumentParser(prog="invoke bench")
    ap.add_argument("--only", default="", help="comma-separated names (bench_NAME.py)")
    ap.add_argument("--quick", action="store_true", help="smaller inputs, for a smoke run")
    a = ap.parse_args()
    names = sorted(m.name[len("bench_") :] for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    if a.only:
        wanted = [n.strip() for n in a.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(names)}", file=sys.stderr)
            return 2
        names = wanted
    RESULTS.mkdir(exist_ok=True)
    rc = 0
    for name in names:
        print(f"== bench {name}", flush=True)
        mod = importlib.import_module(f"bench.bench_{name}")
        t0 = time.time()
        try:
            res = mod.run(quick=a.quick)
        except Exception as e:  # a failing benchmark must not hide the others
            print(f"bench {name} failed: {e!r}", file=sys.stderr)
            rc = 1
            continue
        res = {
            "bench": name,
            "quick": a.quick,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)),
            **res,
        }
        (RESULTS / f"{name}{'-quick' if a.quick else ''}.json").write_text(json.dumps(res, indent=2) + "\n")
        print(json.dumps(res, indent=2), flush=True)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
