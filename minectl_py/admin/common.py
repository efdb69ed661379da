"""Shared plumbing for the admin commands: errors to exit codes, loading, selecting."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from minectl_py import config
from minectl_py.admin import fleet, perms
from minectl_py.admin.select import Selection, SelectorError, from_args
from minectl_py.admin.where import WhereError
from minectl_py.cliargs import parser as parser  # the admin commands' parser

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_NOMATCH, EXIT_PERM = 0, 1, 2, 3, 4


class Exit(Exception):
    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def add_colour(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--color",
        "--colour",
        dest="color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour by health (auto: only on a terminal, and not with NO_COLOR)",
    )


def fix_negative(argv: list[str], opts: tuple[str, ...] = ("--sort",)) -> list[str]:
    """``--sort -temp`` -> ``--sort=-temp`` (argparse would take ``-temp`` for an option)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in opts and i + 1 < len(argv) and argv[i + 1].startswith("-") and argv[i + 1] != "--":
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def run(prog: str, body: Callable[[], int]) -> int:
    """Run a command body, turning our exceptions into messages and exit codes."""
    try:
        return body()
    except Exit as e:
        if e.message:
            print(f"{prog}: {e.message}", file=sys.stderr)
        return e.code
    except perms.PermissionDenied as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return EXIT_PERM
    except (SelectorError, WhereError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except fleet.StateError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except PermissionError as e:
        print(f"{prog}: permission denied: {e}", file=sys.stderr)
        return EXIT_PERM


def load_selected(args: Any, prog: str) -> tuple[list[dict[str, Any]], Selection]:
    sel = from_args(args)
    state = config.state_dir()
    perms.check_read(state)
    miners = fleet.load(state)
    chosen = sel.apply(miners)
    for t in sel.unmatched():
        print(f"{prog}: warning: {t!r} matches no miner", file=sys.stderr)
    return chosen, sel
