"""Host-side object plan of a batch of scenes (docs/spec.md §6 step 2): which objects, which branch, which style."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import torch

from siedob.data.disassembly import SceneObject, stack_objects
from siedob.data.style_bank import ClassBank, StyleBank, class_names, pool_banks
from siedob.errors import SiedobError
from siedob.profiles import ProfileLike


class MissingStyleError(SiedobError):
    """An object is to be generated but its class has no style reference."""


@dataclass
class ObjectPlan:
    """Decisions for the non-empty kept objects of a batch, scene by scene (cars, then persons in each).

    ``scenes[i]``: the scene of object i; ``generation[i]``: G_OG (else G_OI); ``slots[i]``: the
    reference index in ``refs[i]`` (-1 and None for inpainting); ``crops``: the stacked crops.
    """

    objects: List[SceneObject]
    scenes: List[int]
    generation: List[bool]
    slots: List[int]
    refs: List[ClassBank]
    crops: Dict[str, torch.Tensor]

    def indices(self, generation: bool) -> List[int]:
        """Positions of the objects that go to G_OG (``True``) or G_OI (``False``)."""
        return [i for i, g in enumerate(self.generation) if g == generation]


def plan_objects(
    scene_objects: Sequence[Sequence[SceneObject]],
    banks: Sequence[StyleBank],
    pooled: bool = False,
    profile: ProfileLike = None,
    need_styles: bool = True,
) -> ObjectPlan:
    """Drop objects whose 64×64 mask is empty, choose each branch on the crops and each style slot.

    Generation when ``sum(mask_crop * inst_crop) == sum(inst_crop)``. The slot is the object's position
    among the non-empty kept objects of its class modulo the number of references: per scene in that
    scene's bank (the edit chain), or, with ``pooled``, over the whole batch in the scenes' banks
    concatenated in scene order (the authors' F training: object j of a class takes reference j mod 4·B).
    ``profile`` names the classes in messages (Cityscapes by default). ``need_styles=False`` (a G_OG that
    draws noise codes) plans generated objects without a reference (slot -1).
    """
    if len(banks) != len(scene_objects):
        raise ValueError(f"{len(scene_objects)} scenes but {len(banks)} style banks")
    flat = [(s, o) for s, objs in enumerate(scene_objects) for o in objs]
    if not flat:
        return ObjectPlan([], [], [], [], [], {})
    crops = stack_objects([o for _, o in flat])
    inst_sum = crops["inst_crop"].sum((1, 2, 3))
    obj_sum = (crops["mask"] * crops["inst_crop"]).sum((1, 2, 3))
    nonempty = (inst_sum > 0).tolist()
    full = (obj_sum == inst_sum).tolist()
    pool = pool_banks(banks) if pooled else None
    seen: Dict[Tuple[int, int], int] = defaultdict(int)
    keep, scenes, kept, generation, slots, refs = [], [], [], [], [], []
    for i, (s, obj) in enumerate(flat):
        if not nonempty[i]:
            continue
        key = (-1 if pooled else s, obj.cls)
        position = seen[key]
        seen[key] += 1
        slot, ref = -1, None
        if full[i] and need_styles:
            bank = pool if pool is not None else banks[s]
            ref = bank.get(obj.cls)
            if ref is None:
                name = class_names(profile).get(obj.cls, f"class {obj.cls}")
                raise MissingStyleError(
                    f"{bank.source}: no {name} style references, but the scene draws a new {name} "
                    f"(instance {obj.id}); add {name}/images and {name}/inst_mask files"
                )
            slot = position % len(ref)
        keep.append(i)
        scenes.append(s)
        kept.append(obj)
        generation.append(bool(full[i]))
        slots.append(slot)
        refs.append(ref)
    index = torch.tensor(keep, dtype=torch.long)
    return ObjectPlan(kept, scenes, generation, slots, refs, {k: v.index_select(0, index) for k, v in crops.items()})
