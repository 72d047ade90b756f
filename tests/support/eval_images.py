"""Synthetic images for the evaluation tests: drawn scenes, written as PNGs or stacked as a batch."""

from __future__ import annotations

from pathlib import Path
from typing import List

import cv2
import numpy as np
import torch

from siedob.data.io import image_to_tensor


def draw_scenes(n: int, size: int = 64, seed: int = 0) -> List[np.ndarray]:
    """Deterministic synthetic BGR uint8 scenes: a colour gradient with random boxes and discs."""
    rng = np.random.default_rng(seed)
    out = []
    ramp = np.linspace(0, 1, size)[None, :, None]
    for _ in range(n):
        lo, hi = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        img = np.repeat(lo + (hi - lo) * ramp, size, axis=0).astype(np.uint8)
        for _ in range(4):
            x0, y0 = (int(v) for v in rng.integers(0, size - 8, 2))
            w, h = (int(v) for v in rng.integers(6, size // 2, 2))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            if rng.random() < 0.5:
                cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), colour, -1)
            else:
                cv2.circle(img, (x0, y0), w // 2 + 2, colour, -1)
        out.append(img)
    return out


def write_images(folder: Path, images: List[np.ndarray]) -> List[Path]:
    """Write images as PNGs named 000.png, 001.png … and return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        paths.append(folder / f"{i:03d}.png")
        cv2.imwrite(str(paths[-1]), img)
    return paths


def as_batch(images: List[np.ndarray]) -> torch.Tensor:
    """uint8 BGR images → N×3×H×W tensor in [-1, 1]."""
    return torch.stack([image_to_tensor(im) for im in images])
