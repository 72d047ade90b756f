"""Weight initialisation of SIEDOB networks (SPEC §3.6)."""

from __future__ import annotations

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
