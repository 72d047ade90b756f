"""Packaging files agree with pyproject.toml: requirements.txt, and the licence files the wheel carries."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:
    tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml needs Python 3.11 (tomllib) or tomli")

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def _requirement_lines(path: Path) -> list:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def test_requirements_txt_lists_exactly_the_pyproject_dependencies():
    deps = _pyproject()["project"]["dependencies"]
    reqs = _requirement_lines(ROOT / "requirements.txt")
    assert reqs == deps, "requirements.txt differs from pyproject.toml's dependencies: run `make requirements`"


def test_license_files_are_declared_and_present():
    patterns = _pyproject()["tool"]["setuptools"]["license-files"]
    declared = {p for pattern in patterns for p in ROOT.glob(pattern) if p.is_file()}
    assert {ROOT / "LICENSE", ROOT / "NOTICE"} <= declared
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    named = set(re.findall(r"LICENSES/[\w.-]+\.txt", (ROOT / "NOTICE").read_text(encoding="utf-8")))
    assert named, "NOTICE names no licence text"
    for rel in sorted(named):
        assert ROOT / rel in declared, f"NOTICE names {rel}, which is missing or not declared in license-files"
