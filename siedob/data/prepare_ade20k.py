"""Build the prepared ADE20K-Room layout from ADEChallengeData2016 and the Places instance annotations.

``siedob-prepare-ade20k --src ADEChallengeData2016 [--instances annotations_instance] --dst OUT``
keeps the images whose scene in ``sceneCategories.txt`` is exactly one of the profile's room
scenes (bedroom, hotel_room, living_room; ADE training → ``train/``, validation → ``test/``),
resizes each to a 256-pixel short side (labels and instances nearest), stores training scenes
whole and test scenes as centre 256×256 crops, converts the Places instance PNG (R = category,
G = instance id) to our 16-bit encoding (``class * 1000 + G`` on the object classes' pixels,
the label id elsewhere), cuts object crops per object class from the original photo and writes
the fixed-seed evaluation masks. Label values 0..150 are stored as they are (0 is "other", a class
of its own). Files are written atomically, finished scenes leave markers (a re-run only does what
is missing), the source is never written, and malformed input stops with one line naming the file.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from siedob.cli import Parser, add_config, add_overwrite, check_output_dir, existing_dir, positive_int
from siedob.data.io import DataError, PathLike, read_bgr, read_unchanged
from siedob.data.object_crops import cut_object_crops, put_output
from siedob.data.prepare_cityscapes import (
    Settings,
    Summary,
    finalize,
    load_settings,
    marker_path,
    png_header,
    run_jobs,
)
from siedob.errors import UsageError, run_cli
from siedob.files import atomic_write_bytes
from siedob.profiles import DatasetProfile, ade20k_room_profile, get_profile

PROG = "siedob-prepare-ade20k"
PROFILE = "ade20k-room"
#: ADE split → (folder in ADEChallengeData2016, prepared split).
SPLITS: Dict[str, Tuple[str, str]] = {"train": ("training", "train"), "val": ("validation", "test")}
#: Split sizes the SPMPGAN paper reports for ADE20K-Room (second-hand; no split file exists).
REPORTED = {"train": 2246, "test": 255}
#: PNG colour types: 0 greyscale, 2 RGB, 6 RGBA.
GREY, RGB, RGBA = 0, 2, 6
Stats = Dict[str, Any]


@dataclass(frozen=True)
class AdeSettings:
    """The profile, the scene categories kept, and the shared preparation settings (masks, JPEG, crop rules)."""

    profile: DatasetProfile
    scenes: Tuple[str, ...]
    base: Settings

    @property
    def object_names(self) -> Dict[int, str]:
        """Label id → object class name (the ``object_datasets/<name>`` folder)."""
        return {o.label_id: o.name for o in self.profile.objects}


def load_ade_settings(
    config: Optional[PathLike] = None,
    scenes: Optional[Sequence[str]] = None,
    overrides: Sequence[str] = (),
    objects: Optional[Sequence[str]] = None,
) -> AdeSettings:
    """Settings for ADE20K-Room: the profile's rules over ``prepare.yaml``'s mask, brush and JPEG settings.

    ``objects`` (names, optionally ``name:fill_ratio``) replaces the profile's object classes. The
    Cityscapes sizes (``raw_size``, ``size``) stay as read and are unused: ADE scenes keep their aspect.
    """
    profile = get_profile(PROFILE) if objects is None else ade20k_room_profile(tuple(objects))
    prep = profile.preparation
    base = replace(
        load_settings(config, None, overrides),
        test_size=prep.test_size,
        margin=prep.box_margin,
        min_short_side=prep.min_short_side,
        fill_ratio={o.name: o.fill_ratio for o in profile.objects},
        object_size={o.name: o.crop_size for o in profile.objects},
    )
    return AdeSettings(profile, tuple(scenes) if scenes else prep.scenes, base)


# ------------------------------------------------------------------------------------------------
# scene geometry and instance encoding


def resized_size(w: int, h: int, short_side: int) -> Tuple[int, int]:
    """(W, H) with the short side scaled to ``short_side`` and the other rounded half up (320×240 → 341×256)."""
    s = short_side / min(w, h)
    return (short_side, int(h * s + 0.5)) if w <= h else (int(w * s + 0.5), short_side)


def resize_scene(
    photo: np.ndarray, labels: np.ndarray, inst: np.ndarray, short_side: int
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resize photo (area when shrinking, bilinear when enlarging), labels and instances (nearest)."""
    h, w = labels.shape
    nw, nh = resized_size(w, h, short_side)
    if (nw, nh) == (w, h):
        return photo, labels, inst
    interp = cv2.INTER_AREA if nh < h else cv2.INTER_LINEAR
    return (
        cv2.resize(photo, (nw, nh), interpolation=interp),
        cv2.resize(labels, (nw, nh), interpolation=cv2.INTER_NEAREST),
        cv2.resize(inst, (nw, nh), interpolation=cv2.INTER_NEAREST),
    )


def centre_crop(a: np.ndarray, size: int) -> np.ndarray:
    """The centre ``size`` × ``size`` window of an H × W (× C) array."""
    h, w = a.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return a[top : top + size, left : left + size]


def encode_instances(
    labels: np.ndarray, category: np.ndarray, instance: np.ndarray, profile: DatasetProfile
) -> Tuple[np.ndarray, Counter]:
    """Places (R = category, G = instance id) to our uint16 map: ``class * 1000 + G`` on object pixels, else the label.

    An instance's category is the most frequent R over its pixels and its class the category's
    SceneParse150 id; only pixels whose label is that class get the instance value. Returns the
    map and notes (instances without category, with mixed categories, object-class images with
    pixels that have no instance id).
    """
    notes: Counter = Counter()
    inst = labels.astype(np.uint16)
    g = instance.astype(np.int64)
    r = category.astype(np.int64)
    tagged = g > 0
    counts = np.bincount((g * 101 + r)[tagged], minlength=256 * 101).reshape(256, 101)
    present = counts.sum(1) > 0
    cats = counts.argmax(1)
    notes["instances with mixed categories (majority used)"] += int(((counts > 0).sum(1) > 1).sum())
    notes["instances without category (R = 0), ignored"] += int((present & (cats == 0)).sum())
    cat_to_label = np.full(101, -1, np.int64)
    objects = set(profile.object_ids)
    for lab in profile.labels:
        if lab.instance_category is not None and lab.id in objects:
            cat_to_label[lab.instance_category] = lab.id
    lut = np.where(present, cat_to_label[cats], -1)
    cls = lut[g]
    sel = tagged & (cls >= 0) & (labels == cls)
    inst[sel] = (cls[sel] * profile.instance_factor + g[sel]).astype(np.uint16)
    for o in profile.objects:
        if np.any((labels == o.label_id) & ~sel):
            notes[f"{o.name}: pixels without instance id (kept as label {o.label_id})"] += 1
    return inst, notes


# ------------------------------------------------------------------------------------------------
# one scene


def prepare_scene(
    dst: PathLike,
    split: str,
    name: str,
    photo: np.ndarray,
    labels: np.ndarray,
    inst: np.ndarray,
    settings: AdeSettings,
    overwrite: bool = False,
    notes: Optional[Mapping[str, int]] = None,
) -> Stats:
    """Write one scene (BGR photo, labels 0..150, our uint16 instance map, all original size) into the layout."""
    dst = Path(dst)
    if photo.shape[:2] != labels.shape or inst.shape != labels.shape:
        raise DataError(f"{name}: photo {photo.shape}, labels {labels.shape} and instances {inst.shape} disagree")
    prep = settings.profile.preparation
    small, lab, ins = resize_scene(photo, labels, inst, prep.short_side)
    osplit = SPLITS[split][1]
    written: Counter = Counter()
    jpeg = (cv2.IMWRITE_JPEG_QUALITY, settings.base.jpeg_quality)
    if osplit == "test":
        small, lab_out, ins_out = (centre_crop(a, prep.test_size) for a in (small, lab, ins))
    else:
        lab_out, ins_out = lab, ins
    out = dst / osplit
    put_output(out / "images" / f"{name}.jpg", small, overwrite, written, jpeg)
    put_output(out / "labels" / f"{name}.png", lab_out, overwrite, written)
    put_output(out / "inst_map" / f"{name}.png", ins_out, overwrite, written)
    objects, skipped, aspects = cut_object_crops(
        dst,
        osplit,
        name,
        photo,
        inst,
        ins,
        settings.object_names,
        settings.base,
        overwrite,
        written,
        settings.profile.instance_factor,
    )
    scene_notes = Counter(notes or {})
    if prep.max_long_side is not None and max(lab.shape) > prep.max_long_side:
        scene_notes[f"long side > {prep.max_long_side} after resize (aspect > 1.5; short side kept at 256)"] += 1
    stats = {
        "scenes": {osplit: 1},
        "written": dict(written),
        "objects": dict(objects),
        "skipped": dict(skipped),
        "notes": {k: v for k, v in scene_notes.items() if v},
        "aspects": aspects,
    }
    atomic_write_bytes(marker_path(dst, osplit, name), json.dumps(stats).encode())
    return stats


# ------------------------------------------------------------------------------------------------
# the raw tree


def read_scene_categories(path: Path) -> Dict[str, str]:
    """``sceneCategories.txt`` as image name → scene; a line that is not ``<name> <scene>`` is an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found (ADEChallengeData2016 ships it beside images/)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable ({exc})") from None
    out: Dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not ("_train_" in parts[0] or "_val_" in parts[0]):
            raise DataError(f"{path}: line {n} is not '<ADE_train_/ADE_val_ image name> <scene>': {line.strip()!r}")
        out[parts[0]] = parts[1]
    if not out:
        raise DataError(f"{path}: no scene lines")
    return out


def find_instances_root(src: Path, given: Optional[PathLike]) -> Path:
    """The Places ``annotations_instance`` folder: as given, else inside ``src``, else beside it."""
    if given is not None:
        root = Path(given).resolve()
        if not root.is_dir():
            raise DataError(f"{root}: instance annotation folder not found")
        return root
    for root in (src / "annotations_instance", src.parent / "annotations_instance"):
        if root.is_dir():
            return root
    raise DataError(
        f"{src}: no annotations_instance/ inside or beside it; pass --instances (annotations_instance.tar unpacked)"
    )


@dataclass(frozen=True)
class RawScene:
    """One selected room image of the raw tree."""

    split: str
    name: str
    photo: Path
    labels: Path
    instances: Path


def _check_headers(sample: RawScene) -> None:
    """Label map: 8-bit greyscale PNG; instance map: 8-bit RGB(A) PNG of the same size."""
    lw, lh, ldepth, lcolour = png_header(sample.labels)
    if ldepth != 8 or lcolour != GREY:
        raise DataError(
            f"{sample.labels}: label map must be 8-bit greyscale (bit depth {ldepth}, colour type {lcolour})"
        )
    iw, ih, idepth, icolour = png_header(sample.instances)
    if idepth != 8 or icolour not in (RGB, RGBA):
        raise DataError(
            f"{sample.instances}: instance map must be an 8-bit RGB PNG (R = category, G = instance id), "
            f"got bit depth {idepth}, colour type {icolour}"
        )
    if (iw, ih) != (lw, lh):
        raise DataError(f"{sample.instances}: {iw}x{ih}, but its label map {sample.labels} is {lw}x{lh}")


def select_scenes(src: Path, inst_root: Path, scenes: Sequence[str]) -> Tuple[List[RawScene], Dict[str, Counter]]:
    """The room images of both splits (header-checked) and the selection counts; one error lists all problems."""
    categories = read_scene_categories(src / "sceneCategories.txt")
    wanted = set(scenes)
    selected, problems = [], []
    found: Counter = Counter()
    by_scene: Counter = Counter()
    for split, (folder, _) in SPLITS.items():
        images = src / "images" / folder
        if not images.is_dir():
            raise DataError(f"{images}: folder not found (expected ADEChallengeData2016/images/{folder})")
        listed = sorted(p.stem for p in images.glob("*.jpg"))
        for name in listed:
            scene = categories.get(name)
            if scene is None:
                found["no line in sceneCategories.txt"] += 1
                continue
            if scene not in wanted:
                found["other scenes"] += 1
                continue
            by_scene[scene] += 1
            sample = RawScene(
                split,
                name,
                images / f"{name}.jpg",
                src / "annotations" / folder / f"{name}.png",
                inst_root / folder / f"{name}.png",
            )
            missing = [str(p) for p in (sample.labels, sample.instances) if not p.is_file()]
            if missing:
                problems.append(f"{sample.photo}: no matching " + " and ".join(missing))
                continue
            try:
                _check_headers(sample)
            except DataError as exc:
                problems.append(str(exc))
                continue
            selected.append(sample)
        listed_set = set(listed)
        for name, scene in categories.items():
            if scene in wanted and f"_{split}_" in name and name not in listed_set:
                problems.append(f"{images / (name + '.jpg')}: listed as {scene} in sceneCategories.txt but missing")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise DataError("; ".join(problems[:3]) + more)
    return selected, {"selection": found, "room scenes": by_scene}


def decode_raw(sample: RawScene, profile: DatasetProfile) -> Tuple[np.ndarray, np.ndarray, np.ndarray, Counter]:
    """Read and validate one raw scene: photo, labels (0..lab_dim-1), our instance map and the encoding notes."""
    photo = read_bgr(sample.photo)
    labels = read_unchanged(sample.labels)
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise DataError(f"{sample.labels}: label map must be 8-bit single-channel, got {labels.dtype} {labels.shape}")
    top = int(labels.max())
    if top >= profile.lab_dim:
        raise DataError(f"{sample.labels}: label value {top} outside 0..{profile.lab_dim - 1}")
    places = read_unchanged(sample.instances)
    if places.ndim != 3 or places.shape[2] < 3 or places.dtype != np.uint8:
        raise DataError(f"{sample.instances}: instance map must be 8-bit RGB, got {places.dtype} {places.shape}")
    if photo.shape[:2] != labels.shape or places.shape[:2] != labels.shape:
        raise DataError(
            f"{sample.photo}: photo {photo.shape[1]}x{photo.shape[0]}, labels {labels.shape[1]}x{labels.shape[0]}, "
            f"instances {places.shape[1]}x{places.shape[0]} disagree"
        )
    category, instance = places[..., 2], places[..., 1]  # OpenCV reads BGR: R is channel 2, G channel 1
    top_cat = int(category.max())
    if top_cat > 100:
        raise DataError(f"{sample.instances}: category (R) {top_cat} outside 0..100 (Instance100)")
    inst, notes = encode_instances(labels, category, instance, profile)
    return photo, labels, inst, notes


def _process(job: Tuple[RawScene, str, AdeSettings, bool]) -> Tuple[str, Any]:
    """Worker: decode one raw scene and prepare it; returns ("ok", stats) or ("error", message)."""
    sample, dst, settings, overwrite = job
    marker = marker_path(dst, SPLITS[sample.split][1], sample.name)
    if marker.is_file() and not overwrite:
        return "ok", dict(json.loads(marker.read_text()), written={})
    try:
        photo, labels, inst, notes = decode_raw(sample, settings.profile)
        return "ok", prepare_scene(dst, sample.split, sample.name, photo, labels, inst, settings, overwrite, notes)
    except DataError as exc:
        return "error", str(exc)


# ------------------------------------------------------------------------------------------------
# the run


class AdeSummary(Summary):
    """The Cityscapes summary plus the room split beside the reported sizes, notes and box aspects."""

    def __init__(self, scenes: Sequence[str]) -> None:
        super().__init__()
        self.scenes = tuple(scenes)
        self.aspects: Dict[str, List[float]] = {}

    def add(self, stats: Stats) -> None:
        """Merge one scene's stats; box aspects are collected for the medians."""
        stats = dict(stats)
        for cname, values in stats.pop("aspects", {}).items():
            self.aspects.setdefault(cname, []).extend(values)
        super().add(stats)

    def text(self) -> str:
        """Split sizes (found vs reported), then the Cityscapes summary lines, notes and median aspects."""
        c = self.counts
        rooms = c.get("room scenes", Counter())
        n = {s: c.get("scenes", Counter()).get(s, 0) for s in ("train", "test")}
        split = (
            f"ADE20K-Room split ({', '.join(self.scenes)}): train {n['train']} (reported {REPORTED['train']:,}), "
            f"test {n['test']} (reported {REPORTED['test']:,}; both second-hand, from the SPMPGAN paper)"
        )
        lines = [
            split,
            "scene categories kept: " + ", ".join(f"{s} {rooms.get(s, 0)}" for s in self.scenes),
            "images not used: " + (", ".join(f"{k} {v}" for k, v in sorted(c.get("selection", {}).items())) or "none"),
            super().text(),
            "notes: " + (", ".join(f"{k} {v}" for k, v in sorted(c.get("notes", {}).items())) or "none"),
            "median box height/width of kept objects: "
            + (", ".join(f"{k} {statistics.median(v):.2f}" for k, v in sorted(self.aspects.items())) or "none"),
        ]
        return "\n".join(lines)


def record_profile(dst: Path, settings: AdeSettings, overwrite: bool) -> None:
    """Record the profile and object list in ``dst/profile.json``; refuse to mix with another list."""
    record = {
        "profile": settings.profile.name,
        "lab_dim": settings.profile.lab_dim,
        "objects": [o.name for o in settings.profile.objects],
        "scenes": list(settings.scenes),
        "instance_encoding": f"class * {settings.profile.instance_factor} + Places instance id, object classes only",
    }
    path = dst / "profile.json"
    if path.is_file() and not overwrite:
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            raise DataError(f"{path}: unreadable; remove it or pass --overwrite") from None
        if {k: old.get(k) for k in record} != record:
            raise DataError(f"{path}: {dst} was prepared with other settings ({old}); use a new --dst or --overwrite")
        return
    atomic_write_bytes(path, (json.dumps(record, indent=1) + "\n").encode())


def run(
    src: PathLike,
    dst: PathLike,
    instances: Optional[PathLike] = None,
    workers: int = 1,
    overwrite: bool = False,
    settings: Optional[AdeSettings] = None,
) -> AdeSummary:
    """Select the room scenes, prepare them (in parallel) and write the evaluation masks; returns the summary."""
    settings = settings or load_ade_settings()
    src, dst = Path(src).resolve(), Path(dst).resolve()
    if not src.is_dir():
        raise DataError(f"{src}: source folder not found")
    inst_root = find_instances_root(src, instances)
    for root in (src, inst_root):
        if dst == root or root in dst.parents:
            raise DataError(f"{dst}: destination is inside the source tree {root}; refusing to write there")
    samples, selection = select_scenes(src, inst_root, settings.scenes)
    if not samples:
        raise DataError(f"{src}: no image of the scenes {', '.join(settings.scenes)} in sceneCategories.txt")
    dst.mkdir(parents=True, exist_ok=True)
    record_profile(dst, settings, overwrite)
    summary = AdeSummary(settings.scenes)
    summary.add(selection)
    jobs = [(s, str(dst), settings, overwrite) for s in samples]
    run_jobs(_process, jobs, workers, summary.add)
    summary.add(finalize(dst, settings.base, overwrite))
    return summary


def _comma_list(value: Optional[str], option: str) -> Optional[List[str]]:
    """``a,b,c`` to a list (None when the option is absent); an empty list is a usage error."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise UsageError(f"{PROG}: {option} needs at least one name")
    return items


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns 0 (errors are raised, see :func:`cli`)."""
    p = Parser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument(
        "--src",
        required=True,
        metavar="ADEChallengeData2016",
        help="the ADE folder holding images/, annotations/ and sceneCategories.txt",
    )
    p.add_argument(
        "--instances",
        default=None,
        metavar="DIR",
        help="the Places annotations_instance folder (default: inside --src, else beside it)",
    )
    p.add_argument("--dst", required=True, metavar="OUT", help="output root, e.g. data/ade20k_room256")
    p.add_argument(
        "--workers", type=positive_int, default=min(8, os.cpu_count() or 1), help="parallel worker processes"
    )
    p.add_argument(
        "--scenes",
        default=None,
        metavar="A,B,...",
        help="scene categories to keep, matched exactly (default: bedroom,hotel_room,living_room)",
    )
    p.add_argument(
        "--objects",
        default=None,
        metavar="NAME[:FILL],...",
        help="object classes instead of our default bed,table,chair,sofa,armchair,lamp "
        "(ADE classes with Places instances, label id <= 65; optional fill ratio each)",
    )
    add_overwrite(p)
    add_config(p, "the packaged dataset-preparation settings, prepare.yaml (masks, JPEG quality)")
    args = p.parse_args(argv)
    scenes, objects = (_comma_list(v, o) for v, o in ((args.scenes, "--scenes"), (args.objects, "--objects")))
    settings = load_ade_settings(args.config, scenes, args.overrides, objects)
    existing_dir(args.src, "source folder")
    existing_dir(args.instances, "instance annotation folder")
    check_output_dir(Path(args.dst), "destination folder")
    summary = run(args.src, args.dst, args.instances, args.workers, args.overwrite, settings)
    print(summary.text())
    return 0


def cli() -> None:
    """Console-script entry point: one error line and exit code 2 on bad input."""
    sys.exit(run_cli(main))


if __name__ == "__main__":
    cli()
