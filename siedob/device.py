"""Device choice shared by every command: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` (or a torch.device)."""

from __future__ import annotations

import re
from typing import Optional, Union

import torch

from siedob.errors import SiedobError


def resolve_device(device: Union[str, torch.device] = "auto", index: Optional[int] = None) -> torch.device:
    """``auto`` → CUDA when available, else CPU; CUDA without a GPU, a missing GPU index or an unknown name is a
    SiedobError. ``index`` picks the CUDA device of a plain ``cuda`` (a torchrun process's local rank).
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    match = re.fullmatch(r"cpu|cuda(?::([0-9]+))?", device)
    if match is None:
        raise SiedobError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N")
    if device == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise SiedobError(f"--device {device}: no CUDA device is available (use --device cpu)")
    if match.group(1) is not None:
        n = int(match.group(1))
        if n >= torch.cuda.device_count():
            raise SiedobError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here")
        return torch.device("cuda", n)
    return torch.device("cuda", index) if index is not None else torch.device("cuda")
