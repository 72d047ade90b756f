"""Fusion training's frozen chain against the authors' recorded F step (``$SIEDOB_REFERENCE_DIR/train_steps``).

For every ``*.pt`` there whose stage is fusion: the sub-networks get ``detweights.fill(seed=0)`` on their
own keys and go through released files into our :class:`~siedob.train.stages.FusionTrainer`; the
authors' batch (``batch_compact`` crop stacks padded with zeros, pinned style references) becomes our
loader's batch; one :meth:`compose` in train mode must give their ``fg_output``, ``bg_output``,
``masked_G`` and object outputs, call the networks as ``frozen.calls_in_order`` says (G_B once, G_OI
once per inpainted object) and leave the frozen networks' spectral-norm u/v at ``sn_uv_after``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Dict, List

import pytest
import torch

from siedob.checkpoints import RELEASED, save_released
from siedob.config import load_stage_config
from siedob.data.disassembly import SceneObject
from siedob.data.style_bank import ClassBank, StyleBank
from siedob.labels import CAR, PERSON
from siedob.maps import edge_map
from siedob.nn import BackgroundGenerator, ObjectInpaintingGenerator, ObjectStyleGenerator
from siedob.train.stages import FusionTrainer
from tests.support.train import tiny_vgg

#: Forward outputs: a few times the authors' own run-to-run movement of the chain (3e-6, README).
OUTPUT_TOL = 2e-5
#: Spectral-norm u/v after the step (the README's suggested check).
SN_TOL = 1e-4
#: Our role → the authors' module name in ``frozen``.
FROZEN = {"object_inpainting": "fg_inpainting", "object_style": "fg_style", "background": "bg_G"}
CLASSES = {"car": CAR, "person": PERSON}


def _steps_dir() -> Path:
    value = os.environ.get("SIEDOB_REFERENCE_DIR")
    return Path(value) / "train_steps" if value else Path("/nonexistent")


def _fusion_files() -> List[Path]:
    """The fusion step files (stage read from each file's ``meta``)."""
    files = []
    for path in sorted(_steps_dir().glob("*.pt")):
        meta = torch.load(path, weights_only=True, map_location="cpu")["meta"]
        if meta.get("stage") == "fusion":
            files.append(path)
    return files


FILES = _fusion_files()


def test_the_fusion_step_files_are_there():
    """With the reference folder present, at least one fusion step must be checked (no silent skip)."""
    folder = _steps_dir()
    if not folder.is_dir():
        if os.environ.get("SIEDOB_REQUIRE_REFERENCE"):
            pytest.fail(f"{folder}: not found, and SIEDOB_REQUIRE_REFERENCE is set")
        pytest.skip(f"{folder}: not found (set SIEDOB_REFERENCE_DIR)")
    assert FILES, f"{folder}: no *.pt file whose meta.stage is fusion"


def _padded(ref: Dict, key: str) -> torch.Tensor:
    """A crop stack of the batch, padded with zeros to its full 180-slot shape (``batch_compact``)."""
    t = ref["batch"][key]
    compact = ref.get("batch_compact", {}).get(key)
    if compact is None:
        return t
    full = torch.zeros(compact["full_shape"], dtype=t.dtype)
    full[:, : compact["stored_rows"]] = t[:, : compact["stored_rows"]]
    return full


def _loader_batch(ref: Dict) -> Dict:
    """The authors' collated batch as our fusion loader's: scene tensors, kept objects, pinned style banks."""
    b = ref["batch"]
    n = b["img"].shape[0]
    batch = {
        "image": b["img"],
        "labels": b["lab"].long(),
        "instances": b["inst_map"].long(),
        "mask": b["mask"],
        "fg_mask": b["fg_mask"],
        "bg_mask": b["bg_mask"],
        "bg_mask_ori": b["bg_mask_ori"],
    }
    batch["edge"] = edge_map(batch["instances"]) * batch["mask"]
    objects: List[List[SceneObject]] = [[] for _ in range(n)]
    banks = []
    for i in range(n):
        for name, cls in CLASSES.items():
            crops = {
                k: _padded(ref, f"{name}_{k}")
                for k in ("gt_crop", "masked_img_crop", "lab_crop", "mask_crop", "ints_mask_crop")
            }
            boxes = b[f"{name}_inst_cors"][i]
            for k in range(crops["gt_crop"].shape[1]):
                objects[i].append(
                    SceneObject(
                        id=k,
                        cls=cls,
                        is_generation=False,
                        box=tuple(int(v) for v in boxes[k]),
                        inst_mask=torch.zeros(0),
                        image=crops["gt_crop"][i, k],
                        masked_image=crops["masked_img_crop"][i, k],
                        labels=crops["lab_crop"][i, k],
                        mask=crops["mask_crop"][i, k],
                        inst_crop=crops["ints_mask_crop"][i, k],
                    )
                )
        banks.append(
            StyleBank(
                {
                    cls: ClassBank(
                        b[f"{name}_sty_images"][i],
                        b[f"{name}_sty_inst_images"][i],
                        [f"{name} reference {j}" for j in range(b[f"{name}_sty_images"].shape[1])],
                    )
                    for name, cls in CLASSES.items()
                },
                "the recorded batch",
            )
        )
    batch["objects"] = objects
    batch["style_banks"] = banks
    return batch


def _trainer(ref: Dict, detweights, tmp: Path) -> FusionTrainer:
    """Our F trainer on released files holding the filled sub-networks."""
    nets = {
        "object_inpainting": ObjectInpaintingGenerator(),
        "object_style": ObjectStyleGenerator(),
        "background": BackgroundGenerator(),
    }
    for role, net in nets.items():
        net.load_state_dict(detweights.fill(net.state_dict(), seed=int(ref["meta"]["weights_seed"])), strict=True)
        save_released(net, tmp / RELEASED[role].filename, role)
    cfg = load_stage_config("fusion", overrides=["model.ngf=4", "model.ndf=4"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FusionTrainer(cfg, vgg=tiny_vgg(), submodels=tmp)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_frozen_chain_equals_the_authors_fusion_step(path, detweights, tmp_path):
    ref = torch.load(path, weights_only=True, map_location="cpu")
    trainer = _trainer(ref, detweights, tmp_path)
    frozen = ref["frozen"]
    for role, module in FROZEN.items():
        ours = trainer.frozen[role].state_dict()
        for key, value in frozen[module]["sn_uv_before"].items():
            assert torch.equal(ours[key], value), f"{module}.{key}: our filled u/v differ before the step"
    calls: Dict[str, List[int]] = {"fg_inpainting": [], "bg_G": []}
    handles = [
        trainer.frozen[role].register_forward_hook(lambda m, a, o, name=module: calls[name].append(a[0].shape[0]))
        for role, module in (("object_inpainting", "fg_inpainting"), ("background", "bg_G"))
    ]
    batch = _loader_batch(ref)
    try:
        out = trainer.compose(batch)
    finally:
        for h in handles:
            h.remove()
    inter = ref["intermediates"]
    for name in ("fg_output", "bg_output", "masked_G"):
        err = (getattr(out, name) - inter[name]).abs().max().item()
        assert err <= OUTPUT_TOL, f"{path.name}: {name} differs from the authors' by {err:.3g}"
    for name, cls in CLASSES.items():
        want = inter[f"{name}_output"][: int(inter[f"{name}_num"])]
        got = out.object_outputs[[i for i, o in enumerate(out.plan.objects) if o.cls == cls]]
        assert got.shape == want.shape, f"{name} objects: {tuple(got.shape)} vs the authors' {tuple(want.shape)}"
        if want.numel():
            err = (got - want).abs().max().item()
            assert err <= OUTPUT_TOL, f"{path.name}: {name} object outputs differ by {err:.3g}"
    authors = [c["net"] for c in frozen["calls_in_order"]]
    assert sum(calls["bg_G"]) == authors.count("bg_G") == len(calls["bg_G"]) == 1
    assert sum(calls["fg_inpainting"]) == authors.count("fg_inpainting")
    for role, module in FROZEN.items():
        ours = trainer.frozen[role].state_dict()
        for key, value in frozen[module]["sn_uv_after"].items():
            err = (ours[key] - value).abs().max().item()
            assert err <= SN_TOL, f"{path.name}: {module}.{key} after the step differs by {err:.3g}"
