"""The frozen VGG19 ``features`` stack of the perceptual loss (docs/spec.md §4), built without torchvision.

The layer layout matches torchvision's ``vgg19().features`` so its ImageNet state dict
(``features.N.weight`` / ``features.N.bias``, file ``vgg19-dcbb9e9d.pth``) loads directly. Weights
come from, in order: an explicit file, the torch hub cache file, torchvision (which may download
it), or — only when asked for — random initialisation.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import List, Optional, Sequence, Union

import torch
from torch import nn

from siedob.errors import SiedobError

#: File name torchvision's ``VGG19_Weights.IMAGENET1K_V1`` is cached under.
VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_URL = "https://download.pytorch.org/models/" + VGG19_FILE
#: torchvision's VGG19 ("E") configuration: channel counts, "M" for 2×2 max pooling.
VGG19_CFG: Sequence[Union[int, str]] = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
    "M",
)
#: The perceptual loss splits ``features`` after indices 1, 6, 11, 20, 29 (relu1_1 … relu5_1).
VGG_SPLITS = (2, 7, 12, 21, 30)


class VGGWeightsError(SiedobError):
    """The ImageNet VGG19 weights cannot be found or read."""


class VGG19Features(nn.Module):
    """``features`` of torchvision's VGG19 up to relu5_1, returning the five split activations."""

    def __init__(self, splits: Sequence[int] = VGG_SPLITS, width_divisor: int = 1) -> None:
        super().__init__()
        layers: List[nn.Module] = []
        prev = 3
        for v in VGG19_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                width = max(1, int(v) // width_divisor)
                layers += [nn.Conv2d(prev, width, 3, padding=1), nn.ReLU(inplace=True)]
                prev = width
        self.features = nn.Sequential(*layers[: splits[-1]])
        self.splits = tuple(splits)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        outs, start = [], 0
        for end in self.splits:
            for layer in self.features[start:end]:
                x = layer(x)
            outs.append(x)
            start = end
        return outs

    def load_torchvision_state(self, state: dict, where: str) -> None:
        """Load the ``features.N.*`` entries of a torchvision VGG19 state dict (classifier ignored)."""
        own = self.state_dict()
        feats = {k: v for k, v in state.items() if k in own}
        missing = [k for k in own if k not in feats]
        if missing:
            raise VGGWeightsError(f"{where}: not a VGG19 state dict (missing {missing[0]})")
        for k, v in feats.items():
            if v.shape != own[k].shape:
                raise VGGWeightsError(f"{where}: {k} has shape {list(v.shape)}, expected {list(own[k].shape)}")
        self.load_state_dict(feats)


def hub_vgg19_path() -> Path:
    """``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth`` (where torchvision caches the download)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


def _torchvision_available() -> bool:
    try:
        import torchvision  # noqa: F401
    except Exception:
        return False
    return True


def _load_file(net: VGG19Features, path: Path) -> None:
    if not path.is_file():
        raise VGGWeightsError(f"VGG19 weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise VGGWeightsError(f"{path}: cannot read VGG19 weights ({str(exc).splitlines()[0][:200]})") from None
    if not isinstance(state, dict):
        raise VGGWeightsError(f"{path}: expected a state dict, found {type(state).__name__}")
    net.load_torchvision_state(state, str(path))


def _load_torchvision(net: VGG19Features) -> None:
    import torchvision

    model = torchvision.models.vgg19(weights=torchvision.models.VGG19_Weights.IMAGENET1K_V1)
    net.load_torchvision_state(model.state_dict(), "torchvision VGG19_Weights.IMAGENET1K_V1")


def load_vgg19(weights: Optional[str] = None, width_divisor: int = 1) -> VGG19Features:
    """A frozen VGG19 feature extractor in eval mode.

    ``weights``: a file path, ``torchvision``, ``random`` (warns; for tests and the quickstart only) or None (hub cache
    file, then torchvision, else a :class:`VGGWeightsError` saying where to put the file).
    ``width_divisor`` > 1 narrows every layer (random weights only; makes CPU tests fast).
    """
    if width_divisor != 1 and weights != "random":
        raise VGGWeightsError("a narrowed VGG (train.vgg_width_divisor != 1) needs --vgg-weights random")
    net = VGG19Features(width_divisor=width_divisor)
    if weights == "random":
        warnings.warn(
            "VGG19 perceptual loss uses RANDOM weights (--vgg-weights random): for tests and the quickstart only",
            stacklevel=2,
        )
    elif weights == "torchvision":
        if not _torchvision_available():
            raise VGGWeightsError("--vgg-weights torchvision: torchvision cannot be imported")
        _load_torchvision(net)
    elif weights:
        _load_file(net, Path(os.path.expanduser(weights)))
    elif hub_vgg19_path().is_file():
        _load_file(net, hub_vgg19_path())
    elif _torchvision_available():
        _load_torchvision(net)
    else:
        raise VGGWeightsError(
            f"ImageNet VGG19 weights not found: download {VGG19_URL} to {hub_vgg19_path()} "
            "(or pass --vgg-weights PATH; --vgg-weights random for smoke tests only)"
        )
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net
