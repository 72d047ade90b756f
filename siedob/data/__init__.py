"""Data for SIEDOB: I/O, masks, scene disassembly, datasets, synthetic scenes and Cityscapes preparation.

Import the submodules directly (``siedob.data.disassembly``, ``siedob.data.datasets`` …); the
names below are the ones other packages use most.
"""

from __future__ import annotations

from siedob.data.disassembly import EDIT_RULES, Disassembly, Rules, SceneObject, disassemble, rules_from_config
from siedob.data.io import (
    DataError,
    image_to_tensor,
    read_bgr,
    read_instances,
    read_labels,
    read_test_mask,
    tensor_to_image,
    write_image,
)
from siedob.data.synthetic import Scene, make_scene

__all__ = [
    "EDIT_RULES",
    "DataError",
    "Disassembly",
    "Rules",
    "Scene",
    "SceneObject",
    "disassemble",
    "image_to_tensor",
    "make_scene",
    "read_bgr",
    "read_instances",
    "read_labels",
    "read_test_mask",
    "rules_from_config",
    "tensor_to_image",
    "write_image",
]
