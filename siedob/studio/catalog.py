"""What the studio may read: scenes (bundled example, a prepared dataset, uploads), style references, shapes.

Every file the server opens comes from a listing it made itself at start-up; clients name entries
by the ids of that listing and never pass a path (so no client string is ever joined to one).
"""

from __future__ import annotations

import random
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import cv2
import numpy as np
import torch
from PIL import Image

from siedob.data.io import EncodedImage, ImageSource, read_bgr, read_gray
from siedob.data.style_bank import load_reference
from siedob.edit.inputs import IMAGE_SUFFIXES, SIDE_MULTIPLE, EditError, Scene, _read, read_scene
from siedob.edit.style_bank import STYLE_SLOTS, ClassBank, StyleBank, class_names, load_style_bank
from siedob.profiles import DatasetProfile, ProfileLike, as_profile

#: Width of the scene thumbnails of the listing.
THUMB_WIDTH = 192
#: Uploaded scenes kept in memory (the oldest is forgotten first).
MAX_UPLOADS = 16
#: Style banks kept drawn, by (seed, pinned names).
BANK_CACHE = 8


@dataclass
class SceneEntry:
    """One scene of the listing: ``files`` maps ``image``, ``labels``, ``instances`` (and maybe ``mask``) to sources."""

    id: str
    name: str
    source: str
    files: Dict[str, ImageSource]
    profile: DatasetProfile = field(default_factory=lambda: as_profile(None))

    def summary(self) -> Dict[str, object]:
        """The JSON row of the listing."""
        return {"id": self.id, "name": self.name, "source": self.source, "has_mask": "mask" in self.files}

    def read(self) -> Scene:
        """Validated scene (as ``read_scene`` reads it, labels of the entry's profile); without a mask file the
        mask is empty."""
        f, prof = self.files, self.profile
        if "mask" in f:
            return read_scene(f["image"], f["labels"], f["instances"], mask=f["mask"], name=self.name, profile=prof)
        return read_scene(
            f["image"], f["labels"], f["instances"], orig_labels=f["labels"], name=self.name, profile=prof
        )

    def raw(self, key: str) -> bytes:
        """The stored bytes of one of the scene's files."""
        src = self.files[key]
        return src.data if isinstance(src, EncodedImage) else Path(src).read_bytes()


def editable_size(image: Path) -> bool:
    """Whether a photo's sides are multiples of 16, as the edit chain needs (read from the file header only).

    ADE20K-Room's training scenes keep their aspect (e.g. 256×341) and so cannot be edited whole.
    """
    with Image.open(image) as im:
        w, h = im.size
    return w % SIDE_MULTIPLE == 0 and h % SIDE_MULTIPLE == 0


def _folder_scenes(
    folder: Path, source: str, mask_dir: Optional[str], profile: DatasetProfile, skipped: List[str]
) -> List[SceneEntry]:
    """Scenes of an ``images/ labels/ inst_map/ [mask/]`` folder whose parts all exist and whose size the
    chain can edit; the names of the others go to ``skipped``."""
    images = folder / "images"
    if not images.is_dir():
        return []
    out = []
    for img in sorted(p for p in images.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        files: Dict[str, ImageSource] = {
            "image": img,
            "labels": folder / "labels" / f"{img.stem}.png",
            "instances": folder / "inst_map" / f"{img.stem}.png",
        }
        if mask_dir and (folder / mask_dir / f"{img.stem}.png").is_file():
            files["mask"] = folder / mask_dir / f"{img.stem}.png"
        if all(Path(p).is_file() for p in files.values()):
            if not editable_size(img):
                skipped.append(f"{source}:{img.stem}")
                continue
            out.append(SceneEntry(f"{source}:{img.stem}", img.stem, source, files, profile))
    return out


class SceneCatalog:
    """The scenes a client can open, by id; uploads are added (validated) and kept in memory.

    Every scene is read with the label table of ``profile`` (the loaded checkpoints' dataset profile).
    """

    def __init__(self, example: Optional[Path], data: Optional[Path], profile: ProfileLike = None) -> None:
        self.profile = as_profile(profile)
        #: ids of scenes not listed because their sides are not multiples of 16
        self.skipped: List[str] = []
        entries: List[SceneEntry] = []
        if example is not None:
            entries += _folder_scenes(example, "example", "mask", self.profile, self.skipped)
        if data is not None:
            for split in ("train", "test"):
                entries += _folder_scenes(data / split, split, None, self.profile, self.skipped)
        self._entries: OrderedDict[str, SceneEntry] = OrderedDict((e.id, e) for e in entries)
        self._uploads: OrderedDict[str, SceneEntry] = OrderedDict()
        self._thumbs: Dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._next_upload = 1

    def listing(self) -> List[Dict[str, object]]:
        """Every listed scene, uploads last."""
        with self._lock:
            return [e.summary() for e in list(self._entries.values()) + list(self._uploads.values())]

    def get(self, scene_id: str) -> SceneEntry:
        """The entry of an id from the listing; KeyError for anything else."""
        with self._lock:
            entry = self._entries.get(scene_id) or self._uploads.get(scene_id)
        if entry is None:
            raise KeyError(scene_id)
        return entry

    def add_upload(self, uploads: Mapping[str, bytes]) -> SceneEntry:
        """Validate an uploaded scene (``image``, ``labels``, ``instances``, optional ``mask``) and list it."""
        with self._lock:
            n = self._next_upload
            self._next_upload += 1
        files: Dict[str, ImageSource] = {k: EncodedImage(k, v) for k, v in uploads.items()}
        entry = SceneEntry(f"upload:{n}", f"upload-{n}", "upload", files, self.profile)
        entry.read()
        with self._lock:
            self._uploads[entry.id] = entry
            while len(self._uploads) > MAX_UPLOADS:
                self._uploads.popitem(last=False)
        return entry

    def thumbnail(self, entry: SceneEntry) -> bytes:
        """A JPEG of the photo, :data:`THUMB_WIDTH` wide (cached)."""
        if entry.id not in self._thumbs:
            img = _read(read_bgr, entry.files["image"])
            h, w = img.shape[:2]
            small = cv2.resize(img, (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w))), interpolation=cv2.INTER_AREA)
            self._thumbs[entry.id] = cv2.imencode(".jpg", small)[1].tobytes()
        return self._thumbs[entry.id]


@dataclass
class StyleRef:
    """One style reference: its name, class, image and mask source."""

    name: str
    cls: int
    image: ImageSource
    mask: ImageSource


def _layout_refs(folder: Path, profile: DatasetProfile) -> Dict[int, List[StyleRef]]:
    """References of an authors'-layout style folder (``<class>/images/<n>.*`` + ``<class>/inst_mask/<n>.png``),
    one folder per object class of the profile."""
    names = class_names(profile)
    refs: Dict[int, List[StyleRef]] = {cls: [] for cls in names}
    for cls in refs:
        images = folder / names[cls] / "images"
        if not images.is_dir():
            continue
        for img in sorted(p for p in images.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
            mask = img.parent.parent / "inst_mask" / f"{img.stem}.png"
            if mask.is_file():
                refs[cls].append(StyleRef(img.name, cls, img, mask))
    return refs


def draw_bank(
    refs: Mapping[int, Sequence[StyleRef]], seed: int, names: Sequence[str], source: str, profile: ProfileLike = None
) -> StyleBank:
    """A style bank drawn from ``refs`` as :func:`~siedob.edit.style_bank.load_style_bank` draws from a folder.

    ``STYLE_SLOTS`` seeded ``random.choice`` draws per class, in the profile's class order (Cityscapes: cars
    first), from one ``random.Random(seed)``; ``names`` pins references (by name or stem) instead, for the
    class they belong to.
    """
    prof = as_profile(profile)
    order = prof.object_ids
    rng = random.Random(seed)
    pinned: Dict[int, List[StyleRef]] = {cls: [] for cls in order}
    for name in names:
        hits = [r for cls in order for r in refs.get(cls, ()) if name in (r.name, Path(r.name).stem)]
        if not hits:
            raise EditError(f"{source}: no style reference named {name!r}")
        pinned[hits[0].cls].append(hits[0])
    banks = {}
    for cls in order:
        pool = list(refs.get(cls, ()))
        chosen = pinned[cls] or ([rng.choice(pool) for _ in range(STYLE_SLOTS)] if pool else [])
        loaded = [load_reference(r.image, r.mask, cls, prof) for r in chosen]
        if loaded:
            banks[cls] = ClassBank(
                torch.stack([i for i, _ in loaded]), torch.stack([m for _, m in loaded]), [r.name for r in chosen]
            )
    return StyleBank(banks, source)


@dataclass
class StyleCatalog:
    """The server's style references (classes of ``profile``); a folder in the authors' layout is drawn by
    ``load_style_bank`` itself."""

    source: str
    refs: Dict[int, List[StyleRef]] = field(default_factory=dict)
    folder: Optional[Path] = None
    profile: DatasetProfile = field(default_factory=lambda: as_profile(None))
    _banks: OrderedDict = field(default_factory=OrderedDict, repr=False)

    @classmethod
    def from_folder(cls, folder: Path, profile: ProfileLike = None) -> StyleCatalog:
        """The references of an authors'-layout style folder (one ``<class>/`` folder per object class)."""
        prof = as_profile(profile)
        return cls(str(folder), _layout_refs(folder, prof), folder, prof)

    @classmethod
    def from_data(cls, data: Path, split: str = "train", profile: ProfileLike = None) -> StyleCatalog:
        """The object crops of a prepared dataset (``object_datasets/<class>/<split>/{images,inst_mask}``)."""
        prof = as_profile(profile)
        refs: Dict[int, List[StyleRef]] = {}
        for c, name in class_names(prof).items():
            images = data / "object_datasets" / name / split / "images"
            files = sorted(images.glob("*.jpg")) if images.is_dir() else []
            masks = [f.parent.parent / "inst_mask" / f"{f.stem}.png" for f in files]
            refs[c] = [StyleRef(f.name, c, f, m) for f, m in zip(files, masks) if m.is_file()]
        return cls(str(data / "object_datasets"), refs, None, prof)

    def listing(self) -> Dict[str, List[Dict[str, object]]]:
        """Reference names per class name, in index order."""
        names = class_names(self.profile)
        return {names[c]: [{"index": i, "name": r.name} for i, r in enumerate(rs)] for c, rs in self.refs.items()}

    def ref(self, class_name: str, index: int) -> StyleRef:
        """A reference by class name and listing index; KeyError when there is none."""
        cls = self.profile.object_names.get(class_name)
        refs = self.refs.get(cls, []) if cls is not None else []
        if not 0 <= index < len(refs):
            raise KeyError(f"{class_name}/{index}")
        return refs[index]

    def bank(self, seed: int, names: Sequence[str] = ()) -> StyleBank:
        """The style bank of an edit, drawn as the CLI draws it for ``seed`` (``names`` pin references).

        The last few banks are kept (the references are read once per seed, not once per request).
        """
        key = (seed, tuple(names))
        if key not in self._banks:
            if self.folder is not None:
                bank = load_style_bank(self.folder, seed=seed, names=names, profile=self.profile)
            else:
                bank = draw_bank(self.refs, seed, names, self.source, self.profile)
            while len(self._banks) >= BANK_CACHE:
                self._banks.popitem(last=False)
            self._banks[key] = bank
        return self._banks[key]


def shape_of(ref: StyleRef) -> np.ndarray:
    """The object's silhouette (uint8 0/1) from a reference's mask."""
    return (_read(read_gray, ref.mask) > 127).astype(np.uint8)
