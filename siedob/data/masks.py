"""Mask generators of the training loaders (docs/spec.md §5.2, §5.3): pure functions of an RNG and a size.

Every mask is float32 H × W with 1 where the image is to be regenerated and 0 where it is kept.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import cv2
import numpy as np


def brush_stroke_mask(
    rng: np.random.Generator, h: int, w: int, min_vertex: int, max_vertex: int, min_width: int, max_width: int
) -> np.ndarray:
    """Free-form brush-stroke mask (DeepFill v2): one polyline of one width, discs at the vertices."""
    mean_angle = 2 * math.pi / 5
    angle_range = 2 * math.pi / 15
    radius = math.sqrt(h * h + w * w) / 8
    n = int(rng.integers(min_vertex, max_vertex + 1))
    angle_min = mean_angle - rng.uniform(0, angle_range)
    angle_max = mean_angle + rng.uniform(0, angle_range)
    angles = [
        2 * math.pi - rng.uniform(angle_min, angle_max) if i % 2 == 0 else rng.uniform(angle_min, angle_max)
        for i in range(n)
    ]
    vertices = [(int(rng.integers(0, w)), int(rng.integers(0, h)))]
    for ang in angles:
        r = min(max(float(rng.normal(radius, radius / 2)), 0.0), 2 * radius)
        x = min(max(vertices[-1][0] + r * math.cos(ang), 0.0), float(w))
        y = min(max(vertices[-1][1] + r * math.sin(ang), 0.0), float(h))
        vertices.append((int(x), int(y)))
    width = int(rng.uniform(min_width, max_width))
    mask = np.zeros((h, w), np.uint8)
    cv2.polylines(mask, [np.asarray(vertices, np.int32)], False, 1, thickness=width)
    for v in vertices:
        cv2.circle(mask, v, width // 2, 1, thickness=-1)
    return mask.astype(np.float32)


def brush_mask_from_config(rng: np.random.Generator, h: int, w: int, brush: Mapping[str, int]) -> np.ndarray:
    """Brush-stroke mask with the ``{min_vertex, max_vertex, min_width, max_width}`` config block."""
    return brush_stroke_mask(
        rng, h, w, brush["min_vertex"], brush["max_vertex"], brush["min_width"], brush["max_width"]
    )


def side_mask(rng: np.random.Generator, h: int, w: int, fraction: Sequence[float]) -> np.ndarray:
    """Mask a band of random width U(fraction) of the width or height, from one random side."""
    frac = rng.uniform(fraction[0], fraction[1])
    side = int(rng.integers(0, 4))
    mask = np.zeros((h, w), np.float32)
    nh, nw = int(h * frac), int(w * frac)
    if side == 0:
        mask[:nh] = 1
    elif side == 1:
        mask[h - nh :] = 1
    elif side == 2:
        mask[:, :nw] = 1
    else:
        mask[:, w - nw :] = 1
    return mask


def right_half_mask(h: int, w: int) -> np.ndarray:
    """Mask the right half of the image."""
    mask = np.zeros((h, w), np.float32)
    mask[:, w // 2 :] = 1
    return mask


def outside_box_mask(rng: np.random.Generator, h: int, w: int, box: int) -> np.ndarray:
    """The authors' "center" mask: ones everywhere, zeros in a random box × box square [quirk — keep]."""
    top = int(rng.integers(0, h - box + 1))
    left = int(rng.integers(0, w - box + 1))
    mask = np.ones((h, w), np.float32)
    mask[top : top + box, left : left + box] = 0
    return mask


def instance_boxes_mask(instances: np.ndarray, min_area: int, margin: int) -> np.ndarray:
    """Union of the boxes (± margin) around every instance (id >= 1000) larger than ``min_area`` px."""
    h, w = instances.shape
    mask = np.zeros((h, w), np.float32)
    ids, counts = np.unique(instances[instances >= 1000], return_counts=True)
    for iid in ids[counts > min_area]:
        rows = np.flatnonzero((instances == iid).any(axis=1))
        cols = np.flatnonzero((instances == iid).any(axis=0))
        r0, r1 = max(0, rows[0] - margin), min(h, rows[-1] + margin + 1)
        c0, c1 = max(0, cols[0] - margin), min(w, cols[-1] + margin + 1)
        mask[r0:r1, c0:c1] = 1
    return mask


def object_train_mask(
    rng: np.random.Generator, index: int, size: int, brush: Mapping[str, int], side_fraction: Sequence[float]
) -> np.ndarray:
    """G_OI training mask for sample ``index``: brush stroke if index mod 3 < 2, else a side band."""
    if index % 3 < 2:
        return brush_mask_from_config(rng, size, size, brush)
    return side_mask(rng, size, size, side_fraction)


def scene_train_mask(
    rng: np.random.Generator,
    index: int,
    instances: np.ndarray,
    brush: Mapping[str, int],
    box_size: int,
    instance_box_prob: float,
    instance_box_min_area: int,
    instance_box_margin: int,
) -> np.ndarray:
    """G_B / F training mask: brush, right half or outside-of-box by index mod 3, maybe + instance boxes."""
    h, w = instances.shape
    kind = index % 3
    if kind == 0:
        mask = brush_mask_from_config(rng, h, w, brush)
    elif kind == 1:
        mask = right_half_mask(h, w)
    else:
        mask = outside_box_mask(rng, h, w, box_size)
    if rng.random() < instance_box_prob:
        mask = np.maximum(mask, instance_boxes_mask(instances, instance_box_min_area, instance_box_margin))
    return (mask > 0.5).astype(np.float32)
