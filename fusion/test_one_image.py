"""The authors' edit entry point: ``python fusion/test_one_image.py [--checkpoints DIR] [--input DIR] ...``.

A thin wrapper around :mod:`siedob.edit.cli` (``siedob-edit``); see ``--help``. Without ``--input`` it edits
the bundled example; checkpoints default to ``fusion/submodels`` in the working directory.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from siedob.edit.cli import main  # noqa: E402
from siedob.errors import run_cli  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_cli(lambda argv: main(argv, prog="fusion/test_one_image.py")))
