"""Shared helpers of the edit tests: hand-made scenes, style folders and narrow checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

import cv2
import numpy as np
import torch

from siedob.checkpoints import RELEASED, save_released
from siedob.nn import BackgroundGenerator, FusionGenerator, ObjectInpaintingGenerator, ObjectStyleGenerator

CAR_FULL = 26000
CAR_PART = 26001
PERSON_PART = 24000


def toy_scene(h: int = 128, w: int = 128, seed: int = 0) -> Dict[str, np.ndarray]:
    """Sky over road, a fully masked car, a partly masked car and a partly masked person (raw label ids)."""
    rng = np.random.default_rng(seed)
    labels = np.full((h, w), 23, np.uint8)
    labels[h // 2 :] = 7
    labels[:4, :4] = 0
    inst = labels.astype(np.int32)
    objects = {
        CAR_FULL: (26, slice(h // 2 - 10, h // 2 + 14), slice(10, 50)),
        CAR_PART: (26, slice(h // 2 + 20, h // 2 + 40), slice(60, 100)),
        PERSON_PART: (24, slice(20, 70), slice(70, 86)),
    }
    mask = np.zeros((h, w), np.float32)
    for iid, (cls, rows, cols) in objects.items():
        labels[rows, cols] = cls
        inst[rows, cols] = iid
    mask[h // 2 - 13 : h // 2 + 17, 7:53] = 1
    mask[h // 2 + 30 : h // 2 + 44, 56:104] = 1
    mask[45:74, 67:89] = 1
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return {"image": image, "labels": labels, "instances": inst, "mask": mask}


def write_style_dir(root: Path, car_size: Tuple[int, int] = (64, 64), seed: int = 0) -> Path:
    """Two car and two person references ({car,person}/{images,inst_mask}) with box-shaped masks."""
    rng = np.random.default_rng(seed)
    for name, (h, w) in (("car", car_size), ("person", (64, 32))):
        for i in (1, 2):
            img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            m = np.zeros((h, w), np.uint8)
            m[h // 8 : h - h // 8, w // 8 : w - w // 8] = 255
            (root / name / "images").mkdir(parents=True, exist_ok=True)
            (root / name / "inst_mask").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / name / "images" / f"{name}_{i}.png"), img)
            cv2.imwrite(str(root / name / "inst_mask" / f"{name}_{i}.png"), m)
    return root


def write_example(root: Path, scene: Dict[str, np.ndarray], name: str = "scene") -> Path:
    """A scene in the authors' example layout (16-bit instance map, 0/255 mask) with a style folder."""
    for sub in ("images", "labels", "inst_map", "mask"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / "images" / f"{name}.png"), scene["image"])
    cv2.imwrite(str(root / "labels" / f"{name}.png"), scene["labels"])
    cv2.imwrite(str(root / "inst_map" / f"{name}.png"), scene["instances"].astype(np.uint16))
    cv2.imwrite(str(root / "mask" / f"{name}.png"), (scene["mask"] * 255).astype(np.uint8))
    write_style_dir(root / "object_style")
    return root


def small_networks(seed: int = 0, ngf: int = 8) -> Tuple[torch.nn.Module, ...]:
    """Narrow copies of the four generators (eval mode)."""
    torch.manual_seed(seed)
    nets = (ObjectInpaintingGenerator(ngf), ObjectStyleGenerator(ngf), BackgroundGenerator(ngf), FusionGenerator(ngf))
    return tuple(n.eval() for n in nets)


def write_checkpoints(root: Path, nets: Tuple[torch.nn.Module, ...]) -> Path:
    """Save the four networks as the released files."""
    root.mkdir(parents=True, exist_ok=True)
    for net, role in zip(nets, RELEASED):
        save_released(net, root / RELEASED[role].filename, role)
    return root


def ade_checkpoints(root: Path, ngf: int = 8, seed: int = 5) -> Path:
    """The four released files of narrow ADE20K-Room generators (6-channel class code, 151 labels)."""
    from siedob.profiles import get_profile

    ade = get_profile("ade20k-room")
    torch.manual_seed(seed)
    nets = (
        ObjectInpaintingGenerator(ngf, code_nc=ade.code_width),
        ObjectStyleGenerator(ngf, code_nc=ade.code_width),
        BackgroundGenerator(ngf, lab_nc=ade.lab_dim, skipped_classes=ade.style_skipped_classes),
        FusionGenerator(ngf),
    )
    root.mkdir(parents=True, exist_ok=True)
    for net, role in zip(nets, RELEASED):
        save_released(net.eval(), root / RELEASED[role].filename, role, profile=ade.name)
    return root
