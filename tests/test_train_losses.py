"""Losses, the VGG19 loader and the boundary-patch sampling of the training package."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from siedob.train import vgg
from siedob.train.losses import VGG_WEIGHTS, VGGLoss, hinge_d_loss, hinge_g_loss, style_cycle_loss
from siedob.train.stages import boundary_map, sample_patch_boxes
from siedob.train.vgg import VGG19Features, VGGWeightsError, load_vgg19


def test_hinge_losses():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0, 1.0])
    expected = (0 + 0.5 + 2) / 3 + (0 + 1 + 2) / 3
    assert hinge_d_loss(real, fake, 2.0).item() == pytest.approx(2 * expected)
    assert hinge_g_loss(fake).item() == pytest.approx(1 / 3)


def test_style_cycle_loss():
    code = torch.tensor([[1.0, 0.0], [0.0, 3.0]]).view(2, 2, 1, 1)
    assert style_cycle_loss(code, code * 5).item() == pytest.approx(0.0, abs=1e-6)
    assert style_cycle_loss(code, -code).item() == pytest.approx(2.0)
    assert style_cycle_loss(code, code.flip(1)).item() == pytest.approx(1.0)


def test_vgg_layout_split_and_weights():
    net = VGG19Features()
    keys = [k for k in net.state_dict() if k.endswith(".weight")]
    assert keys[0] == "features.0.weight" and keys[-1] == "features.28.weight" and len(keys) == 13
    assert isinstance(net.features[29], torch.nn.ReLU) and len(net.features) == 30
    torch.manual_seed(0)
    small = VGG19Features(width_divisor=16)
    x, y = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32)
    feats = small(x)
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4, 2]
    manual = sum(w * F.l1_loss(a, b) for w, a, b in zip(VGG_WEIGHTS, small(x), small(y)))
    assert VGGLoss(small)(x, y).item() == pytest.approx(manual.item(), rel=1e-5)


def test_vgg_weights_from_hub_file_and_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    # the machine's torchvision (if any) is the last fallback; take it away so the error path always runs
    monkeypatch.setattr(vgg, "_torchvision_available", lambda: False)
    with pytest.raises(VGGWeightsError, match=r"vgg19-dcbb9e9d\.pth"):
        load_vgg19(None)
    with pytest.raises(VGGWeightsError, match="torchvision cannot be imported"):
        load_vgg19("torchvision")
    ref = VGG19Features()
    state = {**ref.state_dict(), "classifier.0.weight": torch.zeros(2, 2)}
    path = tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    net = load_vgg19(None)
    assert all(torch.equal(v, ref.state_dict()[k]) for k, v in net.state_dict().items())
    assert not any(p.requires_grad for p in net.parameters())
    with pytest.warns(UserWarning, match="RANDOM"):
        load_vgg19("random")
    with pytest.raises(VGGWeightsError, match="not found"):
        load_vgg19(str(tmp_path / "missing.pth"))


def test_boundary_matches_opencv_erode():
    rng = np.random.default_rng(0)
    m = (rng.random((20, 24)) > 0.4).astype(np.uint8)
    expected = m - cv2.erode(m, np.ones((2, 2), np.uint8))
    got = boundary_map(torch.from_numpy(m).float()[None, None])[0, 0].numpy()
    assert np.array_equal(got, expected.astype(np.float32))


def test_patch_boxes_inside_and_around_boundary():
    mask = torch.zeros(2, 1, 64, 64)
    mask[0, :, 20:40, 10:30] = 1
    torch.manual_seed(0)
    boxes = sample_patch_boxes(mask, 4, (16, 32))
    assert len(boxes) == 2 and all(len(b) == 4 for b in boxes)
    bnd = boundary_map(mask)
    for i, sample in enumerate(boxes):
        for top, left, side in sample:
            assert 16 <= side <= 32 and 0 <= top <= 64 - side and 0 <= left <= 64 - side
            if i == 0:
                assert bnd[0, 0, top : top + side, left : left + side].sum() > 0
