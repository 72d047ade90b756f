"""Paths of the test suite's own data."""

from __future__ import annotations

from pathlib import Path

#: tests/fixtures: the released files' key lists and parameter counts.
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
