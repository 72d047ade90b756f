"""The edit chain (docs/spec.md §6) with narrow networks: branches, style slots, batching, paste-back, sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from siedob.data.disassembly import EDIT_RULES, disassemble
from siedob.data.io import image_to_tensor
from siedob.edit import EditError, Editor, StyleBank, load_style_bank, paste_objects
from siedob.edit.chain import load_network
from siedob.labels import CAR, PERSON
from tests.support.edit import (
    CAR_FULL,
    CAR_PART,
    PERSON_PART,
    small_networks,
    toy_scene,
    write_checkpoints,
    write_style_dir,
)
from tests.support.legacy_chain import legacy_compose
from tests.support.no_wait import BlockingCopies


@pytest.fixture(scope="module")
def editor() -> Editor:
    return Editor(*small_networks(), device="cpu")


@pytest.fixture(scope="module")
def bank(tmp_path_factory) -> StyleBank:
    return load_style_bank(write_style_dir(tmp_path_factory.mktemp("style")), seed=3)


def _sequential_reference(editor: Editor, scene: dict, bank: StyleBank) -> torch.Tensor:
    """The frozen pre-model-layer chain (one object at a time, sequential paste), on its own disassembly."""
    img = image_to_tensor(scene["image"])
    mask = torch.from_numpy(scene["mask"])[None]
    lab = torch.from_numpy(scene["labels"].astype(np.int64))[None]
    lab[lab == 0] = 33
    inst = torch.from_numpy(scene["instances"].astype(np.int64))[None]
    dis = disassemble(img, lab, inst, mask, EDIT_RULES)
    nets = {
        "inpainting": editor.inpainting,
        "style": editor.style,
        "background": editor.background,
        "fusion": editor.fusion,
    }
    with torch.inference_mode():
        return legacy_compose(nets, img, lab, inst, mask, dis.fg_mask, dis.objects, bank)["result"]


def test_branches_and_style_slots(editor, bank):
    scene = toy_scene()
    st = editor.edit(scene["image"], scene["labels"], scene["instances"], scene["mask"], bank)
    got = [(o.id, o.cls, o.generation, o.style_slot) for o in st.objects]
    # cars first: inpainting objects before generation objects; the slot counts inpainted cars too
    assert got == [(CAR_PART, CAR, False, -1), (CAR_FULL, CAR, True, 1), (PERSON_PART, PERSON, False, -1)]


def test_batched_equals_one_at_a_time(editor, bank):
    scene = toy_scene(seed=1)
    ours = editor.edit(scene["image"], scene["labels"], scene["instances"], scene["mask"], bank).result
    ref = _sequential_reference(editor, scene, bank)
    assert ours.shape == ref.shape
    assert torch.allclose(ours, ref, atol=1e-4), (ours - ref).abs().max()


def test_device_side_never_waits_for_the_device(bank):
    """The whole device part of the chain runs on the meta device, where every data-dependent host read
    (``.item()``, ``bool(t)``, ``.tolist()``, ``.cpu()``, ``nonzero``, boolean indexing) raises; and every
    upload is non-blocking. So on CUDA the host never waits for the GPU between inputs and result."""
    meta = Editor(*small_networks(), device=torch.device("meta"))
    scene = toy_scene(128, 192, seed=1)
    with BlockingCopies() as uploads:
        st = meta.edit(scene["image"], scene["labels"], scene["instances"], scene["mask"], bank)
    assert uploads.found == []
    assert [o.generation for o in st.objects] == [False, True, False]
    for t in (st.result, st.fg_output, st.bg_output, st.masked_G, st.fake_F, *(o.output for o in st.objects)):
        assert t.device.type == "meta"
    assert st.result.shape == (3, 128, 192)


def test_non_256_size_and_outside_kept(editor, bank):
    scene = toy_scene(128, 384, seed=2)
    out = editor.edit(scene["image"], scene["labels"], scene["instances"], scene["mask"], bank).result
    img = image_to_tensor(scene["image"])
    assert out.shape == (3, 128, 384)
    keep = torch.from_numpy(scene["mask"] == 0)
    assert torch.equal(out[:, keep], img[:, keep])
    assert not torch.allclose(out[:, ~keep], img[:, ~keep])


def test_all_zero_mask_returns_input(editor, bank):
    scene = toy_scene()
    img = image_to_tensor(scene["image"])
    out = editor.edit(img, scene["labels"], scene["instances"], np.zeros_like(scene["mask"]), bank).result
    assert torch.equal(out, img)


def test_generation_without_style_bank_is_an_error(editor):
    scene = toy_scene()
    with pytest.raises(EditError, match="no car style references"):
        editor.edit(scene["image"], scene["labels"], scene["instances"], scene["mask"], StyleBank({}, "refs"))


def test_bad_api_inputs(editor, bank):
    scene = toy_scene()
    with pytest.raises(EditError, match="multiples of 16"):
        editor.edit(scene["image"][:120], scene["labels"][:120], scene["instances"][:120], scene["mask"][:120], bank)
    with pytest.raises(EditError, match="does not match"):
        editor.edit(scene["image"], scene["labels"][:64], scene["instances"], scene["mask"], bank)
    with pytest.raises(EditError, match="integer"):
        editor.edit(scene["image"], scene["labels"], scene["instances"].astype(np.float32), scene["mask"], bank)
    bad = scene["labels"].copy()
    bad[0, 0] = 40
    with pytest.raises(EditError, match="label ids"):
        editor.edit(scene["image"], bad, scene["instances"], scene["mask"], bank)


def _box_outputs(values):
    return torch.stack([torch.full((3, 64, 64), v) for v in values])


def test_paste_later_object_wins_within_class_and_classes_add():
    outputs = _box_outputs([0.25, 0.5, 0.125])
    inst = torch.ones(3, 1, 64, 64)
    boxes = [(0, 8, 0, 8), (4, 12, 4, 12), (6, 10, 6, 10)]
    canvas = paste_objects(outputs, inst, boxes, [CAR, CAR, PERSON], 16, 16)[0]
    assert canvas[0, 2, 2] == 0.25
    assert canvas[0, 5, 5] == 0.5  # second car overwrites the first where they overlap
    assert canvas[0, 7, 7] == 0.5 + 0.125  # the person canvas is added to the car canvas
    assert canvas[0, 14, 14] == 0
    reverse = paste_objects(outputs[[1, 0]], inst[:2], boxes[1::-1], [CAR, CAR], 16, 16)[0]
    assert reverse[0, 5, 5] == 0.25


def test_paste_matches_sequential_formula():
    g = torch.Generator().manual_seed(0)
    n, h, w = 7, 48, 80
    outputs = torch.rand(n, 3, 64, 64, generator=g) * 2 - 1
    inst = (torch.rand(n, 1, 64, 64, generator=g) > 0.4).float()
    boxes, classes = [], []
    for i in range(n):
        b0, b2 = int(torch.randint(0, h - 10, (1,), generator=g)), int(torch.randint(0, w - 10, (1,), generator=g))
        bh, bw = (20, 30) if i % 3 == 0 else (int(torch.randint(3, h - b0 + 1, (1,), generator=g)), 9)
        boxes.append((b0, min(h, b0 + bh), b2, min(w, b2 + bw)))
        classes.append(CAR if i % 2 else PERSON)
    ours = paste_objects(outputs, inst, boxes, classes, h, w)[0]
    canvases = {CAR: torch.zeros(3, h, w), PERSON: torch.zeros(3, h, w)}
    for i, (b0, b1, b2, b3) in enumerate(boxes):
        o = F.interpolate(outputs[i : i + 1], size=(b1 - b0, b3 - b2), mode="bilinear", align_corners=False)[0]
        m = F.interpolate(inst[i : i + 1], size=(b1 - b0, b3 - b2), mode="nearest")[0]
        c = canvases[classes[i]]
        c[:, b0:b1, b2:b3] = o * m + c[:, b0:b1, b2:b3] * (1 - m)
    assert torch.equal(ours, canvases[CAR] + canvases[PERSON])


def test_from_checkpoints_reads_narrow_widths(tmp_path: Path, bank):
    nets = small_networks(seed=5)
    ckpt = write_checkpoints(tmp_path / "ckpt", nets)
    loaded = Editor.from_checkpoints(ckpt, device="cpu")
    direct = Editor(*nets, device="cpu")
    scene = toy_scene(seed=4)
    a = loaded.edit(scene["image"], scene["labels"], scene["instances"], scene["mask"], bank).result
    b = direct.edit(scene["image"], scene["labels"], scene["instances"], scene["mask"], bank).result
    assert torch.allclose(a, b, atol=1e-6)
    assert loaded.inpainting.init_conv.conv.weight.shape[0] == 8
    folded = load_network(ckpt / "bg.pth", "background")
    assert "dec1.gated_conv2d.conv2d.weight_orig" not in dict(folded.named_parameters())


def test_given_disassembly_is_used_instead_of_recomputing(editor, bank, monkeypatch):
    """The fusion stage hands over its loader's disassembly: same result, and no second disassembly."""
    import siedob.edit.chain as chain

    scene = toy_scene()
    args = (scene["image"], scene["labels"], scene["instances"], scene["mask"], bank)
    st = editor.edit(*args)

    def fail(*a, **k):
        raise AssertionError("disassembled twice")

    monkeypatch.setattr(chain, "disassemble", fail)
    again = editor.edit(*args, disassembly=st.disassembly)
    assert torch.equal(again.result, st.result)
    with pytest.raises(AssertionError, match="disassembled twice"):
        editor.edit(*args)
