"""Object addition (the paper's Table 2): new, fully masked objects in the test scenes, K results each.

For test scene i a generator ``numpy.random.default_rng([seed, 2, i])`` draws, in this order:
the class (an index into the object classes, in the dataset profile's order, that have shapes and
ground pixels in the scene), the shape (an index into that class's sorted
``object_datasets/<class>/test/inst_mask/`` files), the object's height in pixels (uniform integer in
the class's height range, scaled by H / 256) and the foot point (an index into the row-major list of
candidate pixels). The shape is cropped to its own bounding box and resized (nearest) to that height,
keeping its aspect ratio. A candidate foot point is a pixel of the class's ground such that the
object, standing on it bottom-centred, lies inside the image. The object gets the next free instance
id of its class; its label and instance pixels are written into the scene's maps and the edit mask is
its box grown by :data:`MARGIN` pixels, so the whole instance is masked and the chain draws it with
G_OG. The K results differ only in their style reference: result k uses reference ``perm[k mod n]``
of a per-scene permutation (``default_rng([seed, 3, i])``) of the class's n test crops, the K
references being distinct when n >= K.

Ground and heights per dataset profile (:func:`addition_rules`):

* ``cityscapes`` (the rules this module always had): cars, then persons; a car stands on road (7)
  and is 20..48 px high, a person stands on sidewalk (8) and is 24..56 px high.
* ``ade20k-room`` (our choice; the paper publishes none): every object class (bed, table, chair,
  sofa, armchair, lamp, in the profile's order) stands on floor (label 4, "floor, flooring") and is
  32..96 px high (an eighth to three eighths of a 256-pixel-high photo, scaled by H / 256 like
  Cityscapes'). One range for all six keeps the protocol simple; the shape's own aspect ratio gives
  the width, so a bed comes out wide and a lamp narrow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from tqdm import tqdm

from siedob.data.io import prepared_profile, read_bgr, read_gray, read_instances, write_atomic, write_image
from siedob.files import atomic_write_bytes
from siedob.profiles import DatasetProfile, ProfileLike, as_profile

from .errors import EvalError
from .images import list_images, read_label

PathLike = Union[str, Path]
#: Label ids an added object may stand on: road (7) for cars, sidewalk (8) for persons (Cityscapes; the
#: profile's ``ObjectClass.ground``).
GROUND: Dict[int, Tuple[int, ...]] = {o.label_id: o.ground for o in as_profile(None).objects}
#: Object height range in pixels for a 256-pixel-high scene (scaled by H / 256), both ends included (Cityscapes;
#: the profile's ``ObjectClass.height_range``).
HEIGHTS: Dict[int, Tuple[int, int]] = {o.label_id: o.height_range for o in as_profile(None).objects}
#: Pixels the edit mask extends beyond the added object's box on each side.
MARGIN = 8
DEFAULT_RESULTS_PER_SCENE = 5


@dataclass(frozen=True)
class AdditionRules:
    """Where and how large new objects of one dataset profile are: class order, names, ground ids, heights."""

    profile: str
    order: Tuple[int, ...]
    names: Dict[int, str]
    ground: Dict[int, Tuple[int, ...]]
    heights: Dict[int, Tuple[int, int]]
    factor: int = 1000
    max_index: int = 999

    def ground_names(self, profile: DatasetProfile) -> str:
        """The ground labels' first names, for messages (Cityscapes: "road or sidewalk")."""
        ids = dict.fromkeys(i for c in self.order for i in self.ground[c])
        return " or ".join(profile.label(i).name.split(", ")[0] for i in ids)


def addition_rules(profile: ProfileLike = None) -> AdditionRules:
    """The object-addition rules of a dataset profile (see the module docstring); Cityscapes by default."""
    prof = as_profile(profile)
    names = {o.label_id: o.name for o in prof.objects}
    missing = [o.name for o in prof.objects if not o.ground or o.height_range[1] <= 0]
    if missing:
        raise EvalError(f"object addition has no ground or height rule for {missing[0]} in the {prof.name} profile")
    ground = {o.label_id: tuple(o.ground) for o in prof.objects}
    heights = {o.label_id: tuple(o.height_range) for o in prof.objects}
    return AdditionRules(
        prof.name, prof.object_ids, names, ground, heights, prof.instance_factor, prof.max_instance_index
    )


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


def object_shapes(data_root: PathLike, profile: ProfileLike = None) -> Dict[int, List[Path]]:
    """The test instance masks per object class of the profile (sorted): the shapes new objects take."""
    root = Path(data_root) / "object_datasets"
    rules = addition_rules(profile)
    return {cls: sorted((root / rules.names[cls] / "test" / "inst_mask").glob("*.png")) for cls in rules.order}


def shape_mask(shape: np.ndarray, height: int) -> np.ndarray:
    """The shape's pixels (>127) cropped to their bounding box and resized (nearest) to ``height`` rows."""
    on = shape > 127
    rows, cols = np.flatnonzero(on.any(1)), np.flatnonzero(on.any(0))
    if not len(rows):
        raise EvalError("object shape is empty")
    crop = on[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.uint8)
    width = max(1, round(height * crop.shape[1] / crop.shape[0]))
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)


def next_instance_id(instances: np.ndarray, cls: int, factor: int = 1000, max_index: int = 999) -> int:
    """``cls * factor + k`` with k one above the largest k of the class in the scene (0 if it has none).

    When that k would pass ``max_index`` (ADE20K-Room: 255), the smallest unused k is taken instead.
    """
    base = cls * factor
    ids = instances[(instances >= base) & (instances < base + factor)]
    k = int(ids.max()) - base + 1 if ids.size else 0
    if k > max_index:
        free = sorted(set(range(max_index + 1)) - {int(v) - base for v in np.unique(ids)})
        if not free:
            raise EvalError(f"class {cls}: every instance index 0..{max_index} is used in the scene")
        k = free[0]
    return base + k


def place_object(
    rng: np.random.Generator,
    labels: np.ndarray,
    instances: np.ndarray,
    shapes: Dict[int, Sequence[Tuple[str, np.ndarray]]],
    heights: Optional[Dict[int, Tuple[int, int]]] = None,
    profile: ProfileLike = None,
) -> Optional[Tuple[Placement, np.ndarray]]:
    """Draw one placement (see the module docstring for the order of draws) and its H×W object pixels.

    ``shapes`` maps a class to ``(name, 0/255 mask)`` pairs; classes, ground and (unless ``heights`` is
    given) heights are the profile's :func:`addition_rules`. Returns None when no class has both shapes
    and ground pixels, or the drawn object fits on no ground pixel.
    """
    rules = addition_rules(profile)
    heights = rules.heights if heights is None else heights
    ground = rules.ground
    h, w = labels.shape
    classes = [c for c in rules.order if shapes.get(c) and np.isin(labels, ground[c]).any()]
    if not classes:
        return None
    cls = classes[int(rng.integers(len(classes)))]
    name, shape = shapes[cls][int(rng.integers(len(shapes[cls])))]
    lo, hi = (max(1, round(v * h / 256)) for v in heights[cls])
    height = int(rng.integers(lo, hi + 1))
    obj = shape_mask(shape, height)
    width = obj.shape[1]
    ys, xs = np.nonzero(np.isin(labels, ground[cls]))
    fits = (ys - height + 1 >= 0) & (xs - width // 2 >= 0) & (xs - width // 2 + width <= w)
    ys, xs = ys[fits], xs[fits]
    if not len(ys):
        return None
    k = int(rng.integers(len(ys)))
    top, left = int(ys[k]) - height + 1, int(xs[k]) - width // 2
    instance_id = next_instance_id(instances, cls, rules.factor, rules.max_index)
    placement = Placement(cls, name, top, left, height, width, instance_id)
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


def _style_bank(cls: int, pick: Path, profile: ProfileLike = None):
    """A bank holding one reference, so every new object of the class copies ``pick``'s style."""
    from siedob.data.style_bank import StyleBank, class_bank

    return StyleBank({cls: class_bank([pick], cls, profile)}, str(pick.parent.parent))


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
    edited maps (``labels/``, ``inst_map/``), the masks (``masks/``) and ``placements.json`` beside them.

    The rules are those of the data root's dataset profile (``profile.json``); the checkpoints must be of it.
    """
    import json

    from siedob.data.style_bank import style_files
    from siedob.edit import Editor

    if k < 1:
        raise EvalError(f"--results-per-scene must be at least 1, got {k}")
    root, out = Path(data_root), Path(out_dir)
    profile = as_profile(prepared_profile(root))
    rules = addition_rules(profile)
    images = list_images(root / "test" / "images")
    shape_files = object_shapes(root, profile)
    if not any(shape_files.values()):
        classes = " or ".join(rules.names[c] for c in rules.order)
        raise EvalError(f"{root / 'object_datasets'}: no test instance masks ({classes}) to take shapes from")
    shapes = _read_shapes(shape_files)
    refs = style_files(root, split="test", profile=profile)
    editor = Editor.from_checkpoints(checkpoints, device=device, profile=profile)
    res = AdditionResults([], [], [], [], [], [], [], [])
    for i, image in enumerate(tqdm(images, desc="adding objects", unit="scene", disable=not progress)):
        stem = image.stem
        labels = read_label(root / "test" / "labels" / f"{stem}.png")
        instances = read_instances(root / "test" / "inst_map" / f"{stem}.png")
        placed = place_object(np.random.default_rng([seed, 2, i]), labels, instances, shapes, profile=profile)
        res.real.append(image)
        if placed is None:
            res.skipped.append(stem)
            continue
        placement, pixels = placed
        if not refs.get(placement.cls):
            raise EvalError(
                f"{root / 'object_datasets' / rules.names[placement.cls] / 'test' / 'images'}: no style references"
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
            stages = editor.edit(img, lab, inst, mask, _style_bank(placement.cls, pick, profile))
            path = out / "images" / f"{stem}_k{j}.png"
            write_image(path, stages.result)
            group.append(len(res.fake))
            res.fake.append(path)
            res.paired_real.append(image)
            res.labels.append(out / "labels" / f"{stem}.png")
            res.masks.append(out / "masks" / f"{stem}.png")
            used.append(pick.name)
        res.groups.append(group)
        res.placements.append({"scene": stem, **asdict(placement), "class": rules.names[placement.cls],
                               "style_references": used})  # fmt: skip
    if not res.fake:
        ground = rules.ground_names(profile)
        raise EvalError(f"{root}: no test scene has {ground} pixels an object fits on; nothing was added")
    atomic_write_bytes(out / "placements.json", (json.dumps(res.placements, indent=2) + "\n").encode())
    return res
