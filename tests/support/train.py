"""Shared helpers of the training tests: a tiny synthetic data set and reduced-width overrides."""

from __future__ import annotations

from pathlib import Path
from typing import List

import torch

from siedob.train.vgg import VGG19Features
from tests.support.paths import FIXTURES

#: Reduced widths and no background work for every stage.
COMMON = ["model.ngf=4", "model.ndf=4", "train.num_workers=0", "log.fid_every_epochs=0", "train.batch_size=2"]
#: Scene stages at 64 × 64 crops (sides must be multiples of 16).
SCENE = [
    "data.crop_size=64",
    "data.box_size=32",
    "data.brush={min_vertex: 4, max_vertex: 8, min_width: 12, max_width: 35}",
]
PATCHES = ["train.patch_size=[16,32]", "train.patch_resize=32"]


def overrides(stage: str, *extra: str) -> List[str]:
    """Test overrides of a stage (reduced widths, small crops, tiny batches)."""
    out = list(COMMON)
    if stage in ("background", "fusion"):
        out += SCENE
    if stage == "background":
        out += PATCHES
    return out + list(extra)


def cli_overrides(stage: str, *extra: str) -> List[str]:
    """The same as ``--set`` arguments for the command line (with a narrowed random VGG)."""
    args: List[str] = []
    for item in overrides(stage, "train.vgg_width_divisor=16", *extra):
        args += ["--set", item]
    return args


def tiny_vgg() -> VGG19Features:
    """A narrowed random-weight VGG19 (the loss layout, not the ImageNet features)."""
    torch.manual_seed(123)
    return VGG19Features(width_divisor=16).eval().requires_grad_(False)


def make_data(root: Path, scenes: int = 3) -> Path:
    """Synthetic data in the prepared layout (scenes and object crops)."""
    from siedob.data.synthetic import write_prepared

    write_prepared(root, scenes, seed=0)
    return root


#: Reference key lists of the authors' checkpoints.
FIXTURES_KEYS = FIXTURES / "state_dict_keys.json"
