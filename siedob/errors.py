"""The project's user-facing error type and the CLI wrapper that turns errors into one line and exit code 2."""

from __future__ import annotations

import sys
from typing import Callable, Optional, Sequence


class SiedobError(Exception):
    """An error a user can act on; CLIs print its message as one line and exit with code 2."""


class UsageError(SiedobError):
    """A bad command line: unknown option, missing or conflicting arguments."""


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


def os_error_message(exc: OSError) -> str:
    """``<file>: <reason>`` of an operating-system error (permission denied, no space, not a folder, ...)."""
    reason = exc.strerror or str(exc)
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    return f"{' -> '.join(names)}: {reason}" if names else reason


def run_cli(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[Sequence[str]] = None) -> int:
    """Run ``main(argv)``; our errors and OS errors become ``error: <one line>`` on stderr and exit code 2."""
    try:
        return main(argv)
    except SiedobError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
    except OSError as exc:
        print(f"error: {one_line(os_error_message(exc))}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 2
