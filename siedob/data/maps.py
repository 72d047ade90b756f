"""Derived maps the networks consume: edge map, one-hot segmap and object class map (SPEC §1)."""

from __future__ import annotations

import torch

from siedob.labels import CLASS_CODES, LAB_DIM


def edge_map(inst: torch.Tensor) -> torch.Tensor:
    """Edges of an instance map (… × H × W): both pixels of any differing horizontal/vertical pair."""
    edge = torch.zeros(inst.shape, dtype=torch.bool, device=inst.device)
    dx = inst[..., :, 1:] != inst[..., :, :-1]
    dy = inst[..., 1:, :] != inst[..., :-1, :]
    edge[..., :, 1:] |= dx
    edge[..., :, :-1] |= dx
    edge[..., 1:, :] |= dy
    edge[..., :-1, :] |= dy
    return edge.float()


def one_hot(labels: torch.Tensor, lab_dim: int = LAB_DIM) -> torch.Tensor:
    """One-hot segmap: labels (… × H × W or … × 1 × H × W, integer-valued) to … × lab_dim × H × W."""
    if labels.dim() >= 3 and labels.shape[-3] == 1:
        labels = labels.squeeze(-3)
    oh = torch.nn.functional.one_hot(labels.long(), lab_dim)
    return oh.movedim(-1, -3).float()


def class_code(cls: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The 3-channel class code of an object class as a 3 × 1 × 1 tensor (car (1,0,0), person (0,1,0))."""
    return torch.tensor(CLASS_CODES[cls], dtype=torch.float32, device=device).view(3, 1, 1)


def class_map(inst_mask: torch.Tensor, cls: int) -> torch.Tensor:
    """``inst_mask * code``: a (… × 1 × h × w) instance mask to its 3-channel class map."""
    return inst_mask * class_code(cls, inst_mask.device)
