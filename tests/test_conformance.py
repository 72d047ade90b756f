"""Conformance: our nine networks reproduce the authors' outputs under deterministic weights.

Weights come from the reference ``detweights.fill`` applied to each network's own state dict,
inputs are built as ``ref_networks.json`` describes, and every output must lie within 1e-4 of
the authors' (docs/spec.md, and the README of $SIEDOB_REFERENCE_DIR).
"""

from __future__ import annotations

import hashlib
import json
from typing import Callable, Dict, List, Tuple

import pytest
import torch
from torch import nn

from siedob.maps import edge_map, one_hot_labels
from siedob.nn import (
    BackgroundGenerator,
    FusionGenerator,
    ObjectInpaintingGenerator,
    ObjectStyleGenerator,
    build_discriminator,
)

TOL = 1e-4


def sha256_tensor(t: torch.Tensor) -> str:
    """The reference README's hash: dtype string + shape-tuple string + raw bytes."""
    t = t.detach().contiguous()
    return hashlib.sha256(str(t.dtype).encode() + str(tuple(t.shape)).encode() + t.numpy().tobytes()).hexdigest()


def _bg_args(i: Dict[str, torch.Tensor]) -> List[torch.Tensor]:
    segmap = one_hot_labels(i["lab"])
    x = torch.cat((i["masked_img"], torch.cat((segmap, i["edge_map"]), 1) * i["bg_mask"], i["mask"]), 1)
    return [x, segmap, i["mask"], i["bg_mask"]]


# name -> (network factory, build forward args from stored inputs, output names)
CASES: Dict[str, Tuple[Callable[[], nn.Module], Callable[[Dict[str, torch.Tensor]], List[torch.Tensor]], List[str]]] = {
    "fg_inpainting": (
        ObjectInpaintingGenerator,
        lambda i: [i["input"], i["inst_mask"], i["mask"], i["class_map"]],
        ["out"],
    ),
    "fg_style": (
        ObjectStyleGenerator,
        lambda i: [i["cls_map"], i["sty_img"], i["sty_cls_map"], i["inst_mask"]],
        ["x", "sty_code", "cycle_sc"],
    ),
    "bg_G": (BackgroundGenerator, _bg_args, ["out"]),
    "F_stage": (
        FusionGenerator,
        lambda i: [i["masked_G"], one_hot_labels(i["lab"]), i["mask"], i["edge_map"]],
        ["out"],
    ),
    "netD_inp": (lambda: build_discriminator("netD_inp"), lambda i: [i["x"]], ["out"]),
    "netD_style": (lambda: build_discriminator("netD_style"), lambda i: [i["x"]], ["out"]),
    "netD_BG": (
        lambda: build_discriminator("netD_BG"),
        lambda i: [torch.cat((one_hot_labels(i["lab"]), i["img"]), 1)],
        ["out"],
    ),
    "netD_patch": (
        lambda: build_discriminator("netD_patch"),
        lambda i: [torch.cat((i["img"], one_hot_labels(i["lab"])), 1)],
        ["out"],
    ),
    "netD_F": (lambda: build_discriminator("netD_F"), lambda i: [i["x"]], ["out"]),
}


@pytest.fixture(scope="module")
def reference_json(reference_dir) -> dict:
    return json.loads((reference_dir / "ref_networks.json").read_text())["networks"]


def test_every_reference_network_is_covered(reference_vectors, reference_json):
    assert set(reference_vectors) == set(CASES) == set(reference_json)


def run_reference_network(
    name: str, ref: Dict, detweights, device: str = "cpu"
) -> Tuple[List[torch.Tensor], Tuple[torch.Tensor, ...], Dict[str, torch.Tensor]]:
    """Build network ``name`` with ``detweights.fill`` weights, run it on its stored inputs on ``device``.

    Returns the built (host) arguments, the outputs (on the host) and captured intermediates.
    """
    factory, build_args, _ = CASES[name]
    net = factory()
    net.load_state_dict(detweights.fill(net.state_dict(), seed=0), strict=True)
    net = net.eval().to(device)
    args = build_args(ref["inputs"])
    captured: Dict[str, torch.Tensor] = {}
    hook = None
    if "conv_img_pre_tanh" in ref["intermediates"]:
        hook = net.conv_img.conv.register_forward_hook(lambda m, i, o: captured.update(pre=o.detach().cpu()))
    with torch.no_grad():
        outputs = net(*(a.to(device) for a in args))
    if hook is not None:
        hook.remove()
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    return args, tuple(o.cpu() for o in outputs), captured


def check_outputs(name: str, ref: Dict, outputs: Tuple[torch.Tensor, ...], captured: Dict[str, torch.Tensor]) -> None:
    """Every output (and the pre-tanh intermediate, when stored) within TOL of the reference."""
    out_names = CASES[name][2]
    assert len(outputs) == len(out_names)
    for out_name, got in zip(out_names, outputs):
        want = ref["outputs"][out_name]
        assert got.shape == want.shape, out_name
        err = (got - want).abs().max().item()
        assert err <= TOL, f"{name}.{out_name}: max abs error {err:.3g} > {TOL}"
    if "pre" in captured:
        err = (captured["pre"] - ref["intermediates"]["conv_img_pre_tanh"]).abs().max().item()
        assert err <= TOL, f"{name} conv_img pre-tanh: max abs error {err:.3g}"


@pytest.mark.parametrize("name", list(CASES))
def test_network_matches_reference(name, reference_vectors, reference_json, detweights):
    ref = reference_vectors[name]
    spec = reference_json[name]
    args, outputs, captured = run_reference_network(name, ref, detweights)
    assert [list(a.shape) for a in args] == spec["built_args_shapes"]
    assert [sha256_tensor(a.float()) for a in args] == spec["built_args_sha256"]
    assert ("pre" in captured) == ("conv_img_pre_tanh" in ref["intermediates"])
    check_outputs(name, ref, outputs, captured)


@pytest.mark.parametrize("name", ["bg_G", "F_stage"])
def test_edge_map_matches_reference_inputs(name, reference_vectors):
    """Our edge map of the label map, times the mask, is exactly the authors' stored edge input."""
    inputs = reference_vectors[name]["inputs"]
    got = edge_map(inputs["lab"].float()) * inputs["mask"]
    assert torch.equal(got, inputs["edge_map"])
    assert got.sum() > 0


def test_reference_inputs_rebuild_from_detweights(reference_vectors, detweights):
    """The stored fg_inpainting inputs are what ref_networks.json's recipe gives (checks our reading)."""
    def blocky(shape, name, block):
        b, c, h, w = shape
        t = detweights.det_tensor([b, c, h // block, w // block], name, 0, "binary")
        return t.repeat_interleave(block, dim=2).repeat_interleave(block, dim=3)

    inst = blocky([2, 1, 64, 64], "fg_inpainting.inst_mask", 8)
    hole = blocky([2, 1, 64, 64], "fg_inpainting.hole", 8) * inst
    img = detweights.det_tensor([2, 3, 64, 64], "fg_inpainting.img", 0, "signed") * inst * (1 - hole)
    stored = reference_vectors["fg_inpainting"]["inputs"]
    assert torch.equal(inst, stored["inst_mask"])
    assert torch.equal(hole, stored["mask"])
    assert torch.equal(img, stored["input"])
