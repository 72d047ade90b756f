"""The generation step of ``siedob-eval --mode``: test-split pairing and a pluggable generator.

A generator is any callable taking a :class:`GenerationJob`; it writes one image per input image into
``job.out_dir``, named ``<input stem>.png``, at the input's size (LPIPS pairs must match in size;
object crops of persons are 64×32 on disk). The default for every mode is the hook
``siedob.edit:eval_generator`` (our networks, see :mod:`siedob.edit.evaluate`); ``--generator
module:function`` plugs in any other.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

from .errors import EvalError, GeneratorUnavailable
from .images import check_same_count, list_images

PathLike = Union[str, Path]
MODES = ("objects", "background", "fusion", "chain")
DEFAULT_GENERATOR = "siedob.edit:eval_generator"
OBJECT_CLASS_NAMES = ("car", "person")


@dataclass
class GenerationJob:
    """Everything a generator needs: mode, the paired test inputs and where to write results."""

    mode: str
    data_root: Path
    images: List[Path]
    masks: List[Path]
    labels: List[Path]
    out_dir: Path
    device: str = "cpu"
    checkpoints: Dict[str, str] = field(default_factory=dict)


Generator = Callable[[GenerationJob], None]


def scene_split(data_root: PathLike) -> Dict[str, List[Path]]:
    """Test images, labels and predefined masks (docs/spec.md §5.1), paired in sorted order with equal counts."""
    root = Path(data_root)
    images = list_images(root / "test" / "images")
    labels = list_images(root / "test" / "labels")
    masks = list_images(root / "predefined_mask")
    check_same_count(
        images, masks, f"test images in {root / 'test' / 'images'}", f"masks in {root / 'predefined_mask'}"
    )
    check_same_count(images, labels, "test images", f"label maps in {root / 'test' / 'labels'}")
    return {"images": images, "masks": masks, "labels": labels}


def object_split(data_root: PathLike) -> Dict[str, List[Path]]:
    """Car then person test crops (sorted); the i-th crop overall gets the i-th object mask (sorted).

    The same pairing as :class:`siedob.data.datasets.ObjectDataset` in test mode and as the masks the
    prepare step writes (one per test crop of either class).
    """
    root = Path(data_root) / "object_datasets"
    masks = list_images(root / "object_mask")
    images = [p for name in OBJECT_CLASS_NAMES for p in list_images(root / name / "test" / "images")]
    if len(masks) < len(images):
        raise EvalError(
            f"count mismatch: {len(images)} test crops ({', '.join(OBJECT_CLASS_NAMES)}) but only "
            f"{len(masks)} masks in {root / 'object_mask'}"
        )
    return {"images": images, "masks": masks[: len(images)], "labels": []}


def test_split(mode: str, data_root: PathLike) -> Dict[str, List[Path]]:
    """The paired test inputs for a mode."""
    if mode not in MODES:
        raise EvalError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    return object_split(data_root) if mode == "objects" else scene_split(data_root)


def resolve_generator(spec: Optional[str] = None) -> Generator:
    """Import ``module:function``; a missing module or hook is a one-line GeneratorUnavailable."""
    spec = spec or DEFAULT_GENERATOR
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise EvalError(f"--generator {spec!r} must be of the form module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise GeneratorUnavailable(
            f"generator module {module_name} is missing ({exc}); score existing images with --real DIR --fake DIR"
        ) from None
    gen = getattr(module, attr, None)
    if not callable(gen):
        raise GeneratorUnavailable(
            f"generator {spec} does not exist yet; score existing images with --real DIR --fake DIR"
        )
    return gen


def run_generation(generator: Generator, job: GenerationJob) -> List[Path]:
    """Run a generator and return its outputs in input order; error if any is missing."""
    job.out_dir.mkdir(parents=True, exist_ok=True)
    generator(job)
    outputs = outputs_for(job.images, job.out_dir)
    missing = [p for p in outputs if not p.is_file()]
    if missing:
        done = len(outputs) - len(missing)
        raise EvalError(f"generator wrote {done} of {len(outputs)} images (first missing: {missing[0]})")
    return outputs


def outputs_for(images: Sequence[Path], out_dir: Path) -> List[Path]:
    """Where the generated image for each input lives."""
    return [out_dir / f"{p.stem}.png" for p in images]
