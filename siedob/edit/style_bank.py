"""The style bank of the edit chain: reference objects per class that G_OG copies the style of (docs/spec.md §6).

Layout (the authors'): ``<dir>/{car,person}/images/<n>.jpg`` with masks ``<dir>/{car,person}/inst_mask/<n>.png``.
Each class gets 4 slots filled by seeded random draws from its folder (the authors draw 4 per class
with ``random.choice``; with one file the bank is deterministic). Car references are used at their
stored size (must be 64×64); person references are resized to 64×64 with ``cv2.resize`` on uint8.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Union

import cv2
import numpy as np
import torch

from siedob.data.io import image_to_tensor, map_to_tensor, read_bgr, read_gray
from siedob.edit.inputs import IMAGE_SUFFIXES, EditError, _read
from siedob.labels import CAR, OBJECT_CLASSES, PERSON

PathLike = Union[str, Path]

#: Slots per class in the bank (the authors draw 4 references per class per image).
STYLE_SLOTS = 4
#: Side of the object crops the networks work on.
CROP = 64
CLASS_NAMES: Dict[int, str] = {cls: name for name, cls in OBJECT_CLASSES.items()}


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
    """Per object class (24, 26) a :class:`ClassBank`; ``source`` names where it came from, for messages."""

    banks: Dict[int, ClassBank] = field(default_factory=dict)
    source: str = "the style bank"

    def get(self, cls: int) -> Optional[ClassBank]:
        """The class's bank, or None when it has no reference."""
        bank = self.banks.get(cls)
        return bank if bank is not None and len(bank) else None


def load_reference(image_path: PathLike, mask_path: PathLike, cls: int) -> tuple:
    """One reference as (3×64×64 image in [-1, 1], 1×64×64 mask): cars as stored, persons resized to 64×64."""
    img = _read(read_bgr, image_path)
    mask = _read(read_gray, mask_path).astype(np.float32) / 255.0
    if img.shape[:2] != mask.shape[:2]:
        raise EditError(f"{mask_path}: size {mask.shape[0]}×{mask.shape[1]} does not match {image_path}")
    if cls == CAR:
        if img.shape[:2] != (CROP, CROP):
            raise EditError(
                f"{image_path}: car style references must be {CROP}×{CROP}, got {img.shape[0]}×{img.shape[1]}"
            )
    else:
        img = cv2.resize(img, (CROP, CROP))
        mask = cv2.resize(mask, (CROP, CROP), interpolation=cv2.INTER_NEAREST)
    return image_to_tensor(img), map_to_tensor(mask)


def _class_files(style_dir: Path, cls: int) -> List[Path]:
    """Reference images of a class folder, sorted; an absent folder has none."""
    folder = style_dir / CLASS_NAMES[cls] / "images"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _mask_for(image: Path) -> Path:
    """``.../<class>/images/<n>.jpg`` → ``.../<class>/inst_mask/<n>.png``."""
    return image.parent.parent / "inst_mask" / f"{image.stem}.png"


def class_bank(files: Sequence[Path], cls: int) -> ClassBank:
    """Read the given reference files (in slot order) into a bank; each image's mask must exist."""
    images, masks = [], []
    for f in files:
        mask = _mask_for(f)
        if not mask.is_file():
            raise EditError(f"{mask}: file not found (mask of style reference {f.name})")
        img, m = load_reference(f, mask, cls)
        images.append(img)
        masks.append(m)
    if not files:
        return ClassBank(torch.zeros(0, 3, CROP, CROP), torch.zeros(0, 1, CROP, CROP), [])
    return ClassBank(torch.stack(images), torch.stack(masks), [f.name for f in files])


def load_style_bank(
    style_dir: Optional[PathLike],
    seed: int = 0,
    slots: int = STYLE_SLOTS,
    names: Sequence[str] = (),
    rng: Optional[random.Random] = None,
) -> StyleBank:
    """Fill ``slots`` per class by seeded draws (cars first, then persons); ``names`` pins specific files instead.

    ``rng`` (else ``random.Random(seed)``) lets several images draw their banks from one stream. A name is
    looked up among both classes' images (by file name or stem); a class with pinned names uses exactly
    those, in order. An absent class folder gives an empty bank, an error only when an edit needs it.
    """
    if style_dir is None:
        return StyleBank({}, "no style folder")
    style_dir = Path(style_dir)
    if not style_dir.is_dir():
        raise EditError(f"{style_dir}: style folder not found")
    rng = rng if rng is not None else random.Random(seed)
    files = {cls: _class_files(style_dir, cls) for cls in (CAR, PERSON)}
    pinned: Dict[int, List[Path]] = {CAR: [], PERSON: []}
    for name in names:
        hits = [(cls, f) for cls in (CAR, PERSON) for f in files[cls] if name in (f.name, f.stem)]
        if not hits:
            raise EditError(f"{style_dir}: no style reference named {name!r} in car/images or person/images")
        pinned[hits[0][0]].append(hits[0][1])
    banks = {}
    for cls in (CAR, PERSON):
        if pinned[cls]:
            chosen = pinned[cls]
        else:
            chosen = [rng.choice(files[cls]) for _ in range(slots)] if files[cls] else []
        banks[cls] = class_bank(chosen, cls)
    return StyleBank(banks, str(style_dir))


def style_files(
    data_root: PathLike, split: str = "train", classes: Sequence[int] = (CAR, PERSON)
) -> Dict[int, List[Path]]:
    """Object-dataset crops per class (``object_datasets/<class>/<split>/images/*.jpg``): style references."""
    root = Path(data_root) / "object_datasets"
    return {c: sorted((root / CLASS_NAMES[c] / split / "images").glob("*.jpg")) for c in classes}


def draw_style_bank(files: Mapping[int, Sequence[Path]], slots: int) -> StyleBank:
    """``slots`` random references per class (torch's generator), read as the edit chain reads them."""
    banks = {}
    for cls, paths in files.items():
        if not paths:
            continue
        picks = [paths[int(torch.randint(len(paths), (1,)))] for _ in range(slots)]
        banks[cls] = class_bank(picks, cls)
    return StyleBank(banks, "the object datasets")
