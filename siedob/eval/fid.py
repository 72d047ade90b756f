"""Fréchet Inception Distance with pytorch-fid's numerics, a feature cache, and a trainer-facing evaluator."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from scipy import linalg
from tqdm import tqdm

from siedob.data.io import image_to_tensor, read_bgr
from siedob.files import atomic_write

from .errors import EvalError
from .images import list_images, quantize
from .inception import InceptionBackend, load_backend, resize_for_inception

PathLike = Union[str, Path]
COLOR_ORDERS = ("bgr", "rgb")
#: The paper-compatible default: the authors fed OpenCV-read (BGR) images to the Inception.
DEFAULT_COLOR_ORDER = "bgr"
METHODS = ("sqrtm", "svd")


def feature_stats(feats: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (``np.cov(rowvar=False)``) of N×D features, as pytorch-fid computes them."""
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise EvalError(f"FID needs at least 2 images, got {feats.shape[0] if feats.ndim else 0}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def _sqrtm(a: np.ndarray) -> np.ndarray:
    """``scipy.linalg.sqrtm`` without the deprecated ``disp`` argument or its warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return linalg.sqrtm(a)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """pytorch-fid's Fréchet distance: sqrtm of the product, ``eps`` diagonal offset if non-finite."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise EvalError("FID statistics have different dimensions")
    diff = mu1 - mu2
    covmean = _sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise EvalError(f"FID: imaginary component {np.max(np.abs(covmean.imag)):.3g} in sqrtm")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def frechet_distance_svd(feats1: np.ndarray, feats2: np.ndarray) -> float:
    """The same distance from raw features, exactly: tr sqrt(S1 S2) = nuclear norm of X1 X2ᵀ / √((n1-1)(n2-1)).

    Much faster than a 2048×2048 sqrtm when there are fewer images than dimensions (training-time FID).
    """
    mu1, sigma1 = feature_stats(feats1)
    mu2, sigma2 = feature_stats(feats2)
    x1 = np.asarray(feats1, np.float64) - mu1
    x2 = np.asarray(feats2, np.float64) - mu2
    nuclear = np.linalg.svd(x1 @ x2.T, compute_uv=False).sum()
    tr_covmean = nuclear / np.sqrt((len(x1) - 1) * (len(x2) - 1))
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def fid_from_features(feats1: np.ndarray, feats2: np.ndarray, method: str = "sqrtm") -> float:
    """FID between two feature sets; ``sqrtm`` is pytorch-fid's computation, ``svd`` the exact fast form."""
    if method == "svd":
        return frechet_distance_svd(feats1, feats2)
    if method != "sqrtm":
        raise EvalError(f"unknown FID method {method!r}; expected one of {', '.join(METHODS)}")
    return frechet_distance(*feature_stats(feats1), *feature_stats(feats2))


class FeatureCache:
    """Per-file features in one .npz per (file list owner, backend, colour order), keyed by path+mtime+size."""

    def __init__(self, cache_dir: PathLike, backend_key: str, color_order: str) -> None:
        self.dir = Path(cache_dir)
        self.tag = f"{backend_key}|{color_order}"

    @staticmethod
    def file_key(path: Path) -> str:
        """``abs path|mtime_ns|size`` — a changed file gets a new key."""
        st = path.stat()
        return f"{path.resolve()}|{st.st_mtime_ns}|{st.st_size}"

    def _file(self, paths: Sequence[Path]) -> Path:
        parents = sorted({str(p.resolve().parent) for p in paths})
        digest = hashlib.sha1(("\n".join(parents) + "\n" + self.tag).encode()).hexdigest()[:20]
        return self.dir / f"features_{digest}.npz"

    def load(self, paths: Sequence[Path]) -> Dict[str, np.ndarray]:
        """Cached features of this file set's folders, by file key (empty if none or unreadable)."""
        f = self._file(paths)
        if not f.is_file():
            return {}
        try:
            with np.load(f, allow_pickle=False) as data:
                if str(data["tag"]) != self.tag:
                    return {}
                return dict(zip(data["keys"].tolist(), data["feats"]))
        except (OSError, KeyError, ValueError):
            return {}

    def save(self, paths: Sequence[Path], entries: Dict[str, np.ndarray]) -> None:
        """Write the given entries (atomically replacing the previous cache file)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        f = self._file(paths)
        keys = sorted(entries)
        with atomic_write(f) as handle:
            np.savez(handle, tag=np.array(self.tag), keys=np.array(keys), feats=np.stack([entries[k] for k in keys]))


class FIDEvaluator:
    """FID of tensors or image files with one Inception backend; periodic FID for trainers.

    Tensors follow docs/spec.md §1 (BGR, [-1, 1]); ``color_order`` says what the Inception sees: ``bgr``
    (the authors' setting, default) feeds them unchanged, ``rgb`` swaps channels first. Tensors are
    clipped and truncated to uint8 levels exactly as the image writer does (``quantize``), so their FID
    equals that of the PNGs the writer would produce.
    Raises :class:`~siedob.eval.errors.BackendUnavailable` when no Inception weights can be loaded.
    """

    def __init__(
        self,
        backend: Union[InceptionBackend, str] = "auto",
        *,
        weights: Optional[PathLike] = None,
        device: str = "cpu",
        batch_size: int = 32,
        color_order: str = DEFAULT_COLOR_ORDER,
        method: str = "sqrtm",
        cache_dir: Optional[PathLike] = None,
        progress: bool = False,
        quantize: bool = True,
    ) -> None:
        if color_order not in COLOR_ORDERS:
            raise EvalError(f"unknown colour order {color_order!r}; expected bgr or rgb")
        if method not in METHODS:
            raise EvalError(f"unknown FID method {method!r}; expected one of {', '.join(METHODS)}")
        self.backend = backend if isinstance(backend, InceptionBackend) else load_backend(backend, weights, device)
        self.batch_size = batch_size
        self.color_order = color_order
        self.method = method
        self.cache = FeatureCache(cache_dir, self.backend.key, color_order) if cache_dir is not None else None
        self.progress = progress
        self.quantize = quantize
        self.last_computed = 0

    def _prepare(self, x: torch.Tensor, from_file: bool = False) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise EvalError(f"expected N×3×H×W image tensors, got shape {tuple(x.shape)}")
        x = x.detach().float().cpu()
        if self.quantize and not from_file:
            x = quantize(x)
        if self.color_order == "rgb":
            x = x.flip(1)
        return resize_for_inception(x)

    def features_of_tensors(self, batches: Iterable[torch.Tensor]) -> np.ndarray:
        """N×2048 features of an iterable of N_i×3×H×W BGR [-1, 1] tensors."""
        out = [self.backend(self._prepare(x)).numpy() for x in batches]
        if not out:
            raise EvalError("no images given to the FID evaluator")
        return np.concatenate(out)

    def fid_of_tensors(self, real: Iterable[torch.Tensor], fake: Iterable[torch.Tensor]) -> float:
        """FID between two iterables of BGR [-1, 1] image batches."""
        return fid_from_features(self.features_of_tensors(real), self.features_of_tensors(fake), self.method)

    def features_of_files(self, paths: Sequence[Path], desc: str = "features") -> np.ndarray:
        """N×2048 features of image files (read with OpenCV), reusing cached rows of unchanged files."""
        paths = [Path(p) for p in paths]
        if not paths:
            raise EvalError("no images given to the FID evaluator")
        cached = self.cache.load(paths) if self.cache is not None else {}
        keys = [FeatureCache.file_key(p) for p in paths]
        todo = [i for i, k in enumerate(keys) if k not in cached]
        feats: Dict[str, np.ndarray] = {k: cached[k] for k in keys if k in cached}
        bar = tqdm(total=len(todo), desc=desc, unit="img", disable=not self.progress or not todo)
        for start in range(0, len(todo), self.batch_size):
            idx = todo[start : start + self.batch_size]
            batch = torch.cat([self._prepare(image_to_tensor(read_bgr(paths[i]))[None], from_file=True) for i in idx])
            rows = self.backend(batch).numpy()
            for i, row in zip(idx, rows):
                feats[keys[i]] = row
            bar.update(len(idx))
        bar.close()
        if self.cache is not None and todo:
            self.cache.save(paths, {**cached, **feats})
        self.last_computed = len(todo)
        return np.stack([feats[k] for k in keys])

    def fid_of_files(self, real: Sequence[Path], fake: Sequence[Path]) -> float:
        """FID between two lists of image files."""
        return fid_from_features(
            self.features_of_files(real, "real features"), self.features_of_files(fake, "fake features"), self.method
        )

    def fid_of_folders(self, real_dir: PathLike, fake_dir: PathLike) -> float:
        """FID between the images of two folders."""
        return self.fid_of_files(list_images(real_dir), list_images(fake_dir))

    def describe(self) -> Dict[str, object]:
        """Backend, colour order and method, for the report."""
        return {**self.backend.describe(), "color_order": self.color_order, "method": self.method}
