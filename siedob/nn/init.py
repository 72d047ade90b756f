"""Weight initialisation of SIEDOB networks (docs/spec.md §3.6)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


def init_weights(net: nn.Module, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """``normal``: every Conv*/Linear weight ~ N(0, gain), bias 0 (G_B, F and their discriminators).

    ``default`` keeps PyTorch's initialisation (G_OI, G_OG and their discriminators). For a
    spectral-norm layer the trained parameter ``weight_orig`` is what gets initialised.
    """
    if kind == "default":
        return net
    if kind != "normal":
        raise ValueError(f"unknown init {kind!r}; expected 'normal' or 'default'")
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight = getattr(module, "weight_orig", None)
            if weight is None:
                weight = module.weight
            nn.init.normal_(weight, 0.0, gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return net


#: The ``torch.nn.init`` functions that module constructors call to fill their parameters.
_FILLERS = (
    "uniform_",
    "normal_",
    "trunc_normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "dirac_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "sparse_",
)


@contextmanager
def skip_init() -> Iterator[None]:
    """Build modules without their random initialisation: parameters stay uninitialised memory.

    For networks whose every tensor is loaded right after (strictly). Building on the meta device
    would do the same, but spectral norm's meta ``normal_`` imports torch._dynamo (over a second).
    It swaps the ``torch.nn.init`` fillers for the duration, so other threads should not build
    modules meanwhile.
    """
    saved = {name: getattr(nn.init, name) for name in _FILLERS}
    try:
        for name in _FILLERS:
            setattr(nn.init, name, _keep)
        yield
    finally:
        for name, fn in saved.items():
            setattr(nn.init, name, fn)


def _keep(tensor: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
    """A ``torch.nn.init`` filler that leaves the tensor as it is."""
    return tensor
