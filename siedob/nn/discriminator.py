"""The spectral-norm patch discriminator (authors: SNPatchDiscriminator) and its five configurations."""

from __future__ import annotations

import torch
from torch import nn

from siedob.labels import LAB_DIM
from siedob.nn.blocks import ConvBlock


def discriminator_in_channels(name: str, lab_dim: int = LAB_DIM, code_nc: int = 3) -> int:
    """Input channels of each stage's discriminator (docs/spec.md §3.5), by the authors' attribute name.

    ``code_nc``: channels of the object class map (3 for Cityscapes; one per class beyond three).
    """
    channels = {
        "netD_inp": 3 + 1 + code_nc,  # image, mask, class map
        "netD_style": 3 + code_nc,  # image, class map
        "netD_BG": lab_dim + 3,  # segmap then image
        "netD_patch": 3 + lab_dim,  # image then segmap (160×160 boundary patches)
        "netD_F": 3,  # image only
    }
    if name not in channels:
        raise ValueError(f"unknown discriminator {name!r}; expected one of {', '.join(channels)}")
    return channels[name]


DISCRIMINATORS = ("netD_inp", "netD_style", "netD_BG", "netD_patch", "netD_F")


class PatchDiscriminator(nn.Module):
    """Six 5×5 stride-2 spectral-norm convs with LeakyReLU, also after the last [quirk — keep]."""

    def __init__(self, in_nc: int, ndf: int = 64, num_layers: int = 6) -> None:
        super().__init__()
        widths = [ndf, 2 * ndf] + [4 * ndf] * (num_layers - 3) + [3]
        layers, prev = [], in_nc
        for width in widths:
            layers.append(ConvBlock(prev, width, 5, 2, 2, norm="sn", activation="lrelu"))
            prev = width
        self.dis_model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dis_model(x)


def build_discriminator(name: str, ndf: int = 64, lab_dim: int = LAB_DIM, code_nc: int = 3) -> PatchDiscriminator:
    """The discriminator a stage uses, by its checkpoint name (``netD_inp``, ``netD_BG`` …)."""
    return PatchDiscriminator(discriminator_in_channels(name, lab_dim, code_nc), ndf)
