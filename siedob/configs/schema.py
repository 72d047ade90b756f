"""Typed schema of every config: one dataclass per section, with every default in one place.

A field without a default must be given by the YAML file; fields with defaults (the ablation switches,
the run options) may be left out. Unknown keys are errors, so a key here is a key some code reads.
``metadata`` may hold ``min`` (smallest allowed number), ``pattern`` (regular expression for a string) and
``default`` (a default for a field that subclasses follow with required fields).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional, Tuple

#: An object class name of the config's dataset profile (``car``, ``person`` for Cityscapes; checked against the
#: profile after the schema, see :func:`siedob.config.check_profile_fields`).
ObjectClass = str
#: Pattern of ``data.profile``: the names of :data:`siedob.profiles.PROFILE_NAMES`.
PROFILE_PATTERN = r"cityscapes|ade20k-room"


def _profile_field() -> Any:
    """``data.profile``: the dataset profile (docs/datasets.md), Cityscapes when absent.

    The default sits in the metadata (``default``) because subclasses add required fields after it.
    """
    return field(metadata={"pattern": PROFILE_PATTERN, "default": "cityscapes"})


def _min(value: int) -> dict:
    return {"min": value}


@dataclass
class Brush:
    """Free-form brush strokes (docs/spec.md §5): vertex count and stroke width ranges."""

    min_vertex: int = field(metadata=_min(1))
    max_vertex: int = field(metadata=_min(1))
    min_width: int = field(metadata=_min(1))
    max_width: int = field(metadata=_min(1))


# ---- model ----------------------------------------------------------------------------------------------------


@dataclass
class ObjectModel:
    """Generator and discriminator widths, initialisation (docs/spec.md §3.6)."""

    ngf: int = field(metadata=_min(1))
    ndf: int = field(metadata=_min(1))
    init: Literal["default", "normal"]


@dataclass
class SceneModel(ObjectModel):
    """Scene networks also take the one-hot label map."""

    lab_dim: int = field(metadata=_min(2))


@dataclass
class FusionModel(SceneModel):
    """The fusion stage runs its frozen sub-networks in train mode like the authors (docs/spec.md §8)."""

    submodels_train_mode: bool


# ---- data -----------------------------------------------------------------------------------------------------


@dataclass
class ObjectData:
    """Object-crop loaders (stages 1 and 2)."""

    root: str
    profile: str = _profile_field()
    classes: List[ObjectClass]
    crop_size: int = field(metadata=_min(16))
    load_size: int = field(metadata=_min(16))
    repeat: int = field(metadata=_min(1))
    max_per_class: int = field(metadata=_min(1))
    cache_crops: bool
    cache_limit_mb: float = field(metadata=_min(0))


@dataclass
class InpaintingData(ObjectData):
    """G_OI's loader also draws the object masks."""

    brush: Brush
    side_fraction: Tuple[float, float]


@dataclass
class SceneData:
    """Scene loaders (stages 3 and 4): crops, training masks and the disassembly rules (docs/spec.md §5.3)."""

    root: str
    profile: str = _profile_field()
    crop_size: int = field(metadata=_min(16))
    brush: Brush
    box_size: int = field(metadata=_min(1))
    instance_box_prob: float = field(metadata=_min(0))
    instance_box_min_area: int = field(metadata=_min(0))
    instance_box_margin: int = field(metadata=_min(0))
    max_num: int = field(metadata=_min(0))
    inside_fraction: float = field(metadata=_min(0))
    person_aspect: Optional[Tuple[float, float]]
    object_order: List[ObjectClass]
    fill_ratio: Dict[ObjectClass, float]
    box_margin: int = field(metadata=_min(0))
    object_size: Dict[ObjectClass, Tuple[int, int]]


@dataclass
class BackgroundData(SceneData):
    """G_B's loader clamps both box ends (training only)."""

    clamp_box_at: int = field(metadata=_min(0))


@dataclass
class FusionData(SceneData):
    """F's training draws style references per class."""

    styles_per_class: int = field(metadata=_min(1))


# ---- train ----------------------------------------------------------------------------------------------------


@dataclass
class TrainBase:
    """Optimiser, schedule, loader and the losses every stage has."""

    batch_size: int = field(metadata=_min(1))
    epochs: int = field(metadata=_min(1))
    lr: float = field(metadata=_min(0))
    beta1: float = field(metadata=_min(0))
    beta2: float = field(metadata=_min(0))
    lr_decay: bool
    lr_decay_start: int = field(metadata=_min(0))
    seed: int
    vgg_width_divisor: int = field(metadata=_min(1))
    num_workers: int = field(metadata=_min(0))
    lambda_gan: float
    lambda_vgg: float


@dataclass
class InpaintingTrain(TrainBase):
    lambda_l1: float


@dataclass
class StyleTrain(TrainBase):
    lambda_l1: float
    lambda_cycle: float
    #: ablation: train without the style-cycle loss
    style_cycle_loss: bool = True
    #: ablation: style codes from the reference bank, or from noise
    style_source: Literal["bank", "noise"] = "bank"


@dataclass
class BackgroundTrain(TrainBase):
    lambda_l1: float
    lambda_patch: float
    patches_per_sample: int = field(metadata=_min(1))
    patch_size: Tuple[int, int]
    patch_resize: int = field(metadata=_min(1))
    #: ablation: G_B without its style-propagation module
    style_propagation: bool = True
    #: ablation: train without the boundary-patch discriminator
    patch_discriminator: bool = True


# ---- log and run ----------------------------------------------------------------------------------------------


@dataclass
class Log:
    """Progress lines, sample panels, checkpoints and periodic FID."""

    print_every: int = field(metadata=_min(1))
    sample_every: int = field(metadata=_min(0))
    save_every_steps: int = field(metadata=_min(0))
    save_every_epochs: int = field(metadata=_min(0))
    keep_last: int = field(metadata=_min(0))
    fid_every_epochs: int = field(metadata=_min(0))
    #: 0: every test image (the authors')
    fid_max_images: int = field(metadata=_min(0))


@dataclass
class Run:
    """How a run was started: the command-line options, recorded in the run's config.yaml."""

    device: str = field(default="auto", metadata={"pattern": r"auto|cpu|cuda(:[0-9]+)?"})
    amp: Literal["none", "bf16", "fp16"] = "none"
    channels_last: bool = False
    #: PATH, "torchvision" or "random"; None: the torch hub cache, then torchvision
    vgg_weights: Optional[str] = None
    #: fusion only: folder with the three released sub-network files
    submodels: Optional[str] = None
    max_steps: Optional[int] = field(default=None, metadata=_min(0))


# ---- whole stage configs --------------------------------------------------------------------------------------


@dataclass
class InpaintingConfig:
    stage: str
    model: ObjectModel
    data: InpaintingData
    train: InpaintingTrain
    log: Log
    run: Run = field(default_factory=Run)


@dataclass
class StyleConfig:
    stage: str
    model: ObjectModel
    data: ObjectData
    train: StyleTrain
    log: Log
    run: Run = field(default_factory=Run)


@dataclass
class BackgroundConfig:
    stage: str
    model: SceneModel
    data: BackgroundData
    train: BackgroundTrain
    log: Log
    run: Run = field(default_factory=Run)


@dataclass
class FusionConfig:
    stage: str
    model: FusionModel
    data: FusionData
    train: TrainBase
    log: Log
    run: Run = field(default_factory=Run)


#: Schema of each stage's config.
STAGE_SCHEMAS = {
    "instance_inpainting": InpaintingConfig,
    "instance_style": StyleConfig,
    "background": BackgroundConfig,
    "fusion": FusionConfig,
}


@dataclass(frozen=True)
class PrepareSettings:
    """How the prepared 512×256 layout is made (docs/spec.md §5.1): siedob-prepare-cityscapes and siedob-synthetic."""

    raw_size: Tuple[int, int]
    size: Tuple[int, int]
    test_size: int = field(metadata=_min(16))
    margin: int = field(metadata=_min(0))
    min_short_side: int = field(metadata=_min(1))
    fill_ratio: Dict[ObjectClass, float]
    object_size: Dict[ObjectClass, Tuple[int, int]]
    mask_seed: int
    scene_brush: Brush
    object_brush: Brush
    side_fraction: Tuple[float, float]
    object_mask_size: int = field(metadata=_min(16))
    jpeg_quality: int = field(metadata=_min(0))
