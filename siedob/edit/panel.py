"""A side-by-side panel of an edit's stages: input, edited labels, mask, objects, background, composite, result."""

from __future__ import annotations

from typing import List

import cv2
import numpy as np

from siedob.data.io import tensor_to_image
from siedob.edit.chain import EditStages
from siedob.edit.inputs import Scene
from siedob.labels import colorize
from siedob.panels import titled_grid
from siedob.profiles import ProfileLike

#: Titles of the panel's tiles, left to right.
PANEL_TITLES = ("input", "labels", "mask", "objects", "background", "composite", "result")


def stage_tiles(scene: Scene, stages: EditStages, profile: ProfileLike = None) -> List[np.ndarray]:
    """The panel's tiles as BGR uint8 H×W×3 images, in :data:`PANEL_TITLES` order (labels in the profile's colours)."""
    labels = cv2.cvtColor(colorize(scene.labels, profile), cv2.COLOR_RGB2BGR)
    mask = (np.clip(scene.mask, 0, 1) * 255).astype(np.uint8)
    tiles = [scene.image, labels, cv2.cvtColor(mask, cv2.COLOR_GRAY2BGR)]
    tiles += [tensor_to_image(t) for t in (stages.fg_output, stages.bg_output, stages.masked_G, stages.result)]
    return tiles


def build_panel(scene: Scene, stages: EditStages, profile: ProfileLike = None) -> np.ndarray:
    """All tiles side by side, titled, with a white gap between them (BGR uint8)."""
    return titled_grid([stage_tiles(scene, stages, profile)], PANEL_TITLES)
