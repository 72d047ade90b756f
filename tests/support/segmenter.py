"""A scripted stand-in segmentation model and a scene whose mIoU is known by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Tuple

import numpy as np
import torch


class RedIsRoad(torch.nn.Module):
    """Stand-in segmenter: channel 0 (road) where the first input channel is positive, else channel 2."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], self.num_classes, x.shape[2], x.shape[3])
        out[:, 0] = x[:, 0]
        out[:, 2] = -x[:, 0]
        return out


def write_seg_model(folder: Path, num_classes: int = 19, mapping_classes: int = 19) -> Tuple[Path, Path]:
    """Script and save :class:`RedIsRoad` with a mapping JSON (RGB, mean = std = 0.5)."""
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / f"seg{num_classes}.pt"
    torch.jit.script(RedIsRoad(num_classes)).save(str(model))
    mapping = folder / "mapping.json"
    mapping.write_text(
        json.dumps({"num_classes": mapping_classes, "color_order": "rgb", "mean": [0.5] * 3, "std": [0.5] * 3})
    )
    return model, mapping


def red_black_scene() -> Tuple[np.ndarray, np.ndarray]:
    """8×8 BGR image (left half red, right black) and labelIds: road | building, sky bottom-right, one unlabeled."""
    img = np.zeros((8, 8, 3), np.uint8)
    img[:, :4, 2] = 255
    lab = np.full((8, 8), 11, np.uint8)
    lab[:, :4] = 7
    lab[7, 4:] = 23
    lab[0, 0] = 0
    return img, lab


#: road IoU 15/15, building 28/(28 + 4), sky 0/4; the other 16 classes are absent (left out of the mean).
EXPECTED_MIOU = (1.0 + 28 / 32 + 0.0) / 3 * 100
