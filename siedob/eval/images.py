"""Minimal image listing and reading for evaluation (BGR, float in [-1, 1], docs/spec.md §1)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Union

import numpy as np
import torch

from siedob.data.io import read_unchanged

from .errors import EvalError

PathLike = Union[str, Path]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def list_images(folder: PathLike) -> List[Path]:
    """Image files directly inside ``folder``, sorted by name; error if missing or empty."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EvalError(f"{folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise EvalError(f"{folder}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
    return files


def check_same_count(a: Sequence[Path], b: Sequence[Path], what_a: str, what_b: str) -> None:
    """Raise a one-line error unless two sorted lists that are paired by position have equal length."""
    if len(a) != len(b):
        raise EvalError(f"count mismatch: {len(a)} {what_a} vs {len(b)} {what_b} (they are paired in sorted order)")


def read_label(path: PathLike) -> np.ndarray:
    """Read a label-id map (H×W) as stored, without the loaders' 0 → 33 remap (mIoU needs raw ids)."""
    lab = read_unchanged(path)
    return lab[:, :, 0] if lab.ndim == 3 else lab


def quantize(x: torch.Tensor) -> torch.Tensor:
    """What the docs/spec.md §1 writer would store for ``x`` (float32 clip, truncate), read back to [-1, 1].

    Like the writer, this is not idempotent on read-back images: float32 rounding moves 63 of the
    256 levels down by one, so image files are never passed through it.
    """
    u8 = torch.clamp((x + 1) / 2 * 255, 0, 255).floor()
    return (u8 / 255.0 - 0.5) / 0.5
