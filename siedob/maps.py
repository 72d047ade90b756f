"""Tensor maps derived from label and instance maps: one-hot segmaps, edge maps, class maps.

One copy used by the datasets, the edit chain and the conformance tests; all work on any device.
"""

from __future__ import annotations

import torch

from siedob.labels import LAB_DIM
from siedob.profiles import ProfileLike, as_profile


def one_hot_labels(labels: torch.Tensor, lab_dim: int = LAB_DIM) -> torch.Tensor:
    """B×1×H×W integer label ids → B×lab_dim×H×W float one-hot segmap (the authors' scatter)."""
    b, _, h, w = labels.shape
    out = torch.zeros(b, lab_dim, h, w, device=labels.device)
    return out.scatter_(1, labels.long(), 1.0)


def edge_map(t: torch.Tensor) -> torch.Tensor:
    """1 where a pixel differs from a horizontal or vertical neighbour (both pixels of the pair)."""
    edge = torch.zeros(t.shape, dtype=torch.bool, device=t.device)
    dx = t[..., :, 1:] != t[..., :, :-1]
    dy = t[..., 1:, :] != t[..., :-1, :]
    edge[..., :, 1:] |= dx
    edge[..., :, :-1] |= dx
    edge[..., 1:, :] |= dy
    edge[..., :-1, :] |= dy
    return edge.float()


def class_code(class_id: int, device: torch.device | str | None = None, profile: ProfileLike = None) -> torch.Tensor:
    """An object class's one-hot code shaped C×1×1 (Cityscapes: car (1,0,0), person (0,1,0); docs/datasets.md)."""
    prof = as_profile(profile)
    if class_id not in prof.object_ids:
        raise ValueError(f"class {class_id} is not an object class of {prof.name} (expected one of {prof.object_ids})")
    return torch.tensor(prof.class_code(class_id), dtype=torch.float32, device=device).view(-1, 1, 1)


def class_map(inst_mask: torch.Tensor, class_id: int, profile: ProfileLike = None) -> torch.Tensor:
    """``inst_mask * code``: a (… × 1 × h × w) instance mask to its class map (one channel per code entry)."""
    return inst_mask * class_code(class_id, inst_mask.device, profile)
