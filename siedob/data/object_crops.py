"""Object crops for the object datasets, cut from the full-resolution photo (docs/spec.md §5.1 rules, any dataset).

Written for ``siedob-prepare-ade20k`` as the general form of ``siedob-prepare-cityscapes``' crop
loop: the class table is a parameter (instances of other classes are left alone) and the photo may
be any multiple of the prepared map's size, whole-numbered or not. On Cityscapes it writes the same
files, and that tool calls it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Mapping, Tuple

import cv2
import numpy as np

from siedob.data.io import write_atomic

if TYPE_CHECKING:
    from siedob.data.prepare_cityscapes import Settings


def put_output(path: Path, img: np.ndarray, overwrite: bool, written: Counter, params: tuple = ()) -> None:
    """Write one output unless it exists (and ``overwrite`` is off); count it by folder."""
    if path.exists() and not overwrite:
        return
    write_atomic(path, img, params)
    written[path.parent.name] += 1


def cut_object_crops(
    dst: Path,
    osplit: str,
    name: str,
    photo: np.ndarray,
    inst_full: np.ndarray,
    inst: np.ndarray,
    names: Mapping[int, str],
    settings: Settings,
    overwrite: bool,
    written: Counter,
    factor: int = 1000,
) -> Tuple[Counter, Counter, Dict[str, List[float]]]:
    """Cut every instance of an object class (``names``: label id → class name) of ``inst`` from ``photo``.

    ``inst`` is the prepared instance map, ``inst_full`` the one at the photo's size, both holding
    ``class * factor + k``. The box (± margin) is measured on the prepared map and kept when its short
    side is at least ``min_short_side`` px and the fill ratio is above the class's; the window is
    scaled to the photo, resized to the class's crop size (photo area, mask nearest) and written to
    ``object_datasets/<class>/<osplit>/{images,inst_mask}/<class>_<name>_<kk>``. Returns the objects
    written per class/split, the skips by reason and the kept boxes' height / width per class.
    """
    objects, skipped, kk = Counter(), Counter(), Counter()
    aspects: Dict[str, List[float]] = {}
    h, w = inst.shape
    sy, sx = photo.shape[0] / h, photo.shape[1] / w
    ids = [int(v) for v in np.unique(inst[inst >= factor]) if int(v) // factor in names]
    full_ids = [int(v) for v in np.unique(inst_full[inst_full >= factor]) if int(v) // factor in names]
    for iid in sorted(set(full_ids) - set(ids)):
        skipped[f"{names[iid // factor]}: vanished when resized"] += 1
    jpeg = (cv2.IMWRITE_JPEG_QUALITY, settings.jpeg_quality)
    for iid in ids:
        cname = names[iid // factor]
        m = inst == iid
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        b0, b1 = max(0, rows[0] - settings.margin), min(h, rows[-1] + settings.margin + 1)
        b2, b3 = max(0, cols[0] - settings.margin), min(w, cols[-1] + settings.margin + 1)
        if min(b1 - b0, b3 - b2) < settings.min_short_side:
            skipped[f"{cname}: short side < {settings.min_short_side} px"] += 1
            continue
        thr = settings.fill_ratio[cname]
        if not m.sum() / ((b1 - b0) * (b3 - b2)) > thr:
            skipped[f"{cname}: fill ratio <= {thr}"] += 1
            continue
        r0, c0 = int(round(b0 * sy)), int(round(b2 * sx))
        r1, c1 = max(r0 + 1, int(round(b1 * sy))), max(c0 + 1, int(round(b3 * sx)))
        oh, ow = settings.object_size[cname]
        crop = cv2.resize(photo[r0:r1, c0:c1], (ow, oh), interpolation=cv2.INTER_AREA)
        obj_mask = (inst_full[r0:r1, c0:c1] == iid).astype(np.uint8) * 255
        obj_mask = cv2.resize(obj_mask, (ow, oh), interpolation=cv2.INTER_NEAREST)
        stem = f"{cname}_{name}_{kk[cname]:02d}"
        kk[cname] += 1
        folder = Path(dst) / "object_datasets" / cname / osplit
        put_output(folder / "images" / f"{stem}.jpg", crop, overwrite, written, jpeg)
        put_output(folder / "inst_mask" / f"{stem}.png", obj_mask, overwrite, written)
        objects[f"{cname}/{osplit}"] += 1
        aspects.setdefault(cname, []).append(round((b1 - b0) / (b3 - b2), 4))
    return objects, skipped, aspects
