"""References to the specification point at docs/spec.md and at sections it has."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "docs" / "spec.md"
#: Folders and files of ours that may cite the specification (build outputs and the venv left out).
SOURCES = (
    "siedob",
    "tests",
    "bench",
    "tools",
    "docs",
    "data",
    "instance_inpainting",
    "instance_style",
    "background",
    "fusion",
)
#: The old citation form (built from parts so this file does not cite it).
OLD = "SPEC" + " §"
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".txt"}


def _sections() -> set:
    headings = re.findall(r"^#{2,3} (\d+(?:\.\d+)?)[. ]", SPEC.read_text(encoding="utf-8"), flags=re.M)
    return set(headings)


def _texts():
    yield ROOT / "README.md"
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix in SUFFIXES and path.is_file() and "__pycache__" not in path.parts:
                yield path


def test_spec_has_the_numbered_sections():
    assert {"1", "2", "3", "3.1", "3.6", "4", "5", "5.3", "6", "8"} <= _sections()


def test_every_spec_reference_names_an_existing_section():
    sections = _sections()
    bad, cited = [], 0
    for path in _texts():
        rel = path.relative_to(ROOT)
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if OLD in line:
                bad.append(f"{rel}:{n}: cites {OLD!r}, write 'docs/spec.md §'")
            if "docs/spec.md §" in line or path == SPEC:
                for sec in re.findall(r"§(\d+(?:\.\d+)?)", line):
                    cited += 1
                    if sec not in sections:
                        bad.append(f"{rel}:{n}: §{sec} is not a section of docs/spec.md")
    assert not bad, "\n".join(bad)
    assert cited > 50, "expected the code's many docs/spec.md references to be found"
