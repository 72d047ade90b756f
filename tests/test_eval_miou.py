"""mIoU: confusion matrix arithmetic, label mapping, and a scripted stand-in segmentation model."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from siedob.eval.errors import EvalError
from siedob.eval.miou import SegmentationEvaluator, confusion_matrix, iou_per_class, load_mapping, mean_iou
from tests.support.segmenter import EXPECTED_MIOU, red_black_scene, write_seg_model


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
