"""Evaluation: FID (pytorch-fid numerics), LPIPS, mIoU, Div, their registry, reports and ``siedob-eval``."""

from __future__ import annotations

from .errors import BackendUnavailable, EvalError, GeneratorUnavailable
from .fid import FIDEvaluator, fid_from_features, frechet_distance, frechet_distance_svd
from .inception import load_backend
from .lpips import LPIPSMetric
from .metrics import Backends, MetricInputs, compute_metrics, list_metrics, register_metric
from .miou import SegmentationEvaluator

__all__ = [
    "BackendUnavailable",
    "Backends",
    "MetricInputs",
    "compute_metrics",
    "list_metrics",
    "register_metric",
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
