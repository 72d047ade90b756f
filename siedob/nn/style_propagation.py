"""G_B's style propagation: per-class style codes from the visible context, scattered over the hole."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from siedob.labels import STYLE_SKIPPED_CLASSES
from siedob.nn.blocks import ConvBlock
from siedob.nn.normalization import SPADE


def class_style_codes(
    feat: torch.Tensor, context: torch.Tensor, skipped: Sequence[int] = STYLE_SKIPPED_CLASSES
) -> torch.Tensor:
    """Mean feature (B×C) over each class's context pixels, as B×L×C; zero for absent/skipped classes.

    Vectorised form of the authors' double loop over samples and classes: a pixel counts for
    class j where ``context[:, j] != 0`` (unweighted), classes in ``skipped`` get no code.
    """
    b, c = feat.shape[:2]
    sel = (context != 0).to(feat.dtype).flatten(2)
    if skipped:
        keep = torch.ones(context.shape[1], dtype=feat.dtype, device=feat.device)
        keep[list(skipped)] = 0
        sel = sel * keep.view(1, -1, 1)
    counts = sel.sum(dim=2, keepdim=True)
    sums = torch.bmm(sel, feat.reshape(b, c, -1).transpose(1, 2))
    return sums / counts.clamp(min=1)


class StyleLayer(nn.Module):
    """conv → SPADE conditioned on (style map, background segmap) → LeakyReLU."""

    def __init__(self, dim: int, cond_nc: int) -> None:
        super().__init__()
        self.conv_0 = nn.Conv2d(dim, dim, 3, padding=1)
        self.spade = SPADE(dim, cond_nc)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.spade(self.conv_0(x), cond), 0.2)


class StylePropagate(nn.Module):
    """Propagates each background class's context style into the masked region (docs/spec.md §3.3)."""

    def __init__(self, dim: int, lab_nc: int = 34, style_nc: int = 64) -> None:
        super().__init__()
        self.conv = ConvBlock(dim, style_nc, 3, 1, 1, norm="none", activation="lrelu")
        self.stylelayer = StyleLayer(dim, style_nc + lab_nc)
        #: False: no context style codes (zero style map; the "w/o SASPM" ablation).
        self.propagate = True
        #: label ids without a context style code [docs/spec.md §3.3, quirk — keep]; the dataset's instance classes
        self.skipped: Sequence[int] = STYLE_SKIPPED_CLASSES

    def forward(
        self, feat: torch.Tensor, segmap: torch.Tensor, bg_mask: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        f = self.conv(feat)
        size = f.shape[2:]
        segmap = F.interpolate(segmap, size=size, mode="nearest")
        bg_mask = F.interpolate(bg_mask, size=size, mode="nearest")
        mask = F.interpolate(mask, size=size, mode="nearest")
        bg_seg = segmap * bg_mask
        if self.propagate:
            codes = class_style_codes(f, bg_seg * (1 - mask), self.skipped)
            style_map = torch.bmm(codes.transpose(1, 2), bg_seg.flatten(2)).view(f.shape)
        else:
            style_map = torch.zeros_like(f)
        return self.stylelayer(feat, torch.cat((style_map, bg_seg), dim=1))
