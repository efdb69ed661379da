"""invoke tasks: setup, test, lint, bench, demo, reduce, image, molecule.

Run through ./dev (which installs everything first): ``./dev test``, ``./dev bench``.
Each task's own module lives in ``tasks_lib/`` when it grows beyond a few lines.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from invoke import Context, task

ROOT = Path(__file__).resolve().parent
VENV_BIN = ROOT / ".venv" / "bin"
PY = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable


def _env() -> dict[str, str]:
    return {"PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}", "PYTHONPATH": str(ROOT)}


@task
def setup(c: Context) -> None:
    """Everything is installed by ./dev before any task runs; this just reports versions."""
    c.run(
        f"{PY} --version && {PY} -m pip list --format=freeze | grep -Ei 'minectl|pytest|hypothesis|ansible'",
        env=_env(),
    )


@task(
    help={
        "k": "only tests matching this expression",
        "unit": "unit tests only (no daemons)",
        "extra": "more pytest arguments",
    }
)
def test(c: Context, k: str = "", unit: bool = False, extra: str = "") -> None:
    """Every test: lint, unit, integration (real daemons), and the Molecule scenario."""
    lint(c)
    args = ["-x" if os.environ.get("MINECTL_FAILFAST") else "", "-p no:cacheprovider"]
    if k:
        args.append(f"-k {k!r}")
    if unit:
        args.append("tests/unit")
    c.run(f"{PY} -m pytest {' '.join(a for a in args if a)} {extra}", env=_env(), pty=False)


@task
def lint(c: Context) -> None:
    """ruff (Python), and yamllint + ansible-lint once the roles exist."""
    c.run(f"{VENV_BIN}/ruff check minectl_py tests tasks.py bench scripts", env=_env())
    c.run(f"{VENV_BIN}/ruff format --check minectl_py tests tasks.py bench scripts", env=_env())
    if (ROOT / "roles").exists() and any((ROOT / "roles").iterdir()):
        c.run(f"{VENV_BIN}/yamllint -s .", env=_env())
        c.run(f"{VENV_BIN}/ansible-lint --profile production --offline", env=_env())


@task(help={"only": "comma-separated benchmark names (default: all)", "quick": "smaller inputs"})
def bench(c: Context, only: str = "", quick: bool = False) -> None:
    """Benchmarks; figures go to bench/results/ and are summarized in docs/benchmarks.md."""
    names = f"--only {only}" if only else ""
    q = "--quick" if quick else ""
    c.run(f"{PY} -m bench {names} {q}", env=_env(), pty=False)


@task
def demo(c: Context) -> None:
    """The main job: a simulated mine site, end to end."""
    c.run(f"{PY} -m scripts.demo", env=_env(), pty=False)
