"""Exceptions of the evaluation package; the CLI prints their message on one line and exits 2."""

from __future__ import annotations

from ..errors import SiedobError


class EvalError(SiedobError):
    """An evaluation problem the user can fix; the message says what and where."""


class BackendUnavailable(EvalError):
    """A metric network (package or weights file) is missing; trainers catch this to skip FID."""


class GeneratorUnavailable(EvalError):
    """The generation step for a mode is not wired (its module or hook does not exist yet)."""
