"""Loading the chain's networks, and their spectral-norm power iterations (docs/spec.md §8)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, List, Union

from torch import nn
from torch.nn.utils import remove_spectral_norm
from torch.nn.utils.spectral_norm import SpectralNorm

from siedob.checkpoints import load_released_network
from siedob.profiles import ProfileLike

PathLike = Union[str, Path]


def spectral_norm_hooks(net: nn.Module) -> List[SpectralNorm]:
    """Every spectral-norm hook of ``net``, in module order."""
    return [h for m in net.modules() for h in m._forward_pre_hooks.values() if isinstance(h, SpectralNorm)]


def fold_spectral_norm(net: nn.Module) -> nn.Module:
    """Replace each spectral-norm hook by the weight it computes in eval mode (exact; for inference only)."""
    for module in net.modules():
        if any(isinstance(h, SpectralNorm) for h in module._forward_pre_hooks.values()):
            remove_spectral_norm(module)
    return net


def load_network(
    path: PathLike, role: str, fold: bool = True, mmap: bool = False, profile: ProfileLike = None
) -> nn.Module:
    """Strictly load a released-format file into a network built without random initialisation (eval mode).

    With ``fold`` the spectral-norm weights are computed once here instead of at every forward;
    ``mmap`` and ``profile``: see :func:`siedob.checkpoints.load_released_network`.
    """
    net = load_released_network(path, role, mmap=mmap, profile=profile)
    return fold_spectral_norm(net) if fold else net


@contextlib.contextmanager
def power_iterations(net: nn.Module, n: int) -> Iterator[None]:
    """Within the block, a train-mode forward of ``net`` makes ``n`` power iterations per SN layer, not 1.

    The power iteration depends on the weight and the u/v vectors only, never on the input, so one
    batched forward of n samples then leaves u/v where n single-sample forwards would.
    """
    hooks = spectral_norm_hooks(net) if n > 1 else []
    saved = [h.n_power_iterations for h in hooks]
    for h in hooks:
        h.n_power_iterations = n
    try:
        yield
    finally:
        for h, k in zip(hooks, saved):
            h.n_power_iterations = k
