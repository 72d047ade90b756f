"""The edit chain's style bank: reference objects per class that G_OG copies the style of (docs/spec.md §6).

Each class gets 4 slots filled by seeded random draws from its folder (the authors draw 4 per class
with ``random.choice``; with one file the bank is deterministic). The bank type and the reading of
references live with the data (:mod:`siedob.data.style_bank`); this module reads a user's folder.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from siedob.data.io import DataError
from siedob.data.style_bank import (
    CLASS_NAMES,
    CROP,
    STYLE_SLOTS,
    ClassBank,
    StyleBank,
    class_bank,
    class_names,
    draw_style_bank,
    style_files,
)
from siedob.edit.inputs import IMAGE_SUFFIXES, EditError
from siedob.profiles import ProfileLike, as_profile

PathLike = Union[str, Path]

__all__ = [
    "CLASS_NAMES",
    "CROP",
    "STYLE_SLOTS",
    "ClassBank",
    "StyleBank",
    "class_names",
    "draw_style_bank",
    "load_style_bank",
    "style_files",
]


def _class_files(style_dir: Path, name: str) -> List[Path]:
    """Reference images of a class folder, sorted; an absent folder has none."""
    folder = style_dir / name / "images"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_style_bank(
    style_dir: Optional[PathLike],
    seed: int = 0,
    slots: int = STYLE_SLOTS,
    names: Sequence[str] = (),
    rng: Optional[random.Random] = None,
    profile: ProfileLike = None,
) -> StyleBank:
    """Fill ``slots`` per class by seeded draws (the profile's class order: cars, then persons for Cityscapes);
    ``names`` pins specific files instead.

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
    folders = class_names(profile)
    files = {cls: _class_files(style_dir, name) for cls, name in folders.items()}
    pinned: Dict[int, List[Path]] = {cls: [] for cls in folders}
    for name in names:
        hits = [(cls, f) for cls in folders for f in files[cls] if name in (f.name, f.stem)]
        if not hits:
            where = " or ".join(f"{n}/images" for n in folders.values())
            raise EditError(f"{style_dir}: no style reference named {name!r} in {where}")
        pinned[hits[0][0]].append(hits[0][1])
    banks = {}
    for cls in folders:
        if pinned[cls]:
            chosen = pinned[cls]
        else:
            chosen = [rng.choice(files[cls]) for _ in range(slots)] if files[cls] else []
        try:
            banks[cls] = class_bank(chosen, cls, as_profile(profile))
        except DataError as exc:
            raise EditError(str(exc)) from None
    return StyleBank(banks, str(style_dir))
