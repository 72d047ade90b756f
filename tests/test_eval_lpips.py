"""LPIPS: unavailable (with the reason) unless the package and AlexNet weights are present; pairing logic."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from siedob.eval.errors import BackendUnavailable, EvalError
from siedob.eval.lpips import ALEXNET_WEIGHTS, LPIPSMetric
from tests.support.eval_images import draw_scenes, write_images


class FirstChannelDistance(torch.nn.Module):
    """Stand-in for ``lpips.LPIPS``: mean |a - b| of the first channel, N×1×1×1 like the real one."""

    def __init__(self, net: str, verbose: bool) -> None:
        super().__init__()
        assert net == "alex" and verbose is False

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a[:, :1] - b[:, :1]).abs().mean(dim=(1, 2, 3), keepdim=True)


def test_missing_package_or_weights_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lpips", None)  # import fails, as it does without torchvision
    with pytest.raises(BackendUnavailable, match="lpips not importable"):
        LPIPSMetric()
    monkeypatch.setitem(sys.modules, "lpips", types.SimpleNamespace(LPIPS=FirstChannelDistance))
    missing = tmp_path / "hub" / ALEXNET_WEIGHTS
    with pytest.raises(BackendUnavailable, match=f"put {ALEXNET_WEIGHTS} at {missing}"):
        LPIPSMetric(alexnet=missing)


def test_mean_over_pairs_and_colour_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lpips", types.SimpleNamespace(LPIPS=FirstChannelDistance))
    weights = tmp_path / ALEXNET_WEIGHTS
    weights.write_bytes(b"")
    real = [np.zeros((8, 8, 3), np.uint8)] * 2
    fake = [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)]
    fake[1][:, :, 2] = 255  # red channel (BGR index 2) differs by 2.0 in [-1, 1]
    r, f = write_images(tmp_path / "r", real), write_images(tmp_path / "f", fake)
    assert LPIPSMetric(alexnet=weights, color_order="bgr").mean_of_files(r, f) == pytest.approx(0.0)
    assert LPIPSMetric(alexnet=weights, color_order="rgb").mean_of_files(r, f) == pytest.approx(1.0)
    with pytest.raises(EvalError, match="count mismatch"):
        LPIPSMetric(alexnet=weights).mean_of_files(r, f[:1])
    odd = write_images(tmp_path / "odd", draw_scenes(2, size=16))
    with pytest.raises(EvalError, match="equal sizes"):
        LPIPSMetric(alexnet=weights).mean_of_files(r, odd)
