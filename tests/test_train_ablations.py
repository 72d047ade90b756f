"""The paper's ablations as config switches: each changes only what it names, and trains to a released file.

At their defaults (the packaged configs, which the conformance test runs) the step is the authors'
step. Switched off, a step on the same weights and batch keeps every term the switch does not name
(bit for bit where the computation is the same), and a few steps train and write the released file,
which loads into the standard generator.
"""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import pytest
import torch
from torch.utils.data import default_collate

from siedob.checkpoints import OPTIONS_ENTRY, load_released, load_released_network
from siedob.config import load_stage_config
from siedob.data.datasets import collate_scenes
from siedob.nn import BackgroundGenerator, ObjectStyleGenerator
from siedob.stages import STAGES
from siedob.train import train_stage
from siedob.train.run import build_dataset
from tests.support.train import make_data, overrides, tiny_vgg

#: switch → (stage, value when off, the standard generator of the released file)
SWITCHES = {
    "style_propagation": ("background", "false", lambda: BackgroundGenerator(4)),
    "patch_discriminator": ("background", "false", lambda: BackgroundGenerator(4)),
    "style_cycle_loss": ("instance_style", "false", lambda: ObjectStyleGenerator(4)),
    "style_source": ("instance_style", "noise", lambda: ObjectStyleGenerator(4)),
}
DEFAULTS = {"style_propagation": True, "patch_discriminator": True, "style_cycle_loss": True, "style_source": "bank"}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_data(tmp_path_factory.mktemp("ablation_data"))


@pytest.fixture(scope="module")
def vgg():
    return tiny_vgg()


def test_switches_default_to_the_full_model():
    for switch, (stage, _, _) in SWITCHES.items():
        assert load_stage_config(stage)["train"][switch] == DEFAULTS[switch]


def _pair(stage: str, data: Path, vgg, switch: str):
    """One step of the full model and one of the ablation from the same weights on the same batch."""
    cfg = load_stage_config(stage, overrides=overrides(stage))
    ds, _ = build_dataset(stage, cfg, data)
    torch.manual_seed(1)
    items = [ds[i] for i in range(2)]
    batch = collate_scenes(items) if stage == "background" else default_collate(items)
    torch.manual_seed(0)
    full = STAGES[stage].trainer_class()(cfg, vgg=vgg)
    ablated = STAGES[stage].trainer_class()(load_stage_config(stage, overrides=overrides(stage, switch)), vgg=vgg)
    for name, net in ablated.nets.items():
        net.load_state_dict(full.nets[name].state_dict())
    out = []
    for trainer in (full, ablated):
        random.seed(0)
        torch.manual_seed(2)
        out += [trainer, trainer.train_step(batch)]
    return out


def _same(a, b, keys):
    for k in keys:
        assert torch.equal(a[k], b[k]), f"{k}: {float(a[k])} vs {float(b[k])}"


def test_without_patch_discriminator_only_the_patch_terms_go(data, vgg):
    full, base, ablated, off = _pair("background", data, vgg, "train.patch_discriminator=false")
    assert "netD_patch" in full.nets and "netD_patch" not in ablated.nets
    assert set(base) - set(off) == {"D_patch_fake", "D_patch_real", "netD_patch_total", "G_patch"}
    _same(base, off, ["D_BG_fake", "D_BG_real", "G_l1", "G_gan", "G_vgg"])
    assert torch.allclose(off["G_total"], off["G_l1"] + off["G_gan"] + off["G_vgg"])


def test_without_style_propagation_same_parameters_other_output(data, vgg):
    full, base, ablated, off = _pair("background", data, vgg, "train.style_propagation=false")
    assert full.generator.state_dict().keys() == ablated.generator.state_dict().keys()
    assert set(base) == set(off)
    assert not torch.equal(base["G_l1"], off["G_l1"])
    assert all(p.grad is None for p in ablated.generator.style1.conv.parameters())  # the code branch is unused


def test_without_style_cycle_loss_only_the_cycle_term_goes(data, vgg):
    _, base, _, off = _pair("instance_style", data, vgg, "train.style_cycle_loss=false")
    assert set(base) - set(off) == {"G_cycle"}
    _same(base, off, ["D_style_fake", "D_style_real", "G_l1", "G_gan", "G_vgg"])
    assert torch.allclose(off["G_total"], off["G_l1"] + off["G_gan"] + off["G_vgg"])


def test_noise_style_source_keeps_the_reconstruction(data, vgg):
    _, base, _, off = _pair("instance_style", data, vgg, "train.style_source=noise")
    assert set(base) == set(off)
    assert torch.allclose(base["G_l1"], off["G_l1"], rtol=1e-5)  # the reconstruction pass is unchanged
    assert not torch.allclose(base["G_gan"], off["G_gan"], rtol=1e-5)  # the transfer pass is not


@pytest.mark.parametrize("switch", list(SWITCHES))
def test_ablation_trains_and_writes_its_released_file(switch, data, vgg, tmp_path):
    stage, value, make = SWITCHES[switch]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = train_stage(
            stage,
            tmp_path / switch,
            data_root=data,
            overrides=overrides(stage, f"train.{switch}={value}"),
            max_steps=2,
            device="cpu",
            vgg=vgg,
            progress=False,
        )
    assert res.step == 2 and all(torch.isfinite(torch.tensor(list(h.values()))).all() for h in res.history)
    role = "object_style" if stage == "instance_style" else stage
    net = load_released(make(), res.released, role)
    assert sum(p.abs().sum() for p in net.parameters()) > 0
    # the file says how G_B was built, and loads back that way (the other switches leave the network as it is)
    recorded = torch.load(res.released, weights_only=True).get(OPTIONS_ENTRY)
    expected = {"style_propagation": {"style_propagation": False}, "style_source": {"style_source": "noise"}}
    assert recorded == expected.get(switch)
    loaded = load_released_network(res.released, role)
    if stage == "background":
        propagate = [m.propagate for m in (loaded.style1, loaded.style2, loaded.style3)]
        assert propagate == [switch != "style_propagation"] * 3
    else:
        assert loaded.style_source == ("noise" if switch == "style_source" else "bank")
