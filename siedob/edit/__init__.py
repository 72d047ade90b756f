"""SIEDOB's edit chain (docs/spec.md §6): the :class:`Editor`, its style bank and input validation."""

from siedob.edit.chain import Editor, EditStages, ObjectResult, load_network, paste_objects, resolve_device
from siedob.edit.evaluate import eval_generator
from siedob.edit.inputs import EditError, Scene, diff_mask, read_example_folder, read_scene
from siedob.edit.style_bank import STYLE_SLOTS, ClassBank, StyleBank, load_style_bank

__all__ = [
    "STYLE_SLOTS",
    "ClassBank",
    "EditError",
    "EditStages",
    "Editor",
    "ObjectResult",
    "Scene",
    "StyleBank",
    "diff_mask",
    "eval_generator",
    "load_network",
    "load_style_bank",
    "paste_objects",
    "read_example_folder",
    "read_scene",
    "resolve_device",
]
