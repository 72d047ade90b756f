"""Convolutional building blocks shared by every SIEDOB network (docs/spec.md §2).

Attribute names are the authors' (they are state-dict key names); quirks that change the numbers
are kept and marked.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from siedob.nn.normalization import SPADE

_PADS = {"zero": nn.ZeroPad2d, "reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d}


def make_activation(name: str) -> nn.Module:
    """The activation layers the authors' blocks accept, by name."""
    if name == "lrelu":
        return nn.LeakyReLU(0.2)
    if name == "relu":
        return nn.ReLU()
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}")


def make_norm(name: str, channels: int) -> nn.Module:
    """Instance norm without affine or running stats ('in'), batch norm ('bn') or nothing ('none')."""
    if name == "in":
        return nn.InstanceNorm2d(channels)
    if name == "bn":
        return nn.BatchNorm2d(channels)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {name!r}")


def make_pad(pad_type: str, padding: int) -> nn.Module:
    """Zero, reflection or replication padding of ``padding`` pixels on every side."""
    if pad_type not in _PADS:
        raise ValueError(f"unknown pad_type {pad_type!r}")
    return _PADS[pad_type](padding)


class ConvBlock(nn.Module):
    """pad → conv → norm → activation; the conv has a bias only when ``norm == 'in'`` [quirk — keep]."""

    def __init__(
        self,
        in_nc: int,
        out_nc: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        norm: str = "in",
        activation: str = "lrelu",
        pad_type: str = "zero",
    ) -> None:
        super().__init__()
        self.pad = make_pad(pad_type, padding)
        conv = nn.Conv2d(in_nc, out_nc, kernel_size, stride, 0, dilation=dilation, bias=norm == "in")
        self.conv = spectral_norm(conv) if norm == "sn" else conv
        self.norm = make_norm("none" if norm == "sn" else norm, out_nc)
        self.activation = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.norm(self.conv(self.pad(x))))


class GatedConv(nn.Module):
    """Gated convolution: features ``conv2d`` times sigmoid gate ``mask_conv2d`` on one padded input.

    With ``out_nc == 3`` the raw features are returned (no norm, activation or gate) [quirk — keep].
    """

    def __init__(
        self,
        in_nc: int,
        out_nc: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        pad_type: str = "reflect",
        activation: str = "lrelu",
        norm: str = "in",
        sn: bool = False,
    ) -> None:
        super().__init__()
        self.out_nc = out_nc
        self.pad = make_pad(pad_type, padding)
        wrap = spectral_norm if sn else (lambda m: m)
        self.conv2d = wrap(nn.Conv2d(in_nc, out_nc, kernel_size, stride, 0, dilation=dilation))
        self.mask_conv2d = wrap(nn.Conv2d(in_nc, out_nc, kernel_size, stride, 0, dilation=dilation))
        self.norm = make_norm(norm, out_nc)
        self.activation = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pad(x)
        features = self.conv2d(x)
        if self.out_nc == 3:
            return features
        return self.activation(self.norm(features)) * torch.sigmoid(self.mask_conv2d(x))


class UpGatedConv(nn.Module):
    """Bilinear ×2 upsampling, optional skip concatenated after x, then a gated conv.

    The authors call it TransposeGatedConv2d; its gated conv uses zero padding and spectral norm on
    both convolutions (its defaults) [quirk — keep].
    """

    def __init__(self, in_nc: int, out_nc: int) -> None:
        super().__init__()
        self.gated_conv2d = GatedConv(in_nc, out_nc, 3, 1, 1, pad_type="zero", sn=True)

    def forward(self, x: torch.Tensor, skip: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear")
        if skip is not None:
            x = torch.cat((x, skip), dim=1)
        return self.gated_conv2d(x)


class ResBlock(nn.Module):
    """Residual block whose zero padding precedes each instance norm [quirk — keep].

    ``shortcut`` is the identity, or a bias-free 1×1 conv when ``dim2`` differs.
    """

    def __init__(self, dim: int, dim2: Optional[int] = None) -> None:
        super().__init__()
        out = dim if dim2 is None else dim2
        self.shortcut: nn.Module = nn.Identity() if dim2 is None else nn.Conv2d(dim, dim2, 1, bias=False)
        self.conv_block = nn.Sequential(
            nn.ZeroPad2d(1),
            nn.InstanceNorm2d(dim),
            nn.Conv2d(dim, dim, 3),
            nn.LeakyReLU(0.2),
            nn.ZeroPad2d(1),
            nn.InstanceNorm2d(dim),
            nn.Conv2d(dim, out, 3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_block(x)


class StyleSPADEResBlock(nn.Module):
    """Residual block modulated first by the class map, then by the style code (G_OG)."""

    def __init__(self, fin: int, fout: int, ins_nc: int = 3, sty_nc: int = 128) -> None:
        super().__init__()
        if fin != fout:
            raise ValueError("StyleSPADEResBlock has no learned shortcut: fin must equal fout")
        fmiddle = min(fin, fout)
        self.conv_0 = nn.Conv2d(fin, fmiddle, 3, padding=1)
        self.conv_1 = nn.Conv2d(fmiddle, fout, 3, padding=1)
        self.norm_0 = SPADE(fin, ins_nc)
        self.norm_1 = SPADE(fmiddle, sty_nc)

    def forward(self, x: torch.Tensor, cls_map: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, cls_map), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, code), 0.2))
        return x + dx


class StyleEncoder(nn.Module):
    """Reflection-padded, bias-free conv stack pooled to a B×style_dim×1×1 style code (G_OG)."""

    def __init__(self, n_down: int = 4, in_nc: int = 6, dim: int = 32, style_dim: int = 128) -> None:
        super().__init__()
        layers = [ConvBlock(in_nc, dim, 7, 1, 3, norm="none", pad_type="reflect")]
        for _ in range(2):
            layers.append(ConvBlock(dim, 2 * dim, 4, 2, 1, norm="none", pad_type="reflect"))
            dim *= 2
        for _ in range(n_down - 2):
            layers.append(ConvBlock(dim, dim, 4, 2, 1, norm="none", pad_type="reflect"))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, style_dim, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
