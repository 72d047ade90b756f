"""Build the bundled edit example (``fusion/example``) from synthetic scenes — never from Cityscapes.

The edit adds a car (fully masked: drawn by G_OG), cuts the lower part of a person (inpainted by G_OI)
and turns a patch of road into terrain (filled by G_B). Style references are car and person crops from
other synthetic scenes. The layout is the authors' (images/, labels/, inst_map/, mask/, object_style/).
The bundled copy is package data (:mod:`siedob.example`); rebuild it with
``python -m siedob.edit.make_example --output siedob/example [--seed 0]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from siedob.cli import Parser, check_output_dir
from siedob.data.io import PathLike, write_atomic
from siedob.data.synthetic import make_scene
from siedob.errors import SiedobError, run_cli
from siedob.labels import CAR, INSTANCE_FACTOR, PERSON

SIZE = 256
ROAD, TERRAIN = 7, 22
#: Instance id given to the added car.
NEW_CAR_ID = CAR * INSTANCE_FACTOR + 50
#: Style crops: (class, folder, height, width) — persons are stored 64 high × 32 wide, as the authors'.
STYLE_CROPS = ((CAR, "car", 64, 64), (PERSON, "person", 64, 32))


@dataclass
class Example:
    """An edit in the authors' layout: BGR photo, edited labels and instances, 0/255 mask."""

    image: np.ndarray
    labels: np.ndarray
    instances: np.ndarray
    mask: np.ndarray


def _box(m: np.ndarray) -> Tuple[int, int, int, int]:
    """(r0, r1, c0, c1) inclusive extent of a non-empty boolean mask."""
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def _fill(m: np.ndarray) -> float:
    """Area over the area of the 2-pixel-margin box, as the chain's selection computes it."""
    r0, r1, c0, c1 = _box(m)
    h, w = m.shape
    return m.sum() / ((min(r1 + 2, h) - max(0, r0 - 2)) * (min(c1 + 2, w) - max(0, c0 - 2)))


def _instances(inst: np.ndarray, cls: int) -> List[int]:
    """Instance ids of a class present in a map."""
    return [int(i) for i in np.unique(inst) if i // INSTANCE_FACTOR == cls]


def _whole(inst: np.ndarray, iid: int) -> bool:
    """The instance does not touch the image border."""
    m = inst == iid
    return not (m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any())


def make_edit(seed: int) -> Optional[Example]:
    """One candidate edit from a seed, or None when the drawn scenes do not allow all three edits."""
    rng = np.random.default_rng([seed, 1])
    orig = make_scene(rng, SIZE, SIZE, n_cars=2, n_persons=3)
    donor = make_scene(np.random.default_rng([seed, 2]), SIZE, SIZE, n_cars=3, n_persons=0)
    labels, inst = orig.labels.copy(), orig.instances.copy()
    mask = np.zeros((SIZE, SIZE), np.uint8)
    persons = [
        p for p in _instances(inst, PERSON) if _whole(inst, p) and (inst == p).sum() > 300 and _fill(inst == p) > 0.45
    ]
    dinst = donor.instances
    cars = [c for c in _instances(dinst, CAR) if _whole(dinst, c) and _fill(dinst == c) > 0.62]
    if not persons or not cars:
        return None
    car = max(cars, key=lambda c: (donor.instances == c).sum())
    car_mask = donor.instances == car
    if not 800 < car_mask.sum() < 6000:
        return None
    person = max(persons, key=lambda p: (inst == p).sum())
    r0, r1, c0, c1 = _box(inst == person)
    cut = np.zeros_like(mask)
    cut[(r0 + r1) // 2 : r1 + 3, c0 - 3 : c1 + 4] = 1
    labels[car_mask] = CAR
    inst[car_mask] = NEW_CAR_ID
    mask |= cv2.dilate(car_mask.astype(np.uint8), np.ones((9, 9), np.uint8))
    if (mask & cut).any() or ((inst == person) & (mask == 1)).any():
        return None
    mask |= cut
    patch = np.zeros_like(mask)
    patch[SIZE - 56 : SIZE - 8, 8:88] = 1
    road = (patch == 1) & (labels == ROAD)
    if road.sum() < 1000 or (patch & mask).any():
        return None
    labels[road] = TERRAIN
    inst[road] = TERRAIN
    mask |= patch
    return Example(orig.image, labels, inst.astype(np.uint16), mask * 255)


def style_crops(seed: int, cls: int, size: Tuple[int, int], count: int) -> List[Tuple[np.ndarray, np.ndarray]]:
    """``count`` crops (BGR image, 0/255 mask) of whole instances of a class from synthetic scenes."""
    out: List[Tuple[np.ndarray, np.ndarray]] = []
    k = 0
    while len(out) < count and k < 200:
        scene = make_scene(np.random.default_rng([seed, 100 + k]), SIZE, 2 * SIZE)
        k += 1
        for iid in _instances(scene.instances, cls):
            m = scene.instances == iid
            if not _whole(scene.instances, iid) or m.sum() < 400 or _fill(m) < 0.5:
                continue
            r0, r1, c0, c1 = _box(m)
            window = (slice(max(0, r0 - 2), r1 + 3), slice(max(0, c0 - 2), c1 + 3))
            h, w = size
            img = cv2.resize(scene.image[window], (w, h), interpolation=cv2.INTER_AREA)
            msk = cv2.resize(m[window].astype(np.uint8) * 255, (w, h), interpolation=cv2.INTER_NEAREST)
            out.append((img, msk))
            break
    if len(out) < count:
        raise SiedobError(f"could not find {count} style crops of class {cls}")
    return out


def write_example(out: PathLike, seed: int = 0, name: str = "example", refs: int = 2) -> Path:
    """Write the example folder; the first seed at or after ``seed`` that allows all three edits is used."""
    out = Path(out)
    for s in range(seed, seed + 500):
        ex = make_edit(s)
        if ex is not None:
            break
    else:
        raise SiedobError(f"no seed in {seed}..{seed + 499} gives a usable example")
    write_atomic(out / "images" / f"{name}.jpg", ex.image, (cv2.IMWRITE_JPEG_QUALITY, 95))
    write_atomic(out / "labels" / f"{name}.png", ex.labels)
    write_atomic(out / "inst_map" / f"{name}.png", ex.instances)
    write_atomic(out / "mask" / f"{name}.png", ex.mask)
    for cls, folder, h, w in STYLE_CROPS:
        for i, (img, msk) in enumerate(style_crops(s, cls, (h, w), refs), 1):
            base = out / "object_style" / folder
            write_atomic(base / "images" / f"{folder}_style{i}.jpg", img, (cv2.IMWRITE_JPEG_QUALITY, 95))
            write_atomic(base / "inst_mask" / f"{folder}_style{i}.png", msk)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line: write the example folder."""
    p = Parser(prog="python -m siedob.edit.make_example", description=__doc__.splitlines()[0])
    p.add_argument("--output", required=True, metavar="DIR", help="example folder to write")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(f"wrote {write_example(check_output_dir(Path(args.output)), args.seed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
