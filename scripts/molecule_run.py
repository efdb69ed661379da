"""``./dev molecule``: every role's Molecule scenario, one after the other, with timings.

Before the scenarios: the wheelhouse (``./dev wheel``), the images (``./dev image``) and the
containers.podman collection, each skipped when up to date. Each role with a
``molecule/default/molecule.yml`` then runs ``molecule test`` in its folder (destroy, syntax,
create, converge, idempotence, verify, destroy). One scenario at a time: the machine has
2 cores and the scenarios share them with everything else.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from scripts import image, wheelhouse

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["base", "minectl", "dnsmasq", "openvpn_client", "fluentd", "metrics"]


def scenarios() -> list[Path]:
    found = {
        p.parent.parent.parent.name: p.parent.parent.parent for p in ROOT.glob("roles/*/molecule/default/molecule.yml")
    }
    ordered = [found.pop(n) for n in ORDER if n in found]
    return ordered + [found[n] for n in sorted(found)]


def env() -> dict[str, str]:
    e = dict(os.environ)
    venv_bin = ROOT / ".venv" / "bin"
    e["PATH"] = f"{venv_bin}:{e.get('PATH', '')}"
    e["CONTAINERS_CONF"] = str(image.CONTAINERS_CONF)
    e["ANSIBLE_COLLECTIONS_PATH"] = str(image.COLLECTIONS)
    e["ANSIBLE_ROLES_PATH"] = str(ROOT / "roles")
    e["MINECTL_ROOT"] = str(ROOT)
    e.setdefault("ANSIBLE_FORCE_COLOR", "0")
    e["PY_COLORS"] = "0"
    return e


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("roles", nargs="*", help="only these roles (default: every role with a scenario)")
    p.add_argument("--command", default="test", help="molecule command (test, converge, verify, destroy)")
    a = p.parse_args(argv)
    t0 = time.monotonic()
    wheelhouse.build()
    image.collections()
    image.build()
    prep = time.monotonic() - t0
    todo = [r for r in scenarios() if not a.roles or r.name in a.roles]
    unknown = set(a.roles) - {r.name for r in todo}
    if unknown:
        print(f"molecule: no scenario for {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    results: list[tuple[str, int, float]] = []
    for role in todo:
        print(f"\n==> molecule {a.command}: roles/{role.name}", flush=True)
        t = time.monotonic()
        rc = subprocess.run(["molecule", a.command], cwd=role, env=env()).returncode
        results.append((role.name, rc, time.monotonic() - t))
    print(f"\nmolecule: preparation (wheel, collection, images) {prep:.0f} s")
    for name, rc, secs in results:
        print(f"  {name:<16} {'ok' if rc == 0 else f'FAILED (rc {rc})':<16} {secs:6.0f} s")
    print(f"  {'total':<16} {'':<16} {time.monotonic() - t0:6.0f} s")
    return 0 if all(rc == 0 for _, rc, _ in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
