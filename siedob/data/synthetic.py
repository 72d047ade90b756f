"""Deterministic synthetic Cityscapes-format street scenes, for tests, examples and benchmarks.

:func:`make_scene` draws a scene at any size (geometry is relative, so the same RNG state gives
the same scene at 2048×1024 and at 512×256): sky, buildings with windows, vegetation, road with
lane marks, sidewalks, terrain, poles with signs and lights, and cars and persons with instance
ids ``class * 1000 + k`` (some overlapping, some cut by the border). The command-line tool
writes either the official raw tree (``--raw``, for ``siedob-prepare-cityscapes``) or the
prepared 512×256 layout directly.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from siedob.data.drawing import draw as _draw
from siedob.data.drawing import poly as _poly
from siedob.data.drawing import smooth_noise as _smooth_noise
from siedob.data.io import PathLike, write_atomic
from siedob.errors import UsageError, run_cli
from siedob.labels import CAR, INSTANCE_FACTOR, PERSON, palette

ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEGETATION, TERRAIN, SKY = (
    7,
    8,
    11,
    12,
    13,
    17,
    19,
    20,
    21,
    22,
    23,
)
EGO = 1
#: Raw tree split names and the synthetic city used in each.
CITIES = {"train": "synthtown", "val": "synthville"}
OFFICIAL_SIZE = (2048, 1024)


class Scene(NamedTuple):
    """A synthetic scene: BGR uint8 photo, raw labelIds (uint8, id 0 kept) and instanceIds (int32)."""

    image: np.ndarray
    labels: np.ndarray
    instances: np.ndarray


def _bgr(label_id: int) -> np.ndarray:
    """Official colour of a class, in BGR float."""
    return palette()[label_id][::-1].astype(np.float32)


def _draw_background(rng: np.random.Generator, h: int, w: int, horizon: float) -> Tuple[np.ndarray, np.ndarray]:
    """Stuff classes: label map and a flat per-region colour image (float32 BGR)."""
    labels = np.full((h, w), SKY, np.uint8)
    image = np.zeros((h, w, 3), np.float32)
    image[:] = _bgr(SKY) + rng.uniform(-20, 20, 3)
    hz = horizon * h
    cv2.rectangle(labels, (0, int(hz)), (w, h), ROAD, -1)
    left_x = w * rng.uniform(-0.05, 0.15)
    right_x = w * rng.uniform(0.85, 1.05)
    vx = w * rng.uniform(0.4, 0.6)
    sidewalks = [
        [(0, hz), (vx - 0.04 * w, hz), (left_x, h), (0, h)],
        [(vx + 0.04 * w, hz), (w, hz), (w, h), (right_x, h)],
    ]
    for pts in sidewalks:
        cv2.fillPoly(labels, _poly(pts), SIDEWALK)
    if rng.random() < 0.6:
        cv2.fillPoly(labels, _poly([(w, hz + 0.1 * h), (w, h), (w * 0.97, h)]), TERRAIN)
    x = -rng.uniform(0, 0.05) * w
    while x < w:
        bw = w * rng.uniform(0.08, 0.25)
        top = h * rng.uniform(0.0, horizon * 0.7)
        cls = BUILDING if rng.random() < 0.85 else WALL
        _draw((labels, image), (cls, _bgr(cls) + rng.uniform(-35, 35, 3)), "rect", (x, top), (x + bw, hz + 0.02 * h))
        x += bw
    for _ in range(int(rng.integers(2, 6))):
        c = (rng.uniform(0, w), hz - rng.uniform(0, 0.08) * h)
        ax = (rng.uniform(0.03, 0.1) * w, rng.uniform(0.04, 0.12) * h)
        _draw((labels,), (VEGETATION,), "ellipse", c, ax)
    if rng.random() < 0.5:
        fx = rng.uniform(0, 0.5) * w
        _draw((labels,), (FENCE,), "rect", (fx, hz - 0.04 * h), (fx + rng.uniform(0.1, 0.3) * w, hz + 0.01 * h))
    for _ in range(int(rng.integers(1, 4))):
        px = rng.uniform(0, w)
        pw = max(1.0, 0.004 * w)
        top = hz - rng.uniform(0.15, 0.3) * h
        _draw((labels,), (POLE,), "rect", (px, top), (px + pw, hz + 0.12 * h))
        head = SIGN if rng.random() < 0.6 else LIGHT
        _draw((labels,), (head,), "rect", (px - 3 * pw, top - 4 * pw), (px + 4 * pw, top + 6 * pw))
    cv2.rectangle(labels, (0, int(h * 0.97)), (w, h), EGO, -1)
    cv2.ellipse(labels, (int(w * rng.uniform(0.2, 0.8)), h), (int(0.05 * w), int(0.02 * h)), 0, 0, 360, 0, -1)
    flat = labels != BUILDING
    flat &= labels != WALL
    flat &= labels != SKY
    image[flat] = palette()[labels[flat]][:, ::-1].astype(np.float32)
    return labels, image


def _texture(rng: np.random.Generator, image: np.ndarray, labels: np.ndarray) -> None:
    """Add gradients, windows, lane marks and noise in place so a generator has something to learn."""
    h, w = labels.shape
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    xx = np.arange(w, dtype=np.float32)[None, :]
    sky = labels == SKY
    image[sky] += (yy * 60)[..., None].repeat(w, 1)[sky]
    pw, ph = max(4, w // 90), max(4, h // 30)
    yi = np.arange(h)[:, None]
    windows = ((xx.astype(np.int64) % pw) < pw // 2) & ((yi % ph) < ph // 2) & (labels == BUILDING)
    image[windows] = image[windows] * 0.45 + np.array([60, 40, 20], np.float32)
    road = labels == ROAD
    dashes = (np.abs(xx - w / 2) < max(1, w // 300)) & ((yi // max(2, h // 25)) % 2 == 0) & road
    image[dashes] = 230
    image += _smooth_noise(rng, h, w, max(4, w // 64), 3) * 25
    veg = (labels == VEGETATION) | (labels == TERRAIN)
    image[veg] += _smooth_noise(rng, h, w, max(2, w // 400), 1)[veg] * 40
    image += rng.standard_normal((h, w, 1), dtype=np.float32) * 6


def _draw_car(maps, rng: np.random.Generator, iid: int, cx: float, bottom: float, width: float) -> None:
    """A car: body, cabin and wheels, all labelled car with one instance id."""
    image, labels, inst = maps
    height = width * rng.uniform(0.45, 0.6)
    body = tuple(rng.uniform(20, 230, 3))
    lab = (image, labels, inst)
    x0, x1 = cx - width / 2, cx + width / 2
    _draw(lab, (body, CAR, iid), "rect", (x0, bottom - 0.6 * height), (x1, bottom - 0.12 * height))
    cab = [
        (x0 + 0.15 * width, bottom - 0.6 * height),
        (x0 + 0.3 * width, bottom - height),
        (x1 - 0.25 * width, bottom - height),
        (x1 - 0.1 * width, bottom - 0.6 * height),
    ]
    _draw(lab, (body, CAR, iid), "poly", cab)
    glass = [(x + (cx - x) * 0.15, y + 0.08 * height) for x, y in cab[:2]] + [
        (x - (x - cx) * 0.15, y + 0.08 * height) for x, y in cab[2:]
    ]
    _draw((image,), ((90, 60, 40),), "poly", [(glass[0][0], cab[0][1]), glass[1], glass[2], (glass[3][0], cab[3][1])])
    for wx in (x0 + 0.2 * width, x1 - 0.2 * width):
        _draw(lab, ((25, 25, 25), CAR, iid), "ellipse", (wx, bottom - 0.12 * height), (0.11 * width, 0.12 * height))


def _draw_person(maps, rng: np.random.Generator, iid: int, cx: float, bottom: float, height: float) -> None:
    """A person: legs, torso, arms and head, all labelled person with one instance id."""
    image, labels, inst = maps
    w = height * 0.3
    shirt, trousers = tuple(rng.uniform(20, 230, 3)), tuple(rng.uniform(10, 120, 3))
    lab = (image, labels, inst)
    leg = 0.45 * height
    _draw(lab, (trousers, PERSON, iid), "rect", (cx - 0.4 * w, bottom - leg), (cx - 0.05 * w, bottom))
    _draw(lab, (trousers, PERSON, iid), "rect", (cx + 0.05 * w, bottom - leg), (cx + 0.4 * w, bottom))
    _draw(lab, (shirt, PERSON, iid), "rect", (cx - 0.5 * w, bottom - 0.85 * height), (cx + 0.5 * w, bottom - leg))
    skin = (120, 150, 200)
    _draw(lab, (skin, PERSON, iid), "ellipse", (cx, bottom - 0.92 * height), (0.25 * w, 0.08 * height))


def make_scene(
    rng: np.random.Generator,
    h: int = 256,
    w: int = 512,
    n_cars: Optional[int] = None,
    n_persons: Optional[int] = None,
) -> Scene:
    """Draw one street scene of size h × w; counts default to random 3–7 cars and 2–6 persons.

    Geometry and colours come from ``rng``; pixel noise from a child generator, so the layout
    does not depend on the size.
    """
    n_cars = int(rng.integers(3, 8)) if n_cars is None else n_cars
    n_persons = int(rng.integers(2, 7)) if n_persons is None else n_persons
    tex_rng = np.random.default_rng(int(rng.integers(2**63)))
    horizon = rng.uniform(0.38, 0.5)
    labels, image = _draw_background(rng, h, w, horizon)
    _texture(tex_rng, image, labels)
    inst = labels.astype(np.int32)
    hz = horizon * h
    things: List[Tuple[float, int, int]] = []
    for cls, n in ((CAR, n_cars), (PERSON, n_persons)):
        ks = rng.permutation(n)
        things += [(rng.uniform(0.08, 1.02), cls, int(k)) for k in ks]
    things.sort()
    for depth, cls, k in things:
        bottom = hz + depth * (h - hz)
        iid = cls * INSTANCE_FACTOR + k
        scale = 0.15 + 0.85 * depth
        cx = rng.uniform(-0.05, 1.05) * w
        if cls == CAR:
            _draw_car((image, labels, inst), rng, iid, cx, bottom, scale * 0.3 * w)
        else:
            _draw_person((image, labels, inst), rng, iid, cx, bottom, scale * 0.55 * h)
    return Scene(np.clip(image, 0, 255).astype(np.uint8), labels, inst)


def scene_names(n: int) -> List[Tuple[str, str]]:
    """``(split, name)`` for n scenes: about a third in val (at least one when n >= 2), the rest train."""
    n_val = max(1, n // 3) if n >= 2 else 0
    out = []
    for i in range(n):
        split = "val" if i >= n - n_val else "train"
        out.append((split, f"{CITIES[split]}_{i:06d}_000019"))
    return out


def scene_for(seed: int, index: int, h: int, w: int, dense: bool = False) -> Scene:
    """The index-th scene of a seeded set (independent of the other scenes and of the size)."""
    rng = np.random.default_rng([seed, index])
    if dense:
        return make_scene(rng, h, w, n_cars=int(rng.integers(12, 18)), n_persons=int(rng.integers(8, 14)))
    return make_scene(rng, h, w)


def write_raw(
    out: PathLike,
    n: int,
    seed: int = 0,
    size: Tuple[int, int] = OFFICIAL_SIZE,
    dense: bool = False,
    overwrite: bool = False,
) -> int:
    """Write n scenes as the official Cityscapes tree (leftImg8bit, gtFine labelIds/instanceIds PNGs).

    A scene whose three files all exist is kept unless ``overwrite``; returns the number of scenes written.
    """
    out = Path(out)
    fast_png = (cv2.IMWRITE_PNG_COMPRESSION, 1)
    written = 0
    for i, (split, name) in enumerate(tqdm(scene_names(n), desc="synthetic", unit="scene", disable=n < 4)):
        city = CITIES[split]
        gt = out / "gtFine" / split / city
        paths = (
            out / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png",
            gt / f"{name}_gtFine_labelIds.png",
            gt / f"{name}_gtFine_instanceIds.png",
        )
        if not overwrite and all(p.is_file() for p in paths):
            continue
        scene = scene_for(seed, i, size[1], size[0], dense)
        write_atomic(paths[0], scene.image, fast_png)
        write_atomic(paths[1], scene.labels, fast_png)
        write_atomic(paths[2], scene.instances.astype(np.uint16), fast_png)
        written += 1
    return written


def write_prepared(
    out: PathLike,
    n: int,
    seed: int = 0,
    dense: bool = False,
    overwrite: bool = False,
    settings: Any = None,
    progress: bool = True,
) -> str:
    """Write n scenes directly in the prepared 512×256 layout (docs/spec.md §5.1); returns the summary text.

    ``settings`` are the dataset-preparation settings (default: the packaged ``prepare.yaml``); existing
    outputs are kept unless ``overwrite``; ``progress`` shows a bar (from four scenes on).
    """
    from siedob.data.prepare_cityscapes import Summary, finalize, load_settings, prepare_sample

    settings = settings or load_settings()
    out = Path(out)
    summary = Summary()
    w, h = settings.raw_size
    bar = tqdm(scene_names(n), desc="synthetic", unit="scene", disable=n < 4 or not progress)
    for i, (split, name) in enumerate(bar):
        scene = scene_for(seed, i, h, w, dense)
        summary.add(prepare_sample(out, split, name, scene.image, scene.labels, scene.instances, settings, overwrite))
    summary.add(finalize(out, settings, overwrite))
    return summary.text()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line: ``siedob-synthetic --output DIR [--scenes N] [--seed S] [--raw [--size WxH]] [--dense]``."""
    from siedob.cli import Parser, add_config, add_overwrite, check_output_dir, positive_int, size_arg
    from siedob.data.prepare_cityscapes import load_settings
    from siedob.profiles import PROFILE_NAMES

    p = Parser(prog="siedob-synthetic", description=__doc__.splitlines()[0])
    p.add_argument("--output", required=True, metavar="DIR", help="output folder")
    p.add_argument("--scenes", type=positive_int, default=6, help="number of scenes (about a third become val/test)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--raw", action="store_true", help="write the official raw tree instead of the prepared layout")
    p.add_argument("--size", type=size_arg, default=None, help="with --raw: photo size WxH (default 2048x1024)")
    p.add_argument("--dense", action="store_true", help="crowded scenes (>= 20 instances each)")
    p.add_argument(
        "--profile",
        choices=PROFILE_NAMES,
        default="cityscapes",
        help="street scenes (cityscapes) or rooms (ade20k-room: with --raw, ADEChallengeData2016 and "
        "annotations_instance for siedob-prepare-ade20k)",
    )
    add_overwrite(p, "existing outputs (kept otherwise)")
    add_config(p, "the packaged dataset-preparation settings, prepare.yaml; not with --raw")
    args = p.parse_args(argv)
    if args.size is not None and not args.raw:
        raise UsageError("--size applies with --raw only (the prepared layout's size comes from the settings)")
    if args.raw and (args.config is not None or args.overrides):
        raise UsageError("--config and --set apply to the prepared layout, not with --raw")
    out = check_output_dir(Path(args.output))
    if args.profile == "ade20k-room":
        from siedob.data.synthetic_ade import write_from_args

        write_from_args(args, out)
    elif args.raw:
        size = args.size or OFFICIAL_SIZE
        written = write_raw(out, args.scenes, args.seed, size, args.dense, args.overwrite)
        kept = f", {args.scenes - written} kept (pass --overwrite to rewrite them)" if written < args.scenes else ""
        print(f"wrote {written} raw scenes ({size[0]}x{size[1]}) to {out}{kept}")
    else:
        settings = load_settings(args.config, overrides=args.overrides)
        print(write_prepared(out, args.scenes, args.seed, args.dense, args.overwrite, settings))
    return 0


def cli() -> None:
    """Console-script entry point: one error line and exit code 2 on bad input."""
    sys.exit(run_cli(main))


if __name__ == "__main__":
    cli()
