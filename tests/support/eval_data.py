"""Small evaluation fixtures: synthetic images written as PNGs and a scripted stand-in segmenter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Tuple

import cv2
import numpy as np
import torch


def draw_scenes(n: int, size: int = 64, seed: int = 0) -> List[np.ndarray]:
    """Deterministic BGR uint8 scenes: a colour gradient with random boxes."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, size)[None, :, None]
    out = []
    for _ in range(n):
        lo, hi = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        img = np.repeat(lo + (hi - lo) * ramp, size, axis=0).astype(np.uint8)
        for _ in range(4):
            x0, y0 = (int(v) for v in rng.integers(0, size - 8, 2))
            w, h = (int(v) for v in rng.integers(6, size // 2, 2))
            cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), tuple(int(c) for c in rng.integers(0, 256, 3)), -1)
        out.append(img)
    return out


def write_images(folder: Path, images: List[np.ndarray]) -> List[Path]:
    """Write images as PNGs named 000.png, 001.png … and return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        paths.append(folder / f"{i:03d}.png")
        cv2.imwrite(str(paths[-1]), img)
    return paths


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


def write_seg_model(folder: Path, num_classes: int = 19) -> Tuple[Path, Path]:
    """Script and save :class:`RedIsRoad` with a mapping JSON (RGB, mean = std = 0.5)."""
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / f"seg{num_classes}.pt"
    torch.jit.script(RedIsRoad(num_classes)).save(str(model))
    mapping = folder / "mapping.json"
    mapping.write_text(json.dumps({"num_classes": 19, "color_order": "rgb", "mean": [0.5] * 3, "std": [0.5] * 3}))
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


#: RedIsRoad on red_black_scene: road IoU 15/15, building 28/(28 + 4), sky 0/4; 16 classes absent.
EXPECTED_MIOU = (1.0 + 28 / 32 + 0.0) / 3 * 100
