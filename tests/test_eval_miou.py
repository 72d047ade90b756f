"""mIoU: confusion matrix arithmetic, label mapping, and a scripted stand-in segmentation model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Tuple

import cv2
import numpy as np
import pytest
import torch

from siedob.eval.errors import EvalError
from siedob.eval.miou import SegmentationEvaluator, confusion_matrix, iou_per_class, load_mapping, mean_iou


class RedIsRoad(torch.nn.Module):
    """Stand-in segmenter: channel 0 (road) where the first input channel is positive, else channel 2."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], self.num_classes, x.shape[2], x.shape[3])
        out[:, 0] = x[:, 0]
        out[:, 2] = -x[:, 0]
        return out


def write_seg_model(folder: Path, num_classes: int = 19, mapping_classes: int = 19) -> Tuple[Path, Path]:
    """Script and save :class:`RedIsRoad` with a mapping JSON (RGB, mean = std = 0.5)."""
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / f"seg{num_classes}.pt"
    torch.jit.script(RedIsRoad(num_classes)).save(str(model))
    mapping = folder / "mapping.json"
    mapping.write_text(
        json.dumps({"num_classes": mapping_classes, "color_order": "rgb", "mean": [0.5] * 3, "std": [0.5] * 3})
    )
    return model, mapping


def red_black_scene() -> Tuple[np.ndarray, np.ndarray]:
    """8×8 BGR image (left half red, right black) and labelIds: road | building, sky bottom-right, one unlabeled."""
    img = np.zeros((8, 8, 3), np.uint8)
    img[:, :4, 2] = 255
    lab = np.full((8, 8), 11, np.uint8)
    lab[:, :4] = 7
    lab[7, 4:] = 23
    lab[0, 0] = 0
    return img, lab


#: road IoU 15/15, building 28/(28 + 4), sky 0/4; the other 16 classes are absent (left out of the mean).
EXPECTED_MIOU = (1.0 + 28 / 32 + 0.0) / 3 * 100


def test_confusion_matrix_and_mean_iou_by_hand() -> None:
    gt = np.array([0, 0, 1, 1, 2, 255])
    pred = np.array([0, 1, 1, 1, 0, 0])
    conf = confusion_matrix(pred, gt, n=3)
    np.testing.assert_array_equal(conf, [[1, 1, 0], [0, 2, 0], [1, 0, 0]])
    np.testing.assert_allclose(iou_per_class(conf), [1 / 3, 2 / 3, 0.0])
    assert mean_iou(conf) == pytest.approx(1 / 3)
    conf19 = confusion_matrix(pred, gt)
    assert np.isnan(iou_per_class(conf19)[5])
    assert mean_iou(conf19) == pytest.approx(1 / 3)


def test_scripted_model_scores_by_train_id(tmp_path: Path) -> None:
    model, mapping = write_seg_model(tmp_path)
    img, lab = red_black_scene()
    cv2.imwrite(str(tmp_path / "img.png"), img)
    cv2.imwrite(str(tmp_path / "lab.png"), lab)
    seg = SegmentationEvaluator(model, mapping)
    pred = seg.predict(img)
    assert (pred[:, :4] == 0).all() and (pred[:, 4:] == 2).all()
    res = seg.evaluate([tmp_path / "img.png"] * 2, [tmp_path / "lab.png"] * 2)
    assert res["value"] == pytest.approx(EXPECTED_MIOU)
    assert res["per_class"][0] == pytest.approx(100.0) and res["per_class"][10] == pytest.approx(0.0)
    assert res["per_class"][1] is None


def test_wrong_channel_count_is_an_error(tmp_path: Path) -> None:
    model, mapping = write_seg_model(tmp_path, num_classes=5, mapping_classes=19)
    seg = SegmentationEvaluator(model, mapping)
    with pytest.raises(EvalError, match=r"outputs \(1, 5, 8, 8\).*19 classes"):
        seg.predict(red_black_scene()[0])


def test_mapping_is_checked(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"num_classes": 3, "channel_to_train_id": [0, 1]}))
    with pytest.raises(EvalError, match="2 entries but num_classes is 3"):
        load_mapping(bad)
    bad.write_text(json.dumps({"num_classes": 2, "channel_to_train_id": [0, 40]}))
    with pytest.raises(EvalError, match="train ids"):
        load_mapping(bad)
    bad.write_text("{not json")
    with pytest.raises(EvalError, match="cannot read label mapping"):
        load_mapping(bad)
