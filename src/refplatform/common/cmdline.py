"""The window's commands (seed, migrate, gateway): bad input is one line and exit code 2."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

EXIT_BAD_INPUT = 2


class CommandError(Exception):
    """Bad input the user caused; the message is the one line to print."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (`refplatform: ...`) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Print the problem in one line and exit 2 (argparse prints the whole usage first)."""
        raise SystemExit(fail(f"{self.prog.removeprefix('python -m refplatform ')}: {message}"))


def fail(message: str) -> int:
    """Print `refplatform: <message>` on standard error; the exit code for bad input."""
    print(f"refplatform: {message}", file=sys.stderr, flush=True)
    return EXIT_BAD_INPUT
