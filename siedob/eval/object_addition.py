"""Object addition (the paper's Table 2): new, fully masked objects in the test scenes, K results each.

For test scene i a generator ``numpy.random.default_rng([seed, 2, i])`` draws, in this order:
the class (an index into the classes, cars then persons, that have shapes and ground pixels in
the scene), the shape (an index into that class's sorted ``object_datasets/<class>/test/inst_mask/``
files), the object's height in pixels (uniform integer in :data:`HEIGHTS`, scaled by H / 256) and
the foot point (an index into the row-major list of candidate pixels). The shape is cropped to its
own bounding box and resized (nearest) to that height, keeping its aspect ratio. A candidate foot
point is a pixel of the class's ground (:data:`GROUND`: road for cars, sidewalk for persons) such
that the object, standing on it bottom-centred, lies inside the image. The object gets the next
free instance id of its class; its label and instance pixels are written into the scene's maps and
the edit mask is its box grown by :data:`MARGIN` pixels, so the whole instance is masked and the
chain draws it with G_OG. The K results differ only in their style reference: result k uses
reference ``perm[k mod n]`` of a per-scene permutation (``default_rng([seed, 3, i])``) of the class's
n test crops, the K references being distinct when n >= K.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from tqdm import tqdm

from siedob.data.io import read_bgr, read_gray, read_instances, write_atomic, write_image
from siedob.files import atomic_write_bytes
from siedob.labels import CAR, OBJECT_CLASSES, PERSON

from .errors import EvalError
from .images import list_images, read_label

PathLike = Union[str, Path]
CLASS_ORDER = (CAR, PERSON)
CLASS_NAMES = {cls: name for name, cls in OBJECT_CLASSES.items()}
#: Label ids an added object may stand on: road (7) for cars, sidewalk (8) for persons.
GROUND: Dict[int, Tuple[int, ...]] = {CAR: (7,), PERSON: (8,)}
#: Object height range in pixels for a 256-pixel-high scene (scaled by H / 256), both ends included.
HEIGHTS: Dict[int, Tuple[int, int]] = {CAR: (20, 48), PERSON: (24, 56)}
#: Pixels the edit mask extends beyond the added object's box on each side.
MARGIN = 8
DEFAULT_RESULTS_PER_SCENE = 5


@dataclass(frozen=True)
class Placement:
    """An added object: class, shape file, box (top, left, height, width) and its new instance id."""

    cls: int
    shape: str
    top: int
    left: int
    height: int
    width: int
    instance_id: int

    @property
    def box(self) -> Tuple[int, int, int, int]:
        """``(top, left, bottom, right)``, bottom and right exclusive."""
        return self.top, self.left, self.top + self.height, self.left + self.width


def object_shapes(data_root: PathLike) -> Dict[int, List[Path]]:
    """The test instance masks per class (sorted): the shapes new objects take."""
    root = Path(data_root) / "object_datasets"
    return {cls: sorted((root / CLASS_NAMES[cls] / "test" / "inst_mask").glob("*.png")) for cls in CLASS_ORDER}


def shape_mask(shape: np.ndarray, height: int) -> np.ndarray:
    """The shape's pixels (>127) cropped to their bounding box and resized (nearest) to ``height`` rows."""
    on = shape > 127
    rows, cols = np.flatnonzero(on.any(1)), np.flatnonzero(on.any(0))
    if not len(rows):
        raise EvalError("object shape is empty")
    crop = on[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.uint8)
    width = max(1, round(height * crop.shape[1] / crop.shape[0]))
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)


def next_instance_id(instances: np.ndarray, cls: int) -> int:
    """``cls * 1000 + k`` with k one above the largest k of the class in the scene (0 if it has none)."""
    ids = instances[(instances >= cls * 1000) & (instances < (cls + 1) * 1000)]
    return cls * 1000 + (int(ids.max()) - cls * 1000 + 1 if ids.size else 0)


def place_object(
    rng: np.random.Generator,
    labels: np.ndarray,
    instances: np.ndarray,
    shapes: Dict[int, Sequence[Tuple[str, np.ndarray]]],
    heights: Dict[int, Tuple[int, int]] = HEIGHTS,
) -> Optional[Tuple[Placement, np.ndarray]]:
    """Draw one placement (see the module docstring for the order of draws) and its H×W object pixels.

    ``shapes`` maps a class to ``(name, 0/255 mask)`` pairs. Returns None when no class has both shapes
    and ground pixels, or the drawn object fits on no ground pixel.
    """
    h, w = labels.shape
    classes = [c for c in CLASS_ORDER if shapes.get(c) and np.isin(labels, GROUND[c]).any()]
    if not classes:
        return None
    cls = classes[int(rng.integers(len(classes)))]
    name, shape = shapes[cls][int(rng.integers(len(shapes[cls])))]
    lo, hi = (max(1, round(v * h / 256)) for v in heights[cls])
    height = int(rng.integers(lo, hi + 1))
    obj = shape_mask(shape, height)
    width = obj.shape[1]
    ys, xs = np.nonzero(np.isin(labels, GROUND[cls]))
    fits = (ys - height + 1 >= 0) & (xs - width // 2 >= 0) & (xs - width // 2 + width <= w)
    ys, xs = ys[fits], xs[fits]
    if not len(ys):
        return None
    k = int(rng.integers(len(ys)))
    top, left = int(ys[k]) - height + 1, int(xs[k]) - width // 2
    placement = Placement(cls, name, top, left, height, width, next_instance_id(instances, cls))
    pixels = np.zeros((h, w), bool)
    pixels[top : top + height, left : left + width] = obj
    return placement, pixels


def add_object(
    labels: np.ndarray, instances: np.ndarray, placement: Placement, pixels: np.ndarray, margin: int = MARGIN
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The edited label and instance maps and the edit mask (the object's box grown by ``margin``, clipped)."""
    lab, inst = labels.copy(), instances.copy()
    lab[pixels] = placement.cls
    inst[pixels] = placement.instance_id
    h, w = labels.shape
    top, left, bottom, right = placement.box
    mask = np.zeros((h, w), np.float32)
    mask[max(0, top - margin) : min(h, bottom + margin), max(0, left - margin) : min(w, right + margin)] = 1
    return lab, inst, mask


@dataclass
class AdditionResults:
    """The files of one object-addition run: the real scenes, the K results of each, their label maps."""

    real: List[Path]
    fake: List[Path]
    paired_real: List[Path]
    labels: List[Path]
    groups: List[List[int]]
    masks: List[Path]
    placements: List[Dict]
    skipped: List[str]


def _read_shapes(files: Dict[int, List[Path]]) -> Dict[int, List[Tuple[str, np.ndarray]]]:
    return {cls: [(p.name, read_gray(p)) for p in paths] for cls, paths in files.items()}


def _style_bank(cls: int, pick: Path):
    """A bank holding one reference, so every new object of the class copies ``pick``'s style."""
    from siedob.data.style_bank import StyleBank, class_bank

    return StyleBank({cls: class_bank([pick], cls)}, str(pick.parent.parent))


def run_object_addition(
    data_root: PathLike,
    checkpoints: PathLike,
    out_dir: PathLike,
    k: int = DEFAULT_RESULTS_PER_SCENE,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> AdditionResults:
    """Add one object to every test scene and write K results each (``images/<stem>_kJ.png``), with the
    edited maps (``labels/``, ``inst_map/``), the masks (``masks/``) and ``placements.json`` beside them."""
    import json

    from siedob.data.style_bank import style_files
    from siedob.edit import Editor

    if k < 1:
        raise EvalError(f"--results-per-scene must be at least 1, got {k}")
    root, out = Path(data_root), Path(out_dir)
    images = list_images(root / "test" / "images")
    shape_files = object_shapes(root)
    if not any(shape_files.values()):
        raise EvalError(f"{root / 'object_datasets'}: no test instance masks (car or person) to take shapes from")
    shapes = _read_shapes(shape_files)
    refs = style_files(root, split="test")
    editor = Editor.from_checkpoints(checkpoints, device=device)
    res = AdditionResults([], [], [], [], [], [], [], [])
    for i, image in enumerate(tqdm(images, desc="adding objects", unit="scene", disable=not progress)):
        stem = image.stem
        labels = read_label(root / "test" / "labels" / f"{stem}.png")
        instances = read_instances(root / "test" / "inst_map" / f"{stem}.png")
        placed = place_object(np.random.default_rng([seed, 2, i]), labels, instances, shapes)
        res.real.append(image)
        if placed is None:
            res.skipped.append(stem)
            continue
        placement, pixels = placed
        if not refs.get(placement.cls):
            raise EvalError(
                f"{root / 'object_datasets' / CLASS_NAMES[placement.cls] / 'test' / 'images'}: no style references"
            )
        lab, inst, mask = add_object(labels, instances, placement, pixels)
        write_atomic(out / "labels" / f"{stem}.png", lab.astype(np.uint8))
        write_atomic(out / "inst_map" / f"{stem}.png", inst.astype(np.uint16))
        write_atomic(out / "masks" / f"{stem}.png", (mask * 255).astype(np.uint8))
        img = read_bgr(image)
        pool = refs[placement.cls]
        perm = np.random.default_rng([seed, 3, i]).permutation(len(pool))
        group, used = [], []
        for j in range(k):
            pick = pool[int(perm[j % len(pool)])]
            stages = editor.edit(img, lab, inst, mask, _style_bank(placement.cls, pick))
            path = out / "images" / f"{stem}_k{j}.png"
            write_image(path, stages.result)
            group.append(len(res.fake))
            res.fake.append(path)
            res.paired_real.append(image)
            res.labels.append(out / "labels" / f"{stem}.png")
            res.masks.append(out / "masks" / f"{stem}.png")
            used.append(pick.name)
        res.groups.append(group)
        res.placements.append({"scene": stem, **asdict(placement), "class": CLASS_NAMES[placement.cls],
                               "style_references": used})  # fmt: skip
    if not res.fake:
        raise EvalError(f"{root}: no test scene has road or sidewalk pixels an object fits on; nothing was added")
    atomic_write_bytes(out / "placements.json", (json.dumps(res.placements, indent=2) + "\n").encode())
    return res
