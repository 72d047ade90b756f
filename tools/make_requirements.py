"""Write ``requirements.txt`` from ``pyproject.toml``'s ``[project] dependencies`` (run: ``make requirements``).

pyproject.toml is the one list; requirements.txt is its copy for ``pip install -r``, checked equal by
tests/test_packaging.py. Needs Python 3.11 (tomllib) or the ``tomli`` package.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
HEADER = (
    "# Generated from pyproject.toml ([project] dependencies) by `make requirements`; do not edit.\n"
    "# tests/test_packaging.py fails when the two differ.\n"
)


def render(pyproject: Path) -> str:
    """The text of requirements.txt for the dependencies listed in ``pyproject``."""
    with pyproject.open("rb") as f:
        deps = tomllib.load(f)["project"]["dependencies"]
    return HEADER + "".join(f"{d}\n" for d in deps)


def main() -> int:
    out = ROOT / "requirements.txt"
    out.write_text(render(ROOT / "pyproject.toml"), encoding="utf-8")
    sys.stdout.write(f"wrote {out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
