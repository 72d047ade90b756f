"""The project's user-facing error type and the CLI wrapper that turns it into one line."""

from __future__ import annotations

import sys
from typing import Callable, Optional, Sequence


class SiedobError(Exception):
    """An error a user can act on; CLIs print its message as one line and exit with code 2."""


def run_cli(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[Sequence[str]] = None) -> int:
    """Run ``main(argv)``; a :class:`SiedobError` becomes ``error: <message>`` on stderr and code 2."""
    try:
        return main(argv)
    except SiedobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
