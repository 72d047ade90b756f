"""Network structure: parameter counts, state-dict names and shapes equal the authors' released files."""

from __future__ import annotations

import json
from typing import Callable, Dict

import pytest
import torch
from torch import nn

from siedob.checkpoints import RELEASED
from siedob.nn import (
    BackgroundGenerator,
    FusionGenerator,
    ObjectInpaintingGenerator,
    ObjectStyleGenerator,
    build_discriminator,
    class_style_codes,
    init_weights,
)
from tests.support.paths import FIXTURES

KEYS = json.loads((FIXTURES / "state_dict_keys.json").read_text())
COUNTS = json.loads((FIXTURES / "param_counts.json").read_text())

GENERATORS: Dict[str, Callable[[], nn.Module]] = {
    "object_inpainting": ObjectInpaintingGenerator,
    "object_style": ObjectStyleGenerator,
    "background": BackgroundGenerator,
    "fusion": FusionGenerator,
}
COUNT_NAMES = {
    "object_inpainting": "fg_inpainting",
    "object_style": "fg_style",
    "background": "bg_G",
    "fusion": "F_stage",
}
STAGE_OF_DISCRIMINATOR = {name: stage for stage, entries in KEYS["training_checkpoints"].items() for name in entries}


def _shapes(state: Dict[str, torch.Tensor], prefix: str = "") -> Dict[str, list]:
    return {prefix + k: list(v.shape) for k, v in state.items()}


@pytest.mark.parametrize("role", list(GENERATORS))
def test_generator_state_dict_matches_released_file(role):
    fmt = RELEASED[role]
    net = GENERATORS[role]()
    assert _shapes(net.state_dict(), fmt.prefix) == KEYS[f"submodels/{fmt.filename}"][fmt.entry]


@pytest.mark.parametrize("name", sorted(STAGE_OF_DISCRIMINATOR))
def test_discriminator_state_dict_matches_training_checkpoint(name):
    expected = KEYS["training_checkpoints"][STAGE_OF_DISCRIMINATOR[name]][name]
    assert _shapes(build_discriminator(name).state_dict()) == expected


def _counts(net: nn.Module) -> Dict[str, int]:
    params = sum(p.numel() for p in net.parameters())
    buffers = sum(b.numel() for b in net.buffers())
    state = net.state_dict()
    return {
        "parameters": params,
        "buffers": buffers,
        "state_dict_tensors": len(state),
        "state_dict_numel": sum(t.numel() for t in state.values()),
    }


@pytest.mark.parametrize("role", list(GENERATORS))
def test_generator_parameter_counts(role):
    want = {k: v for k, v in COUNTS[COUNT_NAMES[role]].items() if not k.startswith("of_which")}
    net = GENERATORS[role]()
    assert _counts(net) == want
    if role == "object_style":
        cycle = sum(p.numel() for p in net.cycle_style.parameters())
        assert cycle == COUNTS["fg_style"]["of_which_cycle_style_encoder"]


@pytest.mark.parametrize("name", sorted(STAGE_OF_DISCRIMINATOR))
def test_discriminator_parameter_counts(name):
    assert _counts(build_discriminator(name)) == COUNTS[name]


def test_stage_total_parameters():
    total = sum(
        sum(p.numel() for p in GENERATORS[r]().parameters())
        for r in ("object_inpainting", "object_style", "background")
    )
    assert total == COUNTS["G_stage_total(fg_inpainting+fg_style+bg_G)"]


def test_discriminator_output_size():
    """A 256×256 input gives 3×4×4 logits (docs/spec.md §3.5), a 64×64 object crop 3×1×1."""
    with torch.no_grad():
        assert build_discriminator("netD_F", ndf=8)(torch.zeros(1, 3, 256, 256)).shape == (1, 3, 4, 4)
        assert build_discriminator("netD_inp", ndf=8)(torch.zeros(1, 7, 64, 64)).shape == (1, 3, 1, 1)


def test_reduced_width_networks_run_at_other_sizes():
    """Widths scale with ngf and the generators accept any side that is a multiple of 16."""
    torch.manual_seed(0)
    bg = BackgroundGenerator(ngf=4).eval()
    fusion = FusionGenerator(ngf=4).eval()
    h, w = 64, 96
    seg = torch.zeros(1, 34, h, w)
    seg[:, 7] = 1
    mask = torch.zeros(1, 1, h, w)
    mask[..., 16:48, 16:64] = 1
    pre_tanh = []
    bg.conv_img.conv.register_forward_hook(lambda module, inputs, output: pre_tanh.append(output))
    with torch.no_grad():
        out = bg(torch.randn(1, 39, h, w), seg, mask, torch.ones(1, 1, h, w))
        fused = fusion(torch.randn(1, 3, h, w), seg, mask, torch.zeros(1, 1, h, w))
    assert out.shape == (1, 3, h, w) and fused.shape == (1, 3, h, w)
    # the image head is the bias-free conv then tanh, applied once (docs/spec.md §3)
    assert len(pre_tanh) == 1 and torch.equal(out, torch.tanh(pre_tanh[0]))


def test_fusion_adds_residual_to_full_composite():
    """F returns out * mask + masked_G: outside the mask the input passes through unchanged."""
    torch.manual_seed(0)
    net = FusionGenerator(ngf=4).eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    with torch.no_grad():
        out = net(x, None, mask, torch.zeros_like(mask))
    assert torch.equal(out[..., :8, :], x[..., :8, :])
    assert not torch.equal(out[..., 8:24, 8:24], x[..., 8:24, 8:24])


def test_style_generator_synthesise_skips_only_the_cycle_encoder(monkeypatch):
    """``synthesise`` gives forward's image and style code without running the cycle encoder."""
    torch.manual_seed(0)
    net = ObjectStyleGenerator(ngf=4).eval()
    cls_map, sty, sty_cls, inst = (torch.rand(2, c, 64, 64) for c in (3, 3, 3, 1))
    with torch.no_grad():
        x, code, cycle = net(cls_map, sty, sty_cls, inst)
        monkeypatch.setattr(net.cycle_style, "forward", lambda *a: pytest.fail("cycle encoder ran"))
        x2, code2 = net.synthesise(cls_map, sty, sty_cls)
    assert torch.equal(x, x2) and torch.equal(code, code2) and cycle.shape == code.shape


def test_class_style_codes_is_the_authors_double_loop():
    """The vectorised per-class mean equals the authors' loop over samples and non-thing classes."""
    g = torch.Generator().manual_seed(3)
    feat = torch.randn(2, 5, 6, 7, generator=g)
    labels = torch.randint(0, 34, (2, 1, 6, 7), generator=g)
    ctx = torch.zeros(2, 34, 6, 7).scatter_(1, labels, 1.0)
    ctx *= (torch.rand(2, 1, 6, 7, generator=g) > 0.3).float()
    codes = class_style_codes(feat, ctx)
    for b in range(2):
        for j in range(34):
            sel = ctx[b, j] != 0
            if j >= 24 or not sel.any():
                assert torch.all(codes[b, j] == 0)
            else:
                want = torch.stack([feat[b, c][sel].mean() for c in range(5)])
                assert torch.allclose(codes[b, j], want, atol=1e-6)


def test_normal_init_sets_spectral_norm_weights():
    net = init_weights(build_discriminator("netD_F", ndf=8), "normal")
    w = net.dis_model[1].conv.weight_orig
    assert abs(w.std().item() - 0.02) < 0.004
    assert abs(w.mean().item()) < 0.004
    with pytest.raises(ValueError, match="unknown init"):
        init_weights(net, "xavier")
