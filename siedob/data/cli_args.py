"""Argument types shared by the data commands (``siedob-synthetic``, ``siedob-prepare-cityscapes``)."""

from __future__ import annotations

import argparse
from typing import Tuple


def parse_size(text: str) -> Tuple[int, int]:
    """``WxH`` to (W, H)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 2048x1024, got {text!r}") from None
    return w, h
