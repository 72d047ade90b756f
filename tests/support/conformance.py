"""Running the nine reference networks on their stored inputs and checking their outputs (CPU and GPU tests)."""

from __future__ import annotations

from typing import Callable, Dict, List, Tuple

import torch
from torch import nn

from siedob.maps import one_hot_labels
from siedob.nn import (
    BackgroundGenerator,
    FusionGenerator,
    ObjectInpaintingGenerator,
    ObjectStyleGenerator,
    build_discriminator,
)

#: Largest absolute error allowed against the reference outputs.
TOL = 1e-4


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
