"""The generation step of ``siedob-eval --mode``: test-split pairing and a pluggable generator.

A generator is any callable taking a :class:`GenerationJob`; it writes one image per input image into
``job.out_dir``, named ``<input stem>.png``, at the input's size (LPIPS pairs must match in size;
object crops of persons are 64×32 on disk). ``chain`` and ``background`` take the scene masks of one
protocol of :mod:`siedob.data.eval_masks` (``--masks``). The default for every mode is the hook
``siedob.edit:eval_generator`` (our networks, see :mod:`siedob.edit.evaluate`); ``--generator
module:function`` plugs in any other.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

from siedob.data.eval_masks import FIXED_PROTOCOLS, MASK_FOLDERS, MASK_PROTOCOLS, write_fixed_protocol_masks
from siedob.data.io import prepared_profile, read_bgr
from siedob.profiles import ProfileLike, as_profile

from .errors import EvalError, GeneratorUnavailable
from .images import check_same_count, list_images

PathLike = Union[str, Path]
#: ``fusion`` is gone: it wrote exactly the chain's results (the chain's last stage is the fusion network).
MODES = ("objects", "background", "chain")
DEFAULT_GENERATOR = "siedob.edit:eval_generator"


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


def scene_split(
    data_root: PathLike, masks: str = "free-form", fallback_dir: Optional[PathLike] = None
) -> Dict[str, List[Path]]:
    """Test images, labels and one protocol's masks (docs/spec.md §5.1), paired in sorted order with equal counts.

    The masks are ``<data root>/<protocol folder>/``; a data root prepared before extension and outpainting
    masks existed has none of theirs, and then they are written (same geometry as the prepare step's) into
    ``fallback_dir/<protocol folder>/`` when one is given.
    """
    if masks not in MASK_PROTOCOLS:
        raise EvalError(f"unknown mask protocol {masks!r}; expected one of {', '.join(MASK_PROTOCOLS)}")
    root = Path(data_root)
    images = list_images(root / "test" / "images")
    labels = list_images(root / "test" / "labels")
    mask_dir = root / MASK_FOLDERS[masks]
    if not mask_dir.is_dir() and masks in FIXED_PROTOCOLS and fallback_dir is not None:
        mask_dir = Path(fallback_dir) / MASK_FOLDERS[masks]
        h, w = read_bgr(images[0]).shape[:2]
        write_fixed_protocol_masks(fallback_dir, len(images), h, w, overwrite=True, protocols=(masks,))
    mask_files = list_images(mask_dir)
    check_same_count(images, mask_files, f"test images in {root / 'test' / 'images'}", f"masks in {mask_dir}")
    check_same_count(images, labels, "test images", f"label maps in {root / 'test' / 'labels'}")
    return {"images": images, "masks": mask_files, "labels": labels}


def object_split(data_root: PathLike, profile: ProfileLike = None) -> Dict[str, List[Path]]:
    """Test crops per object class in the profile's order (Cityscapes: car then person), each sorted; the
    i-th crop overall gets the i-th object mask (sorted).

    The same pairing as :class:`siedob.data.datasets.ObjectDataset` in test mode and as the masks the
    prepare step writes (one per test crop of any class). ``profile`` defaults to the data root's
    (``profile.json``); a class without test crops (a small ADE20K-Room split may have none of a
    class) adds none, as the prepare step then writes no mask for it; none at all is an error.
    """
    root = Path(data_root) / "object_datasets"
    prof = as_profile(profile if profile is not None else prepared_profile(data_root))
    names = tuple(prof.object_names)
    masks = list_images(root / "object_mask")
    images = [p for name in names for p in _crops(root / name / "test" / "images")]
    if not images:
        raise EvalError(f"{root}: no test crops of any object class ({', '.join(names)}) in <class>/test/images")
    if len(masks) < len(images):
        raise EvalError(
            f"count mismatch: {len(images)} test crops ({', '.join(names)}) but only "
            f"{len(masks)} masks in {root / 'object_mask'}"
        )
    return {"images": images, "masks": masks[: len(images)], "labels": []}


def _crops(folder: Path) -> List[Path]:
    """The images of a crop folder, sorted; a missing or empty folder has none."""
    return list_images(folder) if folder.is_dir() and any(folder.iterdir()) else []


def test_split(
    mode: str,
    data_root: PathLike,
    masks: str = "free-form",
    fallback_dir: Optional[PathLike] = None,
    profile: ProfileLike = None,
) -> Dict[str, List[Path]]:
    """The paired test inputs for a mode (scene modes with the masks of protocol ``masks``); ``profile``
    (default: the data root's) decides the object classes of ``objects``."""
    if mode not in MODES:
        raise EvalError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    if mode == "objects":
        return object_split(data_root, profile)
    return scene_split(data_root, masks, fallback_dir)


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
