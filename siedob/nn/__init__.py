"""SIEDOB's networks: building blocks, the four generators and the patch discriminator."""

from siedob.nn.blocks import ConvBlock, GatedConv, ResBlock, StyleEncoder, StyleSPADEResBlock, UpGatedConv
from siedob.nn.discriminator import (
    DISCRIMINATORS,
    PatchDiscriminator,
    build_discriminator,
    discriminator_in_channels,
)
from siedob.nn.generators import (
    BackgroundGenerator,
    FusionGenerator,
    ObjectInpaintingGenerator,
    ObjectInpaintingWrapper,
    ObjectStyleGenerator,
    ObjectStyleWrapper,
)
from siedob.nn.init import init_weights, skip_init
from siedob.nn.normalization import SPADE
from siedob.nn.style_propagation import StylePropagate, class_style_codes

__all__ = [
    "BackgroundGenerator",
    "ConvBlock",
    "DISCRIMINATORS",
    "FusionGenerator",
    "GatedConv",
    "ObjectInpaintingGenerator",
    "ObjectInpaintingWrapper",
    "ObjectStyleGenerator",
    "ObjectStyleWrapper",
    "PatchDiscriminator",
    "ResBlock",
    "SPADE",
    "StyleEncoder",
    "StylePropagate",
    "StyleSPADEResBlock",
    "UpGatedConv",
    "build_discriminator",
    "class_style_codes",
    "discriminator_in_channels",
    "init_weights",
    "skip_init",
]
