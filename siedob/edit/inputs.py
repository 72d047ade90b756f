"""Edit inputs: read and validate a scene (image, edited labels and instances, mask) before any work.

Every problem becomes an :class:`EditError` naming the file and what is wrong, so the CLI prints one
line and exits with code 2 instead of a traceback or a half-written output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Union

import cv2
import numpy as np

from siedob.data.io import DataError, EncodedImage, ImageSource, read_bgr, read_instances, read_labels, read_test_mask
from siedob.errors import SiedobError
from siedob.profiles import ProfileLike

PathLike = Union[str, Path]

#: Image suffixes accepted in an ``images/`` folder.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
#: Side multiple the networks need (G_B downsamples four times).
SIDE_MULTIPLE = 16
#: Pixels by which a mask derived from label/instance differences is dilated.
DIFF_DILATION = 2


class EditError(SiedobError):
    """An edit input that cannot be used; the message names the file and the problem."""


@dataclass
class Scene:
    """One edit: BGR uint8 image, label ids (0 already replaced by 33), int32 instance ids, float mask."""

    name: str
    image: np.ndarray
    labels: np.ndarray
    instances: np.ndarray
    mask: np.ndarray
    paths: Dict[str, str] = field(default_factory=dict)


def _read(reader, path: ImageSource) -> np.ndarray:
    """Run a :mod:`siedob.data.io` reader, turning its :class:`DataError` into an :class:`EditError`."""
    try:
        return reader(path)
    except DataError as exc:
        raise EditError(str(exc)) from None


def read_label_map(path: ImageSource, profile: ProfileLike = None) -> np.ndarray:
    """Label ids (uint8 H × W) after the profile's unlabeled rule (Cityscapes: 0 read as 33); ids outside
    0..lab_dim − 1 are an error."""
    return _read(lambda p: read_labels(p, profile), path)


def read_instance_map(path: ImageSource) -> np.ndarray:
    """Instance ids (int32 H × W) of a 16-bit single-channel instanceIds image."""
    return _read(read_instances, path)


def diff_mask(
    labels: np.ndarray,
    orig_labels: np.ndarray,
    instances: Optional[np.ndarray] = None,
    orig_instances: Optional[np.ndarray] = None,
    dilation: int = DIFF_DILATION,
) -> np.ndarray:
    """Mask (float32 0/1) of the pixels whose label or instance changed, dilated by ``dilation`` pixels."""
    changed = labels != orig_labels
    if instances is not None and orig_instances is not None:
        changed |= instances != orig_instances
    out = changed.astype(np.uint8)
    if dilation > 0:
        out = cv2.dilate(out, np.ones((2 * dilation + 1, 2 * dilation + 1), np.uint8))
    return out.astype(np.float32)


def check_shapes(image: np.ndarray, maps: Dict[str, np.ndarray], image_name: str = "image") -> None:
    """Sides multiples of 16 and every map the image's size; errors name the offending file."""
    h, w = image.shape[:2]
    if h % SIDE_MULTIPLE or w % SIDE_MULTIPLE or h == 0 or w == 0:
        raise EditError(f"{image_name}: height and width must be multiples of {SIDE_MULTIPLE}, got {h}×{w}")
    for name, arr in maps.items():
        if arr.shape[:2] != (h, w):
            raise EditError(f"{name}: size {arr.shape[0]}×{arr.shape[1]} does not match {image_name} ({h}×{w})")


def read_scene(
    image: ImageSource,
    labels: ImageSource,
    instances: ImageSource,
    mask: Optional[ImageSource] = None,
    orig_labels: Optional[ImageSource] = None,
    orig_instances: Optional[ImageSource] = None,
    name: Optional[str] = None,
    profile: ProfileLike = None,
) -> Scene:
    """Read and validate one scene; without ``mask`` it is derived from ``orig_labels`` (and ``orig_instances``).

    Each source is a path or an :class:`~siedob.data.io.EncodedImage` (an upload's bytes); label ids are
    checked against the dataset ``profile`` (Cityscapes by default).
    """
    img = _read(read_bgr, image)
    lab = read_label_map(labels, profile)
    inst = _read(read_instances, instances)
    maps = {str(labels): lab, str(instances): inst}
    paths = {"image": str(image), "labels": str(labels), "instances": str(instances)}
    if mask is not None:
        m = _read(read_test_mask, mask)
        maps[str(mask)] = m
        paths["mask"] = str(mask)
    elif orig_labels is not None:
        olab = read_label_map(orig_labels, profile)
        maps[str(orig_labels)] = olab
        paths["orig_labels"] = str(orig_labels)
        oinst = None
        if orig_instances is not None:
            oinst = _read(read_instances, orig_instances)
            maps[str(orig_instances)] = oinst
            paths["orig_instances"] = str(orig_instances)
        check_shapes(img, maps, str(image))
        m = diff_mask(lab, olab, inst if oinst is not None else None, oinst)
    else:
        raise EditError(f"{image}: no mask given; pass a mask file or the original labels to derive one")
    check_shapes(img, maps, str(image))
    return Scene(name or Path(str(image)).stem, img, lab, inst, m, paths)


def decode_scene(uploads: Dict[str, bytes], name: str = "upload", profile: ProfileLike = None) -> Scene:
    """:func:`read_scene` on in-memory files keyed by field (``image``, ``labels``, ``instances``, and ``mask`` or
    ``orig_labels`` [+ ``orig_instances``]); messages name the field instead of a path."""
    sources = {key: EncodedImage(key, data) for key, data in uploads.items()}
    return read_scene(
        sources["image"],
        sources["labels"],
        sources["instances"],
        sources.get("mask"),
        sources.get("orig_labels"),
        sources.get("orig_instances"),
        name=name,
        profile=profile,
    )


def list_images(folder: PathLike) -> List[Path]:
    """Image files of a folder, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EditError(f"{folder}: folder not found")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_example_folder(folder: PathLike, profile: ProfileLike = None) -> List[Scene]:
    """Every scene of an authors'-layout folder: ``images/<n>.*`` with ``labels/``, ``inst_map/``, ``mask/<n>.png``."""
    folder = Path(folder)
    images = list_images(folder / "images")
    if not images:
        raise EditError(f"{folder / 'images'}: no images to edit")
    scenes = []
    for img in images:
        parts = {sub: folder / sub / f"{img.stem}.png" for sub in ("labels", "inst_map", "mask")}
        for path in parts.values():
            if not path.is_file():
                raise EditError(f"{path}: file not found (needed for {img.name})")
        scenes.append(
            read_scene(img, parts["labels"], parts["inst_map"], parts["mask"], name=img.stem, profile=profile)
        )
    return scenes
