"""Rules of the scene disassembly (docs/spec.md §5.3 steps 1–4) on hand-built scenes with known answers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from siedob.config import load_stage_config
from siedob.data.disassembly import (
    EDIT_RULES,
    Rules,
    background_mask_ori,
    disassemble,
    find_candidates,
    rules_from_config,
    slice_box,
    stack_objects,
)
from siedob.maps import class_map, edge_map, one_hot_labels

CAR, PERSON, ROAD, SKY, BUILDING, POLE = 26, 24, 7, 23, 11, 17

#: The F loader's rules (also the edit chain's) and G_B's, written out from docs/spec.md §5.3 step 3 and §8.
F_RULES = Rules(
    classes=(CAR, PERSON),
    fill_ratio={CAR: 0.6, PERSON: 0.35},
    inside_fraction=0.0,
    person_aspect=None,
    max_num=180,
    margin=2,
    clamp=None,
    crop_size={CAR: (64, 64), PERSON: (64, 64)},
)
GB_RULES = replace(
    F_RULES,
    inside_fraction=0.4,
    person_aspect=(2.0, 6.0),
    max_num=50,
    clamp=255,
    crop_size={CAR: (64, 64), PERSON: (64, 32)},
)


def scene(h=32, w=32):
    """Empty scene: road labels, road instance ids, zero mask."""
    labels = torch.full((1, h, w), ROAD, dtype=torch.int64)
    inst = torch.full((1, h, w), ROAD, dtype=torch.int64)
    mask = torch.zeros((1, h, w))
    return labels, inst, mask


def put(labels, inst, iid, rows, cols, cls=None):
    """Paint an instance rectangle."""
    labels[0, rows, cols] = iid // 1000 if cls is None else cls
    inst[0, rows, cols] = iid


def shape_with_area(h, w, area):
    """Boolean h×w shape whose extent is exactly h×w (full frame) with exactly ``area`` pixels."""
    s = np.zeros((h, w), bool)
    s[0, :] = s[-1, :] = s[:, 0] = s[:, -1] = True
    interior = [(r, c) for r in range(1, h - 1) for c in range(1, w - 1)]
    for r, c in interior[: area - int(s.sum())]:
        s[r, c] = True
    assert s.sum() == area
    return torch.from_numpy(s)


def test_inpainting_then_generation_each_ascending():
    labels, inst, mask = scene()
    put(labels, inst, 26002, slice(2, 8), slice(2, 8))  # half inside
    put(labels, inst, 26001, slice(10, 14), slice(10, 14))  # fully inside
    put(labels, inst, 24005, slice(2, 8), slice(20, 24))  # half inside
    put(labels, inst, 24003, slice(20, 26), slice(10, 13))  # fully inside
    put(labels, inst, 26000, slice(26, 30), slice(26, 30))  # outside
    mask[0, 5:8, :] = 1
    mask[0, 10:14, 10:14] = 1
    mask[0, 20:26, 10:13] = 1
    cands, masks = find_candidates(labels, inst, mask)
    assert [(c.id, c.is_generation) for c in cands] == [(24005, False), (26002, False), (24003, True), (26001, True)]
    assert [c.cls for c in cands] == [PERSON, CAR, PERSON, CAR]
    assert masks.shape == (4, 32, 32)
    assert int(masks[1].sum()) == 36


def test_fractional_mask_pixels_are_neither_inside_nor_outside():
    labels, inst, mask = scene()
    put(labels, inst, 26001, slice(2, 8), slice(2, 8))
    mask[0, 2:5, 2:8] = 1
    mask[0, 5:8, 2:8] = 0.5  # not outside -> still a generation object
    put(labels, inst, 26002, slice(20, 26), slice(20, 26))
    mask[0, 20:26, 20:26] = 0.999  # no pixel exactly inside -> not an object
    cands, _ = find_candidates(labels, inst, mask)
    assert [(c.id, c.is_generation) for c in cands] == [(26001, True)]


def test_class_by_majority_inside_tie_to_person_and_neither_skipped():
    labels, inst, mask = scene()
    mask[:] = 1
    mask[0, :, 16:] = 0
    # id 26001: inside 3 person + 2 car pixels; outside 10 car pixels
    inst[0, 0, 0:5] = 26001
    labels[0, 0, 0:3] = PERSON
    labels[0, 0, 3:5] = CAR
    inst[0, 0, 20:30] = 26001
    labels[0, 0, 20:30] = CAR
    # id 26002: tie 2 / 2 inside
    inst[0, 2, 0:4] = 26002
    labels[0, 2, 0:2] = CAR
    labels[0, 2, 2:4] = PERSON
    # id 26003: inside pixels show only road -> skipped
    inst[0, 4, 0:4] = 26003
    cands, masks = find_candidates(labels, inst, mask)
    assert [(c.id, c.cls) for c in cands] == [(26001, PERSON), (26002, PERSON)]
    # instance mask: (inst == id) & (label == class) over the whole image (outside car pixels excluded)
    assert int(masks[0].sum()) == 3
    assert int(masks[1].sum()) == 2


def test_box_slice_end_exclusive_and_clamps():
    assert slice_box((5, 10, 3, 8), 32, 32, F_RULES) == (3, 12, 1, 10)
    assert slice_box((1, 31, 0, 30), 32, 32, F_RULES) == (0, 32, 0, 32)
    assert slice_box((250, 255, 250, 253), 256, 256, GB_RULES) == (248, 255, 248, 255)
    assert slice_box((250, 255, 250, 253), 256, 256, F_RULES) == (248, 256, 248, 255)


def _single_object(shape, cls, top=4, left=4, h=48, w=48, inside=None):
    labels, inst, mask = scene(h, w)
    iid = cls * 1000 + 1
    rows, cols = shape.shape
    region = (slice(top, top + rows), slice(left, left + cols))
    labels[0][region][shape] = cls
    inst[0][region][shape] = iid
    if inside is None:
        mask[:] = 1
    else:
        ys, xs = torch.nonzero(inst[0] == iid, as_tuple=True)
        mask[0, ys[:inside], xs[:inside]] = 1
    image = torch.rand(3, h, w) * 2 - 1
    return image, labels, inst, mask


@pytest.mark.parametrize("cls,extent,at,above", [(CAR, 12, 135, 136), (PERSON, 17, 140, 141)])
def test_fill_ratio_must_exceed_threshold(cls, extent, at, above):
    # box = extent + 3 on each axis (2 before, r1 + 2 exclusive after): 15x15 = 225 (car), 20x20 = 400
    for area, kept in ((at, False), (above, True)):
        image, labels, inst, mask = _single_object(shape_with_area(extent, extent, area), cls)
        dis = disassemble(image, labels, inst, mask, F_RULES)
        assert len(dis.candidates) == 1
        assert len(dis.objects) == int(kept), (cls, area)
        if kept:
            assert dis.objects[0].box == (2, 2 + extent + 3, 2, 2 + extent + 3)


def test_gb_inside_fraction_must_exceed_forty_percent():
    square = torch.ones(20, 20, dtype=torch.bool)
    for inside, kept in ((160, False), (161, True)):
        image, labels, inst, mask = _single_object(square, CAR, inside=inside)
        assert len(disassemble(image, labels, inst, mask, GB_RULES).objects) == int(kept)
        assert len(disassemble(image, labels, inst, mask, F_RULES).objects) == 1


def test_gb_person_aspect_strictly_between_2_and_6_and_f_has_no_aspect_test():
    for rows, kept in ((37, False), (38, True)):  # box 40x20 (ratio 2) and 41x20
        image, labels, inst, mask = _single_object(torch.ones(rows, 17, dtype=torch.bool), PERSON, h=64, w=48)
        dis = disassemble(image, labels, inst, mask, GB_RULES)
        assert len(dis.objects) == int(kept)
        assert len(disassemble(image, labels, inst, mask, F_RULES).objects) == 1
        if kept:
            assert dis.objects[0].inst_crop.shape == (1, 64, 32)


def test_max_num_keeps_the_first_in_order_and_classes_cars_then_persons():
    labels, inst, mask = scene(64, 64)
    for k, iid in enumerate((26004, 26009, 26001, 26002, 26003, 24001)):
        put(labels, inst, iid, slice(4 + 10 * k, 12 + 10 * k), slice(4, 20))
    mask[0, :, :12] = 1  # the first two cars are partly inside (inpainting)
    mask[0, 24:62, :] = 1  # the others fully inside (generation)
    dis = disassemble(torch.zeros(3, 64, 64), labels, inst, mask, replace(F_RULES, max_num=3))
    assert [c.id for c in dis.candidates] == [26004, 26009, 24001, 26001, 26002, 26003]
    assert [o.id for o in dis.objects] == [26004, 26009, 26001, 24001]
    assert [o.is_generation for o in dis.objects] == [False, False, True, True]
    assert [o.id for o in dis.of_class(PERSON)] == [24001]


def test_crops_fg_bg_masks():
    labels, inst, mask = scene(48, 48)
    put(labels, inst, 26001, slice(10, 30), slice(5, 40))  # kept car
    put(labels, inst, 24001, slice(40, 41), slice(0, 30))  # one row: r1 - r0 == 0 -> not kept
    labels[0, 0:5, 0:5] = POLE
    mask[0, 15:45, :] = 1
    image = torch.linspace(-1, 1, 48).view(1, 1, 48).expand(3, 48, 48).clone()
    image[1] *= -1
    dis = disassemble(image, labels, inst, mask, F_RULES)
    assert [o.id for o in dis.objects] == [26001]
    obj = dis.objects[0]
    b0, b1, b2, b3 = obj.box
    assert obj.box == (8, 31, 3, 41)  # rows 10..29 -> [8, 31), cols 5..39 -> [3, 41)
    ref = F.interpolate(image[None, :, b0:b1, b2:b3], size=(64, 64), mode="bilinear", align_corners=False)[0]
    assert torch.allclose(obj.image, ref)
    masked = image * (1 - mask)
    ref_m = F.interpolate(masked[None, :, b0:b1, b2:b3], size=(64, 64), mode="bilinear", align_corners=False)[0]
    assert torch.allclose(obj.masked_image, ref_m)
    assert set(obj.labels.unique().tolist()) <= {ROAD, CAR}  # nearest: no blended label values
    assert set(obj.mask.unique().tolist()) == {0.0, 1.0}
    assert set(obj.inst_crop.unique().tolist()) == {0.0, 1.0}
    # the car covers rows 2..22 of the 23-row box: the top crop row is background, the middle is car
    assert obj.inst_crop[0, 0].sum() == 0 and obj.inst_crop[0, 32].sum() > 40
    assert torch.equal(dis.fg_mask[0], ((inst[0] == 26001) & (labels[0] == CAR)).float())
    assert torch.equal(dis.bg_mask, 1 - dis.fg_mask)
    batch = stack_objects(dis.objects)
    assert batch["image"].shape == (1, 3, 64, 64) and batch["inst_crop"].shape == (1, 1, 64, 64)


def test_no_objects_gives_empty_lists_and_full_background():
    labels, inst, mask = scene()
    mask[:] = 1
    dis = disassemble(torch.zeros(3, 32, 32), labels, inst, mask, F_RULES)
    assert dis.candidates == [] and dis.objects == []
    assert dis.bg_mask.sum() == 32 * 32


def test_background_mask_ori_whole_region_or_masked_part():
    labels, _, mask = scene(8, 8)
    labels[0, 0:2] = SKY  # only inside -> masked part
    labels[0, 2:4] = BUILDING  # only outside -> excluded
    labels[0, 4:5] = POLE  # inside but not a background class
    mask[0, 0:1] = 1
    mask[0, 4:5] = 1
    mask[0, 5:6, 0:3] = 1  # road inside and outside -> whole road region
    mask[0, 1:2] = 0.5  # fractional sky pixels are not "inside"
    out = background_mask_ori(labels, mask)[0]
    expected = torch.zeros(8, 8)
    expected[0] = 1
    expected[5:8] = 1
    assert torch.equal(out, expected)


def test_edge_map_marks_both_pixels_of_a_differing_pair():
    t = torch.zeros(1, 5, 6, dtype=torch.int64)
    t[0, :, 3:] = 7
    t[0, 4, 0] = 9
    e = edge_map(t)[0]
    expected = torch.zeros(5, 6)
    expected[:, 2:4] = 1
    expected[4, 0:2] = 1
    expected[3, 0] = 1
    assert torch.equal(e, expected)


def test_one_hot_and_class_map():
    lab = torch.tensor([[[1, 33], [26, 24]]])
    oh = one_hot_labels(lab[None])[0]
    assert oh.shape == (34, 2, 2) and oh[33, 0, 1] == 1 and oh[26, 1, 0] == 1 and oh.sum() == 4
    m = torch.ones(1, 2, 2)
    assert torch.equal(class_map(m, CAR)[:, 0, 0], torch.tensor([1.0, 0, 0]))
    assert torch.equal(class_map(m, PERSON)[:, 0, 0], torch.tensor([0.0, 1, 0]))


def test_rules_equal_the_spec():
    """The edit chain's constants and both loaders' rules equal F_RULES / GB_RULES (docs/spec.md §5.3, §8)."""
    fusion = load_stage_config("fusion")["data"]
    background = load_stage_config("background")["data"]
    assert EDIT_RULES == F_RULES
    assert rules_from_config(fusion, train=False) == F_RULES and rules_from_config(fusion, train=True) == F_RULES
    assert rules_from_config(background, train=True) == GB_RULES
    assert rules_from_config(background, train=False) == replace(GB_RULES, clamp=None)  # the clamp is training-only
