"""Metrics as plug-ins: one registry that ``siedob-eval --metrics`` and the training loop's periodic metric share.

After stylegan2-ada's ``metric_main``: a metric is a function registered under a name with what it
needs — inputs (``real``, ``fake``, ``paired_real``, ``labels``, ``groups``) and networks (``inception``,
``lpips``, ``segmenter``). :class:`Backends` loads each network once, on first use; a network whose
weights cannot be found makes its metrics report ``unavailable: <reason>`` instead of failing, and so
does an input the run does not have. A weights file the user named explicitly but that cannot be loaded
is an error (exit 2), not a silent gap. The dataset ``profile`` of the labels decides the segmenter's
classes (:func:`siedob.eval.miou.seg_classes`): Cityscapes' DRN-D-105 train ids, or ADE20K-Room's
labels 1..150 from a user-supplied TorchScript segmenter.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar, Union

import torch
from tqdm import tqdm

from siedob.data.io import image_to_tensor, read_bgr
from siedob.profiles import DEFAULT_PROFILE, ProfileLike, as_profile

from .errors import BackendUnavailable, EvalError
from .fid import DEFAULT_COLOR_ORDER, FIDEvaluator
from .lpips import load_lpips
from .miou import Segmenter, evaluate_miou, load_segmenter

PathLike = Union[str, Path]
T = TypeVar("T")
INPUTS = ("real", "fake", "paired_real", "labels", "groups", "masks")
BACKENDS = ("inception", "lpips", "segmenter")
NUM_TRAIN_IDS = 19


@dataclass
class MetricInputs:
    """What a run has to score: image files (or, for FID, BGR [-1, 1] tensor batches) and their pairings.

    ``real`` is FID's reference set; ``paired_real[i]`` the real image of ``fake[i]`` (LPIPS); ``labels[i]``
    the labelIds map ``fake[i]`` should show (mIoU); each ``groups`` entry lists the indices into ``fake``
    of the K results of one scene (Div); ``masks[i]`` the edit mask of ``fake[i]`` (mIoU inside the mask).
    """

    real: Sequence[Any] = ()
    fake: Sequence[Any] = ()
    paired_real: Sequence[Path] = ()
    labels: Sequence[Path] = ()
    groups: Sequence[Sequence[int]] = ()
    masks: Sequence[Path] = ()

    def has(self, name: str) -> bool:
        """Whether the input ``name`` is present (``groups`` needs at least one group of two or more)."""
        if name == "groups":
            return any(len(g) >= 2 for g in self.groups)
        return len(getattr(self, name)) > 0


@dataclass(frozen=True)
class Metric:
    """A registered metric: its name, report title, digits, higher-is-better, needs and computation."""

    name: str
    title: str
    digits: int
    higher_is_better: bool
    needs: Tuple[str, ...]
    backends: Tuple[str, ...]
    compute: Callable[[MetricInputs, Backends], Dict[str, Any]]


_REGISTRY: Dict[str, Metric] = {}

#: How to obtain each input, for "unavailable" reasons.
INPUT_HINTS = {
    "real": "real images (--real DIR or --mode)",
    "fake": "generated images (--fake DIR or --mode)",
    "paired_real": "a real image paired with every generated one",
    "labels": "label maps (--labels DIR, or --mode with a data root)",
    "groups": "several results per scene (--mode add-objects with --results-per-scene K >= 2)",
    "masks": "the edit mask of every generated image (--mode)",
}


def metric_entry(value: Optional[float] = None, reason: Optional[str] = None, **extra: Any) -> Dict[str, Any]:
    """One metric's report entry: a value, or ``None`` with the reason it could not be computed."""
    return {"value": value, "reason": reason, **extra}


def register_metric(
    name: str, title: str, digits: int, higher_is_better: bool, needs: Sequence[str], backends: Sequence[str] = ()
) -> Callable:
    """Decorator: register ``fn(inputs, backends) -> {"value": ..., extra...}`` as metric ``name``."""
    bad = [n for n in needs if n not in INPUTS] + [b for b in backends if b not in BACKENDS]
    if bad:
        raise ValueError(f"metric {name}: unknown needs {bad}")

    def wrap(fn: Callable[[MetricInputs, Backends], Dict[str, Any]]) -> Callable:
        _REGISTRY[name] = Metric(name, title, digits, higher_is_better, tuple(needs), tuple(backends), fn)
        return fn

    return wrap


def list_metrics() -> List[str]:
    """Names of every registered metric, in registration order."""
    return list(_REGISTRY)


def get_metric(name: str) -> Metric:
    """The registered metric ``name`` (a one-line EvalError listing the valid names otherwise)."""
    if name not in _REGISTRY:
        raise EvalError(f"--metrics: unknown metric {name!r}; available: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def parse_metric_names(text: str) -> List[str]:
    """``"fid,lpips"`` → ``["fid", "lpips"]``, each checked against the registry, duplicates dropped."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise EvalError("--metrics: give at least one metric name, e.g. --metrics fid,lpips")
    for n in names:
        get_metric(n)
    return list(dict.fromkeys(names))


class Backends:
    """The metric networks of one run, each loaded once on first use.

    A network whose weights are not found where we look is remembered as unavailable with its reason;
    one the user named explicitly (``inception``, ``lpips_weights``, ``seg_model``) must load, or the
    run stops with a one-line error. ``profile`` is the dataset profile of the label maps mIoU scores against.
    """

    def __init__(
        self,
        *,
        device: str = "cpu",
        fid_backend: str = "auto",
        inception: Optional[PathLike] = None,
        fid_method: str = "sqrtm",
        color_order: str = DEFAULT_COLOR_ORDER,
        cache_dir: Optional[PathLike] = None,
        batch_size: int = 32,
        lpips_weights: Optional[PathLike] = None,
        seg_model: Optional[PathLike] = None,
        seg_mapping: Optional[PathLike] = None,
        miou_resolution: str = "generated",
        miou_in_mask: bool = False,
        progress: bool = False,
        profile: ProfileLike = None,
    ) -> None:
        self.device = device
        self.profile = as_profile(profile).name
        self.fid_backend, self.inception_path, self.fid_method = fid_backend, inception, fid_method
        self.color_order, self.cache_dir, self.batch_size = color_order, cache_dir, batch_size
        self.lpips_weights, self.seg_model, self.seg_mapping = lpips_weights, seg_model, seg_mapping
        self.progress = progress
        self.miou_resolution, self.miou_in_mask = miou_resolution, miou_in_mask
        self._loaded: Dict[str, Any] = {}
        self._missing: Dict[str, str] = {}

    def _explicit(self, name: str) -> bool:
        return {"inception": self.inception_path, "lpips": self.lpips_weights, "segmenter": self.seg_model}[
            name
        ] is not None

    def get(self, name: str) -> Any:
        """The loaded network ``name``; raises BackendUnavailable (with the remembered reason) if it is missing."""
        if name in self._loaded:
            return self._loaded[name]
        if name in self._missing:
            raise BackendUnavailable(self._missing[name])
        try:
            net = getattr(self, f"_load_{name}")()
        except BackendUnavailable as exc:
            if self._explicit(name):
                raise EvalError(str(exc)) from None
            self._missing[name] = str(exc)
            raise
        self._loaded[name] = net
        return net

    def reason(self, name: str) -> Optional[str]:
        """Why ``name`` is unavailable (loading it now if it was not tried yet), or None when it loads."""
        try:
            self.get(name)
        except BackendUnavailable as exc:
            return str(exc)
        return None

    def _load_inception(self) -> FIDEvaluator:
        return FIDEvaluator(
            self.fid_backend,
            weights=self.inception_path,
            device=self.device,
            batch_size=self.batch_size,
            color_order=self.color_order,
            method=self.fid_method,
            cache_dir=self.cache_dir,
            progress=self.progress,
        )

    def _load_lpips(self) -> Any:
        return load_lpips(self.lpips_weights, device=self.device)

    def _load_segmenter(self) -> Segmenter:
        if self.seg_model is None and self.profile != DEFAULT_PROFILE:
            raise BackendUnavailable(
                f"no segmentation model given for {self.profile} (DRN-D-105 segments Cityscapes only; give "
                "--seg-model FILE, a TorchScript segmenter of its labels with 150 or 151 output channels, "
                "e.g. UperNet-101)"
            )
        if self.seg_model is None:
            raise BackendUnavailable("no segmentation model given (--seg-model FILE, e.g. drn-d-105_ms_cityscapes.pth)")
        return load_segmenter(self.seg_model, self.device, self.seg_mapping, self.profile)

    def describe(self) -> Dict[str, Any]:
        """What was loaded (backend names, weights sources, segmenter file and hash) for the report's protocol."""
        out: Dict[str, Any] = {}
        if "inception" in self._loaded:
            out["fid"] = self._loaded["inception"].describe()
        if "lpips" in self._loaded:
            out["lpips"] = {
                "net": "alex",
                "version": "0.1",
                "weights_source": getattr(self._loaded["lpips"], "weights_source", "unknown"),
                "input": "RGB in [-1, 1] (our BGR images are flipped to RGB first)",
            }
        if "segmenter" in self._loaded:
            out["segmenter"] = self._loaded["segmenter"].describe()
            out["miou"] = {"resolution": self.miou_resolution, "inside the edit mask only": self.miou_in_mask}
            if self.profile != DEFAULT_PROFILE:
                out["miou"]["dataset profile"] = self.profile
        for name, why in self._missing.items():
            out.setdefault(name, {"unavailable": why})
        return out


def unavailable_reason(metric: Metric, inputs: MetricInputs, backends: Backends) -> Optional[str]:
    """Why ``metric`` cannot run on these inputs with these backends (None when it can)."""
    for need in metric.needs:
        if not inputs.has(need):
            return f"unavailable: needs {INPUT_HINTS[need]}"
    for name in metric.backends:
        why = backends.reason(name)
        if why is not None:
            return f"unavailable: {why}"
    return None


def prepare_metrics(names: Sequence[str], backends: Backends) -> Dict[str, str]:
    """Load the networks the metrics need before any slow work; returns ``{metric: reason}`` for those missing."""
    out = {}
    for name in names:
        for backend in get_metric(name).backends:
            why = backends.reason(backend)
            if why is not None:
                out[name] = f"unavailable: {why}"
                break
    return out


def compute_metrics(names: Sequence[str], inputs: MetricInputs, backends: Backends) -> Dict[str, Dict[str, Any]]:
    """Every named metric's entry: its value (and extras), or ``None`` and ``unavailable: <reason>``."""
    results = {}
    for name in names:
        metric = get_metric(name)
        why = unavailable_reason(metric, inputs, backends)
        if why is not None:
            results[name] = metric_entry(reason=why)
            continue
        out = dict(metric.compute(inputs, backends))
        results[name] = metric_entry(out.pop("value"), **out)
    return results


def diversity(groups: Sequence[Sequence[T]], distance: Callable[[T, T], float]) -> Tuple[float, List[float]]:
    """Div: per group the mean distance over all unordered pairs of its members; the mean over groups.

    Groups with fewer than two members are left out; raises EvalError when none has two.
    """
    per_group = []
    for members in groups:
        pairs = list(itertools.combinations(members, 2))
        if pairs:
            per_group.append(sum(float(distance(a, b)) for a, b in pairs) / len(pairs))
    if not per_group:
        raise EvalError("Div needs at least one scene with two or more results")
    return sum(per_group) / len(per_group), per_group


def _bgr(path: Path, device: str) -> torch.Tensor:
    return image_to_tensor(read_bgr(path))[None].to(device)


def _lpips_pair(net: Any, a: Path, b: Path, device: str = "cpu") -> float:
    """LPIPS of two image files (BGR on disk; ``distance_bgr`` flips them to RGB)."""
    x, y = _bgr(a, device), _bgr(b, device)
    if x.shape != y.shape:
        raise EvalError(f"LPIPS pairs need equal sizes: {a} {tuple(x.shape[2:])} vs {b} {tuple(y.shape[2:])}")
    return float(net.distance_bgr(x, y).flatten()[0])


@register_metric("fid", "FID ↓", 2, False, needs=("real", "fake"), backends=("inception",))
def _fid(inputs: MetricInputs, backends: Backends) -> Dict[str, Any]:
    """Fréchet Inception distance of the generated set to the real set (files or tensor batches)."""
    ev: FIDEvaluator = backends.get("inception")
    if isinstance(inputs.real[0], torch.Tensor):
        value = ev.fid_of_tensors(inputs.real, inputs.fake)
    else:
        value = ev.fid_of_files(inputs.real, inputs.fake)
    return {"value": value, "backend": ev.describe(), "n_real": len(inputs.real), "n_fake": len(inputs.fake)}


@register_metric("lpips", "LPIPS ↓", 3, False, needs=("fake", "paired_real"), backends=("lpips",))
def _lpips(inputs: MetricInputs, backends: Backends) -> Dict[str, Any]:
    """Mean LPIPS (AlexNet, v0.1, whole image) between each generated image and its real image."""
    if len(inputs.paired_real) != len(inputs.fake):
        raise EvalError(
            f"count mismatch: {len(inputs.paired_real)} real images vs {len(inputs.fake)} fake images "
            "(they are paired in sorted order)"
        )
    net = backends.get("lpips")
    pairs = list(zip(inputs.paired_real, inputs.fake))
    dists = [
        _lpips_pair(net, r, f, backends.device)
        for r, f in tqdm(pairs, desc="LPIPS", unit="pair", disable=not backends.progress)
    ]
    return {"value": sum(dists) / len(dists), "n_pairs": len(dists), "region": "whole image"}


@register_metric("miou", "mIoU ↑", 2, True, needs=("fake", "labels"), backends=("segmenter",))
def _miou(inputs: MetricInputs, backends: Backends) -> Dict[str, Any]:
    """mIoU (percent) of the segmenter's predictions on the generated images against their label maps."""
    if len(inputs.labels) != len(inputs.fake):
        raise EvalError(
            f"count mismatch: {len(inputs.fake)} generated images vs {len(inputs.labels)} label maps "
            "(they are paired in sorted order)"
        )
    seg: Segmenter = backends.get("segmenter")
    masks = None
    if backends.miou_in_mask:
        if len(inputs.masks) != len(inputs.fake):
            raise EvalError("--miou-in-mask needs the edit mask of every generated image (use --mode)")
        masks = inputs.masks
    res = evaluate_miou(seg, inputs.fake, inputs.labels, backends.miou_resolution, masks, backends.progress)
    return {**res, "segmenter": seg.describe()}


@register_metric("div", "Div ↑", 4, True, needs=("fake", "groups"), backends=("lpips",))
def _div(inputs: MetricInputs, backends: Backends) -> Dict[str, Any]:
    """Div: mean LPIPS over all unordered pairs of one scene's K results (whole image), averaged over scenes."""
    net = backends.get("lpips")
    groups = [[inputs.fake[i] for i in g] for g in inputs.groups]
    bar = tqdm(total=sum(len(g) * (len(g) - 1) // 2 for g in groups), desc="Div", unit="pair",
               disable=not backends.progress)  # fmt: skip

    def dist(a: Path, b: Path) -> float:
        bar.update()
        return _lpips_pair(net, a, b, backends.device)

    value, per_scene = diversity(groups, dist)
    bar.close()
    return {
        "value": value,
        "per_scene": [round(v, 6) for v in per_scene],
        "pairs": "all unordered pairs of a scene's K results",
        "region": "whole image",
    }


__all__ = [
    "Backends",
    "Metric",
    "MetricInputs",
    "compute_metrics",
    "diversity",
    "get_metric",
    "list_metrics",
    "metric_entry",
    "parse_metric_names",
    "prepare_metrics",
    "register_metric",
]
