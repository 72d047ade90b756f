"""Side-by-side image panels with a title over each column, for edit stages and training samples."""

from __future__ import annotations

from typing import List, Sequence

import cv2
import numpy as np

#: Width of the white gap between tiles and height of the title strip.
GAP = 4
TITLE_HEIGHT = 20


def _title(text: str, width: int) -> np.ndarray:
    """A white strip with ``text`` in black, as wide as a tile."""
    strip = np.full((TITLE_HEIGHT, width, 3), 255, np.uint8)
    cv2.putText(strip, text, (4, TITLE_HEIGHT - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def titled_grid(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str]) -> np.ndarray:
    """BGR uint8 tiles (rows of equal-size tiles) in a grid with white gaps and one title per column."""
    if not rows or any(len(r) != len(titles) for r in rows):
        raise ValueError("every row needs one tile per title")
    h, w = rows[0][0].shape[:2]
    gap = np.full((h, GAP, 3), 255, np.uint8)
    lines: List[np.ndarray] = []
    header = [_title(t, w) for t in titles]
    for row in [header] + [list(r) for r in rows]:
        parts: List[np.ndarray] = []
        for tile in row:
            parts += [tile, gap[: tile.shape[0]]]
        lines.append(np.concatenate(parts[:-1], axis=1))
    return np.concatenate(lines, axis=0)
