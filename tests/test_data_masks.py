"""Mask generators of the training loaders (docs/spec.md §5.2, §5.3)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from siedob.data.masks import (
    brush_stroke_mask,
    instance_boxes_mask,
    object_train_mask,
    outside_box_mask,
    right_half_mask,
    scene_train_mask,
    side_mask,
)

SCENE_BRUSH = {"min_vertex": 4, "max_vertex": 8, "min_width": 50, "max_width": 140}
OBJECT_BRUSH = {"min_vertex": 3, "max_vertex": 6, "min_width": 30, "max_width": 60}


def rng(seed=0):
    return np.random.default_rng(seed)


def is_side_band(m):
    """True when m is a band of full rows or full columns touching one border."""
    rows, cols = m.all(1), m.all(0)
    if m.sum() == rows.sum() * m.shape[1] and rows.any():
        idx = np.flatnonzero(rows)
        return idx[0] == 0 or idx[-1] == m.shape[0] - 1
    if m.sum() == cols.sum() * m.shape[0] and cols.any():
        idx = np.flatnonzero(cols)
        return idx[0] == 0 or idx[-1] == m.shape[1] - 1
    return False


@pytest.mark.parametrize("seed", range(5))
def test_brush_stroke_binary_deterministic_and_at_least_one_disc(seed):
    m = brush_stroke_mask(rng(seed), 256, 256, **SCENE_BRUSH)
    assert m.shape == (256, 256) and m.dtype == np.float32
    assert set(np.unique(m)) <= {0.0, 1.0}
    assert np.array_equal(m, brush_stroke_mask(rng(seed), 256, 256, **SCENE_BRUSH))
    assert m.sum() >= math.pi * 24**2  # a disc of the minimum width 50 at every vertex
    assert not np.array_equal(m, brush_stroke_mask(rng(seed + 100), 256, 256, **SCENE_BRUSH))


def test_brush_stroke_width_grows_area():
    thin = np.mean([brush_stroke_mask(rng(s), 64, 64, 3, 6, 5, 6).mean() for s in range(20)])
    thick = np.mean([brush_stroke_mask(rng(s), 64, 64, 3, 6, 30, 60).mean() for s in range(20)])
    assert thick > 2 * thin


@pytest.mark.parametrize("seed", range(8))
def test_side_mask_is_a_border_band_of_the_given_fraction(seed):
    m = side_mask(rng(seed), 64, 64, (0.15, 0.65))
    assert is_side_band(m.astype(bool))
    assert int(64 * 0.15) * 64 <= m.sum() <= int(64 * 0.65) * 64


def test_side_mask_uses_all_four_sides():
    seen = set()
    for s in range(40):
        m = side_mask(rng(s), 32, 32, (0.2, 0.3)).astype(bool)
        full = [m[0].all(), m[-1].all(), m[:, 0].all(), m[:, -1].all()]
        assert sum(full) == 1
        seen.add(full.index(True))
    assert seen == {0, 1, 2, 3}


def test_right_half_mask():
    m = right_half_mask(4, 6)
    assert np.array_equal(m, np.array([[0, 0, 0, 1, 1, 1]] * 4, np.float32))


@pytest.mark.parametrize("seed", range(5))
def test_outside_box_mask_masks_everything_but_one_box(seed):
    m = outside_box_mask(rng(seed), 256, 256, 128)
    zeros = np.argwhere(m == 0)
    assert len(zeros) == 128 * 128
    (r0, c0), (r1, c1) = zeros.min(0), zeros.max(0)
    assert (r1 - r0 + 1, c1 - c0 + 1) == (128, 128)
    assert m.sum() == 256 * 256 - 128 * 128


def test_instance_boxes_mask_margin_and_area_threshold():
    inst = np.full((100, 100), 7, np.int32)
    inst[10:40, 20:50] = 26001  # 900 px: boxed with a 5 px margin
    inst[70:90, 70:90] = 24001  # exactly 400 px: not larger than 400, ignored
    inst[0:5, 90:100] = 26  # a class id (< 1000) is not an instance
    m = instance_boxes_mask(inst, 400, 5)
    expected = np.zeros((100, 100), np.float32)
    expected[5:45, 15:55] = 1
    assert np.array_equal(m, expected)


def test_instance_boxes_clamped_at_the_border():
    inst = np.zeros((50, 50), np.int32)
    inst[0:25, 30:50] = 26001
    m = instance_boxes_mask(inst, 400, 5)
    assert m[0:30, 25:50].all() and m.sum() == 30 * 25


def test_scene_train_mask_kind_by_index_mod_3():
    inst = np.full((256, 256), 7, np.int32)
    inst[200:240, 10:60] = 26001
    args = (SCENE_BRUSH, 128, 0.0, 400, 5)
    assert np.array_equal(scene_train_mask(rng(), 1, inst, *args), right_half_mask(256, 256))
    assert np.array_equal(scene_train_mask(rng(), 4, inst, *args), right_half_mask(256, 256))
    box = scene_train_mask(rng(), 2, inst, *args)
    assert (box == 0).sum() == 128 * 128
    brush = scene_train_mask(rng(), 3, inst, *args)
    assert 0 < brush.sum() < 256 * 256 and not np.array_equal(brush, right_half_mask(256, 256))
    with_boxes = scene_train_mask(rng(), 1, inst, SCENE_BRUSH, 128, 1.0, 400, 5)
    assert with_boxes[195:245, 5:65].all() and with_boxes[:, :5].sum() == 0
    assert set(np.unique(with_boxes)) == {0.0, 1.0}


def test_object_train_mask_brush_for_mod_0_1_side_for_mod_2():
    for i in range(9):
        m = object_train_mask(rng(i), i, 64, OBJECT_BRUSH, (0.15, 0.65))
        assert m.shape == (64, 64) and m.sum() > 0
        assert is_side_band(m.astype(bool)) == (i % 3 == 2)
