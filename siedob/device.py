"""Device choice shared by every command: ``auto`` | ``cpu`` | ``cuda`` (or a torch.device)."""

from __future__ import annotations

from typing import Optional, Union

import torch

from siedob.errors import SiedobError


def resolve_device(device: Union[str, torch.device] = "auto", index: Optional[int] = None) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU or an unknown name is a SiedobError.

    ``index`` picks the CUDA device (a torchrun process's local rank).
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SiedobError(f"--device {device}: no CUDA device is available (use --device cpu)")
        if index is not None and device == "cuda":
            return torch.device("cuda", index)
    try:
        return torch.device(device)
    except RuntimeError:
        raise SiedobError(f"--device {device!r}: expected auto, cpu or cuda") from None
