"""Datasets of the four stages on the prepared layout (docs/spec.md §5.2, §5.3).

:class:`ObjectDataset` serves G_OI (``mode="inpaint"``) and G_OG (``mode="style"``) with 64×64
object crops; :class:`SceneDataset` serves G_B (``stage="background"``) and F
(``stage="fusion"``) with 256×256 scenes, their masks and the disassembly. Random draws come from
torch's generator (seeded per DataLoader worker), so runs are reproducible under
``torch.manual_seed`` and differ between epochs.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from siedob.data.disassembly import disassemble, rules_from_config
from siedob.data.io import (
    DataError,
    PathLike,
    image_to_tensor,
    map_to_tensor,
    read_bgr,
    read_gray,
    read_instances,
    read_labels,
    read_test_mask,
)
from siedob.data.masks import object_train_mask, scene_train_mask
from siedob.maps import edge_map
from siedob.profiles import as_profile


def item_rng(seed: Optional[int] = None) -> np.random.Generator:
    """NumPy generator for one item: from ``seed`` if given, else drawn from torch's global generator."""
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())
    return np.random.default_rng(seed)


def _sorted_files(folder: Path, pattern: str) -> List[Path]:
    """Sorted files of a folder; a missing or empty folder is a :class:`DataError`."""
    files = sorted(folder.glob(pattern))
    if not files:
        raise DataError(f"{folder}: no {pattern} files")
    return files


def _companion(path: Path, folder: str, suffix: str) -> Path:
    """The file of the same stem in a sibling folder (e.g. ``images/x.jpg`` → ``inst_mask/x.png``)."""
    return path.parent.parent / folder / f"{path.stem}{suffix}"


#: Float value of each uint8 level: photo levels in [-1, 1] (exactly as :func:`image_to_tensor`), mask levels / 255.
IMAGE_LEVELS = image_to_tensor(np.arange(256, dtype=np.uint8)[:, None, None]).flatten().numpy()
MASK_LEVELS = np.arange(256, dtype=np.float32) / 255.0


def read_crop(image_path: Path, size: int, mask_path: Optional[Path] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Read an object crop (BGR) and its mask as uint8, resized to size × size (bilinear / nearest)."""
    img = cv2.resize(read_bgr(image_path), (size, size))
    mask = read_gray(mask_path or _companion(image_path, "inst_mask", ".png"))
    return img, cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)


def augment_object(
    rng: np.random.Generator, img: np.ndarray, mask: np.ndarray, load_size: int
) -> Tuple[np.ndarray, np.ndarray]:
    """With p 0.5 resize to load_size and take a random crop back to the input size; with p 0.5 flip."""
    size = img.shape[0]
    if rng.random() < 0.5:
        img = cv2.resize(img, (load_size, load_size))
        mask = cv2.resize(mask, (load_size, load_size), interpolation=cv2.INTER_NEAREST)
        top, left = (int(v) for v in rng.integers(0, load_size - size + 1, 2))
        img, mask = img[top : top + size, left : left + size], mask[top : top + size, left : left + size]
    if rng.random() < 0.5:
        img, mask = img[:, ::-1], mask[:, ::-1]
    return img, mask


class ObjectDataset(Dataset):
    """Object crops for G_OI (``mode="inpaint"``) or G_OG (``mode="style"``), train or test split.

    Training samples classes evenly (item i is of class i mod n_classes, drawn uniformly within
    it; every class needs crops); the epoch has ``min(repeat × largest class, max_per_class)`` items per
    class. G_OG's style reference is another crop of the class, read plain (resized, never augmented) as the
    authors read it. Test mode lists every crop (classes in config order, files sorted; a class without test
    crops is left out) with the i-th ``object_mask/`` file.
    With ``data.cache_crops`` (default true) every crop is decoded once, at construction, into
    uint8 arrays that forked DataLoader workers share; past ``data.cache_limit_mb`` it warns and
    reads the files every sample instead. Both paths give identical samples.
    """

    def __init__(self, root: PathLike, data_cfg: Mapping[str, Any], mode: str = "inpaint", train: bool = True):
        if mode not in ("inpaint", "style"):
            raise ValueError(f"mode must be 'inpaint' or 'style', got {mode!r}")
        self.root, self.cfg, self.mode, self.train = Path(root), data_cfg, mode, train
        self.size = int(data_cfg["crop_size"])
        self.load_size = int(data_cfg["load_size"])
        split = "train" if train else "test"
        self.profile = as_profile(data_cfg.get("profile"))
        names = list(data_cfg["classes"])
        folders = [self.root / "object_datasets" / name / split / "images" for name in names]
        if not train:
            # a small test split may lack a class (e.g. ADE20K-Room rooms without a sofa): score the others
            kept = [i for i, f in enumerate(folders) if any(f.glob("*.jpg"))] or [0]  # none: the first one's error
            names, folders = [names[i] for i in kept], [folders[i] for i in kept]
        self.classes = [self.profile.object_class(name).label_id for name in names]
        self.codes = [np.asarray(self.profile.class_code(cls), np.float32)[:, None, None] for cls in self.classes]
        self.files = [_sorted_files(folder, "*.jpg") for folder in folders]
        self.names = [[f.stem for f in files] for files in self.files]
        self.mask_files = [[_companion(f, "inst_mask", ".png") for f in files] for files in self.files]
        if train:
            largest = max(len(f) for f in self.files)
            self.per_class = min(int(data_cfg["repeat"]) * largest, int(data_cfg["max_per_class"]))
            self.masks: List[Path] = []
        else:
            self.flat = [(c, j) for c, files in enumerate(self.files) for j in range(len(files))]
            self.masks = (
                _sorted_files(self.root / "object_datasets" / "object_mask", "*.png") if mode == "inpaint" else []
            )
        self.cache = self._decode_all() if data_cfg["cache_crops"] else None

    def cache_bytes(self) -> int:
        """Memory the crop cache takes: a uint8 size × size image (3 channels) and mask per crop."""
        return sum(len(files) for files in self.files) * self.size * self.size * 4

    def _decode_all(self) -> Optional[List[Tuple[np.ndarray, np.ndarray]]]:
        """Every crop decoded once, per class (images N × s × s × 3, masks N × s × s), or None past the limit."""
        need, limit_mb = self.cache_bytes(), float(self.cfg["cache_limit_mb"])
        if need > limit_mb * 2**20:
            warnings.warn(
                f"{self.root}: caching {sum(map(len, self.files))} object crops would take {need / 2**20:.0f} MB "
                f"> data.cache_limit_mb={limit_mb:g}; reading the crop files every sample instead",
                stacklevel=3,
            )
            return None
        cache = []
        for files, mask_files in zip(self.files, self.mask_files):
            imgs = np.empty((len(files), self.size, self.size, 3), np.uint8)
            masks = np.empty((len(files), self.size, self.size), np.uint8)
            for k, (path, mask_path) in enumerate(zip(files, mask_files)):
                imgs[k], masks[k] = read_crop(path, self.size, mask_path)
            imgs.flags.writeable = masks.flags.writeable = False
            cache.append((imgs, masks))
        return cache

    def __len__(self) -> int:
        return self.per_class * len(self.classes) if self.train else len(self.flat)

    def _load(self, rng: np.random.Generator, c: int, j: int, augment: bool = True) -> Tuple[np.ndarray, np.ndarray]:
        """Float image (3×s×s, [-1, 1]) and instance mask (1×s×s) of crop j of class c, augmented in training."""
        if self.cache is None:
            img, mask = read_crop(self.files[c][j], self.size, self.mask_files[c][j])
        else:
            img, mask = self.cache[c][0][j], self.cache[c][1][j]
        if self.train and augment:
            img, mask = augment_object(rng, img, mask, self.load_size)
        return IMAGE_LEVELS.take(img.transpose(2, 0, 1)), MASK_LEVELS.take(mask)[None]

    def __getitem__(self, i: int) -> Dict[str, Any]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        if self.train:
            rng = item_rng()
            c = i % len(self.classes)
            j = int(rng.integers(len(self.files[c])))
        else:
            rng = item_rng(i)
            c, j = self.flat[i]
        img, inst = self._load(rng, c, j)
        code = self.codes[c]
        item: Dict[str, Any] = {
            "image": img,
            "inst_mask": inst,
            "class_map": inst * code,
            "obj": img * inst,
            "cls": self.classes[c],
            "name": self.names[c][j],
        }
        if self.mode == "inpaint":
            if self.train:
                m = object_train_mask(rng, i, self.size, self.cfg["brush"], self.cfg["side_fraction"])
            else:
                m = read_test_mask(self.masks[i % len(self.masks)])
                m = cv2.resize(m, (self.size, self.size), interpolation=cv2.INTER_NEAREST)
            mask = m[None] * inst
            item.update(mask=mask, input=img * (1 - mask) * inst)
        else:
            n = len(self.files[c])
            k = int(rng.integers(n - 1)) if n > 1 else 0
            k = k + 1 if n > 1 and k >= j else k
            sty, sty_inst = self._load(rng, c, k, augment=False)
            item.update(
                sty_img=sty * sty_inst, sty_inst_mask=sty_inst, sty_cls_map=sty_inst * code, sty_name=self.names[c][k]
            )
        return {key: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for key, v in item.items()}


class SceneDataset(Dataset):
    """Scenes for G_B (``stage="background"``) or F (``stage="fusion"``), train or test split.

    Training: random crop_size crop of the 512×256 scene, random flip, mask by index mod 3 (+ instance
    boxes with probability ``instance_box_prob``). Test: the 256×256 halves with the sorted
    ``predefined_mask/`` files (greyscale / 255, not binarised). Every item carries the stage's
    disassembly: fg/bg masks and, for F, the kept objects (use :func:`collate_scenes`).
    """

    def __init__(
        self,
        root: PathLike,
        data_cfg: Mapping[str, Any],
        stage: str = "fusion",
        train: bool = True,
        load_2048: bool = False,
    ):
        if stage not in ("background", "fusion"):
            raise ValueError(f"stage must be 'background' or 'fusion', got {stage!r}")
        self.root, self.cfg, self.stage, self.train = Path(root), data_cfg, stage, train
        self.load_2048 = load_2048 and train
        self.rules = rules_from_config(data_cfg, train)
        self.profile = self.rules.profile
        self.crop = int(data_cfg["crop_size"])
        split = self.root / ("train" if train else "test")
        self.images = _sorted_files(split / "images", "*.jpg")
        if not train:
            self.masks = _sorted_files(self.root / "predefined_mask", "*.png")
            if len(self.masks) < len(self.images):
                raise DataError(
                    f"{self.root / 'predefined_mask'}: {len(self.masks)} masks for {len(self.images)} test images"
                )

    def __len__(self) -> int:
        return len(self.images)

    def _read(self, i: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Photo, remapped labels and instance map of scene i, as stored."""
        path = self.images[i]
        return (
            read_bgr(path),
            read_labels(_companion(path, "labels", ".png"), self.profile),
            read_instances(_companion(path, "inst_map", ".png")),
        )

    def __getitem__(self, i: int) -> Dict[str, Any]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        img, lab, inst = self._read(i)
        item: Dict[str, Any] = {"name": self.images[i].stem}
        if self.train:
            rng = item_rng()
            h, w = lab.shape
            top = int(rng.integers(0, h - self.crop + 1))
            left = int(rng.integers(0, w - self.crop + 1))
            flip = rng.random() < 0.5
            win = (slice(top, top + self.crop), slice(left, left + self.crop))
            img, lab, inst = img[win], lab[win], inst[win]
            if flip:
                img, lab, inst = img[:, ::-1], lab[:, ::-1], inst[:, ::-1]
            if self.load_2048:
                big = read_bgr(_companion(self.images[i], "images2048", ".jpg"))
                s = big.shape[1] // w
                big = big[top * s : (top + self.crop) * s, left * s : (left + self.crop) * s]
                item["image2048"] = image_to_tensor(big[:, ::-1] if flip else big)
            c = self.cfg
            mask = scene_train_mask(
                rng,
                i,
                inst,
                c["brush"],
                int(c["box_size"]),
                float(c["instance_box_prob"]),
                int(c["instance_box_min_area"]),
                int(c["instance_box_margin"]),
            )
        else:
            mask = read_test_mask(self.masks[i])
        image = image_to_tensor(img)
        labels = torch.from_numpy(np.ascontiguousarray(lab, dtype=np.int64))[None]
        instances = torch.from_numpy(np.ascontiguousarray(inst, dtype=np.int64))[None]
        mask_t = map_to_tensor(mask)
        dis = disassemble(image, labels, instances, mask_t, self.rules)
        item.update(
            image=image,
            labels=labels,
            instances=instances,
            mask=mask_t,
            masked_image=image * (1 - mask_t),
            edge=edge_map(instances) * mask_t,
            fg_mask=dis.fg_mask,
            bg_mask=dis.bg_mask,
            bg_mask_ori=dis.bg_mask_ori,
        )
        if self.stage == "fusion":
            item["objects"] = dis.objects
        return item


def collate_scenes(batch: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Collate scene items: tensors are stacked, ``objects`` stays a per-scene list of lists."""
    objects = [item.get("objects") for item in batch]
    out = default_collate([{k: v for k, v in item.items() if k != "objects"} for item in batch])
    if any(o is not None for o in objects):
        out["objects"] = objects
    return out
