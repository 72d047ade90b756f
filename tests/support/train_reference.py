"""One training step of our trainers on a recorded authors' step (``$SIEDOB_REFERENCE_DIR/train_steps``).

:func:`reference_step` builds the stage trainer, fills every network with the reference ``detweights``
(as the recording did), maps the authors' batch to ours, replays the recorded random draws and runs one
``train_step``. :func:`compare_step` measures every loss, gradient, Adam moment, updated weight and
spectral-norm vector against the recording, returning the worst ratio to the README's suggested tolerance.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import pytest
import torch
from torch import nn

from siedob.checkpoints import RELEASED, save_released
from siedob.config import load_stage_config
from siedob.nn import BackgroundGenerator, ObjectInpaintingGenerator, ObjectStyleGenerator
from siedob.stages import STAGES
from siedob.train.authors_batch import from_authors_batch, patch_boxes_from_draws
from siedob.train.trainer import Trainer, optimizer_name
from siedob.train.vgg import VGG19Features

#: Our loss-part name of each of the authors' loss terms, per stage.
LOSS_NAMES: Dict[str, Dict[str, str]] = {
    "instance_inpainting": {
        "loss_D_inp_fake": "D_inp_fake",
        "loss_D_inp_real": "D_inp_real",
        "L1": "G_l1",
        "G_GAN_inp": "G_gan",
        "VGG_inp": "G_vgg",
    },
    "instance_style": {
        "loss_D_fake": "D_style_fake",
        "loss_D_real": "D_style_real",
        "L1": "G_l1",
        "G_GAN": "G_gan",
        "VGG": "G_vgg",
        "style_cycle": "G_cycle",
    },
    "background": {
        "loss_D_fake_BG": "D_BG_fake",
        "loss_D_real_BG": "D_BG_real",
        "loss_Dpatch_fake": "D_patch_fake",
        "loss_Dpatch_real": "D_patch_real",
        "L1_bg": "G_l1",
        "G_GAN_bg": "G_gan",
        "G_GAN_Dpatch": "G_patch",
        "VGG_bg": "G_vgg",
    },
    "fusion": {"loss_D_fake_F": "D_F_fake", "loss_D_real_F": "D_F_real", "G_GAN_F": "G_gan", "VGG_bg": "G_vgg"},
}
#: The generator inside the authors' ``netG`` wrapper whose own keys the recording uses.
INNER = {"instance_inpainting": "fg_inpainting", "instance_style": "fg_style"}
LR = 2e-4


def train_steps_dir() -> Path:
    """``$SIEDOB_REFERENCE_DIR/train_steps``; skips when absent, fails instead under ``SIEDOB_REQUIRE_REFERENCE=1``."""
    value = os.environ.get("SIEDOB_REFERENCE_DIR")
    path = Path(value) / "train_steps" if value else None
    if path is None or not any(path.glob("*.pt")):
        reason = f"no recorded training steps ({path or 'SIEDOB_REFERENCE_DIR is not set'})"
        if os.environ.get("SIEDOB_REQUIRE_REFERENCE") == "1":
            pytest.fail(reason + " and SIEDOB_REQUIRE_REFERENCE=1")
        pytest.skip(reason)
    return path


def step_files() -> List[Optional[Path]]:
    """Every recorded step at collection time (``[None]`` when there are none, so the test says why)."""
    value = os.environ.get("SIEDOB_REFERENCE_DIR")
    files = sorted((Path(value) / "train_steps").glob("*.pt")) if value else []
    return list(files) or [None]


def load_detweights(reference_dir: Path):
    """The reference ``detweights`` module, imported by path (never copied into the repository)."""
    spec = importlib.util.spec_from_file_location("detweights", reference_dir / "detweights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fill(net: nn.Module, detweights, seed: int) -> None:
    net.load_state_dict(detweights.fill(net.state_dict(), seed=seed), strict=True)


def filled_vgg(detweights, seed: int) -> VGG19Features:
    """Full-width VGG19 ``features`` (layers 0–29) filled on torchvision's key names."""
    vgg = VGG19Features()
    _fill(vgg, detweights, seed)
    return vgg.eval().requires_grad_(False)


def _write_frozen_chain(folder: Path, detweights, seed: int) -> None:
    """The released files F's trainer loads, each network filled on its own keys (as the recording did)."""
    for role, make in (
        ("object_inpainting", ObjectInpaintingGenerator),
        ("object_style", ObjectStyleGenerator),
        ("background", BackgroundGenerator),
    ):
        net = make()
        _fill(net, detweights, seed)
        save_released(net, folder / RELEASED[role].filename, role)


@dataclass
class Step:
    """A recorded step and ours on the same inputs."""

    stage: str
    record: Dict[str, Any]
    trainer: Trainer
    losses: Dict[str, float]
    modules: Dict[str, nn.Module]
    before: Worst


def reference_step(path: Path, tmp: Path, overrides: Sequence[str] = ()) -> Step:
    """Our one training step on recording ``path`` (weights, batch and draws as recorded)."""
    record = torch.load(path, weights_only=True)
    meta = record["meta"]
    stage = meta["stage"]
    detweights = load_detweights(path.parent.parent)
    cfg = load_stage_config(stage, overrides=list(overrides))
    kwargs: Dict[str, Any] = {}
    if stage == "fusion":
        _write_frozen_chain(tmp, detweights, int(meta["weights_seed"]))
        kwargs["submodels"] = tmp
    trainer = STAGES[stage].trainer_class()(cfg, vgg=filled_vgg(detweights, int(meta["vgg_seed"])), **kwargs)
    modules = {
        name: getattr(net, INNER[stage]) if name == trainer.g_name and stage in INNER else net
        for name, net in trainer.nets.items()
    }
    for net in modules.values():
        _fill(net, detweights, int(meta["weights_seed"]))
    before = state_before_error(modules, record["nets"])
    batch = from_authors_batch(stage, _full_batch(record))
    if stage == "background":
        batch["patch_boxes"] = patch_boxes_from_draws(record["random_draws"]["patches"], batch["image"].shape[0])
    if stage == "fusion":
        batch["masked_G"] = record["intermediates"]["masked_G"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logs = trainer.train_step(batch)
    losses = {k: float(v) for k, v in logs.items()}
    return Step(stage, record, trainer, losses, modules, before)


def _full_batch(record: Mapping[str, Any]) -> Dict[str, Any]:
    """The loader's batch, compact crop stacks padded back to their full shape."""
    batch = dict(record["batch"])
    for key, comp in record.get("batch_compact", {}).items():
        stored = batch[key]
        full = torch.zeros(comp["full_shape"], dtype=stored.dtype)
        full[:, : int(comp["stored_rows"])] = stored
        batch[key] = full
    return batch


# ------------------------------------------------------------------------------------------------ comparison


@dataclass
class Tolerance:
    """The README's suggested checks (a few times the recorded thread-count noise)."""

    loss_rel: float = 1e-4
    loss_abs: float = 1e-6
    entry_rel: float = 1e-2  # gradients and Adam moments, per entry, of the tensor's max |x|
    sum_rel: float = 1e-3  # their sum / abs_sum, of abs_sum
    weight_abs: float = 1e-6  # updated weights where the reference |g| > 1e-3·max|g|
    uv_abs: float = 1e-4


def tolerance(stage: str) -> Tolerance:
    """G_OG's SPADE blocks are the noisiest: per-entry 2e-2 there (README)."""
    return Tolerance(entry_rel=2e-2) if stage == "instance_style" else Tolerance()


def _entries(summary: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """(flat indices, values) of a tensor summary: every entry when stored in full, else the samples."""
    if "full" in summary:
        full = torch.as_tensor(summary["full"]).flatten().double()
        return torch.arange(full.numel()), full
    return torch.as_tensor(summary["idx"]).long(), torch.as_tensor(summary["sample"]).double()


@dataclass
class Worst:
    """Largest difference ÷ allowed difference seen per check, and the largest raw differences."""

    ratio: Dict[str, float] = field(default_factory=dict)
    raw: Dict[str, float] = field(default_factory=dict)
    where: Dict[str, str] = field(default_factory=dict)

    def add(self, check: str, diff: float, allowed: float, where: str) -> None:
        r = diff / allowed if allowed > 0 else (0.0 if diff == 0 else float("inf"))
        if r >= self.ratio.get(check, -1.0):
            self.ratio[check], self.where[check] = r, where
        self.raw[check] = max(self.raw.get(check, 0.0), diff)


def _check_summary(
    worst: Worst, check: str, got: torch.Tensor, ref: Mapping[str, Any], entry_rel: float, sum_rel: float, where: str
) -> None:
    got = got.detach().double().flatten()
    assert got.numel() == int(ref["numel"]), f"{where}: {got.numel()} entries, recorded {ref['numel']}"
    idx, want = _entries(ref)
    scale = float(ref["max_abs"])
    worst.add(check, float((got[idx] - want).abs().max()), entry_rel * scale, where)
    abs_sum = float(ref["abs_sum"])
    worst.add(check + " sum", abs(float(got.sum()) - float(ref["sum"])), sum_rel * abs_sum, where)
    worst.add(check + " abs_sum", abs(float(got.abs().sum()) - abs_sum), sum_rel * abs_sum, where)


def compare_step(step: Step) -> Worst:
    """Every recorded quantity of the step against ours; ``Worst.ratio`` ≤ 1 means within tolerance."""
    rec, tol, worst = step.record, tolerance(step.stage), Worst()
    names = LOSS_NAMES[step.stage]
    assert set(rec["losses"]) == set(names), f"recorded loss terms {sorted(rec['losses'])}"
    for theirs, ours in names.items():
        want = float(rec["losses"][theirs]["weighted"])
        worst.add("loss", abs(step.losses[ours] - want), max(tol.loss_rel * abs(want), tol.loss_abs), theirs)
    for total in rec["totals"].values():
        net = total["backpropagated_into"]
        ours = "G_total" if net == step.trainer.g_name else f"{net}_total"
        want = float(total["value"])
        worst.add("loss", abs(step.losses[ours] - want), max(tol.loss_rel * abs(want), tol.loss_abs), ours)
    for name, net_rec in rec["nets"].items():
        module = step.modules[name]
        opt = step.trainer.optimizers[optimizer_name(name)]
        params = dict(module.named_parameters())
        skip = set(net_rec["zero_true_grad_params"])
        assert set(net_rec["param_order"]) == set(params), f"{name}: parameter names differ"
        for key, p in params.items():
            if key in skip:
                continue
            where = f"{name}.{key}"
            assert p.grad is not None, f"{where}: no gradient"
            _check_summary(worst, "grad", p.grad, net_rec["grad"][key], tol.entry_rel, tol.sum_rel, where)
            state = opt.state[p]
            assert {int(v) for v in net_rec["adam_step"]} == {int(state["step"])}, f"{where}: Adam step count"
            _check_summary(
                worst, "exp_avg", state["exp_avg"], net_rec["adam_exp_avg"][key], tol.entry_rel, tol.sum_rel, where
            )
            _check_summary(
                worst,
                "exp_avg_sq",
                state["exp_avg_sq"],
                net_rec["adam_exp_avg_sq"][key],
                tol.entry_rel,
                tol.sum_rel,
                where,
            )
        state = module.state_dict()
        assert set(state) == set(net_rec["state_after"]), f"{name}: state-dict keys differ"
        for key, ref in net_rec["state_after"].items():
            if key in skip:
                continue
            where = f"{name}.{key}"
            idx, want = _entries(ref)
            got = state[key].detach().double().flatten()[idx]
            diff = (got - want).abs()
            if key in params:
                gidx, g = _entries(net_rec["grad"][key])
                assert torch.equal(gidx, idx)
                big = g.abs() > 1e-3 * float(net_rec["grad"][key]["max_abs"])
                worst.add("weight", float(diff[big].max()) if big.any() else 0.0, tol.weight_abs, where)
                worst.add(
                    "weight (tiny grad)",
                    float(diff[~big].max()) if (~big).any() else 0.0,
                    2 * LR + tol.weight_abs,
                    where,
                )
            else:
                worst.add("buffer", float(diff.max()) if diff.numel() else 0.0, tol.uv_abs, where)
        for key, want in net_rec["sn_uv_after"].items():
            worst.add("sn u/v", float((state[key].double() - want.double()).abs().max()), tol.uv_abs, f"{name}.{key}")
    return worst


def state_before_error(modules: Mapping[str, nn.Module], nets: Mapping[str, Any]) -> Worst:
    """Our filled weights against every recorded ``state_before`` summary (samples exact; sums to float64 noise)."""
    worst = Worst()
    for name, module in modules.items():
        state = module.state_dict()
        assert set(state) == set(nets[name]["state_before"]), f"{name}: state-dict keys differ from the recording"
        for key, ref in nets[name]["state_before"].items():
            got = state[key].detach().double().flatten()
            idx, want = _entries(ref)
            worst.add(
                "state_before", float((got[idx] - want).abs().max()) if idx.numel() else 0.0, 0.0, name + "." + key
            )
            worst.add(
                "state_before sum",
                abs(float(got.sum()) - float(ref["sum"])),
                1e-9 * (1 + float(ref["abs_sum"])),
                name + "." + key,
            )
    return worst
