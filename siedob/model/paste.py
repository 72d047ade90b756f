"""Paste-back of generated objects onto per-scene, per-class canvases (docs/spec.md §6 step 3), for a scene batch."""

from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from siedob.labels import CAR, PERSON

#: Order in which the classes' canvases are built for Cityscapes (cars, then persons); other profiles pass
#: their object classes (``DatasetProfile.object_ids``).
PASTE_CLASSES: Tuple[int, ...] = (CAR, PERSON)

Box = Tuple[int, int, int, int]


def paste_indices(
    boxes: Sequence[Box],
    classes: Sequence[int],
    scenes: Sequence[int],
    h: int,
    w: int,
    paste_classes: Sequence[int] = PASTE_CLASSES,
) -> Dict[str, object]:
    """Host-side index plan of the paste: objects grouped by box size, flat target pixels, paste order keys.

    Returns ``groups`` ({(bh, bw): [object indices]}), ``target`` (flat index into a (scene, class, H, W)
    stack of canvases for every pasted pixel, group by group) and ``order`` (the object's position, same layout).
    """
    groups: Dict[Tuple[int, int], List[int]] = defaultdict(list)
    for i, (b0, b1, b2, b3) in enumerate(boxes):
        groups[(b1 - b0, b3 - b2)].append(i)
    targets, orders = [], []
    n_cls = len(paste_classes)
    for (bh, bw), members in groups.items():
        for i in members:
            b0, _, b2, _ = boxes[i]
            plane = (scenes[i] * n_cls + list(paste_classes).index(classes[i])) * h * w
            pix = plane + (np.arange(b0, b0 + bh)[:, None] * w + np.arange(b2, b2 + bw)[None, :]).ravel()
            targets.append(pix)
            orders.append(np.full(pix.size, i))
    return {
        "groups": groups,
        "target": torch.from_numpy(np.concatenate(targets)),
        "order": torch.from_numpy(np.concatenate(orders)),
    }


def paste_objects(
    outputs: torch.Tensor,
    inst_crops: torch.Tensor,
    boxes: Sequence[Box],
    classes: Sequence[int],
    h: int,
    w: int,
    scenes: Optional[Sequence[int]] = None,
    batch: int = 1,
    paste_classes: Sequence[int] = PASTE_CLASSES,
) -> torch.Tensor:
    """The sum of one canvas per class (car + person for Cityscapes) per scene (B×3×H×W): each object
    ``bilinear(output, box)`` where ``nearest(inst_crop, box)``; object i goes to scene ``scenes[i]`` (all to 0
    when None).

    Equal to the authors' per-object ``canvas[box] = o·m + canvas[box]·(1 − m)`` in order (m is 0/1, so
    the last object covering a pixel wins), done as one scatter-max of paste-order keys for the whole batch.
    """
    device = outputs.device
    scenes = list(scenes) if scenes is not None else [0] * len(boxes)
    n_cls = len(paste_classes)
    if not boxes:
        return torch.zeros(batch, 3, h, w, device=device)
    plan = paste_indices(boxes, classes, scenes, h, w, paste_classes)
    o_parts, m_parts = [], []
    for (bh, bw), members in plan["groups"].items():
        idx = torch.tensor(members).to(device, non_blocking=True)
        o = F.interpolate(outputs.index_select(0, idx), size=(bh, bw), mode="bilinear", align_corners=False)
        m = F.interpolate(inst_crops.index_select(0, idx), size=(bh, bw), mode="nearest")
        o_parts.append(o.permute(1, 0, 2, 3).reshape(3, -1))
        m_parts.append(m.reshape(-1))
    obuf = torch.cat(o_parts, 1)
    mbuf = torch.cat(m_parts)
    n = obuf.shape[1]
    target = plan["target"].to(device, non_blocking=True)
    order = plan["order"].to(device, non_blocking=True)
    key = torch.where(mbuf > 0.5, order * n + torch.arange(n, device=device), torch.full_like(order, -1))
    planes = batch * n_cls * h * w
    winner = torch.full((planes,), -1, dtype=torch.long, device=device).scatter_reduce_(0, target, key, "amax")
    src = obuf.index_select(1, winner.clamp(min=0) % n)
    canvases = torch.where(winner >= 0, src, torch.zeros((), device=device)).view(3, batch, n_cls, h, w)
    return canvases.sum(2).transpose(0, 1)
