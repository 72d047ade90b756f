"""A frozen copy of the pre-model-layer edit chain, one scene and one object at a time (the tests' reference).

It plans, generates and pastes on its own, from the scene's disassembly only: no code of
:mod:`siedob.model` or :mod:`siedob.edit` is used, so a change there cannot move the reference.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from siedob.data.disassembly import SceneObject
from siedob.data.style_bank import StyleBank
from siedob.labels import CAR, CLASS_CODES, PERSON
from siedob.maps import edge_map, one_hot_labels


def legacy_compose(
    nets: Dict[str, nn.Module],
    image: torch.Tensor,
    labels: torch.Tensor,
    instances: torch.Tensor,
    mask: torch.Tensor,
    fg_mask: torch.Tensor,
    objects: List[SceneObject],
    bank: StyleBank,
    fuse: bool = True,
    slots: Optional[List[int]] = None,
) -> Dict[str, torch.Tensor]:
    """docs/spec.md §6 on one scene: image 3×H×W, labels (1..33) / instances / mask / fg_mask 1×H×W, the kept objects.

    ``nets``: ``inpainting``, ``style``, ``background``, ``fusion``. Objects whose 64×64 mask is empty are
    skipped; a fully masked object is generated with reference ``slots[k]`` (default: its position among
    the class's non-empty objects modulo the bank size); pasting is the authors' sequential formula.
    Returns ``fg_output``, ``bg_output``, ``masked_G``, ``result`` (3×H×W) and ``outputs`` (per object).
    """
    h, w = mask.shape[1:]
    canvases = {CAR: torch.zeros(3, h, w), PERSON: torch.zeros(3, h, w)}
    seen = {CAR: 0, PERSON: 0}
    outputs = []
    gen_count = 0
    for obj in objects:
        ic = obj.inst_crop[None]
        if float(ic.sum()) == 0:
            continue
        code = torch.tensor(CLASS_CODES[obj.cls]).view(1, 3, 1, 1)
        obj_mask = obj.mask[None] * ic
        position = seen[obj.cls]
        seen[obj.cls] += 1
        if float(obj_mask.sum()) == float(ic.sum()):
            refs = bank.get(obj.cls)
            k = slots[gen_count] if slots is not None else position % len(refs)
            gen_count += 1
            sty_m = refs.masks[k : k + 1]
            out = nets["style"].synthesise(ic * code, refs.images[k : k + 1] * sty_m, sty_m * code)[0]
        else:
            out = nets["inpainting"](obj.masked_image[None] * ic, ic, obj_mask, ic * code)
        outputs.append(out[0])
        b0, b1, b2, b3 = obj.box
        o = F.interpolate(out, size=(b1 - b0, b3 - b2), mode="bilinear", align_corners=False)[0]
        m = F.interpolate(ic, size=(b1 - b0, b3 - b2), mode="nearest")[0]
        c = canvases[obj.cls]
        c[:, b0:b1, b2:b3] = o * m + c[:, b0:b1, b2:b3] * (1 - m)
    canvas = canvases[CAR] + canvases[PERSON]
    masked = image * (1 - mask)
    fg_output = canvas * fg_mask * mask + masked * (1 - fg_mask * mask)
    seg = one_hot_labels(labels[None])
    edge = edge_map(instances[None]) * mask[None]
    bg = (1 - fg_mask)[None]
    g_in = torch.cat((masked[None], torch.cat((seg, edge), 1) * bg, mask[None]), 1)
    bg_output = nets["background"](g_in, seg, mask[None], bg)[0]
    masked_g = fg_output * fg_mask * mask + bg_output * bg[0] * mask + image * (1 - mask)
    result = masked_g
    if fuse:
        fake = nets["fusion"](masked_g[None], seg, mask[None], edge)[0]
        result = fake * mask + image * (1 - mask)
    return {"fg_output": fg_output, "bg_output": bg_output, "masked_G": masked_g, "result": result, "outputs": outputs}
