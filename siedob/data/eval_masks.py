"""The evaluation mask protocols of the paper's Table 1: free-form, extension and outpainting.

Every mask is float32 H × W with 1 where the image is regenerated and 0 where it is kept.

* ``free-form``: the seeded brush strokes of ``predefined_mask/`` (drawn by the prepare step with
  :func:`siedob.data.masks.brush_mask_from_config`, one stream ``[mask_seed, 0, k]`` per test image).
* ``extension``: the right half is regenerated, the left half kept (columns ``w - w // 2`` to the end).
* ``outpainting``: everything is regenerated except the centred ``h // 2 × w // 2`` box (rows
  ``h // 4 .. h // 4 + h // 2``, columns ``w // 4 .. w // 4 + w // 2``): 128 × 128 kept of a 256 × 256 test image.

Extension and outpainting do not depend on the seed: their geometry is the authors' fixed test geometry
(the right-half and centre masks of their SPMPGAN data code, which SIEDOB's training masks repeat). The
paper itself does not spell the regions out, so this is our reading; ``docs/evaluation.md`` says so.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Dict, Sequence, Union

import numpy as np

from siedob.data.io import write_atomic

PathLike = Union[str, Path]
MASK_PROTOCOLS = ("free-form", "extension", "outpainting")
#: Folder of each protocol's masks in the prepared layout (beside each other, one file per test image).
MASK_FOLDERS: Dict[str, str] = {
    "free-form": "predefined_mask",
    "extension": "extension_mask",
    "outpainting": "outpainting_mask",
}
#: The protocols whose masks are a fixed function of the image size (no seed).
FIXED_PROTOCOLS = ("extension", "outpainting")


def extension_mask(h: int, w: int) -> np.ndarray:
    """Keep the left half, regenerate the right half (``w // 2`` columns; the middle column is kept when w is odd)."""
    mask = np.zeros((h, w), np.float32)
    mask[:, w - w // 2 :] = 1
    return mask


def outpainting_mask(h: int, w: int) -> np.ndarray:
    """Keep the centred ``h // 2 × w // 2`` box, regenerate everything around it."""
    mask = np.ones((h, w), np.float32)
    top, left = h // 4, w // 4
    mask[top : top + h // 2, left : left + w // 2] = 0
    return mask


def fixed_protocol_mask(protocol: str, h: int, w: int) -> np.ndarray:
    """The extension or outpainting mask of an ``h × w`` image."""
    if protocol == "extension":
        return extension_mask(h, w)
    if protocol == "outpainting":
        return outpainting_mask(h, w)
    raise ValueError(f"{protocol!r} has no fixed geometry; expected one of {', '.join(FIXED_PROTOCOLS)}")


def write_fixed_protocol_masks(
    dst: PathLike, n: int, h: int, w: int, overwrite: bool = False, protocols: Sequence[str] = FIXED_PROTOCOLS
) -> Counter:
    """Write ``extension_mask/NNNN.png`` and ``outpainting_mask/NNNN.png`` (0/255) for n test images.

    Existing files are kept unless ``overwrite``; returns how many files each folder got.
    """
    written: Counter = Counter()
    for protocol in protocols:
        folder = Path(dst) / MASK_FOLDERS[protocol]
        png = (fixed_protocol_mask(protocol, h, w) * 255).astype(np.uint8)
        for k in range(n):
            path = folder / f"{k:04d}.png"
            if overwrite or not path.exists():
                write_atomic(path, png)
                written[folder.name] += 1
    return written
