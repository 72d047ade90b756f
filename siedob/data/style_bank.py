"""Style references of G_OG: the bank type, reading references, and the training draws from the object datasets.

Layout (the authors'): ``<dir>/{car,person}/images/<n>.jpg`` with masks ``<dir>/{car,person}/inst_mask/<n>.png``
(one folder per object class of the dataset profile). References of a class whose object crops are
stored at 64×64 (Cityscapes cars, every ADE20K-Room class) are used at their stored size (must be
64×64); others (Cityscapes persons, stored 64×32) are resized to 64×64 with ``cv2.resize`` on uint8.
The edit side (:mod:`siedob.edit.style_bank`) fills a bank from a folder; training draws one bank per scene
from the object datasets (:func:`draw_style_bank`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch

from siedob.data.io import DataError, image_to_tensor, map_to_tensor, read_bgr, read_gray
from siedob.profiles import ProfileLike, as_profile

PathLike = Union[str, Path]

#: Slots per class in a bank (the authors draw 4 references per class per image).
STYLE_SLOTS = 4
#: Side of the object crops the networks work on.
CROP = 64


def class_names(profile: ProfileLike = None) -> Dict[int, str]:
    """Object class label id → folder name, in the profile's class order."""
    return {o.label_id: o.name for o in as_profile(profile).objects}


#: The Cityscapes class folders (26: car, 24: person).
CLASS_NAMES: Dict[int, str] = class_names()


@dataclass
class ClassBank:
    """References of one class: images K×3×64×64 in [-1, 1] (BGR), masks K×1×64×64 in {0, 1}, file names."""

    images: torch.Tensor
    masks: torch.Tensor
    names: List[str]

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class StyleBank:
    """Per object class (label id) a :class:`ClassBank`; ``source`` names where it came from, for messages."""

    banks: Dict[int, ClassBank] = field(default_factory=dict)
    source: str = "the style bank"

    def get(self, cls: int) -> Optional[ClassBank]:
        """The class's bank, or None when it has no reference."""
        bank = self.banks.get(cls)
        return bank if bank is not None and len(bank) else None


def load_reference(
    image_path: PathLike, mask_path: PathLike, cls: int, profile: ProfileLike = None
) -> Tuple[torch.Tensor, torch.Tensor]:
    """One reference as (3×64×64 image in [-1, 1], 1×64×64 mask): classes stored at 64×64 as stored
    (Cityscapes cars), the others resized to 64×64 (Cityscapes persons)."""
    img = read_bgr(image_path)
    mask = read_gray(mask_path).astype(np.float32) / 255.0
    if img.shape[:2] != mask.shape[:2]:
        raise DataError(f"{mask_path}: size {mask.shape[0]}×{mask.shape[1]} does not match {image_path}")
    obj = as_profile(profile).object_class(cls)
    if tuple(obj.crop_size) == (CROP, CROP):
        if img.shape[:2] != (CROP, CROP):
            raise DataError(
                f"{image_path}: {obj.name} style references must be {CROP}×{CROP}, got {img.shape[0]}×{img.shape[1]}"
            )
    else:
        img = cv2.resize(img, (CROP, CROP))
        mask = cv2.resize(mask, (CROP, CROP), interpolation=cv2.INTER_NEAREST)
    return image_to_tensor(img), map_to_tensor(mask)


def mask_for(image: Path) -> Path:
    """``.../<class>/images/<n>.jpg`` → ``.../<class>/inst_mask/<n>.png``."""
    return image.parent.parent / "inst_mask" / f"{image.stem}.png"


def class_bank(files: Sequence[Path], cls: int, profile: ProfileLike = None) -> ClassBank:
    """Read the given reference files (in slot order) into a bank; each image's mask must exist."""
    images, masks = [], []
    for f in files:
        mask = mask_for(f)
        if not mask.is_file():
            raise DataError(f"{mask}: file not found (mask of style reference {f.name})")
        img, m = load_reference(f, mask, cls, profile)
        images.append(img)
        masks.append(m)
    if not files:
        return ClassBank(torch.zeros(0, 3, CROP, CROP), torch.zeros(0, 1, CROP, CROP), [])
    return ClassBank(torch.stack(images), torch.stack(masks), [f.name for f in files])


def style_files(
    data_root: PathLike,
    split: str = "train",
    classes: Optional[Sequence[int]] = None,
    profile: ProfileLike = None,
) -> Dict[int, List[Path]]:
    """Object-dataset crops per class (``object_datasets/<class>/<split>/images/*.jpg``): style references.

    ``classes`` default to the profile's object classes, in its order.
    """
    root = Path(data_root) / "object_datasets"
    names = class_names(profile)
    classes = tuple(names) if classes is None else classes
    return {c: sorted((root / names[c] / split / "images").glob("*.jpg")) for c in classes}


def draw_style_bank(
    files: Mapping[int, Sequence[Path]], slots: int = STYLE_SLOTS, profile: ProfileLike = None
) -> StyleBank:
    """``slots`` random references per class (torch's generator), read as the edit chain reads them."""
    banks = {}
    for cls, paths in files.items():
        if not paths:
            continue
        picks = [paths[int(torch.randint(len(paths), (1,)))] for _ in range(slots)]
        banks[cls] = class_bank(picks, cls, profile)
    return StyleBank(banks, "the object datasets")


def pool_banks(banks: Sequence[StyleBank]) -> StyleBank:
    """One bank holding, per class, the references of every bank in order (a training batch's 4·B pool)."""
    pooled = {}
    for cls in dict.fromkeys(c for b in banks for c in b.banks):
        parts = [b.get(cls) for b in banks if b.get(cls) is not None]
        if parts:
            pooled[cls] = ClassBank(
                torch.cat([p.images for p in parts]),
                torch.cat([p.masks for p in parts]),
                [n for p in parts for n in p.names],
            )
    return StyleBank(pooled, banks[0].source if banks else "no style bank")
