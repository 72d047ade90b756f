"""The four SIEDOB generators (docs/spec.md §3.1–§3.4), with the authors' layer names.

``ngf`` scales every width, so tests and the quickstart can build narrow copies; the authors'
widths are the defaults.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from siedob.labels import STYLE_SKIPPED_CLASSES
from siedob.nn.blocks import ConvBlock, GatedConv, ResBlock, StyleEncoder, StyleSPADEResBlock, UpGatedConv
from siedob.nn.style_propagation import StylePropagate


def _gated(in_nc: int, out_nc: int, stride: int = 1) -> GatedConv:
    """Encoder/decoder gated conv: 3×3, reflection padding, instance norm, LeakyReLU, no SN."""
    return GatedConv(in_nc, out_nc, 3, stride, 1)


def _to_image(in_nc: int) -> ConvBlock:
    """Final bias-free 3×3 conv with tanh."""
    return ConvBlock(in_nc, 3, 3, 1, 1, norm="none", activation="tanh")


class ObjectInpaintingGenerator(nn.Module):
    """G_OI (authors: ``fg_inpainting``): completes a partly masked 64×64 object crop."""

    def __init__(self, ngf: int = 64, code_nc: int = 3) -> None:
        super().__init__()
        c1, c2, c4, c8, c16 = ngf, 2 * ngf, 4 * ngf, 8 * ngf, 16 * ngf
        # masked crop, instance mask, object mask, class map (code_nc channels: 3 for Cityscapes)
        self.init_conv = ConvBlock(3 + 1 + 1 + code_nc, c1, 7, 1, 3)
        self.enc1 = _gated(c1, c2, 2)
        self.enc2 = _gated(c2, c4, 2)
        self.enc22 = _gated(c4, c4)
        self.enc3 = _gated(c4, c8, 2)
        self.enc32 = _gated(c8, c8)
        self.enc4 = _gated(c8, c16, 2)
        self.enc5 = _gated(c16, c16)
        self.enc6 = _gated(c16, c16)
        self.dec2 = UpGatedConv(c16 + c8, c8)
        self.dec22 = _gated(c8, c8)
        self.dec3 = UpGatedConv(c8 + c4, c4)
        self.dec32 = _gated(c4, c4)
        self.dec4 = UpGatedConv(c4 + c2, c2)
        self.dec43 = _gated(c2, c2)
        self.dec5 = UpGatedConv(c2, c2)
        self.dec6 = _gated(c2, c1)
        self.conv_img = _to_image(c1)

    def forward(
        self, input: torch.Tensor, inst_mask: torch.Tensor, mask: torch.Tensor, class_map: torch.Tensor
    ) -> torch.Tensor:
        x = self.init_conv(torch.cat((input, inst_mask, mask, class_map), dim=1))
        e1 = self.enc1(x)
        e2 = self.enc22(self.enc2(e1))
        e3 = self.enc32(self.enc3(e2))
        e6 = self.enc6(self.enc5(self.enc4(e3)))
        d = self.dec22(self.dec2(e6, e3))
        d = self.dec32(self.dec3(d, e2))
        d = self.dec43(self.dec4(d, e1))
        d = self.dec6(self.dec5(d))
        return self.conv_img(d)


class ObjectStyleGenerator(nn.Module):
    """G_OG (authors: ``fg_style``): draws an object from its shape in a reference object's style.

    Returns ``(image, style_code, cycle_code)``; the cycle code re-encodes the generated object.
    """

    def __init__(self, ngf: int = 32, style_dim: int = 128, style_enc_dim: int = 32, code_nc: int = 3) -> None:
        super().__init__()
        c1, c2, c4, c8 = ngf, 2 * ngf, 4 * ngf, 8 * ngf
        #: width of the style code; ``style_source`` "noise": the edit chain draws N(0, 1) codes instead of
        #: encoding references (a network trained with ``train.style_source: noise``, the "w/o style bank" ablation)
        self.style_dim = style_dim
        self.style_source = "bank"
        # the class map has code_nc channels (3 for Cityscapes); the style encoders also see the image
        self.enc_style = StyleEncoder(4, 3 + code_nc, style_enc_dim, style_dim)
        self.init_conv = ConvBlock(code_nc, c1, 7, 1, 3)
        self.enc1 = ConvBlock(c1, c2, 3, 2, 1)
        self.enc2 = ConvBlock(c2, c4, 3, 2, 1)
        self.enc3 = ConvBlock(c4, c8, 3, 2, 1)
        self.resblk1 = ResBlock(c8)
        self.resblk2 = ResBlock(c8)
        self.resblk3 = ResBlock(c8)
        self.resblk4 = ResBlock(c8)
        self.spade1_1 = StyleSPADEResBlock(c8, c8, code_nc, style_dim)
        self.spade1_2 = StyleSPADEResBlock(c8, c8, code_nc, style_dim)
        self.conv1 = ResBlock(c8, c4)
        self.spade2_1 = StyleSPADEResBlock(c4, c4, code_nc, style_dim)
        self.spade2_2 = StyleSPADEResBlock(c4, c4, code_nc, style_dim)
        self.conv2 = ResBlock(c4, c2)
        self.spade3 = StyleSPADEResBlock(c2, c2, code_nc, style_dim)
        self.conv3 = ResBlock(c2, c1)
        self.conv_img = _to_image(c1)
        self.cycle_style = StyleEncoder(4, 3 + code_nc, style_enc_dim, style_dim)
        self.up = nn.Upsample(scale_factor=2)

    def forward(
        self,
        cls_map: torch.Tensor,
        sty_img: torch.Tensor,
        sty_cls_map: torch.Tensor,
        inst_mask: torch.Tensor,
        code: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, code = self.synthesise(cls_map, sty_img, sty_cls_map, code)
        cycle = self.cycle_style(torch.cat((x * inst_mask, cls_map), dim=1))
        return x, code, cycle

    def synthesise(
        self,
        cls_map: torch.Tensor,
        sty_img: torch.Tensor,
        sty_cls_map: torch.Tensor,
        code: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(image, style_code)`` without the cycle code, which only training uses (the edit chain's call).

        A given ``code`` replaces the reference's (the "noise instead of the style bank" ablation).
        """
        if code is None:
            code = self.enc_style(torch.cat((sty_img, sty_cls_map), dim=1))
        x = self.enc3(self.enc2(self.enc1(self.init_conv(cls_map))))
        x = self.resblk4(self.resblk3(self.resblk2(self.resblk1(x))))
        x = self.spade1_2(self.spade1_1(x, cls_map, code), cls_map, code)
        x = self.up(self.conv1(x))
        x = self.spade2_2(self.spade2_1(x, cls_map, code), cls_map, code)
        x = self.up(self.conv2(x))
        x = self.up(self.conv3(self.spade3(x, cls_map, code)))
        return self.conv_img(F.leaky_relu(x, 0.2)), code


class BackgroundGenerator(nn.Module):
    """G_B (authors: ``bg_G``): fills background classes with textures propagated from the context.

    ``style_propagation=False`` is the paper's "w/o SASPM" ablation: the propagated style maps are zero, so
    each style layer is conditioned on the background segmap alone (same parameters, same file layout).
    ``skipped_classes``: label ids that get no context style code (the dataset's instance classes).
    """

    def __init__(
        self,
        ngf: int = 32,
        lab_nc: int = 34,
        style_propagation: bool = True,
        skipped_classes: Sequence[int] = STYLE_SKIPPED_CLASSES,
    ) -> None:
        super().__init__()
        c1, c2, c4, c8, c16 = ngf, 2 * ngf, 4 * ngf, 8 * ngf, 16 * ngf
        self.init_conv = ConvBlock(3 + lab_nc + 1 + 1, c1, 7, 1, 3)
        self.enc1 = _gated(c1, c2, 2)
        self.enc2 = _gated(c2, c2)
        self.enc3 = _gated(c2, c4, 2)
        self.enc4 = _gated(c4, c4)
        self.enc5 = _gated(c4, c8, 2)
        self.enc6 = _gated(c8, c8)
        self.enc7 = _gated(c8, c8, 2)
        self.enc8 = _gated(c8, c16)
        self.dec1 = UpGatedConv(c16 + c8, c8)
        self.style1 = StylePropagate(c8, lab_nc)
        self.dec2 = UpGatedConv(c8 + c4, c4)
        self.style2 = StylePropagate(c4, lab_nc)
        self.dec3 = UpGatedConv(c4 + c2, c2)
        self.style3 = StylePropagate(c2, lab_nc)
        for layer in (self.style1, self.style2, self.style3):
            layer.propagate = style_propagation
            layer.skipped = tuple(skipped_classes)
        self.dec4 = UpGatedConv(c2, c2)
        self.dec5 = _gated(c2, c1)
        self.conv_img = _to_image(c1)

    def forward(
        self, input: torch.Tensor, segmap: torch.Tensor, mask: torch.Tensor, bg_mask: torch.Tensor
    ) -> torch.Tensor:
        e2 = self.enc2(self.enc1(self.init_conv(input)))
        e4 = self.enc4(self.enc3(e2))
        e6 = self.enc6(self.enc5(e4))
        e8 = self.enc8(self.enc7(e6))
        d = self.style1(self.dec1(e8, e6), segmap, bg_mask, mask)
        d = self.style2(self.dec2(d, e4), segmap, bg_mask, mask)
        d = self.style3(self.dec3(d, e2), segmap, bg_mask, mask)
        d = self.dec5(self.dec4(d))
        return self.conv_img(F.leaky_relu(d, 0.2))


class FusionGenerator(nn.Module):
    """F (authors: ``F_stage``): blends pasted objects and background; returns ``out * mask + masked_G``.

    The residual is added to the full composite, so values can reach ±2 inside the mask [quirk — keep].
    ``segmap`` is accepted for the authors' call signature and unused.
    """

    def __init__(self, ngf: int = 32) -> None:
        super().__init__()
        c1, c2, c4, c8 = ngf, 2 * ngf, 4 * ngf, 8 * ngf
        self.init_conv = ConvBlock(5, c1, 7, 1, 3)
        self.enc1 = _gated(c1, c2, 2)
        self.enc2 = _gated(c2, c2)
        self.enc3 = _gated(c2, c4, 2)
        self.enc4 = _gated(c4, c4)
        self.enc5 = _gated(c4, c8, 2)
        self.enc6 = _gated(c8, c8)
        self.dec2 = UpGatedConv(c8 + c4, c4)
        self.dec3 = UpGatedConv(c4 + c2, c2)
        self.dec4 = UpGatedConv(c2, c2)
        self.dec5 = _gated(c2, c1)
        self.conv_img = _to_image(c1)

    def forward(
        self, masked_g: torch.Tensor, segmap: torch.Tensor, mask: torch.Tensor, edge_map: torch.Tensor
    ) -> torch.Tensor:
        x = self.init_conv(torch.cat((masked_g, mask, edge_map), dim=1))
        e2 = self.enc2(self.enc1(x))
        e4 = self.enc4(self.enc3(e2))
        e6 = self.enc6(self.enc5(e4))
        d = self.dec3(self.dec2(e6, e4), e2)
        out = self.conv_img(self.dec5(self.dec4(d)))
        return out * mask + masked_g


class ObjectInpaintingWrapper(nn.Module):
    """The G_OI training wrapper saved as ``netG``: holds ``fg_inpainting``, returns (out, composite)."""

    def __init__(self, ngf: int = 64, code_nc: int = 3) -> None:
        super().__init__()
        self.fg_inpainting = ObjectInpaintingGenerator(ngf, code_nc)

    def forward(
        self, input: torch.Tensor, inst_mask: torch.Tensor, mask: torch.Tensor, class_map: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        out = self.fg_inpainting(input, inst_mask, mask, class_map)
        return out, out * mask + input * (1 - mask)


class ObjectStyleWrapper(nn.Module):
    """The G_OG training wrapper saved as ``netG``: holds ``fg_style``."""

    def __init__(self, ngf: int = 32, code_nc: int = 3) -> None:
        super().__init__()
        self.fg_style = ObjectStyleGenerator(ngf, code_nc=code_nc)

    def forward(
        self,
        cls_map: torch.Tensor,
        sty_img: torch.Tensor,
        sty_cls_map: torch.Tensor,
        inst_mask: torch.Tensor,
        code: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.fg_style(cls_map, sty_img, sty_cls_map, inst_mask, code)
