"""The authors' training batches in our trainers' layout (for conformance checks and for their data loaders).

Their loaders hand ``set_input`` a dict after ``default_collate`` under their key names (``img``, ``gt``,
``lab``, ``inst_map`` …); :func:`from_authors_batch` renames those keys to the ones our stage trainers read
(:mod:`siedob.data.datasets`) and derives what their ``set_input`` derives (the edge map). Values are not
changed, so one step on the result is one step on their batch.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence

from siedob.errors import SiedobError
from siedob.maps import edge_map
from siedob.train.patches import Box

#: Per stage: our key ← the authors' key (tensors copied as they are).
KEYS: Dict[str, Dict[str, str]] = {
    "instance_inpainting": {
        "image": "img",
        "inst_mask": "inst_mask",
        "mask": "mask",
        "class_map": "class_map",
        "input": "masked_img",
    },
    "instance_style": {
        "image": "gt",
        "inst_mask": "inst_mask",
        "class_map": "class_map",
        "sty_img": "sty_gt",
        "sty_inst_mask": "sty_inst_mask",
        "sty_cls_map": "sty_class_map",
    },
    "background": {
        "image": "img",
        "mask": "mask",
        "masked_image": "masked_img",
        "fg_mask": "fg_mask",
        "bg_mask": "bg_mask",
        "bg_mask_ori": "bg_mask_ori",
    },
    "fusion": {
        "image": "img",
        "mask": "mask",
        "masked_image": "masked_img",
        "fg_mask": "fg_mask",
        "bg_mask": "bg_mask",
        "bg_mask_ori": "bg_mask_ori",
    },
}


def from_authors_batch(stage: str, batch: Mapping[str, Any]) -> Dict[str, Any]:
    """Our trainer batch of ``stage`` from an authors' collated batch (their key names, float32 label maps).

    Scenes: ``labels`` / ``instances`` become int64 and ``edge`` is their ``set_input`` edge map
    (instance-id changes to a 4-neighbour, times the mask). The object crops and the style references of
    their F loader are not mapped: F takes a given ``masked_G`` (see :class:`~siedob.train.stages.FusionTrainer`).
    """
    if stage not in KEYS:
        raise SiedobError(f"stage {stage!r}: expected one of {', '.join(KEYS)}")
    missing = [theirs for theirs in KEYS[stage].values() if theirs not in batch]
    if missing:
        raise SiedobError(f"{stage} batch: missing the authors' key {missing[0]!r}")
    out: Dict[str, Any] = {ours: batch[theirs] for ours, theirs in KEYS[stage].items()}
    if "name" in batch:
        out["name"] = list(batch["name"])
    if stage in ("background", "fusion"):
        out["labels"] = batch["lab"].long()
        out["instances"] = batch["inst_map"].long()
        out["edge"] = edge_map(out["instances"]) * out["mask"]
    return out


def patch_boxes_from_draws(draws: Sequence[Mapping[str, Any]], batch_size: int) -> List[List[Box]]:
    """``patch_boxes`` for :class:`~siedob.train.stages.BackgroundTrainer` from recorded ``crop_patch`` draws.

    Each draw names its ``sample`` and its ``rows`` / ``cols`` ``[start, end)`` windows (square).
    """
    boxes: List[List[Box]] = [[] for _ in range(batch_size)]
    for d in draws:
        (r0, r1), (c0, c1) = d["rows"], d["cols"]
        if r1 - r0 != c1 - c0:
            raise SiedobError(f"patch draw {d.get('patch')} of sample {d['sample']}: window is not square")
        boxes[int(d["sample"])].append((int(r0), int(c0), int(r1 - r0)))
    return boxes
