"""``python -m siedob.studio``: the same as ``siedob-studio``."""

import sys

from siedob.studio.cli import console

sys.exit(console())
