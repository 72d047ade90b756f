"""No stage's training step waits for the device, and logging reads losses only every ``print_every`` steps.

Each trainer runs one step on the meta device, where every data-dependent read of a device value
(``.item()``, ``.tolist()``, ``.cpu()``, ``bool(t)``, ``nonzero``, boolean indexing) raises; the loader's
host batch goes up with non-blocking copies only. On a GPU the host therefore runs ahead of the kernels.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch.utils.data import default_collate

from siedob.checkpoints import RELEASED, save_released
from siedob.config import load_stage_config
from siedob.data.datasets import collate_scenes
from siedob.nn import BackgroundGenerator, ObjectInpaintingGenerator, ObjectStyleGenerator
from siedob.stages import STAGES
from siedob.train.distributed import DistContext
from siedob.train.logging import TrainLogger
from siedob.train.run import build_dataset
from tests.support.no_wait import BlockingCopies
from tests.support.train import make_data, overrides, tiny_vgg

STAGE_NAMES = list(STAGES)
META = torch.device("meta")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_data(tmp_path_factory.mktemp("no_wait_data"))


@pytest.fixture(scope="module")
def submodels(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("no_wait_submodels")
    for role, net in (
        ("object_inpainting", ObjectInpaintingGenerator(4)),
        ("object_style", ObjectStyleGenerator(4)),
        ("background", BackgroundGenerator(4)),
    ):
        save_released(net, folder / RELEASED[role].filename, role)
    return folder


def _batch(stage: str, cfg, data: Path):
    ds, _ = build_dataset(stage, cfg, data)
    torch.manual_seed(0)
    items = [ds[i] for i in range(2)]
    return collate_scenes(items) if stage in ("background", "fusion") else default_collate(items)


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_training_step_never_reads_the_device(stage, data, submodels):
    cfg = load_stage_config(stage, overrides=overrides(stage))
    kwargs = {"submodels": submodels, "data_root": data} if stage == "fusion" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = STAGES[stage].trainer_class()(cfg, ctx=DistContext(device=META), vgg=tiny_vgg(), **kwargs)
    batch = _batch(stage, cfg, data)
    with BlockingCopies() as mode:
        losses = trainer.train_step(batch)
    assert mode.found == []
    assert {"G_total", *(f"{d}_total" for d in trainer.d_names)} <= set(losses)
    assert all(v.device.type == "meta" for v in losses.values())
    for name, net in trainer.nets.items():
        opt = trainer.optimizers["optimizer_" + name[3:]]
        assert opt.state, f"{name} did not step"
        assert all(p.device.type == "meta" for p in net.parameters())


def test_logger_reads_losses_once_per_print_interval(tmp_path):
    logger = TrainLogger(tmp_path, 10, start_step=1, print_every=4, tensorboard=False, progress=False)
    with BlockingCopies() as mode:
        for step in (2, 3):
            logger.step(step, 0, {"G_total": torch.tensor(float(step))}, 2e-4)
        assert mode.reads == []
        logger.step(4, 0, {"G_total": torch.tensor(4.0)}, 2e-4)
        assert mode.reads == ["tolist"]
    logger.close()
    assert [row["G_total"] for row in logger.history] == [2.0, 3.0, 4.0]
