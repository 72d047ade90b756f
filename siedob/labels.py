"""The Cityscapes label table and the class groups SIEDOB treats as objects or background.

Numbers follow docs/spec.md §1: label ids 0..33, id 0 replaced by ``LAB_DIM - 1`` on load, persons (24)
and cars (26) handled as objects, ten background classes handled by G_B.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Tuple

import numpy as np

from siedob.profiles import ProfileLike, as_profile


class Label(NamedTuple):
    """One row of the official Cityscapes label table."""

    id: int
    name: str
    train_id: int
    has_instances: bool
    color: Tuple[int, int, int]


LABELS: Tuple[Label, ...] = (
    Label(0, "unlabeled", 255, False, (0, 0, 0)),
    Label(1, "ego vehicle", 255, False, (0, 0, 0)),
    Label(2, "rectification border", 255, False, (0, 0, 0)),
    Label(3, "out of roi", 255, False, (0, 0, 0)),
    Label(4, "static", 255, False, (0, 0, 0)),
    Label(5, "dynamic", 255, False, (111, 74, 0)),
    Label(6, "ground", 255, False, (81, 0, 81)),
    Label(7, "road", 0, False, (128, 64, 128)),
    Label(8, "sidewalk", 1, False, (244, 35, 232)),
    Label(9, "parking", 255, False, (250, 170, 160)),
    Label(10, "rail track", 255, False, (230, 150, 140)),
    Label(11, "building", 2, False, (70, 70, 70)),
    Label(12, "wall", 3, False, (102, 102, 156)),
    Label(13, "fence", 4, False, (190, 153, 153)),
    Label(14, "guard rail", 255, False, (180, 165, 180)),
    Label(15, "bridge", 255, False, (150, 100, 100)),
    Label(16, "tunnel", 255, False, (150, 120, 90)),
    Label(17, "pole", 5, False, (153, 153, 153)),
    Label(18, "polegroup", 255, False, (153, 153, 153)),
    Label(19, "traffic light", 6, False, (250, 170, 30)),
    Label(20, "traffic sign", 7, False, (220, 220, 0)),
    Label(21, "vegetation", 8, False, (107, 142, 35)),
    Label(22, "terrain", 9, False, (152, 251, 152)),
    Label(23, "sky", 10, False, (70, 130, 180)),
    Label(24, "person", 11, True, (220, 20, 60)),
    Label(25, "rider", 12, True, (255, 0, 0)),
    Label(26, "car", 13, True, (0, 0, 142)),
    Label(27, "truck", 14, True, (0, 0, 70)),
    Label(28, "bus", 15, True, (0, 60, 100)),
    Label(29, "caravan", 255, True, (0, 0, 90)),
    Label(30, "trailer", 255, True, (0, 0, 110)),
    Label(31, "train", 16, True, (0, 80, 100)),
    Label(32, "motorcycle", 17, True, (0, 0, 230)),
    Label(33, "bicycle", 18, True, (119, 11, 32)),
)

LABEL_BY_NAME: Dict[str, Label] = {lab.name: lab for lab in LABELS}

#: Number of channels of the one-hot segmap (ids 0..33; id 0 is remapped to 33).
LAB_DIM = 34
#: Instance ids are ``class_id * INSTANCE_FACTOR + k``; smaller values are plain class ids.
INSTANCE_FACTOR = 1000

PERSON = 24
CAR = 26
#: Object classes handled by G_OI / G_OG, with the 3-channel class code of docs/spec.md §1.
OBJECT_CLASSES: Dict[str, int] = {"car": CAR, "person": PERSON}
CLASS_CODES: Dict[int, Tuple[float, float, float]] = {CAR: (1.0, 0.0, 0.0), PERSON: (0.0, 1.0, 0.0)}
#: Background classes G_B synthesises (ground, road, sidewalk, parking, rail track, building,
#: wall, vegetation, terrain, sky).
BACKGROUND_CLASSES: Tuple[int, ...] = (6, 7, 8, 9, 10, 11, 12, 21, 22, 23)
#: Classes the style propagation skips when computing class codes [docs/spec.md §3.3, quirk — keep].
STYLE_SKIPPED_CLASSES: Tuple[int, ...] = tuple(range(24, 34))


def remap_unlabeled(labels: np.ndarray, lab_dim: int = LAB_DIM) -> np.ndarray:
    """Replace id 0 (unlabeled) by ``lab_dim - 1`` as the authors' loaders do."""
    out = labels.copy()
    out[out == 0] = lab_dim - 1
    return out


def palette(lab_dim: int = LAB_DIM) -> np.ndarray:
    """RGB colour per label id (uint8, ``lab_dim`` × 3), for colourised label panels."""
    pal = np.zeros((max(lab_dim, len(LABELS)), 3), dtype=np.uint8)
    for lab in LABELS:
        pal[lab.id] = lab.color
    return pal[:lab_dim]


def colorize(labels: np.ndarray, profile: ProfileLike = None) -> np.ndarray:
    """Colourise a label-id map (H × W) to an RGB uint8 image with the dataset's official colours."""
    pal = as_profile(profile).palette()
    return pal[np.clip(labels, 0, len(pal) - 1)]
