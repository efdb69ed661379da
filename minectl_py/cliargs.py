"""The argument parser every ``minectl`` command starts from.

One place for what all of them share: ``prog`` as the admin typed it (``minectl state``),
a description, and an epilog of examples and exit codes kept as written (line breaks and
indentation matter in it).
"""

from __future__ import annotations

import argparse


def parser(prog: str, description: str, epilog: str) -> argparse.ArgumentParser:
    """A command's parser; its epilog is printed as written."""
    return argparse.ArgumentParser(
        prog=prog, description=description, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
