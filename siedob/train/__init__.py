"""Training of the four SIEDOB stages (docs/spec.md §4): losses, the base trainer, stage trainers, checkpoints, CLI.

Quick use: ``from siedob.train import train_stage`` then
``train_stage("instance_inpainting", "runs/oi", data_root=..., max_steps=50, overrides=["model.ngf=8"])``.
"""

from siedob.train.losses import VGGLoss, hinge_d_loss, hinge_g_loss, style_cycle_loss
from siedob.train.run import TrainResult, build_dataset, build_trainer, train_stage
from siedob.train.stages import (
    BackgroundTrainer,
    FusionTrainer,
    ObjectInpaintingTrainer,
    ObjectStyleTrainer,
)
from siedob.train.trainer import NonFiniteLossError, Trainer
from siedob.train.vgg import VGG19Features, load_vgg19

__all__ = [
    "BackgroundTrainer",
    "FusionTrainer",
    "NonFiniteLossError",
    "ObjectInpaintingTrainer",
    "ObjectStyleTrainer",
    "TrainResult",
    "Trainer",
    "VGG19Features",
    "VGGLoss",
    "build_dataset",
    "build_trainer",
    "hinge_d_loss",
    "hinge_g_loss",
    "load_vgg19",
    "style_cycle_loss",
    "train_stage",
]
