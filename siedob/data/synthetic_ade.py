"""Deterministic synthetic ADE20K room scenes in the official raw layout, to test the preparation end to end.

:func:`write_raw_ade` writes ``ADEChallengeData2016/{images,annotations}/{training,validation}``,
``ADEChallengeData2016/sceneCategories.txt`` and, beside it, ``annotations_instance/`` in the
Places Challenge 2017 encoding (R = Instance100 category, G = instance id unique in the image,
B = 0). Scenes are rooms: ceiling, wall, floor, window, curtain, painting, rug, a patch of
"other" (label 0), sometimes a flag (label 150), and furniture (bed, table, chair, sofa,
armchair, lamp, cabinet) drawn back to front. Instance ids are drawn without replacement from
1..255, so they are not contiguous; every third scene has one piece of furniture without an
instance id (R = G = 0), as the real data has. Scene categories mix the three room scenes with
others that the preparation must exclude (bathroom, dining_room, childs_room, kitchen).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, NamedTuple, Optional, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from siedob.data.drawing import draw as _draw
from siedob.data.drawing import smooth_noise as _smooth_noise
from siedob.data.io import DataError, PathLike, write_atomic
from siedob.errors import UsageError
from siedob.files import atomic_write_bytes
from siedob.profiles import get_profile

OTHER, WALL, FLOOR, CEILING, BED, WINDOW, CABINET, TABLE, CURTAIN, CHAIR, PAINTING, SOFA, RUG = (
    0,
    1,
    4,
    6,
    8,
    9,
    11,
    16,
    19,
    20,
    23,
    24,
    29,
)
ARMCHAIR, LAMP, FLAG = 31, 37, 150
FURNITURE: Tuple[int, ...] = (BED, TABLE, CHAIR, SOFA, ARMCHAIR, LAMP, CABINET)
#: (scene category, photo size W×H) by index within a split: the three room scenes among look-alikes
#: the preparation must exclude; room sizes enlarge (240 high), keep (256), have aspect 2 or 1.5
#: (portrait), or halve exactly (682×512).
SCENE_CYCLE: Tuple[Tuple[str, Tuple[int, int]], ...] = (
    ("bedroom", (320, 240)),
    ("bathroom", (341, 256)),
    ("living_room", (512, 256)),
    ("hotel_room", (256, 384)),
    ("dining_room", (341, 256)),
    ("childs_room", (256, 256)),
    ("kitchen", (341, 256)),
    ("bedroom", (682, 512)),
)
SPLIT_FOLDERS = {"train": "training", "val": "validation"}


class RawAdeScene(NamedTuple):
    """One synthetic raw scene: BGR photo, SceneParse150 labels (uint8) and Places instance PNG (RGB uint8)."""

    image: np.ndarray
    labels: np.ndarray
    instance_rgb: np.ndarray


class RawAdeEntry(NamedTuple):
    """What :func:`write_raw_ade` wrote for one scene."""

    split: str
    name: str
    scene: str
    size: Tuple[int, int]
    written: bool = True


def _colour(rng: np.random.Generator, label_id: int) -> Tuple[float, float, float]:
    """The class's palette colour in BGR, shifted a little so instances differ."""
    r, g, b = get_profile("ade20k-room").labels[label_id].color
    return tuple(float(np.clip(v + rng.uniform(-30, 30), 0, 255)) for v in (b, g, r))


class _Canvas:
    """Photo, label map and instance map drawn together; ``instance`` picks the next Places id."""

    def __init__(self, rng: np.random.Generator, h: int, w: int):
        self.rng, self.h, self.w = rng, h, w
        self.image = np.zeros((h, w, 3), np.float32)
        self.labels = np.zeros((h, w), np.uint8)
        self.inst = np.zeros((h, w, 3), np.uint8)  # R, G, B planes in RGB order
        self.ids = [int(v) for v in rng.permutation(np.arange(1, 256))]

    def instance(self, label_id: int, with_id: bool = True) -> Tuple[int, int]:
        """(R, G) of a new instance of ``label_id``: its Instance100 category and an unused id; (0, 0) without."""
        category = get_profile("ade20k-room").labels[label_id].instance_category
        if category is None or not with_id:
            return 0, 0
        return category, self.ids.pop()

    def shape(self, label_id: int, rg: Tuple[int, int], colour, shape: str, *args) -> None:
        """Draw one primitive into the three maps."""
        _draw((self.image, self.labels, self.inst), (colour, label_id, (rg[0], rg[1], 0)), shape, *args)


def _room(c: _Canvas, ceiling: float, floor: float) -> None:
    """Ceiling, wall and floor bands, then window, curtain, painting, rug and a patch of "other"."""
    rng, h, w = c.rng, c.h, c.w
    c.shape(CEILING, (0, 0), _colour(rng, CEILING), "rect", (0, 0), (w, ceiling))
    c.shape(WALL, (0, 0), _colour(rng, WALL), "rect", (0, ceiling), (w, floor))
    c.shape(FLOOR, (0, 0), _colour(rng, FLOOR), "rect", (0, floor), (w, h))
    wx0 = rng.uniform(0.05, 0.5) * w
    wx1 = wx0 + rng.uniform(0.15, 0.3) * w
    wy0, wy1 = ceiling + 0.1 * (floor - ceiling), ceiling + 0.65 * (floor - ceiling)
    c.shape(WINDOW, c.instance(WINDOW), _colour(rng, WINDOW), "rect", (wx0, wy0), (wx1, wy1))
    c.shape(CURTAIN, c.instance(CURTAIN), _colour(rng, CURTAIN), "rect", (wx1, wy0 - 4), (wx1 + 0.05 * w, wy1 + 8))
    px = rng.uniform(0.6, 0.85) * w
    c.shape(PAINTING, c.instance(PAINTING), _colour(rng, PAINTING), "rect", (px, wy0), (px + 0.1 * w, wy0 + 0.1 * h))
    c.shape(RUG, (0, 0), _colour(rng, RUG), "ellipse", (w / 2, (floor + h) / 2), (0.3 * w, 0.12 * h))
    c.shape(OTHER, (0, 0), (40.0, 40.0, 40.0), "rect", (0.45 * w, 0), (0.55 * w, 0.04 * h + 2))


def _furniture(c: _Canvas, cls: int, cx: float, bottom: float, size: float, with_id: bool) -> None:
    """One piece of furniture of class ``cls`` standing at (cx, bottom), about ``size`` px wide."""
    rg, col, s = c.instance(cls, with_id), _colour(c.rng, cls), size
    if cls == BED:
        c.shape(cls, rg, col, "rect", (cx - s / 2, bottom - 0.35 * s), (cx + s / 2, bottom))
        c.shape(cls, rg, col, "rect", (cx - s / 2, bottom - 0.6 * s), (cx - 0.38 * s, bottom))
    elif cls in (TABLE, CHAIR):
        top, seat = bottom - (0.45 if cls == TABLE else 0.5) * s, 0.12 if cls == TABLE else 0.2
        c.shape(cls, rg, col, "rect", (cx - s / 2, top), (cx + s / 2, top + seat * s))
        for x in (cx - s / 2, cx + s / 2 - 0.12 * s):
            c.shape(cls, rg, col, "rect", (x, top), (x + 0.12 * s, bottom))
        if cls == CHAIR:
            c.shape(cls, rg, col, "rect", (cx + s / 2 - 0.2 * s, top - 0.5 * s), (cx + s / 2, top))
    elif cls in (SOFA, ARMCHAIR):
        c.shape(cls, rg, col, "rect", (cx - s / 2, bottom - 0.3 * s), (cx + s / 2, bottom))
        c.shape(cls, rg, col, "rect", (cx - s / 2, bottom - 0.55 * s), (cx + s / 2, bottom - 0.3 * s))
        for x in (cx - s / 2, cx + s / 2 - 0.1 * s):
            c.shape(cls, rg, col, "rect", (x, bottom - 0.42 * s), (x + 0.1 * s, bottom))
    elif cls == LAMP:
        c.shape(cls, rg, col, "ellipse", (cx, bottom - 0.03 * s), (0.15 * s, 0.04 * s))
        c.shape(cls, rg, col, "rect", (cx - 0.03 * s, bottom - 0.7 * s), (cx + 0.03 * s, bottom))
        shade = [
            (cx - 0.15 * s, bottom - 1.1 * s),
            (cx + 0.15 * s, bottom - 1.1 * s),
            (cx + 0.25 * s, bottom - 0.7 * s),
            (cx - 0.25 * s, bottom - 0.7 * s),
        ]
        c.shape(cls, rg, col, "poly", shade)
    else:
        c.shape(cls, rg, col, "rect", (cx - s / 2, bottom - 0.8 * s), (cx + s / 2, bottom))


def make_room(rng: np.random.Generator, h: int, w: int, untagged: bool = False, flag: bool = False) -> RawAdeScene:
    """Draw one room of size h × w; ``untagged`` leaves the last piece of furniture without an instance id."""
    c = _Canvas(rng, h, w)
    ceiling, floor = rng.uniform(0.1, 0.2) * h, rng.uniform(0.5, 0.65) * h
    _room(c, ceiling, floor)
    if flag:
        fx = rng.uniform(0.1, 0.3) * w
        c.shape(
            FLAG, c.instance(FLAG), _colour(rng, FLAG), "rect", (fx, floor - 0.2 * h), (fx + 0.06 * w, floor - 0.1 * h)
        )
    n = int(rng.integers(3, 7))
    classes = [int(v) for v in rng.permutation(FURNITURE)[:n]]
    depths = np.sort(rng.uniform(0.15, 1.0, n))
    for k, (cls, depth) in enumerate(zip(classes, depths)):
        bottom = floor + depth * (h - floor) * 0.95
        size = (0.2 + 0.25 * depth) * w * (1.4 if cls == BED else 1.0)
        _furniture(c, cls, rng.uniform(0.1, 0.9) * w, bottom, size, with_id=not (untagged and k == n - 1))
    tex = np.random.default_rng(int(rng.integers(2**63)))
    image = c.image + _smooth_noise(tex, h, w, max(4, w // 32), 3) * 20
    image += tex.standard_normal((h, w, 1), dtype=np.float32) * 5
    return RawAdeScene(np.clip(image, 0, 255).astype(np.uint8), c.labels, c.inst)


def scene_plan(n: int) -> List[Tuple[str, str, str, Tuple[int, int]]]:
    """``(split, name, scene category, (W, H))`` for n scenes: about a third validation, the rest training."""
    n_val = max(1, n // 3) if n >= 2 else 0
    out, counters = [], {"train": 0, "val": 0}
    for i in range(n):
        split = "val" if i >= n - n_val else "train"
        j = counters[split]
        counters[split] += 1
        scene, size = SCENE_CYCLE[j % len(SCENE_CYCLE)]
        out.append((split, f"ADE_{split}_{j + 1:08d}", scene, size))
    return out


def room_for(seed: int, index: int, h: int, w: int) -> RawAdeScene:
    """The index-th room of a seeded set: every third without one instance id, every other with a flag."""
    return make_room(np.random.default_rng([seed, index]), h, w, untagged=index % 3 == 0, flag=index % 2 == 1)


def write_raw_ade(
    out: PathLike, n: int, seed: int = 0, size: Optional[Tuple[int, int]] = None, overwrite: bool = False
) -> List[RawAdeEntry]:
    """Write n scenes as ``out/ADEChallengeData2016`` plus ``out/annotations_instance``; returns every scene's entry.

    ``size`` (W, H) fixes every photo's size; by default it follows :data:`SCENE_CYCLE`. A scene whose
    three files exist is kept unless ``overwrite``; so is a ``sceneCategories.txt`` with other content
    (an error, since the tree would then disagree with it).
    """
    out = Path(out)
    root, inst_root = out / "ADEChallengeData2016", out / "annotations_instance"
    plan = scene_plan(n)
    categories = root / "sceneCategories.txt"
    text = "".join(f"{name} {scene}\n" for _, name, scene, _ in plan)
    if categories.is_file() and not overwrite and categories.read_text() != text:
        raise DataError(f"{categories}: exists with other scenes (pass --overwrite to replace the synthetic tree)")
    entries = []
    for i, (split, name, scene, plan_size) in enumerate(tqdm(plan, desc="synthetic", unit="scene", disable=n < 4)):
        w, h = size or plan_size
        folder = SPLIT_FOLDERS[split]
        paths = (
            root / "images" / folder / f"{name}.jpg",
            root / "annotations" / folder / f"{name}.png",
            inst_root / folder / f"{name}.png",
        )
        keep = not overwrite and all(p.is_file() for p in paths)
        if not keep:
            raw = room_for(seed, i, h, w)
            write_atomic(paths[0], raw.image, (cv2.IMWRITE_JPEG_QUALITY, 95))
            write_atomic(paths[1], raw.labels)
            write_atomic(paths[2], raw.instance_rgb[..., ::-1])
        entries.append(RawAdeEntry(split, name, scene, (w, h), not keep))
    if overwrite or not categories.is_file():
        atomic_write_bytes(categories, text.encode())
    return entries


def write_prepared_ade(
    out: PathLike, n: int, seed: int = 0, overwrite: bool = False, settings: Any = None, progress: bool = True
) -> str:
    """Draw n scenes as :func:`write_raw_ade` does and write the room scenes straight into the prepared layout.

    Goes through the same code as ``siedob-prepare-ade20k`` (encoding, resize, crops, masks) without
    the raw files; ``settings`` default to :func:`~siedob.data.prepare_ade20k.load_ade_settings`'s;
    existing outputs are kept unless ``overwrite``; ``progress`` shows a bar. Returns the summary text.
    """
    from siedob.data.prepare_ade20k import (
        AdeSummary,
        encode_instances,
        finalize,
        load_ade_settings,
        prepare_scene,
        record_profile,
    )

    settings = settings or load_ade_settings()
    Path(out).mkdir(parents=True, exist_ok=True)
    record_profile(Path(out), settings, overwrite)
    summary = AdeSummary(settings.scenes)
    for i, (split, name, scene, (w, h)) in enumerate(
        tqdm(scene_plan(n), desc="synthetic", unit="scene", disable=n < 4 or not progress)
    ):
        if scene not in settings.scenes:
            summary.add({"selection": {"other scenes": 1}})
            continue
        raw = room_for(seed, i, h, w)
        inst, notes = encode_instances(raw.labels, raw.instance_rgb[..., 0], raw.instance_rgb[..., 1], settings.profile)
        summary.add({"room scenes": {scene: 1}})
        summary.add(prepare_scene(out, split, name, raw.image, raw.labels, inst, settings, overwrite, notes))
    summary.add(finalize(Path(out), settings.base, overwrite))
    return summary.text()


def write_from_args(args: Any, out: Path) -> None:
    """``siedob-synthetic --profile ade20k-room``: write the raw tree (``--raw``) or the prepared layout, and report."""
    from siedob.data.prepare_ade20k import load_ade_settings

    if args.dense:
        raise UsageError("--dense draws crowded street scenes; it does not apply with --profile ade20k-room")
    if args.raw:
        entries = write_raw_ade(out, args.scenes, args.seed, args.size, args.overwrite)
        written = sum(e.written for e in entries)
        kept = f", {len(entries) - written} kept (pass --overwrite to rewrite them)" if written < len(entries) else ""
        where = f"{out / 'ADEChallengeData2016'} and {out / 'annotations_instance'}"
        print(f"wrote {written} raw ADE20K scenes to {where}{kept}")
    else:
        settings = load_ade_settings(args.config, None, args.overrides)
        print(write_prepared_ade(out, args.scenes, args.seed, args.overwrite, settings))
