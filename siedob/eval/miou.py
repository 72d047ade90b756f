"""mIoU of generated images under a segmentation network: DRN-D-105 (the official state dict) or TorchScript.

:func:`load_segmenter` reads either fyu/drn's ``drn-d-105_ms_cityscapes.pth`` (a bare ``DRNSeg`` state
dict; :mod:`siedob.eval.drn`) or any TorchScript model mapping N×3×H×W to N×C×h×w scores, described
by an optional mapping JSON (defaults shown)::

    {"num_classes": 19, "channel_to_train_id": [0, 1, ..., 18], "color_order": "rgb",
     "mean": [0.2901, 0.3281, 0.2870], "std": [0.1830, 0.1866, 0.1845]}

(``mean``/``std`` apply to [0, 1] pixels; the defaults are DRN's Cityscapes values in full.)
Ground truth is Cityscapes labelIds mapped to the 19 train ids (everything else 255, ignored). The
19×19 confusion matrix is summed over the whole set; IoU per class, mIoU = nanmean (classes absent
from both labels and predictions are left out). Two evaluation resolutions (see the docs page
evaluation-models.md): ``generated`` scores the prediction at the generated size against labels
nearest-downsampled to it; ``full`` upsamples the log-softmax bilinearly to the full-resolution labels.

ADE20K-Room (``profile="ade20k-room"``): DRN-D-105 segments Cityscapes only, so the segmenter must be a
TorchScript model of the user's (UperNet-101 is the field's choice) whose output has 150 channels
(labels 1..150) or 151 (labels 0..150; channel 0, "other", is dropped before the argmax). Its mapping
JSON may give ``num_classes`` (150 or 151), ``color_order``, ``mean`` and ``std`` (defaults: RGB and
ImageNet's mean/std, what ADE20K segmenters are trained with). Ground truth is the raw label map:
labels 1..150 are the 150 scored classes, label 0 ("other") is ignored; mIoU is the same nanmean over
the classes present.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from siedob.data.io import image_to_tensor, read_bgr, read_test_mask
from siedob.profiles import ProfileLike, as_profile, get_profile

from ..labels import LABELS
from .drn import CITYSCAPES_MEAN, CITYSCAPES_STD, DRNSeg, normalise_bgr
from .errors import BackendUnavailable, EvalError
from .images import check_same_count, read_label

PathLike = Union[str, Path]
NUM_TRAIN_IDS = 19
IGNORE = 255
RESOLUTIONS = ("generated", "full")
TRAIN_NAMES: Tuple[str, ...] = tuple(
    next(lab.name for lab in LABELS if lab.train_id == t) for t in range(NUM_TRAIN_IDS)
)
#: md5 of fyu/drn's drn-d-105_ms_cityscapes.pth as pinned by third-party evaluators (not verified here).
OFFICIAL_DRN_MD5 = "22f6aac9dc4dcf255bad997463fd40d0"
#: Output channels an ADE20K-Room segmenter may have: 150 (labels 1..150) or 151 (labels 0..150).
ADE_CHANNELS = (150, 151)
#: ImageNet's mean / std of [0, 1] RGB pixels: the default input normalisation of an ADE20K segmenter.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def label_to_train_id_lut() -> np.ndarray:
    """256-entry lookup table label id → train id (255 = ignore)."""
    lut = np.full(256, IGNORE, dtype=np.uint8)
    for lab in LABELS:
        lut[lab.id] = lab.train_id
    return lut


_LUT = label_to_train_id_lut()


@dataclass(frozen=True, eq=False)
class SegClasses:
    """The classes mIoU scores for one dataset profile: their names and a label id → class index table."""

    profile: str
    names: Tuple[str, ...]
    lut: np.ndarray

    @property
    def n(self) -> int:
        """Number of scored classes (the confusion matrix is n × n)."""
        return len(self.names)

    def to_classes(self, labels: np.ndarray) -> np.ndarray:
        """Raw label ids → class indices 0..n−1; ids that are not scored (and −1, > 255) → 255 (ignored)."""
        labels = np.asarray(labels)
        inside = (labels >= 0) & (labels <= 255)
        return np.where(inside, self.lut[np.clip(labels, 0, 255).astype(np.int64)], IGNORE).astype(np.uint8)


#: Cityscapes: the 19 train ids.
CITYSCAPES_CLASSES = SegClasses("cityscapes", TRAIN_NAMES, _LUT)


@cache
def ade_classes() -> SegClasses:
    """ADE20K-Room: labels 1..150 as classes 0..149; label 0 ("other") ignored."""
    labels = get_profile("ade20k-room").labels
    lut = np.full(256, IGNORE, dtype=np.uint8)
    lut[1 : len(labels)] = np.arange(len(labels) - 1)
    return SegClasses("ade20k-room", tuple(lab.name for lab in labels[1:]), lut)


def seg_classes(profile: ProfileLike = None) -> SegClasses:
    """The classes mIoU scores for a dataset profile (Cityscapes by default)."""
    name = as_profile(profile).name
    if name == "cityscapes":
        return CITYSCAPES_CLASSES
    if name == "ade20k-room":
        return ade_classes()
    raise EvalError(f"mIoU has no class table for the {name} dataset profile")


def label_to_train_id(labels: np.ndarray) -> np.ndarray:
    """Cityscapes labelIds → train ids 0..18; every other id (0–6, 9, 10, 14–16, 18, 29, 30, −1, > 33) → 255."""
    return CITYSCAPES_CLASSES.to_classes(labels)


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
    """Mean of the defined per-class IoUs as a fraction (×100 is the usual percentage)."""
    ious = iou_per_class(conf)
    if np.all(np.isnan(ious)):
        raise EvalError("mIoU undefined: no labelled pixels")
    return float(np.nanmean(ious))


def pixel_accuracy(conf: np.ndarray) -> float:
    """Fraction of the scored (non-ignored) pixels whose prediction is right (SPADE's "accu")."""
    total = conf.sum()
    if total == 0:
        raise EvalError("pixel accuracy undefined: no labelled pixels")
    return float(np.trace(conf) / total)


def nearest_resize(arr: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an H×W map with half-pixel centres (PIL NEAREST, torch ``nearest-exact``).

    Output pixel o takes source pixel floor((o + 0.5)·in/out); for an exact ×4 reduction that is 4o + 2.
    """
    h, w = arr.shape[:2]
    if (h, w) == tuple(size):
        return arr
    rows = np.minimum(((np.arange(size[0]) + 0.5) * h / size[0]).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * w / size[1]).astype(np.int64), w - 1)
    return arr[rows[:, None], cols[None, :]]


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks (segmenter files are a few hundred MB)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_mapping(path: Optional[PathLike]) -> Tuple[Dict[str, Any], str]:
    """A mapping JSON's object (``None``: empty) and how messages name it."""
    raw: Dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise EvalError(f"{path}: cannot read label mapping JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise EvalError(f"{path}: label mapping JSON must be an object")
    return raw, str(path) if path is not None else "default mapping"


def _check_input(mapping: Dict[str, Any], where: str) -> None:
    """The colour order and normalisation of a mapping must be usable."""
    if mapping["color_order"] not in ("rgb", "bgr"):
        raise EvalError(f"{where}: color_order must be rgb or bgr")
    if len(mapping["mean"]) != 3 or len(mapping["std"]) != 3 or min(mapping["std"]) <= 0:
        raise EvalError(f"{where}: mean and std need three values each (std > 0)")


def load_mapping(path: Optional[PathLike]) -> Dict[str, Any]:
    """Read and check a label mapping JSON (``None``: the defaults, identity channels, RGB, DRN's mean/std)."""
    raw, where = _read_mapping(path)
    n = int(raw.get("num_classes", NUM_TRAIN_IDS))
    mapping = {
        "num_classes": n,
        "channel_to_train_id": [int(t) for t in raw.get("channel_to_train_id", range(n))],
        "color_order": raw.get("color_order", "rgb"),
        "mean": [float(v) for v in raw.get("mean", CITYSCAPES_MEAN)],
        "std": [float(v) for v in raw.get("std", CITYSCAPES_STD)],
    }
    ids = mapping["channel_to_train_id"]
    if len(ids) != n:
        raise EvalError(f"{where}: channel_to_train_id has {len(ids)} entries but num_classes is {n}")
    if any(not (0 <= t < NUM_TRAIN_IDS or t == IGNORE) for t in ids):
        raise EvalError(f"{where}: channel_to_train_id values must be train ids 0..18 or 255 (ignore)")
    _check_input(mapping, where)
    return mapping


def load_ade_mapping(path: Optional[PathLike]) -> Dict[str, Any]:
    """Read and check the mapping JSON of an ADE20K-Room segmenter (``None``: either channel count, RGB, ImageNet).

    ``num_classes`` None accepts 150 or 151 output channels; there is no channel table (the channels are the labels).
    """
    raw, where = _read_mapping(path)
    if "channel_to_train_id" in raw:
        raise EvalError(
            f"{where}: channel_to_train_id maps to Cityscapes train ids; an ADE20K-Room segmenter's channels "
            "are labels 1..150 (150 channels) or 0..150 (151)"
        )
    n = raw.get("num_classes")
    if n is not None and (not isinstance(n, int) or n not in ADE_CHANNELS):
        raise EvalError(f"{where}: num_classes must be 150 or 151 for an ADE20K-Room segmenter, got {n!r}")
    mapping = {
        "num_classes": n,
        "color_order": raw.get("color_order", "rgb"),
        "mean": [float(v) for v in raw.get("mean", IMAGENET_MEAN)],
        "std": [float(v) for v in raw.get("std", IMAGENET_STD)],
    }
    _check_input(mapping, where)
    return mapping


class Segmenter:
    """A segmentation network seen through our conventions: BGR batches in [-1, 1] → N×n×H×W scores.

    Channel t of :meth:`predict` is class t of :attr:`classes` (Cityscapes: train id t; ADE20K-Room:
    label t + 1); its argmax is the prediction. ``kind``, ``path`` and ``file_sha256`` go into the report.
    """

    kind = "segmenter"
    classes: SegClasses = CITYSCAPES_CLASSES

    def __init__(self, path: Path, device: Union[str, torch.device]) -> None:
        self.path = path
        self.device = torch.device(device)
        self.file_sha256 = file_sha256(path)

    def scores(self, x_bgr: torch.Tensor) -> torch.Tensor:
        """The network's N×n×H'×W' scores (H', W' may exceed H, W)."""
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, bgr_batch_in_minus1_1: torch.Tensor) -> torch.Tensor:
        """N×n×H×W class scores (log-probabilities for DRN) of an N×3×H×W BGR batch in [-1, 1]."""
        x = bgr_batch_in_minus1_1
        if x.dim() != 4 or x.shape[1] != 3:
            raise EvalError(f"{self.path}: segmenter input must be N×3×H×W, got {tuple(x.shape)}")
        out = self.scores(x.to(self.device).float())
        return out[:, :, : x.shape[2], : x.shape[3]]

    def describe(self) -> Dict[str, Any]:
        """What the report records about the segmenter."""
        return {"kind": self.kind, "file": str(self.path), "sha256": self.file_sha256}


class DRNSegmenter(Segmenter):
    """DRN-D-105 from a ``DRNSeg`` state dict; input RGB, DRN's Cityscapes mean/std, no resizing.

    The network's output is 8·ceil(H/8) × 8·ceil(W/8); the extra bottom rows / right columns
    (inputs not divisible by 8) lie beyond the image and are cropped.
    """

    kind = "drn-d-105"

    def __init__(self, path: Path, state: Dict[str, torch.Tensor], device: Union[str, torch.device]) -> None:
        super().__init__(path, device)
        net = DRNSeg()
        load_drn_state(net, state, path)
        self.net = net.eval().requires_grad_(False).to(self.device)
        self.md5_is_official = _md5(path) == OFFICIAL_DRN_MD5

    def scores(self, x_bgr: torch.Tensor) -> torch.Tensor:
        return self.net(normalise_bgr(x_bgr))[0]

    def describe(self) -> Dict[str, Any]:
        return {
            **super().describe(),
            "official_md5": self.md5_is_official,
            "color_order": "rgb",
            "mean": list(CITYSCAPES_MEAN),
            "std": list(CITYSCAPES_STD),
        }


class TorchScriptSegmenter(Segmenter):
    """A TorchScript segmenter described by a mapping (channel → train id, colour order, mean/std).

    With the ADE20K-Room classes its channels are the labels (150: 1..150, 151: 0..150, channel 0 dropped).
    """

    kind = "torchscript"

    def __init__(
        self,
        path: Path,
        mapping: Optional[PathLike],
        device: Union[str, torch.device],
        classes: SegClasses = CITYSCAPES_CLASSES,
    ) -> None:
        super().__init__(path, device)
        self.classes = classes
        try:
            self.net = torch.jit.load(str(path), map_location="cpu").eval().to(self.device)
        except (RuntimeError, ValueError) as exc:
            raise EvalError(f"{path}: not a TorchScript file ({str(exc).splitlines()[0]})") from None
        self.mapping_file = None if mapping is None else str(mapping)
        self.groups: List[List[int]] = []
        if classes is not CITYSCAPES_CLASSES:
            self.mapping = load_ade_mapping(mapping)
            return
        self.mapping = load_mapping(mapping)
        ids = torch.tensor(self.mapping["channel_to_train_id"])
        #: per train id, the model channels that vote for it (max over them); ignore-mapped channels drop out
        self.groups = [torch.nonzero(ids == t).flatten().tolist() for t in range(NUM_TRAIN_IDS)]

    def _check_channels(self, out: Any) -> None:
        """The output must be N×C×H×W with the channel count the mapping (or the ADE rule) expects."""
        m = self.mapping
        if self.classes is CITYSCAPES_CLASSES:
            n = m["num_classes"]
            ok, expected = (n,), f"the mapping says {n} classes (N×{n}×H×W expected)"
        else:
            ok = ADE_CHANNELS if m["num_classes"] is None else (m["num_classes"],)
            expected = (
                f"an ADE20K-Room segmenter needs {' or '.join(map(str, ok))} channels "
                "(150: labels 1..150, 151: labels 0..150)"
            )
        if not isinstance(out, torch.Tensor) or out.dim() != 4 or out.shape[1] not in ok:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise EvalError(f"{self.path}: model outputs {shape}, but {expected}")

    def scores(self, x_bgr: torch.Tensor) -> torch.Tensor:
        m = self.mapping
        x = x_bgr.flip(1) if m["color_order"] == "rgb" else x_bgr
        mean = torch.tensor(m["mean"], device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(m["std"], device=x.device).view(1, 3, 1, 1)
        out = self.net(((x + 1) / 2 - mean) / std)
        if isinstance(out, (tuple, list)):
            out = out[0]
        self._check_channels(out)
        out = out.float()
        if out.shape[-2:] != x.shape[-2:]:
            out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
        if self.classes is not CITYSCAPES_CLASSES:
            return out[:, 1:] if out.shape[1] == self.classes.n + 1 else out
        if m["channel_to_train_id"] == list(range(NUM_TRAIN_IDS)):
            return out
        lowest = torch.finfo(out.dtype).min
        return torch.stack(
            [out[:, g].amax(1) if g else out.new_full(out[:, 0].shape, lowest) for g in self.groups], dim=1
        )

    def describe(self) -> Dict[str, Any]:
        out = {**super().describe(), "mapping": self.mapping_file, **self.mapping}
        if self.classes is not CITYSCAPES_CLASSES:
            out["classes"] = f"{self.classes.profile}: labels 1..{self.classes.n} (0 'other' ignored)"
        return out


def _md5(path: Path) -> str:
    h = hashlib.md5()  # noqa: S324 - a published file fingerprint, not security
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_torchscript(path: Path) -> bool:
    """TorchScript archives hold ``code/`` and ``constants.pkl``; torch.save archives do not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(name.endswith("/constants.pkl") or "/code/" in name for name in zf.namelist())


def _state_dict_of(path: Path) -> Dict[str, torch.Tensor]:
    """The tensors of a state-dict file; unwraps ``{"state_dict": …}`` and a DataParallel ``module.`` prefix."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the file is not a usable checkpoint
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EvalError(f"{path}: not a segmentation checkpoint (TorchScript or state dict): {first}") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise EvalError(f"{path}: expected a state dict of tensors, got {type(obj).__name__}")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def load_drn_state(net: DRNSeg, state: Dict[str, torch.Tensor], path: PathLike) -> None:
    """Load a DRN-D-105 state dict into ``net``, keys matched strictly.

    Only the BN counters (absent from pre-0.4.1 files, unused in eval) may be missing; ``net`` keeps its own.
    """
    expected = net.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise EvalError(f"{path}: not a DRN-D-105 (DRNSeg, 19 classes) state dict: keys {'; '.join(parts)}")
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise EvalError(
                f"{path}: {key} has shape {tuple(value.shape)}, "
                f"DRN-D-105 with 19 classes needs {tuple(expected[key].shape)}"
            )
    full = {k: state.get(k, expected[k]) for k in expected}
    net.load_state_dict({k: v.to(expected[k].dtype) for k, v in full.items()}, strict=True)


def load_segmenter(
    path: PathLike,
    device: Union[str, torch.device] = "cpu",
    mapping: Optional[PathLike] = None,
    profile: ProfileLike = None,
) -> Segmenter:
    """A DRN-D-105 state dict (e.g. ``drn-d-105_ms_cityscapes.pth``) or a TorchScript model (with ``mapping``).

    ``profile`` (default Cityscapes) decides the classes scored; ADE20K-Room takes TorchScript models only.
    """
    classes = seg_classes(profile)
    path = Path(path)
    if not path.is_file():
        raise BackendUnavailable(f"segmentation model not found at {path}")
    if _is_torchscript(path):
        return TorchScriptSegmenter(path, mapping, device, classes)
    if classes is not CITYSCAPES_CLASSES:
        raise EvalError(
            f"{path}: not a TorchScript file; DRN-D-105 segments Cityscapes only, so {classes.profile} mIoU needs a "
            "TorchScript segmenter with 150 or 151 output channels (e.g. UperNet-101)"
        )
    if mapping is not None:
        raise EvalError(f"{path}: a label mapping applies to TorchScript models only; DRN state dicts need none")
    return DRNSegmenter(path, _state_dict_of(path), device)


def _score_one(
    seg: Segmenter,
    bgr: torch.Tensor,
    train_ids: np.ndarray,
    resolution: str,
    valid: Optional[np.ndarray],
    where: str,
) -> np.ndarray:
    """n×n confusion of one image (1×3×h×w) against its H×W class indices, optionally only where ``valid``."""
    h, w = bgr.shape[-2:]
    lh, lw = train_ids.shape
    if lh * w != lw * h:
        raise EvalError(f"{where}: label map {lw}×{lh} does not have the generated image's aspect ratio ({w}×{h})")
    if resolution == "full" and lh <= h and lw <= w:
        raise EvalError(
            f"{where}: resolution 'full' needs labels larger than the generated image "
            f"({lw}×{lh} vs {w}×{h}): give full-resolution label maps or use 'generated'"
        )
    scores = seg.predict(bgr)
    if resolution == "generated":
        gt = nearest_resize(train_ids, (h, w))
        pred = scores.argmax(1)[0].cpu().numpy()
    else:
        up = F.interpolate(scores, size=(lh, lw), mode="bilinear", align_corners=False)
        pred, gt = up.argmax(1)[0].cpu().numpy(), train_ids
    if valid is not None:
        gt = np.where(nearest_resize(valid, gt.shape), gt, IGNORE)
    return confusion_matrix(pred, gt, seg.classes.n)


def evaluate_miou(
    seg: Segmenter,
    images: Sequence[Path],
    labels: Sequence[Path],
    resolution: str = "generated",
    masks: Optional[Sequence[Path]] = None,
    progress: bool = False,
) -> Dict[str, Any]:
    """mIoU (percent), per-class IoU and pixel accuracy of images paired with label maps in sorted order.

    The classes are the segmenter's (Cityscapes train ids, or ADE20K labels 1..150); ``masks`` (paired
    too, 1 = edited) restrict the score to the edited pixels.
    """
    if resolution not in RESOLUTIONS:
        raise EvalError(f"mIoU resolution must be one of {', '.join(RESOLUTIONS)}, got {resolution!r}")
    check_same_count(images, labels, "generated images", "label maps")
    if masks is not None:
        check_same_count(images, masks, "generated images", "masks")
    classes = seg.classes
    conf = np.zeros((classes.n, classes.n), dtype=np.int64)
    pairs = list(zip(images, labels, masks if masks is not None else [None] * len(images)))
    for img_path, lab_path, mask_path in tqdm(pairs, desc="mIoU", unit="img", disable=not progress):
        bgr = image_to_tensor(read_bgr(img_path))[None]
        gt = classes.to_classes(read_label(lab_path))
        valid = None if mask_path is None else read_test_mask(mask_path) > 0.5
        conf += _score_one(seg, bgr, gt, resolution, valid, str(lab_path))
    return miou_summary(
        conf, classes.names, resolution=resolution, restricted_to_mask=masks is not None, n_images=len(images)
    )


def miou_summary(conf: np.ndarray, class_names: Sequence[str] = TRAIN_NAMES, **protocol: Any) -> Dict[str, Any]:
    """The report entry of a confusion matrix: mIoU and pixel accuracy in percent, IoU per named class."""
    ious: List[Optional[float]] = [None if np.isnan(v) else float(v) * 100 for v in iou_per_class(conf)]
    return {
        "value": mean_iou(conf) * 100,
        "per_class": ious,
        "classes": list(class_names),
        "pixel_accuracy": pixel_accuracy(conf) * 100,
        **protocol,
    }


class SegmentationEvaluator:
    """File-level mIoU with one segmenter (what ``siedob-eval`` uses); ``mapping`` only for TorchScript."""

    def __init__(
        self, model: PathLike, mapping: Optional[PathLike] = None, device: str = "cpu", profile: ProfileLike = None
    ) -> None:
        self.segmenter = load_segmenter(model, device, mapping, profile)
        self.model_path = Path(model)

    def evaluate(
        self,
        images: Sequence[Path],
        labels: Sequence[Path],
        progress: bool = False,
        resolution: str = "generated",
        masks: Optional[Sequence[Path]] = None,
    ) -> Dict[str, Any]:
        """mIoU (percent), per-class IoUs and the segmenter's description for the report."""
        res = evaluate_miou(self.segmenter, images, labels, resolution, masks, progress)
        return {**res, "model": str(self.model_path), "segmenter": self.segmenter.describe()}
