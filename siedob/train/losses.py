"""Training losses (docs/spec.md §4): hinge GAN, VGG19 perceptual loss and the G_OG style-cycle loss."""

from __future__ import annotations

from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from siedob.train.vgg import VGG19Features

#: Weights of relu1_1 … relu5_1 in the perceptual loss.
VGG_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    """Discriminator hinge loss ``λ·mean(relu(1 − D(real))) + λ·mean(relu(1 + D(fake)))``."""
    real = F.relu(1.0 - real_logits.float()).mean()
    fake = F.relu(1.0 + fake_logits.float()).mean()
    return weight * real + weight * fake


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss ``−mean(D(fake))``."""
    return -fake_logits.float().mean()


class VGGLoss(nn.Module):
    """Σ w_i · L1(φ_i(x), φ_i(y)) over relu1_1 … relu5_1; inputs fed as they are (BGR, [-1, 1])."""

    def __init__(self, vgg: VGG19Features, weights: Sequence[float] = VGG_WEIGHTS) -> None:
        super().__init__()
        self.vgg = vgg
        self.weights = tuple(weights)

    def target_features(self, y: torch.Tensor) -> List[torch.Tensor]:
        """φ(y) without an autograd graph (the target side is detached anyway)."""
        with torch.no_grad():
            return [f.detach() for f in self.vgg(y)]

    def forward(
        self, x: torch.Tensor, y: Optional[torch.Tensor] = None, y_feats: Optional[List[torch.Tensor]] = None
    ) -> torch.Tensor:
        """Loss of ``x`` against ``y`` (or against precomputed ``y_feats``)."""
        if y_feats is None:
            if y is None:
                raise ValueError("VGGLoss needs a target image or its features")
            y_feats = self.target_features(y)
        x_feats = self.vgg(x)
        loss = x_feats[0].new_zeros((), dtype=torch.float32)
        for w, fx, fy in zip(self.weights, x_feats, y_feats):
            loss = loss + w * F.l1_loss(fx.float(), fy.float())
        return loss


def style_cycle_loss(code: torch.Tensor, cycle: torch.Tensor) -> torch.Tensor:
    """``mean |1 − ⟨code, cycle⟩|`` of per-sample L2-normalised flattened style codes."""
    a = F.normalize(code.flatten(1).float(), dim=1)
    b = F.normalize(cycle.flatten(1).float(), dim=1)
    return (1.0 - (a * b).sum(1)).abs().mean()
