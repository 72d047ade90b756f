"""G_B's boundary-anchored patch windows follow the authors' ``crop_patch`` rule (known answers)."""

from __future__ import annotations

import random

import cv2
import numpy as np
import torch

from siedob.train.authors_batch import patch_boxes_from_draws
from siedob.train.patches import boundary_pixels, cut_patches, sample_patch_boxes


class ScriptedRandom:
    """Stands in for Python's ``random``: scripted ``randrange`` / ``randint`` results, calls recorded."""

    def __init__(self, *draws):
        self.draws, self.calls = list(draws), []

    def randrange(self, start, stop):
        self.calls.append(("randrange", start, stop))
        return self.draws.pop(0)

    def randint(self, a, b):
        self.calls.append(("randint", a, b))
        return self.draws.pop(0)


def test_boundary_is_mask_minus_opencv_erode_row_major():
    rng = np.random.default_rng(0)
    m = (rng.random((20, 24)) > 0.4).astype(np.uint8)
    expected = np.argwhere(m - cv2.erode(m, np.ones((2, 2), np.uint8)))
    assert np.array_equal(boundary_pixels(m), expected)
    square = np.zeros((8, 8), np.float32)
    square[2:5, 3:6] = 1  # erode(2×2, anchor (1, 1)) keeps rows 3..4, cols 4..5: boundary = top row and left column
    assert boundary_pixels(square).tolist() == [[2, 3], [2, 4], [2, 5], [3, 3], [4, 3]]


def test_windows_even_sided_centred_and_clamped_below_the_last_row():
    m = np.zeros((1, 256, 256), np.float32)
    m[0, 100:200, 100:200] = 1
    pts = boundary_pixels(m[0])
    first = int(np.flatnonzero((pts == [100, 150]).all(1))[0])
    last = len(pts) - 1  # (199, 100): the boundary is the square's top row and left column
    r = ScriptedRandom(first, 111, last, 160, 0, 97)
    boxes = sample_patch_boxes(m, 3, (96, 160), r)
    assert r.calls == [("randrange", 0, len(pts)), ("randint", 96, 160)] * 3
    # side 2·int(111/2) = 110 centred on (100, 150); side 160 at (199, 100): rows clamp to [95, 255), columns
    # [20, 180); side 96 at (100, 100)
    assert pts[last].tolist() == [199, 100]
    assert boxes == [[(45, 95, 110), (95, 20, 160), (52, 52, 96)]]
    for top, left, side in boxes[0]:
        assert side % 2 == 0 and top + side <= 255 and left + side <= 255


def test_window_near_the_top_left_starts_at_zero():
    m = np.zeros((1, 256, 256), np.float32)
    m[0, 10:60, 20:80] = 1
    r = ScriptedRandom(0, 100)  # boundary pixel (10, 20), side 100: both windows start at 0
    assert sample_patch_boxes(m, 1, (96, 160), r) == [[(0, 0, 100)]]


def test_sample_without_boundary_gets_no_patch_and_draws_nothing():
    m = np.zeros((2, 64, 64), np.float32)
    m[1, 10:30, 10:30] = 1
    r = ScriptedRandom(5, 20)
    boxes = sample_patch_boxes(m, 1, (16, 32), r)
    assert boxes[0] == [] and len(boxes[1]) == 1 and len(r.calls) == 2
    assert cut_patches(torch.zeros(2, 3, 64, 64), [[], []], 32) is None


def test_default_draws_come_from_python_random():
    m = np.zeros((1, 64, 64), np.float32)
    m[0, 8:40, 8:40] = 1
    random.seed(3)
    a = sample_patch_boxes(m, 4, (16, 32))
    random.seed(3)
    assert sample_patch_boxes(m, 4, (16, 32)) == a


def test_cut_patches_crops_and_resizes_each_window():
    x = torch.arange(2 * 16 * 16, dtype=torch.float32).reshape(2, 1, 16, 16)
    out = cut_patches(x, [[(0, 0, 4)], [(8, 4, 4), (2, 2, 2)]], 4)
    assert out.shape == (3, 1, 4, 4)
    assert torch.equal(out[0, 0], x[0, 0, :4, :4]) and torch.equal(out[1, 0], x[1, 0, 8:12, 4:8])


def test_recorded_draws_become_patch_boxes():
    draws = [
        {"sample": 1, "patch": 0, "rows": [101, 255], "cols": [0, 154]},
        {"sample": 0, "patch": 0, "rows": [5, 15], "cols": [7, 17]},
    ]
    assert patch_boxes_from_draws(draws, 2) == [[(5, 7, 10)], [(101, 0, 154)]]
