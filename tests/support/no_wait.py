"""A torch function mode that lists host→device copies which would block the host on a GPU."""

from __future__ import annotations

from typing import List

import torch
from torch.overrides import TorchFunctionMode


class BlockingCopies(TorchFunctionMode):
    """Records ``.to(device)`` / ``copy_`` from the host without ``non_blocking`` and ``torch.tensor(..., device=)``;
    with ``reads`` also every ``.item()`` / ``.tolist()`` / ``.cpu()`` (a device-to-host read)."""

    READS = (torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.cpu, torch.Tensor.numpy)

    def __init__(self) -> None:
        super().__init__()
        self.found: List[str] = []
        self.reads: List[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.tensor, torch.as_tensor, torch.asarray):
            device = kwargs.get("device")
            if device is not None and torch.device(device).type != "cpu":
                self.found.append(f"torch.{func.__name__}(..., device={device})")
        elif func is torch.Tensor.to and args[0].device.type == "cpu":
            device, _, non_blocking, _ = torch._C._nn._parse_to(*args[1:], **kwargs)
            if device is not None and device.type != "cpu" and not non_blocking:
                self.found.append(f"blocking .to({device}) of a {tuple(args[0].shape)} tensor")
        elif func is torch.Tensor.copy_ and args[1].device.type == "cpu" and args[0].device.type != "cpu":
            if not (args[2] if len(args) > 2 else kwargs.get("non_blocking", False)):
                self.found.append(f"blocking copy_ of a {tuple(args[1].shape)} tensor")
        elif func in self.READS:
            self.reads.append(func.__name__)
        return func(*args, **kwargs)
