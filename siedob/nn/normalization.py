"""Conditional normalisation: SPADE with a spatial (class map) or a global (style code) condition."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SPADE(nn.Module):
    """Parameter-free instance norm modulated by gamma/beta predicted from a condition map.

    A condition with spatial size 1×1 (a style code B×C×1×1) is *expanded* to x's size, not
    interpolated; any other condition is resized with nearest (docs/spec.md §2). Because the convolutions
    zero-pad, an expanded code still gives different gamma/beta at the borders [quirk — keep].
    """

    def __init__(self, norm_nc: int, label_nc: int, nhidden: int = 128) -> None:
        super().__init__()
        self.param_free_norm = nn.InstanceNorm2d(norm_nc, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, nhidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(nhidden, norm_nc, 3, padding=1)
        self.mlp_beta = nn.Conv2d(nhidden, norm_nc, 3, padding=1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        normalized = self.param_free_norm(x)
        if cond.shape[-2:] == (1, 1):
            cond = cond.expand(-1, -1, x.shape[2], x.shape[3])
        elif cond.shape[-2:] != x.shape[-2:]:
            cond = F.interpolate(cond, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(cond)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)
