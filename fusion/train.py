"""Train the fusion stage (docs/spec.md §4); see `python fusion/train.py --help`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from siedob.train.cli import stage_entry  # noqa: E402

if __name__ == "__main__":
    sys.exit(stage_entry("fusion"))
