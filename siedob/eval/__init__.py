"""Evaluation: FID (pytorch-fid numerics), LPIPS, mIoU, reports and the ``siedob-eval`` command."""

from __future__ import annotations

from .errors import BackendUnavailable, EvalError, GeneratorUnavailable
from .fid import FIDEvaluator, fid_from_features, frechet_distance, frechet_distance_svd
from .inception import load_backend
from .lpips import LPIPSMetric
from .miou import SegmentationEvaluator

__all__ = [
    "BackendUnavailable",
    "EvalError",
    "FIDEvaluator",
    "GeneratorUnavailable",
    "LPIPSMetric",
    "SegmentationEvaluator",
    "fid_from_features",
    "frechet_distance",
    "frechet_distance_svd",
    "load_backend",
]
