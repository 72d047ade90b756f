"""mIoU of generated images under a supplied segmentation network (TorchScript + label mapping JSON).

Field practice for Cityscapes is DRN-D-105; we take any TorchScript model mapping N×3×H×W to
N×C×h×w logits. The mapping JSON says how to feed it and which Cityscapes train id each output
channel is::

    {"num_classes": 19, "channel_to_train_id": [0, 1, ..., 18], "color_order": "rgb",
     "mean": [0.290101, 0.328081, 0.286964], "std": [0.182954, 0.186566, 0.184475]}

(``mean``/``std`` apply to [0, 1] pixels; the defaults shown are DRN's Cityscapes values.)
Ground truth is Cityscapes labelIds, mapped to the 19 train ids of :mod:`siedob.labels`; pixels
with train id 255 are ignored. Classes absent from both prediction and ground truth are left out
of the mean (NaN IoU), as DRN's evaluation does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from siedob.data.io import read_bgr

from ..labels import LABELS
from .errors import BackendUnavailable, EvalError
from .images import check_same_count, read_label

PathLike = Union[str, Path]
NUM_TRAIN_IDS = 19
IGNORE = 255
DRN_CITYSCAPES_MEAN = (0.290101, 0.328081, 0.286964)
DRN_CITYSCAPES_STD = (0.182954, 0.186566, 0.184475)


def label_to_train_id_lut() -> np.ndarray:
    """256-entry lookup table label id → train id (255 = ignore)."""
    lut = np.full(256, IGNORE, dtype=np.uint8)
    for lab in LABELS:
        lut[lab.id] = lab.train_id
    return lut


def confusion_matrix(pred: np.ndarray, gt: np.ndarray, n: int = NUM_TRAIN_IDS) -> np.ndarray:
    """n×n counts, rows = ground truth, columns = prediction, over pixels with gt < n and pred < n."""
    pred = np.asarray(pred, np.int64).ravel()
    gt = np.asarray(gt, np.int64).ravel()
    if pred.shape != gt.shape:
        raise EvalError(f"prediction and label sizes differ ({pred.size} vs {gt.size} pixels)")
    keep = (gt >= 0) & (gt < n) & (pred >= 0) & (pred < n)
    return np.bincount(n * gt[keep] + pred[keep], minlength=n * n).reshape(n, n)


def iou_per_class(conf: np.ndarray) -> np.ndarray:
    """IoU per class from a confusion matrix; NaN where the class appears in neither map."""
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.maximum(union, 1), np.nan)


def mean_iou(conf: np.ndarray) -> float:
    """Mean of the defined per-class IoUs (×100 is the usual percentage)."""
    ious = iou_per_class(conf)
    if np.all(np.isnan(ious)):
        raise EvalError("mIoU undefined: no labelled pixels")
    return float(np.nanmean(ious))


def load_mapping(path: PathLike) -> Dict[str, Any]:
    """Read and check a label mapping JSON; defaults: identity channels, RGB, DRN's mean/std."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise EvalError(f"{path}: cannot read label mapping JSON ({exc})") from None
    n = int(raw.get("num_classes", NUM_TRAIN_IDS))
    mapping = {
        "num_classes": n,
        "channel_to_train_id": [int(t) for t in raw.get("channel_to_train_id", range(n))],
        "color_order": raw.get("color_order", "rgb"),
        "mean": [float(v) for v in raw.get("mean", DRN_CITYSCAPES_MEAN)],
        "std": [float(v) for v in raw.get("std", DRN_CITYSCAPES_STD)],
    }
    ids = mapping["channel_to_train_id"]
    if len(ids) != n:
        raise EvalError(f"{path}: channel_to_train_id has {len(ids)} entries but num_classes is {n}")
    if any(not (0 <= t < NUM_TRAIN_IDS or t == IGNORE) for t in ids):
        raise EvalError(f"{path}: channel_to_train_id values must be train ids 0..18 or 255 (ignore)")
    if mapping["color_order"] not in ("rgb", "bgr"):
        raise EvalError(f"{path}: color_order must be rgb or bgr")
    return mapping


class SegmentationEvaluator:
    """Segment generated images with a TorchScript model and score them against label maps."""

    def __init__(self, model: PathLike, mapping: PathLike, device: str = "cpu") -> None:
        model = Path(model)
        if not model.is_file():
            raise BackendUnavailable(f"segmentation model not found at {model}")
        try:
            self.net = torch.jit.load(str(model), map_location="cpu").eval().to(device)
        except (RuntimeError, ValueError) as exc:
            raise EvalError(f"{model}: not a TorchScript file ({str(exc).splitlines()[0]})") from None
        self.model_path = model
        self.mapping = load_mapping(mapping)
        self.device = torch.device(device)
        lut = np.full(self.mapping["num_classes"], IGNORE, dtype=np.int64)
        lut[:] = self.mapping["channel_to_train_id"]
        self.channel_lut = torch.from_numpy(lut)
        self.label_lut = label_to_train_id_lut()

    @torch.no_grad()
    def predict(self, bgr_u8: np.ndarray) -> np.ndarray:
        """H×W train-id prediction of one uint8 BGR image."""
        img = bgr_u8[:, :, ::-1] if self.mapping["color_order"] == "rgb" else bgr_u8
        x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float()[None] / 255.0
        mean = torch.tensor(self.mapping["mean"]).view(1, 3, 1, 1)
        std = torch.tensor(self.mapping["std"]).view(1, 3, 1, 1)
        out = self.net(((x - mean) / std).to(self.device))
        if isinstance(out, (tuple, list)):
            out = out[0]
        if out.ndim != 4 or out.shape[1] != self.mapping["num_classes"]:
            raise EvalError(
                f"{self.model_path}: model outputs {tuple(out.shape)}, but the mapping says "
                f"{self.mapping['num_classes']} classes (N×{self.mapping['num_classes']}×H×W expected)"
            )
        if out.shape[-2:] != x.shape[-2:]:
            out = F.interpolate(out.float(), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.channel_lut[out.argmax(1)[0].cpu()].numpy()

    def confusion_of_files(self, images: Sequence[Path], labels: Sequence[Path], progress: bool = False) -> np.ndarray:
        """Summed 19×19 confusion matrix over images paired with labelIds maps in sorted order."""
        check_same_count(images, labels, "generated images", "label maps")
        conf = np.zeros((NUM_TRAIN_IDS, NUM_TRAIN_IDS), dtype=np.int64)
        for img_path, lab_path in tqdm(list(zip(images, labels)), desc="mIoU", unit="img", disable=not progress):
            img = read_bgr(img_path)
            gt = self.label_lut[np.clip(read_label(lab_path), 0, 255).astype(np.int64)]
            if gt.shape != img.shape[:2]:
                raise EvalError(f"{lab_path}: label size {gt.shape} differs from image {img_path} {img.shape[:2]}")
            conf += confusion_matrix(self.predict(img), gt)
        return conf

    def evaluate(self, images: Sequence[Path], labels: Sequence[Path], progress: bool = False) -> Dict[str, Any]:
        """mIoU (percent) and per-class IoUs for the report."""
        conf = self.confusion_of_files(images, labels, progress)
        ious: List[Any] = [None if np.isnan(v) else round(float(v) * 100, 4) for v in iou_per_class(conf)]
        return {"value": mean_iou(conf) * 100, "per_class": ious, "model": str(self.model_path)}
