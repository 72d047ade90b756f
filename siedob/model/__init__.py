"""The model layer: the docs/spec.md §6 composition for a batch of scenes, shared by editing and fusion training."""

from siedob.model.chain import Chain, ChainOutput, EditStages, ObjectResult, SceneBatch
from siedob.model.networks import fold_spectral_norm, load_network, power_iterations, spectral_norm_hooks
from siedob.model.paste import PASTE_CLASSES, paste_objects
from siedob.model.plan import MissingStyleError, ObjectPlan, plan_objects

__all__ = [
    "PASTE_CLASSES",
    "Chain",
    "ChainOutput",
    "EditStages",
    "MissingStyleError",
    "ObjectPlan",
    "ObjectResult",
    "SceneBatch",
    "fold_spectral_norm",
    "load_network",
    "paste_objects",
    "plan_objects",
    "power_iterations",
    "spectral_norm_hooks",
]
