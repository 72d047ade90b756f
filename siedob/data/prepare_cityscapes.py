"""Build the prepared 512×256 layout (docs/spec.md §5.1) from the official Cityscapes download.

``siedob-prepare-cityscapes --src RAW --dst OUT [--workers N] [--overwrite]`` reads
``leftImg8bit/{train,val}`` and ``gtFine/{train,val}`` (val becomes test), writes scenes, test
halves, object crops cut from the full-resolution photos and the fixed-seed evaluation masks.
Every file is written atomically and each finished scene leaves a marker, so a re-run after an
interruption completes the job; existing outputs are kept unless ``--overwrite``. Malformed
input stops the run with a one-line error naming the file(s) and exit code 2.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import struct
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from siedob.cli import Parser, add_config, add_overwrite, check_output_dir, existing_dir, size_arg
from siedob.config import load_prepare_settings
from siedob.configs.schema import PrepareSettings
from siedob.data.eval_masks import write_fixed_protocol_masks
from siedob.data.io import DataError, PathLike, read_bgr, read_instances, read_unchanged, write_atomic
from siedob.data.masks import brush_mask_from_config, object_train_mask
from siedob.data.object_crops import cut_object_crops, put_output
from siedob.errors import run_cli
from siedob.files import atomic_write_bytes
from siedob.labels import OBJECT_CLASSES

PROG = "siedob-prepare-cityscapes"
SPLITS = {"train": "train", "val": "test"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MARKERS = ".prepare"
Stats = Dict[str, Any]


#: Preparation parameters (the schema of the packaged ``prepare.yaml``).
Settings = PrepareSettings


def load_settings(
    config: Optional[PathLike] = None, raw_size: Optional[Tuple[int, int]] = None, overrides: Sequence[str] = ()
) -> Settings:
    """Settings from the packaged ``prepare.yaml`` (or ``config``); ``raw_size`` overrides the photo size."""
    settings = load_prepare_settings(config, overrides)
    return dataclasses.replace(settings, raw_size=tuple(raw_size)) if raw_size else settings


class Summary:
    """Counters merged from every scene: images written, objects per class/split, skips by reason."""

    def __init__(self) -> None:
        self.counts: Dict[str, Counter] = {}

    def add(self, stats: Stats) -> None:
        """Merge one scene's (or the finalisation's) stats."""
        for section, values in stats.items():
            self.counts.setdefault(section, Counter()).update(values)

    def text(self) -> str:
        """Human-readable multi-line summary."""
        c = self.counts
        lines = [
            "scenes: " + _fmt(c.get("scenes", {})),
            f"images written: {sum(c.get('written', {}).values())}",
            "objects: " + _fmt(c.get("objects", {})),
            "instances skipped: " + _fmt(c.get("skipped", {})),
            "evaluation masks written: " + _fmt(c.get("masks", {})),
        ]
        return "\n".join(lines)


def _fmt(counter: Mapping[str, int]) -> str:
    """``a 3, b 1`` or ``none``."""
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"


def _object_crops(
    dst: Path,
    split: str,
    name: str,
    photo: np.ndarray,
    inst_full: np.ndarray,
    inst: np.ndarray,
    settings: Settings,
    overwrite: bool,
    written: Counter,
) -> Tuple[Counter, Counter]:
    """Cut every car and person instance from the full-resolution photo (docs/spec.md §5.1 rules)."""
    names = {v: k for k, v in OBJECT_CLASSES.items()}
    objects, skipped, _ = cut_object_crops(
        dst, SPLITS[split], name, photo, inst_full, inst, names, settings, overwrite, written
    )
    return objects, skipped


def marker_path(dst: PathLike, split: str, name: str) -> Path:
    """Where a finished scene records its stats (lets a re-run skip it and still report totals)."""
    return Path(dst) / MARKERS / split / f"{name}.json"


def prepare_sample(
    dst: PathLike,
    split: str,
    name: str,
    photo: np.ndarray,
    labels: np.ndarray,
    inst: np.ndarray,
    settings: Settings,
    overwrite: bool = False,
) -> Stats:
    """Write one full-resolution scene (BGR photo, raw labelIds, instanceIds) into the prepared layout."""
    dst = Path(dst)
    rw, rh = settings.raw_size
    if photo.shape[:2] != (rh, rw) or labels.shape != (rh, rw) or inst.shape != (rh, rw):
        raise DataError(
            f"{name}: expected {rw}x{rh} photo/labels/instances, got {photo.shape}, {labels.shape}, {inst.shape}"
        )
    w, h = settings.size
    small = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
    lab = cv2.resize(labels.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    ins = cv2.resize(inst.astype(np.uint16), (w, h), interpolation=cv2.INTER_NEAREST)
    written: Counter = Counter()
    jpeg = (cv2.IMWRITE_JPEG_QUALITY, settings.jpeg_quality)
    out = dst / SPLITS[split]
    if split == "train":
        parts = {name: (slice(None), slice(None))}
        put_output(out / "images2048" / f"{name}.jpg", photo, overwrite, written, jpeg)
    else:
        ts = settings.test_size
        parts = {f"{name}_l": (slice(0, ts), slice(0, ts)), f"{name}_r": (slice(0, ts), slice(w - ts, w))}
    for pname, win in parts.items():
        put_output(out / "images" / f"{pname}.jpg", small[win], overwrite, written, jpeg)
        put_output(out / "labels" / f"{pname}.png", lab[win], overwrite, written)
        put_output(out / "inst_map" / f"{pname}.png", ins[win], overwrite, written)
    objects, skipped = _object_crops(dst, split, name, photo, inst, ins.astype(np.int32), settings, overwrite, written)
    stats = {
        "scenes": {SPLITS[split]: len(parts)},
        "written": dict(written),
        "objects": dict(objects),
        "skipped": dict(skipped),
    }
    marker = marker_path(dst, split, name)
    atomic_write_bytes(marker, json.dumps(stats).encode())
    return stats


def finalize(dst: PathLike, settings: Settings, overwrite: bool = False) -> Stats:
    """Write the evaluation masks: per test scene one of each protocol (free-form seeded), one per test object crop."""
    dst = Path(dst)
    written: Counter = Counter()
    n_scenes = len(list((dst / "test" / "images").glob("*.jpg")))
    ts = settings.test_size
    for k in range(n_scenes):
        path = dst / "predefined_mask" / f"{k:04d}.png"
        if overwrite or not path.exists():
            rng = np.random.default_rng([settings.mask_seed, 0, k])
            write_atomic(path, (brush_mask_from_config(rng, ts, ts, settings.scene_brush) * 255).astype(np.uint8))
            written["predefined_mask"] += 1
    written.update(write_fixed_protocol_masks(dst, n_scenes, ts, ts, overwrite))
    n_objects = len(list((dst / "object_datasets").glob("*/test/images/*.jpg")))
    for k in range(n_objects):
        path = dst / "object_datasets" / "object_mask" / f"{k:04d}.png"
        if overwrite or not path.exists():
            rng = np.random.default_rng([settings.mask_seed, 1, k])
            m = object_train_mask(rng, k, settings.object_mask_size, settings.object_brush, settings.side_fraction)
            write_atomic(path, (m * 255).astype(np.uint8))
            written["object_mask"] += 1
    return {"masks": dict(written)}


def png_header(path: Path) -> Tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from a PNG's IHDR chunk, without decoding it."""
    try:
        with open(path, "rb") as f:
            head = f.read(26)
    except OSError as exc:
        raise DataError(f"{path}: unreadable ({exc.strerror})") from None
    if len(head) < 26 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise DataError(f"{path}: not a PNG file")
    w, h = struct.unpack(">II", head[16:24])
    return w, h, head[24], head[25]


def _check(path: Path, size: Tuple[int, int], kind: str) -> None:
    """Validate one raw file's header: size, and bit depth / channels for label and instance maps."""
    w, h, depth, colour = png_header(path)
    if (w, h) != size:
        raise DataError(f"{path}: {w}x{h}, expected {size[0]}x{size[1]}")
    if kind == "labels" and (depth != 8 or colour != 0):
        raise DataError(f"{path}: label map must be 8-bit greyscale (bit depth {depth}, colour type {colour})")
    if kind == "instances" and (depth != 16 or colour != 0):
        raise DataError(f"{path}: {depth}-bit instance map, expected 16-bit greyscale")


@dataclass(frozen=True)
class RawSample:
    """One scene of the raw tree."""

    split: str
    name: str
    photo: Path
    labels: Path
    instances: Path


def find_raw_samples(src: Path, settings: Settings) -> List[RawSample]:
    """List and header-check every raw scene; raises one :class:`DataError` listing all problems."""
    samples, problems = [], []
    for split in SPLITS:
        for photo in sorted((src / "leftImg8bit" / split).glob("*/*_leftImg8bit.png")):
            name = photo.name[: -len("_leftImg8bit.png")]
            gt = src / "gtFine" / split / photo.parent.name
            sample = RawSample(
                split, name, photo, gt / f"{name}_gtFine_labelIds.png", gt / f"{name}_gtFine_instanceIds.png"
            )
            missing = [p for p in (sample.labels, sample.instances) if not p.is_file()]
            if missing:
                problems.append(f"{photo}: no matching " + " and ".join(str(p) for p in missing))
                continue
            try:
                _check(sample.photo, settings.raw_size, "photo")
                _check(sample.labels, settings.raw_size, "labels")
                _check(sample.instances, settings.raw_size, "instances")
            except DataError as exc:
                problems.append(str(exc))
                continue
            samples.append(sample)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise DataError("; ".join(problems[:3]) + more)
    if not samples:
        raise DataError(f"{src}: no leftImg8bit/{{train,val}}/<city>/*_leftImg8bit.png found")
    return samples


def _process(job: Tuple[RawSample, str, Settings, bool]) -> Tuple[str, Any]:
    """Worker: decode one raw scene and prepare it; returns ("ok", stats) or ("error", message)."""
    sample, dst, settings, overwrite = job
    marker = marker_path(dst, sample.split, sample.name)
    if marker.is_file() and not overwrite:
        return "ok", dict(json.loads(marker.read_text()), written={})
    try:
        photo = read_bgr(sample.photo)
        labels = read_unchanged(sample.labels)
        if labels.ndim != 2 or labels.dtype != np.uint8:
            raise DataError(f"{sample.labels}: label map must be 8-bit single-channel")
        inst = read_instances(sample.instances)
        return "ok", prepare_sample(dst, sample.split, sample.name, photo, labels, inst, settings, overwrite)
    except DataError as exc:
        return "error", str(exc)


def run(src: PathLike, dst: PathLike, workers: int, overwrite: bool, settings: Settings) -> Summary:
    """Validate RAW, prepare every scene (in parallel), write the evaluation masks; returns the summary."""
    src, dst = Path(src).resolve(), Path(dst).resolve()
    if not src.is_dir():
        raise DataError(f"{src}: source folder not found")
    if dst == src or src in dst.parents:
        raise DataError(f"{dst}: destination is inside the source tree {src}; refusing to write there")
    samples = find_raw_samples(src, settings)
    dst.mkdir(parents=True, exist_ok=True)
    jobs = [(s, str(dst), settings, overwrite) for s in samples]
    summary = Summary()
    run_jobs(_process, jobs, workers, summary.add)
    summary.add(finalize(dst, settings, overwrite))
    return summary


def run_jobs(process: Callable[[Any], Tuple[str, Any]], jobs: Sequence[Any], workers: int, add: Callable) -> None:
    """Run ``process`` on every job (in ``workers`` forked processes when > 1) with a progress bar.

    Each result is ``("ok", stats)``, handed to ``add``, or ``("error", message)``; any error stops
    the run afterwards with the first three messages on one line.
    """
    errors: List[str] = []
    with tqdm(total=len(jobs), desc="prepare", unit="scene") as bar:
        if workers <= 1:
            results = map(process, jobs)
            for status, value in results:
                (add if status == "ok" else errors.append)(value)
                bar.update()
        else:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for status, value in pool.imap_unordered(process, jobs):
                    (add if status == "ok" else errors.append)(value)
                    bar.update()
    if errors:
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise DataError("; ".join(sorted(errors)[:3]) + more)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns 0 (errors are raised, see :func:`cli`)."""
    p = Parser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument(
        "--src", required=True, metavar="RAW", help="official Cityscapes root (holds leftImg8bit/ and gtFine/)"
    )
    p.add_argument("--dst", required=True, metavar="OUT", help="output root, e.g. data/cityscapes512x256")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="parallel worker processes")
    add_overwrite(p)
    add_config(p, "the packaged dataset-preparation settings, prepare.yaml")
    p.add_argument("--raw-size", type=size_arg, default=None, help="expected photo size WxH (default: raw_size)")
    args = p.parse_args(argv)
    settings = load_settings(args.config, args.raw_size, args.overrides)
    existing_dir(args.src, "source folder")
    check_output_dir(Path(args.dst), "destination folder")
    summary = run(args.src, args.dst, args.workers, args.overwrite, settings)
    print(summary.text())
    return 0


def cli() -> None:
    """Console-script entry point: one error line and exit code 2 on bad input."""
    sys.exit(run_cli(main))


if __name__ == "__main__":
    cli()
