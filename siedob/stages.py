"""The one stage table: stage → network role → trainer → generator → released file → packaged config.

Everything that iterates the four stages (training CLI, quickstart, checkpoint checks, tests) reads
this table. Classes are named by import path and resolved on demand, so importing the table is cheap
and pulls in neither the networks nor the trainers.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Dict


@dataclass(frozen=True)
class Stage:
    """One training stage of SIEDOB (docs/spec.md §4)."""

    name: str  # command-line name and stage-folder name
    number: int  # training order (the fusion stage needs stages 1-3 exported first)
    role: str  # network role: key of siedob.checkpoints.RELEASED
    trainer: str  # "module:Class" of the stage's trainer
    generator: str  # "module:Class" of the generator the released file holds
    released: str  # file name of the authors' released generator
    config: str  # packaged config resource in siedob/configs/

    def trainer_class(self) -> Any:
        """The trainer class (imports siedob.train)."""
        return _resolve(self.trainer)

    def generator_class(self) -> Any:
        """The generator class (imports siedob.nn)."""
        return _resolve(self.generator)


def _resolve(path: str) -> Any:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


#: The four stages, in training order.
STAGES: Dict[str, Stage] = {
    s.name: s
    for s in (
        Stage(
            "instance_inpainting",
            1,
            "object_inpainting",
            "siedob.train.stages:ObjectInpaintingTrainer",
            "siedob.nn.generators:ObjectInpaintingGenerator",
            "object_inpainting.pth",
            "instance_inpainting.yaml",
        ),
        Stage(
            "instance_style",
            2,
            "object_style",
            "siedob.train.stages:ObjectStyleTrainer",
            "siedob.nn.generators:ObjectStyleGenerator",
            "object_style.pth",
            "instance_style.yaml",
        ),
        Stage(
            "background",
            3,
            "background",
            "siedob.train.stages:BackgroundTrainer",
            "siedob.nn.generators:BackgroundGenerator",
            "bg.pth",
            "background.yaml",
        ),
        Stage(
            "fusion",
            4,
            "fusion",
            "siedob.train.stages:FusionTrainer",
            "siedob.nn.generators:FusionGenerator",
            "Fnet.pth",
            "fusion.yaml",
        ),
    )
}

#: Stage by network role.
STAGE_OF_ROLE: Dict[str, Stage] = {s.role: s for s in STAGES.values()}
