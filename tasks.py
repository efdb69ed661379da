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
def test(c: Context, k: str = "", unit: bool = False, extra: str = "", molecule: bool = True) -> None:
    """Every test: lint, unit, integration (real daemons), each role's Molecule scenario, the whole appliance."""
    lint(c)
    args = ["-x" if os.environ.get("MINECTL_FAILFAST") else "", "-p no:cacheprovider"]
    if k:
        args.append(f"-k {k!r}")
    if unit:
        args.append("tests/unit")
    c.run(f"{PY} -m pytest {' '.join(a for a in args if a)} {extra}", env=_env(), pty=False)
    if molecule and not unit and not k and not os.environ.get("MINECTL_SKIP_MOLECULE"):
        molecule_(c)
        if not os.environ.get("MINECTL_SKIP_SITE"):
            molecule_site(c)


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


@task(
    help={
        "loopback": "the quick version instead: simulated miners on loopback, this machine as the controller",
        "miners": "with --loopback: how many simulated miners (default 200)",
        "down": "tear the demo site down (containers and networks; with --loopback, the loopback site)",
        "dir": "with --loopback: where the site lives (default ./site)",
        "containers": "the default (kept for scripts that name it): the whole appliance in containers",
    }
)
def demo(
    c: Context, miners: int = 200, down: bool = False, dir: str = "", containers: bool = False, loopback: bool = False
) -> None:
    """The main job: the whole appliance in containers with 50 miners leasing by DHCP, as an admin sees it
    (molecule/default's create + converge; ./dev demo --down tears it down). --loopback: a quicker
    site on this machine's loopback (200 miners, no containers)."""
    if containers and loopback:
        raise SystemExit("demo: choose --containers (the default) or --loopback, not both")
    if not loopback:
        c.run(f"{PY} -m scripts.demo_containers {'--down' if down else ''}", env=_env(), pty=False)
        return
    args = [f"--miners {int(miners)}"]
    if down:
        args.append("--down")
    if dir:
        args.append(f"--dir {dir!r}")
    c.run(f"{PY} -m scripts.demo {' '.join(args)}", env=_env(), pty=False)


@task(help={"force": "rebuild even if nothing changed"})
def wheel(c: Context, force: bool = False) -> None:
    """build/minectl-wheelhouse.tar: our wheel and its dependencies, for the minectl role."""
    c.run(f"{PY} -m scripts.wheelhouse {'--force' if force else ''}", env=_env(), pty=False)


@task(help={"force": "rebuild even if the inputs did not change"})
def image(c: Context, force: bool = False) -> None:
    """The Molecule images (debootstrap + podman import, then a package layer); cached by inputs."""
    c.run(f"{PY} -m scripts.image image {'--force' if force else ''}", env=_env(), pty=False)


@task
def collections(c: Context) -> None:
    """containers.podman (Molecule's podman driver) from the PyPI ansible wheel into .cache/collections."""
    c.run(f"{PY} -m scripts.image collections", env=_env(), pty=False)


@task(
    name="molecule",
    help={"roles": "comma-separated roles (default: all)", "command": "molecule command (default: test)"},
)
def molecule_(c: Context, roles: str = "", command: str = "test") -> None:
    """Each role's Molecule scenario in podman containers (builds wheel, images, collection first)."""
    names = " ".join(r for r in roles.split(",") if r)
    c.run(f"{PY} -m scripts.molecule_run --command {command} {names}", env=_env(), pty=False)


@task(
    help={
        "inputs": "event files or globs, space-separated (default: the site log)",
        "name": "reduction: hashrate, availability, states, temperature, leases, timeline, underperformers, all",
        "db": "databases, comma-separated: FILE.sqlite, mysql://..., influx://... (default: print)",
        "inventory": "site CSV mac,name,rack,shelf,position,model",
        "report": "write PNG plots and index.html into this directory",
        "since": "only events at or after this time (e.g. 2h, 2018-07-04T00:00-0700)",
        "until": "only events before this time",
        "extra": "more minectl reduce arguments",
    }
)
def reduce(
    c: Context,
    inputs: str = "",
    name: str = "",
    db: str = "",
    inventory: str = "",
    report: str = "",
    since: str = "",
    until: str = "",
    extra: str = "",
) -> None:
    """Replay event files into views (tables, SQLite, MariaDB, InfluxDB) and plots: minectl reduce."""
    import shlex

    args = [name] if name else []
    args += shlex.split(inputs)
    for u in filter(None, (x.strip() for x in db.split(","))):
        args += ["--db", u]
    for opt, val in (("--inventory", inventory), ("--report", report), ("--since", since), ("--until", until)):
        if val:
            args += [opt, val]
    c.run(f"{PY} -m minectl_py reduce {shlex.join(args)} {extra}", env=_env(), pty=False)


@task(
    name="molecule-site",
    help={
        "keep": "leave the containers running (podman exec -it mapp-controller bash)",
        "stages": "comma-separated molecule stages (default: every stage)",
    },
)
def molecule_site(c: Context, keep: bool = False, stages: str = "") -> None:
    """The whole appliance in containers (molecule/default): controller, central, 50 DHCP miners."""
    args = ["--keep" if keep else "", f"--stages {stages}" if stages else ""]
    c.run(f"{PY} -m scripts.molecule_site {' '.join(a for a in args if a)}", env=_env(), pty=False)


@task(
    help={
        "scale": "times the CI-bounded kill counts (default 10: about 1,500 lease-hook kills)",
        "seed": "random seed (default: a new one each run, printed)",
        "report": "append the figures to this file (default build/chaos.txt)",
    }
)
def chaos(c: Context, scale: float = 10, seed: int = 0, report: str = "build/chaos.txt") -> None:
    """Power loss, long: kill -9 the lease hook, the poller and actions at random points
    (tests/integration/test_powerloss.py at a larger scale) and at every point of a chunk."""
    import random

    seed = seed or random.randrange(1, 1 << 30)
    Path(report).parent.mkdir(parents=True, exist_ok=True)
    env = {**_env(), "MINECTL_CHAOS_SCALE": str(scale), "MINECTL_CHAOS_SEED": str(seed)}
    env["MINECTL_CHAOS_REPORT"] = str(Path(report).resolve())
    print(f"chaos: scale {scale}, seed {seed}; figures appended to {report}")
    tests = "tests/integration/test_powerloss.py tests/unit/test_powerloss_points.py tests/integration/test_diskfull.py"
    c.run(f"{PY} -m pytest -p no:cacheprovider -s {tests}", env=env, pty=False)


@task(help={"examples": "examples per property (default 20000)"})
def fuzz(c: Context, examples: int = 20000) -> None:
    """Fuzzing, long: the properties of tests/unit/test_fuzz.py with many more (random) examples."""
    env = {**_env(), "MINECTL_FUZZ_EXAMPLES": str(examples)}
    c.run(f"{PY} -m pytest -p no:cacheprovider -q tests/unit/test_fuzz.py", env=env, pty=False)
