"""Power-loss harness: kill a writer (``SIGKILL``) at chosen or random points, then check the
site the way docs/security.md defines "consistent".

* :func:`crash_at` forks; the child projects one batch as the poller/hook would
  (``record_and_apply``) and sends itself ``SIGKILL`` just before its ``k``-th mutating system
  call (``write``, ``rename``, ``link``, ``unlink``, ``symlink``, ``mkdir``, ``ftruncate``...),
  or half way through a ``write`` (a torn record). Every ``k`` from 1 up is every crash point.
* :func:`check_site` is what must hold after any crash, once the next writer has taken the
  state lock (here :func:`project.recover`): the log parses (bad records only torn ones, each
  its own line; no id twice), no half files in the state directory (every value file one
  newline-terminated line, ``miner.json`` parses and agrees with the value files, links lead to
  folders), and ``minectl state rebuild`` from the log equals the live directory (dot files, the
  writers' scratch, excepted).

Used by tests/integration/test_powerloss.py (bounded) and ``./dev chaos`` (long).
"""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from minectl_py import fastjson
from minectl_py.events.reader import EventReader, ReadStats
from minectl_py.events.segments import log_set
from minectl_py.state import compare, project, values

#: os functions that change a file or a directory: a crash may fall before any of them.
MUTATORS = ("write", "pwrite", "rename", "link", "unlink", "symlink", "mkdir", "rmdir", "ftruncate", "fdatasync")
#: Reasons a torn record is reported with (events/reader.py).
TORN_REASONS = {"not JSON", "truncated last line", "invalid UTF-8"}


def trace(work: Callable[[], object]) -> list[str]:
    """The names of ``work``'s mutating calls, in order (run in a forked child)."""
    with tempfile.NamedTemporaryFile(prefix="rl-trace-") as f:
        crash_at(work, 0, trace_to=f.name)
        return Path(f.name).read_text().split()


def crash_at(work: Callable[[], object], k: int, *, torn: bool = False, trace_to: str = "") -> bool:
    """Run ``work`` in a forked child killed before its ``k``-th mutating call (with
    ``torn``: the ``k``-th call, if a ``write``, writes half its bytes first). Returns True if
    the child was killed, False if ``work`` finished before reaching ``k`` calls."""
    pid = os.fork()
    if pid == 0:  # child
        try:
            count = [0]
            names: list[str] = []
            real = {name: getattr(os, name) for name in MUTATORS}

            def wrap(name: str) -> Callable[..., Any]:
                fn = real[name]

                def inner(*a: Any, **kw: Any) -> Any:
                    count[0] += 1
                    if trace_to:
                        names.append(name)
                    if count[0] == k:
                        if torn and name == "write" and len(a[1]) > 1:
                            fn(a[0], bytes(a[1])[: len(a[1]) // 2])
                        os.kill(os.getpid(), signal.SIGKILL)
                    return fn(*a, **kw)

                return inner

            for name in MUTATORS:
                setattr(os, name, wrap(name))
            work()
            if trace_to:
                Path(trace_to).write_text(" ".join(names))
            os._exit(0)
        except BaseException:  # the child must never return into pytest
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return True
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
    if code != 0:
        raise AssertionError(f"crash_at: the child failed (exit {code}) at k={k}")
    return False


def _render_ok(d: Path, vals: dict[str, Any]) -> list[str]:
    problems = []
    names = {p.name for p in d.iterdir() if not p.name.startswith(".")} - {project.MINER_JSON}
    if names != set(vals):
        problems.append(f"{d.name}: value files {sorted(names ^ set(vals))} disagree with miner.json")
    for k in names & set(vals):
        data = (d / k).read_bytes()
        if data != (values.render(k, vals[k]) + "\n").encode("utf-8", "replace"):
            problems.append(f"{d.name}/{k}: {data[:40]!r} is not miner.json's value")
    return problems


def half_files(state: Path) -> list[str]:
    """Every way the state directory is not whole (empty list: whole)."""
    problems: list[str] = []
    miners = state / project.MINERS
    for d in sorted(miners.iterdir()) if miners.is_dir() else []:
        if d.name.startswith("."):
            continue
        try:
            vals = fastjson.loads((d / project.MINER_JSON).read_bytes())
        except (OSError, ValueError) as e:
            problems.append(f"{d.name}/miner.json: {e}")
            continue
        if not isinstance(vals, dict):
            problems.append(f"{d.name}/miner.json: not an object")
            continue
        problems += _render_ok(d, vals)
    for sub in (project.BY_IP, project.BY_NAME):
        for link in sorted((state / sub).iterdir()) if (state / sub).is_dir() else []:
            if link.name.startswith("."):
                continue
            if not link.is_symlink() or not link.resolve().is_dir():
                problems.append(f"{sub}/{link.name}: does not lead to a miner folder")
    return problems


def read_log(log: Path) -> tuple[list[dict[str, Any]], ReadStats]:
    stats = ReadStats()
    recs = list(EventReader(log_set(str(log)), stats=stats))
    return recs, stats


def check_site(state: Path, log: Path, *, recover: bool = True) -> dict[str, Any]:
    """Recover as the next writer would, then assert the site is consistent. Returns figures."""
    project.forget_cache()
    res = project.recover(str(state)) if recover and state.is_dir() else None
    recs, stats = read_log(log)
    odd = set(stats.reasons) - TORN_REASONS
    assert not odd, f"bad records that are not torn ones: {stats.samples}"
    ids = [r.get("id") for r in recs]
    assert len(ids) == len(set(ids)), "a record id appears twice in the log"
    problems = half_files(state) if state.is_dir() else []
    assert not problems, "half files:\n" + "\n".join(problems[:20])
    with tempfile.TemporaryDirectory(prefix="rl-rebuild-", dir=state.parent) as tmp:
        into = Path(tmp) / "state"
        project.forget_cache(str(into))
        project.apply_many(str(into), (r for r in recs if r.get("cmd") in project.PROJECTED))
        live = compare.snapshot(str(state)) if state.is_dir() else {}
        lines = compare.diff(live, compare.snapshot(str(into)))
    assert not lines, "live directory != rebuild:\n" + "\n".join(lines)
    redone = (res or {}).get("redone", 0)
    return {"recovered": res is not None, "redone": redone, "bad": stats.bad, "records": len(recs)}


def journal_pending(state: Path) -> bool:
    j = state / ".journal"
    return j.exists() and j.stat().st_size > 0


class Tmpfs:
    """A tmpfs of ``size`` mounted on ``path`` (root only; CI runs as root). ``umount`` on exit,
    lazily if something still holds it. Used for speed (no ext4 inode costs) and, small, for
    disk-full tests."""

    def __init__(self, path: Path, size: str) -> None:
        self.path = path
        self.size = size

    def __enter__(self) -> Path:
        import subprocess

        self.path.mkdir(parents=True, exist_ok=True)
        opts = f"size={self.size},mode=0755"
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(self.path)], check=True)
        return self.path

    def __exit__(self, *exc: object) -> None:
        import subprocess

        if subprocess.run(["umount", str(self.path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(self.path)], check=False)
