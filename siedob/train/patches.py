"""G_B's boundary-anchored patches (docs/spec.md §4): windows around random pixels of the mask boundary.

The windows are drawn on the host from the loader's mask (before upload), so the training step never
reads the device back. The rule is the authors' ``crop_patch``: a uniformly chosen boundary pixel of
``m = mask·bg_mask`` (``m − erode(m, 2×2)``, listed row-major), a side ``2·int(s/2)`` for ``s`` uniform in
``side_range``, the window centred on the pixel and shifted to ``[0, 2·half)`` or ``[H−1−2·half, H−1)``
near the border, so the last row/column is never inside (their 255 for 256-pixel scenes). A sample
without boundary gets no patch (the authors' loop skips it too; with no patch in the whole batch their
step crashes, ours skips the patch terms).
"""

from __future__ import annotations

import random
from typing import Any, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

#: One window: (top, left, side); the rows are [top, top + side), the columns [left, left + side).
Box = Tuple[int, int, int]


def boundary_pixels(mask: np.ndarray) -> np.ndarray:
    """Row-major (row, col) pairs of ``m − erode(m, 2×2 rect)`` of an H×W 0/1 mask (OpenCV anchor and border)."""
    m = (np.asarray(mask) > 0.5).astype(np.uint8)
    edge = m - cv2.erode(m, np.ones((2, 2), np.uint8))
    return np.stack(np.nonzero(edge), axis=1)


def _window(centre: int, half: int, limit: int) -> int:
    """Start of the authors' window of side ``2·half`` around ``centre`` whose end never passes ``limit``."""
    if centre < half:
        return 0
    if centre + half >= limit:
        return limit - 2 * half
    return centre - half


def sample_patch_boxes(
    masks: np.ndarray, per_sample: int, side_range: Sequence[int], rng: Any = None
) -> List[List[Box]]:
    """Per sample of a B×H×W host mask, ``per_sample`` windows drawn by the authors' rule (none without boundary).

    Draws come from ``rng`` (a ``random.Random``; default Python's global ``random``, as the authors'), in their order:
    ``randrange(n_boundary)`` then ``randint(lo, hi)`` per window.
    """
    rng = random if rng is None else rng
    masks = np.asarray(masks)
    _, h, w = masks.shape
    lo, hi = int(side_range[0]), int(side_range[1])
    boxes: List[List[Box]] = []
    for m in masks:
        pts = boundary_pixels(m)
        picks: List[Box] = []
        if len(pts):
            for _ in range(per_sample):
                row, col = (int(v) for v in pts[rng.randrange(0, len(pts))])
                half = min(int(rng.randint(lo, hi) / 2), (h - 1) // 2, (w - 1) // 2)
                picks.append((_window(row, half, h - 1), _window(col, half, w - 1), 2 * half))
        boxes.append(picks)
    return boxes


def host_mask(mask: torch.Tensor, bg_mask: torch.Tensor) -> np.ndarray:
    """``mask·bg_mask`` of a loader batch as a B×H×W array (free for the loader's host tensors; a device batch
    would be read back here, which is why the trainer samples before the upload)."""
    return (mask * bg_mask)[:, 0].cpu().numpy()


def cut_patches(x: torch.Tensor, boxes: Sequence[Sequence[Box]], size: int) -> Optional[torch.Tensor]:
    """Crop every window of every sample from B×C×H×W ``x``, resized bilinearly to size × size (None if none)."""
    crops = [
        F.interpolate(
            x[i : i + 1, :, top : top + s, left : left + s], size=(size, size), mode="bilinear", align_corners=False
        )
        for i, sample in enumerate(boxes)
        for top, left, s in sample
    ]
    return torch.cat(crops) if crops else None
