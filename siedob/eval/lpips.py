"""LPIPS (AlexNet, the ``lpips`` package) when it and its weights are present; otherwise unavailable.

``lpips`` needs torchvision's ImageNet AlexNet weights (``alexnet-owt-7be5be79.pth``) in the torch hub
cache; it would download them, so we check for the file first and never trigger a download.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Optional, Sequence

import torch

from siedob.data.io import image_to_tensor, read_bgr

from .errors import BackendUnavailable, EvalError
from .images import check_same_count
from .inception import hub_checkpoint

ALEXNET_WEIGHTS = "alexnet-owt-7be5be79.pth"


class LPIPSMetric:
    """Mean LPIPS-Alex distance over image pairs; raises BackendUnavailable if it cannot run offline."""

    def __init__(self, device: str = "cpu", color_order: str = "bgr", alexnet: Optional[Path] = None) -> None:
        try:
            lpips_pkg = importlib.import_module("lpips")
        except Exception as exc:  # noqa: BLE001 - lpips imports torchvision; any failure means unavailable
            raise BackendUnavailable(f"lpips not importable ({type(exc).__name__}: {exc})") from None
        path = Path(alexnet) if alexnet is not None else hub_checkpoint(ALEXNET_WEIGHTS)
        if not path.is_file():
            raise BackendUnavailable(f"LPIPS AlexNet weights not found: put {ALEXNET_WEIGHTS} at {path}")
        self.device = torch.device(device)
        self.net = lpips_pkg.LPIPS(net="alex", verbose=False).eval().to(self.device)
        self.color_order = color_order

    @torch.no_grad()
    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Per-pair LPIPS of N×3×H×W BGR tensors in [-1, 1] (channels swapped first for ``rgb``)."""
        if self.color_order == "rgb":
            a, b = a.flip(1), b.flip(1)
        return self.net(a.to(self.device), b.to(self.device)).flatten().cpu()

    def mean_of_files(self, real: Sequence[Path], fake: Sequence[Path]) -> float:
        """Mean LPIPS over real/fake files paired in sorted order (sizes must match per pair)."""
        check_same_count(real, fake, "real images", "fake images")
        total = 0.0
        for r, f in zip(real, fake):
            a = image_to_tensor(read_bgr(r))[None]
            b = image_to_tensor(read_bgr(f))[None]
            if a.shape != b.shape:
                raise EvalError(f"LPIPS pairs need equal sizes: {r} {tuple(a.shape)} vs {f} {tuple(b.shape)}")
            total += float(self.distance(a, b).sum())
        return total / len(real)
