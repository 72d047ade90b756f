"""Dataset profiles: everything SIEDOB needs to know about one dataset, in one frozen description.

A profile holds the label table (ids, names, palette), the unlabeled-id rule, ``lab_dim``, the
object ("thing") classes of the object branch with their class codes, crop sizes and fill ratios,
the background classes of G_B, the instance-id encoding of the prepared instance maps, the
object-selection rules of the two scene loaders and the preparation parameters. ``cityscapes``
is exactly the behaviour of :mod:`siedob.labels`, :mod:`siedob.maps`, the disassembly and the
packaged configs (``tests/test_profiles.py`` compares them field by field); ``ade20k-room`` is
our description of ADE20K-Room, whose object classes the paper does not publish (docs/datasets.md).

Class codes: the object at position ``i`` of :attr:`DatasetProfile.objects` gets a one-hot code
of width ``max(3, number of object classes)`` with its 1 at channel ``i``. With up to three
classes this is the authors' 3-channel code (Cityscapes: car (1,0,0), person (0,1,0), the third
channel unused); with more, the code grows to one channel per class, so an ADE network's class
map has six channels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from siedob.errors import SiedobError

Size = Tuple[int, int]
#: Largest value a 16-bit instance map can hold.
UINT16_MAX = 65535


class ProfileError(SiedobError, ValueError):
    """An unknown profile name or an inconsistent profile description."""


@dataclass(frozen=True)
class LabelClass:
    """One row of a dataset's label table."""

    id: int
    name: str
    color: Tuple[int, int, int]
    has_instances: bool
    train_id: Optional[int] = None
    instance_category: Optional[int] = None


@dataclass(frozen=True)
class ObjectClass:
    """An object ("thing") class handled by G_OI / G_OG.

    ``crop_size`` is the stored object-dataset crop (height, width), ``fill_ratio`` the minimum
    instance area / box area (exclusive) for a crop to be kept, everywhere it is tested. ``ground`` and
    ``height_range`` are the object-addition protocol's (``siedob-eval --mode add-objects``): the label
    ids a new object may stand on and its height in pixels at a 256-pixel scene height (ends included).
    """

    name: str
    label_id: int
    crop_size: Size
    fill_ratio: float
    ground: Tuple[int, ...] = ()
    height_range: Tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class LoaderRules:
    """Object-selection rules of one scene loader (docs/spec.md §5.3 step 3): the G_B or the F/edit loader.

    ``aspect`` maps a label id to the open interval its box height / width must fall in;
    ``crop_size`` maps a label id to the (height, width) its crops are resized to;
    ``clamp`` is the box-end clamp applied in training only (None: none).
    """

    inside_fraction: float
    max_num: int
    margin: int
    clamp: Optional[int]
    aspect: Mapping[int, Tuple[float, float]]
    crop_size: Mapping[int, Size]


@dataclass(frozen=True)
class Preparation:
    """Parameters of the prepared layout (data/README.md) that depend on the dataset.

    Cityscapes scenes are resized to the fixed ``size`` (width, height) and test scenes cut into
    left/right ``test_size`` halves; ADE scenes are resized to ``short_side`` (aspect kept) and
    test scenes centre-cropped to ``test_size`` squares. ``scenes`` lists the scene categories kept.
    """

    size: Optional[Size]
    short_side: Optional[int]
    max_long_side: Optional[int]
    test_size: int
    test_crop: str
    box_margin: int
    min_short_side: int
    scenes: Tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetProfile:
    """The description of one dataset; build one with :func:`get_profile`."""

    name: str
    title: str
    labels: Tuple[LabelClass, ...]
    lab_dim: int
    unlabeled_id: int
    unlabeled_to: Optional[int]
    objects: Tuple[ObjectClass, ...]
    background_classes: Tuple[int, ...]
    style_skipped_classes: Tuple[int, ...]
    instance_factor: int
    instance_classes: Tuple[int, ...]
    max_instance_index: int
    loaders: Mapping[str, LoaderRules]
    preparation: Preparation
    #: the label the studio's brush starts with (and an erased object's fallback fill)
    brush_label: int = 0
    notes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ids = [lab.id for lab in self.labels]
        if ids != list(range(len(ids))) or len(ids) != self.lab_dim:
            raise ProfileError(f"profile {self.name}: label ids must be 0..{self.lab_dim - 1} in order")
        names = [o.name for o in self.objects]
        if len(set(names)) != len(names) or len({o.label_id for o in self.objects}) != len(names):
            raise ProfileError(f"profile {self.name}: object classes must be distinct")
        for o in self.objects:
            if not 0 <= o.label_id < self.lab_dim or o.label_id not in self.instance_classes:
                raise ProfileError(f"profile {self.name}: object class {o.name} ({o.label_id}) has no instance ids")
        top = max(self.instance_classes, default=0) * self.instance_factor + self.max_instance_index
        if top > UINT16_MAX:
            raise ProfileError(
                f"profile {self.name}: instance id {top} does not fit a 16-bit instance map "
                f"(class * {self.instance_factor} + k needs class <= {UINT16_MAX // self.instance_factor})"
            )
        if self.max_instance_index >= self.instance_factor:
            raise ProfileError(f"profile {self.name}: instance index {self.max_instance_index} >= factor")
        for loader, rules in self.loaders.items():
            if set(rules.crop_size) != {o.label_id for o in self.objects}:
                raise ProfileError(f"profile {self.name}: loader {loader} needs a crop size per object class")

    # label table -----------------------------------------------------------------------------

    def label(self, key: int | str) -> LabelClass:
        """The label row of an id, or of a (full or first) name."""
        for lab in self.labels:
            if lab.id == key or lab.name == key or (isinstance(key, str) and lab.name.split(", ")[0] == key):
                return lab
        raise ProfileError(f"profile {self.name}: no label {key!r}")

    def palette(self) -> np.ndarray:
        """RGB colour per label id (``lab_dim`` × 3 uint8), for colourised label panels."""
        return np.array([lab.color for lab in self.labels], dtype=np.uint8)

    def color_lookup(self) -> Dict[Tuple[int, int, int], int]:
        """RGB colour → label id for painted label maps; a colour shared by several ids maps to the lowest."""
        out: Dict[Tuple[int, int, int], int] = {}
        for lab in self.labels:
            out.setdefault(tuple(lab.color), lab.id)
        return out

    def remap_unlabeled(self, labels: np.ndarray) -> np.ndarray:
        """Apply the unlabeled-id rule on load (Cityscapes: 0 → ``lab_dim − 1``; ADE: none, 0 is a class)."""
        out = labels.copy()
        if self.unlabeled_to is not None:
            out[out == self.unlabeled_id] = self.unlabeled_to
        return out

    # object classes --------------------------------------------------------------------------

    @property
    def object_ids(self) -> Tuple[int, ...]:
        """Label ids of the object classes in visiting order (the disassembly's class order)."""
        return tuple(o.label_id for o in self.objects)

    @property
    def code_width(self) -> int:
        """Channels of the object class code: 3 (the authors') or one per class beyond three."""
        return max(3, len(self.objects))

    @property
    def object_names(self) -> Dict[str, int]:
        """Object class name → label id, in visiting order (the keys of the configs' per-class blocks)."""
        return {o.name: o.label_id for o in self.objects}

    def object_class(self, key: int | str) -> ObjectClass:
        """An object class by label id or name."""
        for o in self.objects:
            if o.label_id == key or o.name == key:
                return o
        raise ProfileError(f"profile {self.name}: {key!r} is not an object class (expected one of {self.object_ids})")

    def class_code(self, label_id: int) -> Tuple[float, ...]:
        """The one-hot class code of an object class (see the module docstring)."""
        index = self.object_ids.index(self.object_class(label_id).label_id)
        return tuple(1.0 if k == index else 0.0 for k in range(self.code_width))

    def tie_winner(self, label_ids: Tuple[int, ...]) -> int:
        """The class a candidate gets when several object classes tie for its inside pixels: the lowest id.

        Cityscapes' rule "a tie goes to person" is this rule (person 24 < car 26).
        """
        return min(label_ids)

    # instance encoding -----------------------------------------------------------------------

    def encode_instance(self, label_id: int, k: int) -> int:
        """Prepared instance-map value of instance ``k`` of a class: ``label_id * factor + k``."""
        if label_id not in self.instance_classes or not 0 <= k <= self.max_instance_index:
            raise ProfileError(f"profile {self.name}: cannot encode instance {k} of class {label_id}")
        return label_id * self.instance_factor + k

    def decode_instance(self, value: int) -> Optional[Tuple[int, int]]:
        """``(label_id, k)`` of an instance-map value, or None for a plain class id (no instance)."""
        if value < self.instance_factor:
            return None
        return value // self.instance_factor, value % self.instance_factor


def _read_json(*parts: str) -> Any:
    """A JSON file of the package data ``siedob/profile_data``."""
    node = resources.files("siedob").joinpath("profile_data")
    for part in parts:
        node = node.joinpath(part)
    return json.loads(node.read_text(encoding="utf-8"))


def _cityscapes() -> DatasetProfile:
    """Today's Cityscapes behaviour (docs/spec.md §1, §5): ids 0..33, 0 read as 33, cars and persons."""
    labels = tuple(
        LabelClass(r["id"], r["name"], tuple(r["rgb"]), bool(r["has_instances"]), r["train_id"])
        for r in _read_json("cityscapes", "labels.json")["classes"]
    )
    car, person = 26, 24
    road, sidewalk = 7, 8
    objects = (
        ObjectClass("car", car, (64, 64), 0.6, (road,), (20, 48)),
        ObjectClass("person", person, (64, 32), 0.35, (sidewalk,), (24, 56)),
    )
    return DatasetProfile(
        name="cityscapes",
        title="Cityscapes (SIEDOB's released setting)",
        labels=labels,
        lab_dim=34,
        unlabeled_id=0,
        unlabeled_to=33,
        objects=objects,
        background_classes=(6, 7, 8, 9, 10, 11, 12, 21, 22, 23),
        style_skipped_classes=tuple(lab.id for lab in labels if lab.has_instances),
        instance_factor=1000,
        instance_classes=tuple(lab.id for lab in labels if lab.has_instances),
        max_instance_index=999,
        loaders={
            "background": LoaderRules(0.4, 50, 2, 255, {person: (2.0, 6.0)}, {car: (64, 64), person: (64, 32)}),
            "fusion": LoaderRules(0.0, 180, 2, None, {}, {car: (64, 64), person: (64, 64)}),
        },
        preparation=Preparation(
            size=(512, 256),
            short_side=None,
            max_long_side=None,
            test_size=256,
            test_crop="halves",
            box_margin=2,
            min_short_side=8,
        ),
        brush_label=road,
        notes={
            "objects": "the authors' fg_class_list: person (24) and car (26)",
            "unlabeled": "id 0 is read as 33 (lab_dim - 1), as the authors' loaders do",
        },
    )


#: Our choice of ADE20K-Room object classes (the paper does not publish one): the README's core set
#: of free-standing furniture found in bedrooms, hotel rooms and living rooms. Fill ratios and crop
#: sizes are our choices too (docs/datasets.md); the preparation summary reports the box aspects.
ADE_ROOM_OBJECTS: Tuple[Tuple[str, int, float], ...] = (
    ("bed", 8, 0.5),
    ("table", 16, 0.35),
    ("chair", 20, 0.3),
    ("sofa", 24, 0.5),
    ("armchair", 31, 0.45),
    ("lamp", 37, 0.3),
)
#: Scene categories of ``sceneCategories.txt`` that make up ADE20K-Room (matched exactly).
ADE_ROOM_SCENES: Tuple[str, ...] = ("bedroom", "hotel_room", "living_room")


#: Fill ratio of an ADE object class picked with :func:`ade20k_room_profile` that has no default.
ADE_DEFAULT_FILL_RATIO = 0.4
#: ADE's "floor, flooring": what every room object stands on when object addition places one (our choice),
#: and the brush's first label.
ADE_FLOOR = 4
#: Height range of an added room object at a 256-pixel scene height (our choice).
ADE_ADDITION_HEIGHTS: Tuple[int, int] = (32, 96)


def _ade_object(labels: Tuple[LabelClass, ...], spec: str) -> ObjectClass:
    """``name`` or ``name:fill_ratio`` (first name of a SceneParse150 class with Places instances) to an object."""
    name, _, ratio = spec.partition(":")
    defaults = {n: r for n, _, r in ADE_ROOM_OBJECTS}
    for lab in labels:
        if lab.name.split(", ")[0] == name and lab.has_instances:
            try:
                fill = float(ratio) if ratio else defaults.get(name, ADE_DEFAULT_FILL_RATIO)
            except ValueError:
                raise ProfileError(f"object class {spec!r}: fill ratio {ratio!r} is not a number") from None
            if not 0.0 <= fill < 1.0:
                raise ProfileError(f"object class {spec!r}: fill ratio must be in [0, 1)")
            return ObjectClass(name.replace(" ", "_"), lab.id, (64, 64), fill, (ADE_FLOOR,), ADE_ADDITION_HEIGHTS)
    raise ProfileError(f"{name!r} is not an ADE20K class with Places instances (e.g. bed, chair, cabinet, painting)")


def ade20k_room_profile(objects: Optional[Tuple[str, ...]] = None) -> DatasetProfile:
    """ADE20K-Room: SceneParse150 labels 0..150 kept as they are (0 "other" is its own class).

    ``objects`` replaces our default object list (names, optionally ``name:fill_ratio``); the class
    codes follow its order. Label ids above 65 do not fit the 16-bit instance encoding.
    """
    rows = _read_json("ade20k_room", "classes150.json")["classes"]
    labels = tuple(
        LabelClass(r["id"], r["name"], tuple(r["rgb"]), r["instance100_id"] is not None, None, r["instance100_id"])
        for r in rows
    )
    specs = objects if objects is not None else tuple(f"{n}:{r}" for n, _, r in ADE_ROOM_OBJECTS)
    if not specs:
        raise ProfileError("ADE20K-Room needs at least one object class")
    objects = tuple(_ade_object(labels, spec) for spec in specs)
    crops = {o.label_id: o.crop_size for o in objects}
    with_instances = tuple(lab.id for lab in labels if lab.has_instances)
    return DatasetProfile(
        name="ade20k-room",
        title="ADE20K-Room (bedroom, hotel room, living room of ADEChallengeData2016)",
        labels=labels,
        lab_dim=151,
        unlabeled_id=0,
        unlabeled_to=None,
        objects=objects,
        background_classes=tuple(lab.id for lab in labels if lab.id != 0 and not lab.has_instances),
        style_skipped_classes=with_instances,
        instance_factor=1000,
        instance_classes=tuple(o.label_id for o in objects),
        max_instance_index=255,
        loaders={
            "background": LoaderRules(0.4, 50, 2, 255, {}, dict(crops)),
            "fusion": LoaderRules(0.0, 180, 2, None, {}, dict(crops)),
        },
        preparation=Preparation(
            size=None,
            short_side=256,
            max_long_side=384,
            test_size=256,
            test_crop="centre",
            box_margin=2,
            min_short_side=8,
            scenes=ADE_ROOM_SCENES,
        ),
        brush_label=ADE_FLOOR,
        notes={
            "objects": "our choice: the core room furniture set (the paper does not publish SIEDOB's ADE classes)",
            "unlabeled": "0 ('other') stays class 0; mapping it to lab_dim - 1 would merge it into flag (150)",
            "instances": "only object classes get class*1000+k (k = the Places instance id G); "
            "other pixels hold their label id, like Cityscapes' stuff",
        },
    )


_BUILDERS = {"cityscapes": _cityscapes, "ade20k-room": ade20k_room_profile}
#: Profile names accepted by :func:`get_profile` (and by ``data.profile``).
PROFILE_NAMES: Tuple[str, ...] = tuple(sorted(_BUILDERS))


#: The profile everything defaults to: the authors' released setting.
DEFAULT_PROFILE = "cityscapes"

ProfileLike = Union[str, DatasetProfile, None]


def as_profile(profile: ProfileLike) -> DatasetProfile:
    """A profile from a name, a profile, or None (the default, Cityscapes)."""
    if isinstance(profile, DatasetProfile):
        return profile
    return get_profile(DEFAULT_PROFILE if profile is None else profile)


@cache
def get_profile(name: str) -> DatasetProfile:
    """The profile called ``name`` (``cityscapes`` or ``ade20k-room``); anything else is a one-line error."""
    if name not in _BUILDERS:
        raise ProfileError(f"unknown dataset profile {name!r} (known: {', '.join(PROFILE_NAMES)})")
    return _BUILDERS[name]()
