"""mIoU: confusion-matrix arithmetic, label ids → train ids, TorchScript segmenters, and both resolution protocols."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Tuple

import cv2
import numpy as np
import pytest
import torch

from siedob.eval.errors import BackendUnavailable, EvalError
from siedob.eval.miou import (
    SegmentationEvaluator,
    TorchScriptSegmenter,
    confusion_matrix,
    evaluate_miou,
    iou_per_class,
    label_to_train_id,
    load_mapping,
    load_segmenter,
    mean_iou,
    nearest_resize,
    pixel_accuracy,
)
from tests.support.segmenter import EXPECTED_MIOU, red_black_scene, write_seg_model

#: eval_models.md §6 (fyu/drn prepare_data.py): labelId → trainId; every other id is 255.
TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13}
TRAIN_IDS.update({27: 14, 28: 15, 31: 16, 32: 17, 33: 18})


def write(folder: Path, name: str, img: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / name), img)
    return folder / name


def test_confusion_matrix_and_mean_iou_by_hand() -> None:
    gt = np.array([0, 0, 1, 1, 2, 255])
    pred = np.array([0, 1, 1, 1, 0, 0])
    conf = confusion_matrix(pred, gt, n=3)
    np.testing.assert_array_equal(conf, [[1, 1, 0], [0, 2, 0], [1, 0, 0]])
    np.testing.assert_allclose(iou_per_class(conf), [1 / 3, 2 / 3, 0.0])
    assert mean_iou(conf) == pytest.approx(1 / 3)
    assert pixel_accuracy(conf) == pytest.approx(3 / 5)
    conf19 = confusion_matrix(pred, gt)
    assert np.isnan(iou_per_class(conf19)[5])
    assert mean_iou(conf19) == pytest.approx(1 / 3)
    with pytest.raises(EvalError, match="no labelled pixels"):
        mean_iou(np.zeros((19, 19), np.int64))


def test_label_ids_to_train_ids() -> None:
    ids = np.arange(-1, 300).reshape(1, -1)
    got = label_to_train_id(ids)[0]
    want = [TRAIN_IDS.get(int(i), 255) for i in ids[0]]
    assert got.tolist() == want
    assert label_to_train_id(np.array([[7, 33], [0, 34]], np.uint8)).tolist() == [[0, 18], [255, 255]]


def test_nearest_downsample_takes_the_centre_pixel() -> None:
    row = np.arange(16).reshape(1, 16)
    assert nearest_resize(row, (1, 4)).tolist() == [[2, 6, 10, 14]]  # PIL NEAREST / nearest-exact: 4o + 2
    assert nearest_resize(row, (1, 32)).tolist() == [np.repeat(np.arange(16), 2).tolist()]
    assert nearest_resize(row, (1, 16)) is row


def test_scripted_model_scores_by_train_id(tmp_path: Path) -> None:
    model, mapping = write_seg_model(tmp_path)
    img, lab = red_black_scene()
    seg = SegmentationEvaluator(model, mapping)
    scores = seg.segmenter.predict(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1)
    assert scores.shape == (1, 19, 8, 8)
    pred = scores.argmax(1)[0]
    assert (pred[:, :4] == 0).all() and (pred[:, 4:] == 2).all()
    images = [write(tmp_path, "img.png", img)] * 2
    labels = [write(tmp_path, "lab.png", lab)] * 2
    res = seg.evaluate(images, labels)
    assert res["value"] == pytest.approx(EXPECTED_MIOU)
    assert res["per_class"][0] == pytest.approx(100.0) and res["per_class"][10] == pytest.approx(0.0)
    assert res["per_class"][1] is None and res["classes"][10] == "sky"
    assert res["pixel_accuracy"] == pytest.approx(59 / 63 * 100)  # 63 labelled pixels, the 4 sky ones wrong
    assert res["resolution"] == "generated" and res["restricted_to_mask"] is False and res["n_images"] == 2
    assert res["segmenter"]["kind"] == "torchscript" and len(res["segmenter"]["sha256"]) == 64


def test_torchscript_defaults_and_channel_mapping(tmp_path: Path) -> None:
    model, _ = write_seg_model(tmp_path, num_classes=3)
    defaults = load_segmenter(model)  # no mapping JSON: 19 identity channels, RGB, DRN's mean/std in full
    assert isinstance(defaults, TorchScriptSegmenter) and defaults.mapping["num_classes"] == 19
    assert defaults.mapping["mean"][0] == 0.29010095242892997 and defaults.mapping["color_order"] == "rgb"
    remap = tmp_path / "remap.json"
    remap.write_text(json.dumps({"num_classes": 3, "channel_to_train_id": [13, 255, 10]}))
    seg = load_segmenter(model, mapping=remap)
    x = torch.tensor([1.0, -1.0]).view(1, 1, 1, 2).expand(1, 3, 1, 2)  # a white and a black pixel
    scores = seg.predict(x)
    assert scores.shape == (1, 19, 1, 2)
    mean = torch.tensor(seg.mapping["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(seg.mapping["std"]).view(1, 3, 1, 1)
    raw = seg.net(((x.flip(1) + 1) / 2 - mean) / std)
    torch.testing.assert_close(scores[:, 13], raw[:, 0])
    torch.testing.assert_close(scores[:, 10], raw[:, 2])
    assert bool((scores[:, [0, 1, 2, 11]] < -1e30).all())  # no channel votes for these train ids


def test_wrong_channel_count_is_an_error(tmp_path: Path) -> None:
    model, mapping = write_seg_model(tmp_path, num_classes=5, mapping_classes=19)
    seg = SegmentationEvaluator(model, mapping)
    with pytest.raises(EvalError, match=r"outputs \(1, 5, 8, 8\).*19 classes"):
        seg.segmenter.predict(torch.zeros(1, 3, 8, 8))
    with pytest.raises(BackendUnavailable, match="not found"):
        load_segmenter(tmp_path / "absent.pth")


def test_mapping_is_checked(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"num_classes": 3, "channel_to_train_id": [0, 1]}))
    with pytest.raises(EvalError, match="2 entries but num_classes is 3"):
        load_mapping(bad)
    bad.write_text(json.dumps({"num_classes": 2, "channel_to_train_id": [0, 40]}))
    with pytest.raises(EvalError, match="train ids"):
        load_mapping(bad)
    bad.write_text(json.dumps({"std": [0.5, 0.0, 0.5]}))
    with pytest.raises(EvalError, match="std > 0"):
        load_mapping(bad)
    bad.write_text("{not json")
    with pytest.raises(EvalError, match="cannot read label mapping"):
        load_mapping(bad)


def protocol_scene(tmp_path: Path) -> Tuple[List[Path], List[Path], List[Path], List[Path]]:
    """8×8 red | black image, its 32×32 full-resolution labels (road cols 0–13, building 14–31), a mask (cols 2–5)."""
    img = np.zeros((8, 8, 3), np.uint8)
    img[:, :4, 2] = 255
    full = np.full((32, 32), 11, np.uint8)
    full[:, :14] = 7
    mask = np.zeros((8, 8), np.uint8)
    mask[:, 2:6] = 255
    small = write(tmp_path, "small.png", nearest_resize(full, (8, 8)))
    return (
        [write(tmp_path, "img.png", img)],
        [write(tmp_path, "full.png", full)],
        [small],
        [write(tmp_path, "m.png", mask)],
    )


@pytest.mark.parametrize(
    ("resolution", "use_mask", "road", "building", "accuracy"),
    [
        # generated: labels downsampled by taking pixel 4o + 2 → road cols 0–2; prediction road cols 0–3
        ("generated", False, 3 / 4, 4 / 5, 7 / 8),
        # full: scores upsampled bilinearly (×4) → road for cols 0–15 against labels' 0–13
        ("full", False, 14 / 16, 16 / 18, 30 / 32),
        ("generated", True, 1 / 2, 2 / 3, 3 / 4),  # inside the mask: cols 2–5
        ("full", True, 6 / 8, 8 / 10, 14 / 16),  # the mask upsampled: cols 8–23
    ],
)
def test_resolution_protocols_and_mask(
    tmp_path: Path, resolution: str, use_mask: bool, road: float, building: float, accuracy: float
) -> None:
    model, mapping = write_seg_model(tmp_path / "seg")
    seg = load_segmenter(model, mapping=mapping)
    images, full, _, masks = protocol_scene(tmp_path)
    res = evaluate_miou(seg, images, full, resolution=resolution, masks=masks if use_mask else None)
    assert res["per_class"][0] == pytest.approx(road * 100) and res["per_class"][2] == pytest.approx(building * 100)
    assert res["value"] == pytest.approx((road + building) / 2 * 100)
    assert res["pixel_accuracy"] == pytest.approx(accuracy * 100)
    assert res["resolution"] == resolution and res["restricted_to_mask"] is use_mask


def test_generated_size_labels_and_protocol_errors(tmp_path: Path) -> None:
    model, mapping = write_seg_model(tmp_path / "seg")
    seg = load_segmenter(model, mapping=mapping)
    images, full, small, _ = protocol_scene(tmp_path)
    at_full = evaluate_miou(seg, images, full, resolution="generated")
    assert evaluate_miou(seg, images, small, resolution="generated")["value"] == at_full["value"]
    with pytest.raises(EvalError, match="resolution 'full' needs labels larger"):
        evaluate_miou(seg, images, small, resolution="full")
    wide = [write(tmp_path, "wide.png", np.full((32, 48), 7, np.uint8))]
    with pytest.raises(EvalError, match="aspect ratio"):
        evaluate_miou(seg, images, wide)
    with pytest.raises(EvalError, match="resolution must be one of generated, full"):
        evaluate_miou(seg, images, full, resolution="native")
    with pytest.raises(EvalError, match="count mismatch"):
        evaluate_miou(seg, images * 2, full)
