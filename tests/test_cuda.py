"""Accelerator checks: conformance, the edit chain and every training stage on a CUDA device.

They skip where no GPU is present (as in CI). ``SIEDOB_TEST_DEVICE=cpu`` runs the same tests on the
CPU instead (all but the CUDA-only synchronisation check), which proves the tests themselves.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import pytest
import torch

from siedob.edit import Editor, StyleBank, load_style_bank
from siedob.train import train_stage
from tests.support.conformance import CASES, check_outputs, run_reference_network
from tests.support.edit import small_networks, toy_scene, write_checkpoints, write_style_dir
from tests.support.train import make_data, overrides, tiny_vgg

DEVICE = os.environ.get("SIEDOB_TEST_DEVICE", "cuda")
CUDA = DEVICE.startswith("cuda")

pytestmark = pytest.mark.skipif(
    CUDA and not torch.cuda.is_available(), reason="no CUDA device here (SIEDOB_TEST_DEVICE=cpu runs these on CPU)"
)


@pytest.fixture(scope="module", autouse=True)
def exact_float32():
    """TF32 off, as in the edit CLI: the references are float32 results."""
    if not CUDA:
        yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.fixture(scope="module")
def bank(tmp_path_factory) -> StyleBank:
    return load_style_bank(write_style_dir(tmp_path_factory.mktemp("style")), seed=3)


@pytest.mark.parametrize("name", list(CASES))
def test_network_matches_reference_on_the_device(name, reference_vectors, detweights):
    ref = reference_vectors[name]
    check_outputs(name, ref, *run_reference_network(name, ref, detweights, DEVICE)[1:])


def test_edit_on_the_device_equals_cpu(bank):
    scene = toy_scene(128, 192, seed=1)
    args = (scene["image"], scene["labels"], scene["instances"], scene["mask"], bank)
    on_cpu = Editor(*small_networks(), device="cpu").edit(*args)
    on_dev = Editor(*small_networks(), device=DEVICE).edit(*args)
    assert on_dev.result.device.type == torch.device(DEVICE).type
    assert [o.id for o in on_dev.objects] == [o.id for o in on_cpu.objects] and on_cpu.objects
    for name in ("fg_output", "bg_output", "result"):
        err = (getattr(on_dev, name).cpu() - getattr(on_cpu, name)).abs().max().item()
        assert err <= 1e-4, f"{name}: {DEVICE} and cpu differ by {err:.3g}"


@pytest.mark.skipif(not CUDA, reason="synchronisation debug mode is CUDA's")
def test_edit_never_synchronises_with_the_gpu(bank):
    """CUDA's sync debug mode raises at any synchronising call: none happens inside an edit."""
    editor = Editor(*small_networks(), device=DEVICE)
    scene = toy_scene(128, 192, seed=1)
    args = (scene["image"], scene["labels"], scene["instances"], scene["mask"], bank)
    editor.edit(*args)  # warm-up: cuDNN handles and the caching allocator
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        result = editor.edit(*args).result
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert result.is_cuda and torch.isfinite(result).all()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_data(tmp_path_factory.mktemp("train_data"))


@pytest.fixture(scope="module")
def submodels(tmp_path_factory) -> Path:
    return write_checkpoints(tmp_path_factory.mktemp("submodels"), small_networks(ngf=4))


@pytest.mark.parametrize("amp", ["none", "bf16", "fp16"])
@pytest.mark.parametrize("stage", ["instance_inpainting", "instance_style", "background", "fusion"])
def test_stage_trains_on_the_device(stage, amp, data, submodels, tmp_path):
    """Two steps with mixed precision and channels-last: finite losses, checkpoints written."""
    if amp == "fp16" and not CUDA:
        pytest.skip("fp16 autocast with a gradient scaler is CUDA's")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = train_stage(
            stage,
            tmp_path,
            data_root=data,
            overrides=overrides(stage),
            max_steps=2,
            device=DEVICE,
            amp=amp,
            channels_last=True,
            vgg=tiny_vgg(),
            submodels=submodels,
            progress=False,
        )
    assert res.step == 2 and res.checkpoint.is_file() and res.released.is_file()
    assert len(res.history) == 2 and all(h and all(math.isfinite(v) for v in h.values()) for h in res.history)
