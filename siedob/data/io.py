"""Image, label and mask I/O shared by every loader, writer and script (docs/spec.md §1, §5).

Photos are read with OpenCV and kept in BGR order; tensors are float in [-1, 1]; output images
are truncated (not rounded) back to uint8. Files are written atomically (temp file + rename) so
an interrupted job never leaves a half-written output behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Union

import cv2
import numpy as np
import torch

from siedob.errors import SiedobError
from siedob.files import atomic_write_bytes
from siedob.profiles import ProfileLike, as_profile

PathLike = Union[str, Path]


class DataError(SiedobError, ValueError):
    """A data file that cannot be used; the message names the file and the problem."""


class EncodedImage:
    """An image file's bytes held in memory (an upload) under a display name; every ``read_*`` accepts it.

    Decoding goes through the same readers, checks and messages as a file on disk, with ``name`` in
    place of the path.
    """

    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        self.data = data

    def __str__(self) -> str:
        return self.name


ImageSource = Union[PathLike, EncodedImage]


def _imread(path: ImageSource, flags: int) -> np.ndarray:
    """cv2.imread (or cv2.imdecode for an :class:`EncodedImage`) that raises :class:`DataError` instead of None."""
    if isinstance(path, EncodedImage):
        img = cv2.imdecode(np.frombuffer(path.data, np.uint8), flags) if path.data else None
        if img is None:
            raise DataError(f"{path}: not a decodable image")
        return img
    img = cv2.imread(str(path), flags)
    if img is None:
        reason = "not a readable image" if Path(path).is_file() else "file not found"
        raise DataError(f"{path}: {reason}")
    return img


def read_unchanged(path: ImageSource) -> np.ndarray:
    """Read an image as stored (bit depth and channels kept), e.g. a raw labelIds or instanceIds PNG."""
    return _imread(path, cv2.IMREAD_UNCHANGED)


def read_bgr(path: ImageSource) -> np.ndarray:
    """Read a photo as BGR uint8 (H × W × 3), the colour order the networks expect."""
    return _imread(path, cv2.IMREAD_COLOR)


def read_gray(path: ImageSource) -> np.ndarray:
    """Read an 8-bit single-channel image (OpenCV's greyscale conversion for colour files)."""
    return _imread(path, cv2.IMREAD_GRAYSCALE)


def read_labels(path: ImageSource, profile: ProfileLike = None) -> np.ndarray:
    """Read a label PNG as uint8 (H × W) with the profile's unlabeled rule applied (Cityscapes: 0 read as 33)."""
    lab = read_unchanged(path)
    if lab.ndim != 2:
        raise DataError(f"{path}: label map must have one channel, got shape {lab.shape}")
    if lab.dtype != np.uint8:
        if not np.issubdtype(lab.dtype, np.integer) or lab.max() > 255:
            raise DataError(f"{path}: label ids must be 8-bit integers, got {lab.dtype} with maximum {lab.max()}")
        lab = lab.astype(np.uint8)
    prof = as_profile(profile)
    if lab.size and int(lab.max()) >= prof.lab_dim:
        raise DataError(f"{path}: label ids must lie in 0..{prof.lab_dim - 1}, found {int(lab.max())} ({prof.name})")
    return prof.remap_unlabeled(lab)


def read_instances(path: ImageSource) -> np.ndarray:
    """Read a 16-bit instanceIds PNG as int32 (H × W); an 8-bit file cannot hold ids >= 1000."""
    inst = read_unchanged(path)
    if inst.ndim != 2 or inst.dtype != np.uint16:
        raise DataError(f"{path}: instance map must be 16-bit single-channel, got {inst.dtype} {inst.shape}")
    return inst.astype(np.int32)


def read_test_mask(path: ImageSource) -> np.ndarray:
    """Read an evaluation mask as float32 in [0, 1]: greyscale / 255, not binarised (docs/spec.md §5.3, §8)."""
    return read_gray(path).astype(np.float32) / 255.0


def image_to_tensor(img: np.ndarray) -> torch.Tensor:
    """BGR uint8 (H × W × 3) to a float tensor 3 × H × W in [-1, 1]: ``(u8 / 255 - 0.5) / 0.5``."""
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float()
    return t.div_(255.0).sub_(0.5).div_(0.5)


def map_to_tensor(arr: np.ndarray) -> torch.Tensor:
    """A single-channel map (mask, labels, instance mask) as a float tensor 1 × H × W."""
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))[None]


def tensor_to_image(x: torch.Tensor) -> np.ndarray:
    """A [-1, 1] tensor (3 × H × W or 1 × 3 × H × W) to BGR uint8, clipped then truncated (docs/spec.md §1)."""
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {x.shape[0]}")
        x = x[0]
    u = ((x.detach().float().cpu() + 1.0) / 2.0 * 255.0).clamp(0, 255)
    return u.permute(1, 2, 0).numpy().astype(np.uint8)


def write_atomic(path: PathLike, img: np.ndarray, params: tuple = ()) -> None:
    """Encode ``img`` by the file extension and write it via a temp file and a rename."""
    path = Path(path)
    ok, buf = cv2.imencode(path.suffix, img, list(params))
    if not ok:
        raise DataError(f"{path}: could not encode image of shape {img.shape}")
    atomic_write_bytes(path, buf.tobytes())


def write_image(path: PathLike, x: Union[torch.Tensor, np.ndarray]) -> None:
    """Write a [-1, 1] tensor or a BGR uint8 array as an image file (atomic)."""
    img = tensor_to_image(x) if isinstance(x, torch.Tensor) else x
    write_atomic(path, img)


#: File a prepared dataset root holds when it is not a Cityscapes tree (written by siedob-prepare-ade20k).
PROFILE_RECORD = "profile.json"


def prepared_profile(root: PathLike) -> str:
    """The dataset profile of a prepared root: ``profile.json``'s ``profile`` (absent: ``cityscapes``).

    A root prepared with another object list than the profile's (``siedob-prepare-ade20k --objects``) is
    an error: the stages train on the profile's classes only.
    """
    path = Path(root) / PROFILE_RECORD
    if not path.is_file():
        return "cityscapes"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        name = str(record["profile"])
    except (OSError, ValueError, KeyError, TypeError):
        raise DataError(f'{path}: not a readable profile record (expected {{"profile": NAME, ...}})') from None
    objects = record.get("objects")
    wanted = [o.name for o in as_profile(name).objects]
    if objects is not None and list(objects) != wanted:
        raise DataError(
            f"{path}: prepared with the object classes {', '.join(map(str, objects))}; the {name} profile "
            f"trains on {', '.join(wanted)} (prepare without --objects)"
        )
    return name
