"""Filled-primitive drawing and smooth noise shared by the synthetic scene generators (streets and rooms)."""

from __future__ import annotations

from typing import Sequence, Tuple

import cv2
import numpy as np


def smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int, channels: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a coarse random grid upsampled bilinearly."""
    gh, gw = max(2, h // cell), max(2, w // cell)
    grid = rng.uniform(-1, 1, (gh, gw, channels)).astype(np.float32)
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_LINEAR)
    return out.reshape(h, w, channels)


def poly(points: Sequence[Tuple[float, float]]) -> np.ndarray:
    """Float (x, y) points to the int32 polygon array cv2 expects."""
    return np.round(np.asarray(points, np.float64)).astype(np.int32)[None]


def draw(maps: Tuple[np.ndarray, ...], values: Sequence, shape: str, *args) -> None:
    """Draw one filled primitive with the same geometry into several maps (image, labels, instances)."""
    for arr, val in zip(maps, values):
        colour = tuple(float(v) for v in np.atleast_1d(val))
        if shape == "rect":
            (x0, y0), (x1, y1) = args
            cv2.rectangle(arr, (int(x0), int(y0)), (int(x1), int(y1)), colour, -1)
        elif shape == "poly":
            cv2.fillPoly(arr, poly(args[0]), colour)
        else:
            (cx, cy), (ax, ay) = args
            cv2.ellipse(arr, (int(cx), int(cy)), (max(1, int(ax)), max(1, int(ay))), 0, 0, 360, colour, -1)
