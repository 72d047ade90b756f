"""``python -m siedob.eval`` runs the ``siedob-eval`` command line."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
