"""DRN-D-105 with its Cityscapes segmentation head (fyu/drn's ``DRNSeg``), for the field's mIoU.

Module and parameter names follow the official ``drn-d-105_ms_cityscapes.pth`` state dict
(``base.0`` … ``base.8``, ``seg``, ``up``), so that file loads strictly. Written from the description
in our docs (evaluation-models.md): no bias in the backbone, BN eps 1e-5, a stride-1 7×7 stem,
bottlenecks with the stride on the 3×3, dilation 2 and 4 in the last two stages, output stride 8,
and a fixed bilinear transposed convolution back to the input size.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 19
#: fyu/drn datasets/cityscapes/info.json: per-channel RGB mean and std of [0, 1] pixels.
CITYSCAPES_MEAN = (0.29010095242892997, 0.32808144844279574, 0.28696394422942517)
CITYSCAPES_STD = (0.1829540508368939, 0.18656561047509476, 0.18447508988480435)
#: (blocks, width, stride, dilation) of the four bottleneck stages base.3 … base.6.
STAGES: Tuple[Tuple[int, int, int, int], ...] = ((3, 64, 2, 1), (4, 128, 2, 1), (23, 256, 1, 2), (3, 512, 1, 4))
BN_EPS = 1e-5


def conv_bn_relu(cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """Sequential[conv (no bias, 'same' padding for its dilation), BN, ReLU]: keys ``.0.weight``, ``.1.*``."""
    pad = dilation * (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout, eps=BN_EPS),
        nn.ReLU(inplace=True),
    )


class Bottleneck(nn.Module):
    """1×1 → 3×3 (stride, dilation) → 1×1 ×4, each with BN; residual with an optional 1×1 projection."""

    def __init__(self, cin: int, width: int, stride: int, dilation: int, project: bool) -> None:
        super().__init__()
        cout = 4 * width
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width, eps=BN_EPS)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(width, eps=BN_EPS)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout, eps=BN_EPS))
            if project
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + shortcut)


def bilinear_up_kernel(classes: int = NUM_CLASSES, size: int = 16) -> torch.Tensor:
    """The fixed ×8 upsampling kernel: K[i, j] = b(i)·b(j), b(i) = 1 − |i − 7.5| / 8, one per class."""
    f = (size + 1) // 2
    centre = (2 * f - 1 - f % 2) / (2 * f)
    b = 1 - (torch.arange(size, dtype=torch.float64) / f - centre).abs()
    return (b[:, None] * b[None, :]).float().expand(classes, 1, size, size).contiguous()


class DRNSeg(nn.Module):
    """DRN-D-105 segmenter: ``forward`` gives (log-softmax at 8·ceil(H/8) × 8·ceil(W/8), stride-8 logits).

    Input: N×3×H×W RGB, normalised by :data:`CITYSCAPES_MEAN` / :data:`CITYSCAPES_STD`.
    """

    def __init__(self, classes: int = NUM_CLASSES) -> None:
        super().__init__()
        layers: List[nn.Module] = [conv_bn_relu(3, 16, 7), conv_bn_relu(16, 16, 3), conv_bn_relu(16, 32, 3, stride=2)]
        cin = 32
        for blocks, width, stride, dilation in STAGES:
            stage = []
            for i in range(blocks):
                stage.append(Bottleneck(cin, width, stride if i == 0 else 1, dilation, project=i == 0))
                cin = 4 * width
            layers.append(nn.Sequential(*stage))
        layers += [conv_bn_relu(cin, 512, 3, dilation=2), conv_bn_relu(512, 512, 3)]
        self.base = nn.Sequential(*layers)
        self.seg = nn.Conv2d(512, classes, 1, bias=True)
        self.up = nn.ConvTranspose2d(classes, classes, 16, stride=8, padding=4, groups=classes, bias=False)
        with torch.no_grad():
            self.up.weight.copy_(bilinear_up_kernel(classes))
        self.up.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        logits = self.seg(self.base(x))
        return F.log_softmax(self.up(logits), dim=1), logits


def normalise_rgb01(x_rgb01: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] → DRN's input: per channel (x − mean) / std in float32."""
    mean = torch.tensor(CITYSCAPES_MEAN, dtype=torch.float32, device=x_rgb01.device).view(1, 3, 1, 1)
    std = torch.tensor(CITYSCAPES_STD, dtype=torch.float32, device=x_rgb01.device).view(1, 3, 1, 1)
    return (x_rgb01.float() - mean) / std


def normalise_bgr(x_bgr: torch.Tensor) -> torch.Tensor:
    """Our BGR tensors in [-1, 1] → DRN's input (channels reversed to RGB, mapped to [0, 1], normalised)."""
    return normalise_rgb01((x_bgr.flip(1) + 1) / 2)


def num_batches_tracked_keys(model: nn.Module) -> Dict[str, torch.Tensor]:
    """The BatchNorm counters of ``model``'s state dict; old checkpoints (pre torch 0.4.1) lack them."""
    return {k: v for k, v in model.state_dict().items() if k.endswith("num_batches_tracked")}
