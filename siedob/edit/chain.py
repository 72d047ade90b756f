"""The edit chain of docs/spec.md §6: disassemble, generate objects, paste, fill the background, fuse.

The disassembly and the per-object decisions run on the host (they need box coordinates anyway);
the networks and the compositing run on the editor's device without host synchronisation: every
object that goes to the same network is one batched forward, and the paste-back is one scatter per
scene (the last object of a class wins where objects overlap, as in the authors' sequential paste).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import remove_spectral_norm
from torch.nn.utils.spectral_norm import SpectralNorm

from siedob.checkpoints import RELEASED, CheckpointError, load_released_network
from siedob.data.disassembly import Disassembly, Rules, SceneObject, disassemble, edit_rules, stack_objects
from siedob.data.io import image_to_tensor
from siedob.device import resolve_device
from siedob.edit.inputs import SIDE_MULTIPLE, EditError
from siedob.edit.style_bank import CLASS_NAMES, StyleBank
from siedob.labels import CAR, LAB_DIM, PERSON
from siedob.maps import class_code, class_map, edge_map, one_hot_labels

PathLike = Union[str, Path]
ArrayOrTensor = Union[np.ndarray, torch.Tensor]

#: Order in which the classes' canvases are built (cars, then persons).
PASTE_CLASSES: Tuple[int, ...] = (CAR, PERSON)

CHECKPOINT_HINT = (
    "download the authors' released sub-networks (object_inpainting.pth, object_style.pth, bg.pth, Fnet.pth) "
    "into {dir} (linked from the SIEDOB GitHub README / the authors' Google Drive), "
    "or run siedob-quickstart to train small ones"
)


def fold_spectral_norm(net: nn.Module) -> nn.Module:
    """Replace each spectral-norm hook by the weight it computes in eval mode (exact; for inference only)."""
    for module in net.modules():
        if any(isinstance(h, SpectralNorm) for h in module._forward_pre_hooks.values()):
            remove_spectral_norm(module)
    return net


def load_network(path: PathLike, role: str, fold: bool = True, mmap: bool = False) -> nn.Module:
    """Strictly load a released-format file into a network built without random initialisation (eval mode).

    With ``fold`` the spectral-norm weights are computed once here instead of at every forward;
    ``mmap``: see :func:`siedob.checkpoints.load_released_network`.
    """
    net = load_released_network(path, role, mmap=mmap)
    return fold_spectral_norm(net) if fold else net


@dataclass
class ObjectResult:
    """One generated object: id, class, box ``[b0:b1, b2:b3]``, branch, style slot (-1 for inpainting), output."""

    id: int
    cls: int
    box: Tuple[int, int, int, int]
    generation: bool
    style_slot: int
    output: torch.Tensor


@dataclass
class EditStages:
    """The intermediates of one edit (all 3×H×W in [-1, 1] on the editor's device, masks 1×H×W)."""

    result: torch.Tensor
    fg_output: torch.Tensor
    bg_output: torch.Tensor
    masked_G: torch.Tensor
    fake_F: torch.Tensor
    fg_mask: torch.Tensor
    mask: torch.Tensor
    objects: List[ObjectResult] = field(default_factory=list)
    disassembly: Optional[Disassembly] = None


@dataclass
class ObjectPlan:
    """Host-side decisions for the non-empty kept objects, in order (cars, then persons)."""

    objects: List[SceneObject]
    generation: List[bool]
    slots: List[int]
    crops: Dict[str, torch.Tensor]


def plan_objects(objects: List[SceneObject], bank: StyleBank) -> ObjectPlan:
    """Drop objects whose 64×64 mask is empty, choose each branch on the crops and each style slot.

    Generation when ``sum(mask_crop * inst_crop) == sum(inst_crop)``; the slot k is the object's
    position among the non-empty kept objects of its class, modulo that class's bank size.
    """
    if not objects:
        return ObjectPlan([], [], [], {})
    crops = stack_objects(objects)
    inst_sum = crops["inst_crop"].sum((1, 2, 3))
    obj_sum = (crops["mask"] * crops["inst_crop"]).sum((1, 2, 3))
    nonempty = (inst_sum > 0).tolist()
    full = (obj_sum == inst_sum).tolist()
    keep = [i for i, ok in enumerate(nonempty) if ok]
    seen: Dict[int, int] = defaultdict(int)
    kept, generation, slots = [], [], []
    for i in keep:
        obj = objects[i]
        position = seen[obj.cls]
        seen[obj.cls] += 1
        slot = -1
        if full[i]:
            refs = bank.get(obj.cls)
            if refs is None:
                name = CLASS_NAMES[obj.cls]
                raise EditError(
                    f"{bank.source}: no {name} style references, but the edit draws a new {name} "
                    f"(instance {obj.id}); add {name}/images and {name}/inst_mask files"
                )
            slot = position % len(refs)
        kept.append(obj)
        generation.append(bool(full[i]))
        slots.append(slot)
    index = torch.tensor(keep, dtype=torch.long)
    return ObjectPlan(kept, generation, slots, {k: v.index_select(0, index) for k, v in crops.items()})


def _codes(classes: List[int]) -> torch.Tensor:
    """N×3×1×1 class codes."""
    return torch.stack([class_code(c) for c in classes])


def paste_indices(boxes: List[Tuple[int, int, int, int]], classes: List[int], h: int, w: int) -> Dict:
    """Host-side index plan of the paste: objects grouped by box size, flat target pixels, paste order keys.

    Returns ``groups`` ({(bh, bw): [object indices]}), ``target`` (flat index into a (class, H, W) stack of
    canvases for every pasted pixel, group by group) and ``order`` (the object's position, same layout).
    """
    groups: Dict[Tuple[int, int], List[int]] = defaultdict(list)
    for i, (b0, b1, b2, b3) in enumerate(boxes):
        groups[(b1 - b0, b3 - b2)].append(i)
    targets, orders = [], []
    for (bh, bw), members in groups.items():
        for i in members:
            b0, _, b2, _ = boxes[i]
            plane = PASTE_CLASSES.index(classes[i]) * h * w
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
    boxes: List[Tuple[int, int, int, int]],
    classes: List[int],
    h: int,
    w: int,
) -> torch.Tensor:
    """Car canvas + person canvas (3×H×W): each object ``bilinear(output, box)`` where ``nearest(inst_crop, box)``.

    Equal to the authors' per-object ``canvas[box] = o·m + canvas[box]·(1 − m)`` in order (m is 0/1, so
    the last object covering a pixel wins), done as one scatter-max of paste-order keys per scene.
    """
    device = outputs.device
    plan = paste_indices(boxes, classes, h, w)
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
    planes = len(PASTE_CLASSES) * h * w
    winner = torch.full((planes,), -1, dtype=torch.long, device=device).scatter_reduce_(0, target, key, "amax")
    src = obuf.index_select(1, winner.clamp(min=0) % n)
    canvases = torch.where(winner >= 0, src, torch.zeros((), device=device)).view(3, len(PASTE_CLASSES), h, w)
    return canvases.sum(1)


def _as_tensor(x: ArrayOrTensor, name: str, image: bool = False) -> torch.Tensor:
    """Host tensor of an input: images 3×H×W float in [-1, 1] (uint8 BGR arrays converted), maps 1×H×W."""
    if isinstance(x, np.ndarray):
        if image:
            if x.dtype != np.uint8 or x.ndim != 3 or x.shape[2] != 3:
                raise EditError(f"{name}: expected a BGR uint8 H×W×3 array, got {x.dtype} {x.shape}")
            return image_to_tensor(x)
        x = torch.from_numpy(np.ascontiguousarray(x))
    t = x.detach().cpu()
    if image:
        if t.dim() == 4 and t.shape[0] == 1:
            t = t[0]
        if t.dim() != 3 or t.shape[0] != 3:
            raise EditError(f"{name}: expected a 3×H×W tensor, got shape {tuple(t.shape)}")
        return t.float()
    while t.dim() > 2 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 2:
        raise EditError(f"{name}: expected an H×W map, got shape {tuple(t.shape)}")
    return t[None]


class Editor:
    """SIEDOB's edit chain with four loaded generators; see :meth:`edit`."""

    def __init__(
        self,
        inpainting: nn.Module,
        style: nn.Module,
        background: nn.Module,
        fusion: nn.Module,
        device: Union[str, torch.device] = "auto",
        rules: Optional[Rules] = None,
    ) -> None:
        self.device = resolve_device(device)
        self.inpainting = inpainting.to(self.device).eval().requires_grad_(False)
        self.style = style.to(self.device).eval().requires_grad_(False)
        self.background = background.to(self.device).eval().requires_grad_(False)
        self.fusion = fusion.to(self.device).eval().requires_grad_(False)
        self.rules = rules if rules is not None else edit_rules()

    @classmethod
    def from_checkpoints(
        cls, directory: PathLike, device: Union[str, torch.device] = "auto", mmap: bool = False
    ) -> Editor:
        """Load ``object_inpainting.pth``, ``object_style.pth``, ``bg.pth`` and ``Fnet.pth`` from a folder.

        ``mmap`` maps the weights from the files instead of reading them: a faster start for a
        short-lived process (the command line), but the files must not be rewritten in place meanwhile.
        """
        directory = Path(directory)
        hint = CHECKPOINT_HINT.format(dir=directory)
        if not directory.is_dir():
            raise CheckpointError(f"{directory}: checkpoint folder not found; {hint}")
        missing = [f.filename for f in RELEASED.values() if not (directory / f.filename).is_file()]
        if missing:
            raise CheckpointError(f"{directory / missing[0]}: file not found; {hint}")
        dev = resolve_device(device)
        nets = [load_network(directory / RELEASED[role].filename, role, mmap=mmap) for role in RELEASED]
        return cls(*nets, device=dev)

    def _generate(self, plan: ObjectPlan, bank: StyleBank) -> torch.Tensor:
        """Raw outputs (N×3×64×64) of G_OI / G_OG for the planned objects: one batched forward per network."""
        dev = self.device
        inst = plan.crops["inst_crop"]
        classes = [o.cls for o in plan.objects]
        cls_map = inst * _codes(classes)
        out = torch.empty((len(plan.objects), 3) + tuple(inst.shape[2:]), device=dev)
        inp = [i for i, g in enumerate(plan.generation) if not g]
        gen = [i for i, g in enumerate(plan.generation) if g]
        if inp:
            idx = torch.tensor(inp)
            ic = inst.index_select(0, idx)
            masked = plan.crops["masked_image"].index_select(0, idx) * ic
            obj_mask = plan.crops["mask"].index_select(0, idx) * ic
            args = (masked, ic, obj_mask, cls_map.index_select(0, idx))
            res = self.inpainting(*(a.to(dev, non_blocking=True) for a in args))
            out.index_copy_(0, idx.to(dev, non_blocking=True), res)
        if gen:
            idx = torch.tensor(gen)
            sty_img, sty_cls = [], []
            for i in gen:
                refs = bank.get(classes[i])
                k = plan.slots[i]
                sty_img.append(refs.images[k] * refs.masks[k])
                sty_cls.append(class_map(refs.masks[k], classes[i]))
            args = (cls_map.index_select(0, idx), torch.stack(sty_img), torch.stack(sty_cls))
            res = self.style.synthesise(*(a.to(dev, non_blocking=True) for a in args))[0]
            out.index_copy_(0, idx.to(dev, non_blocking=True), res)
        return out

    @torch.inference_mode()
    def edit(
        self,
        image: ArrayOrTensor,
        labels: ArrayOrTensor,
        instances: ArrayOrTensor,
        mask: ArrayOrTensor,
        style_bank: Optional[StyleBank] = None,
        return_stages: bool = False,
        disassembly: Optional[Disassembly] = None,
    ) -> Union[torch.Tensor, EditStages]:
        """Edit one scene; returns the result (3×H×W in [-1, 1], BGR, on the editor's device) or all stages.

        ``image``: BGR uint8 H×W×3 array or 3×H×W tensor in [-1, 1]; ``labels``: label ids (0 → 33);
        ``instances``: Cityscapes instance ids; ``mask``: H×W in [0, 1], 1 = regenerate. H and W must be
        multiples of 16. An all-zero mask returns the image unchanged. ``disassembly``: the scene's
        disassembly when the caller already has it (the fusion stage's loader computes it), so it is not
        done twice.
        """
        bank = style_bank if style_bank is not None else StyleBank({}, "no style bank")
        img = _as_tensor(image, "image", image=True)
        lab = _as_tensor(labels, "labels").long()
        inst = _as_tensor(instances, "instances")
        msk = _as_tensor(mask, "mask").float()
        h, w = img.shape[1:]
        if h % SIDE_MULTIPLE or w % SIDE_MULTIPLE:
            raise EditError(f"image: height and width must be multiples of {SIDE_MULTIPLE}, got {h}×{w}")
        for name, t in (("labels", lab), ("instances", inst), ("mask", msk)):
            if tuple(t.shape[1:]) != (h, w):
                raise EditError(f"{name}: size {t.shape[1]}×{t.shape[2]} does not match the image ({h}×{w})")
        if inst.is_floating_point() or inst.dtype == torch.bool:
            raise EditError(f"instances: expected integer instance ids, got {inst.dtype}")
        inst = inst.long()
        lab = torch.where(lab == 0, torch.full_like(lab, LAB_DIM - 1), lab)
        if int(lab.min()) < 0 or int(lab.max()) >= LAB_DIM:
            raise EditError(f"labels: label ids must lie in 0..{LAB_DIM - 1}")
        dev = self.device
        if not bool(msk.any()):
            out = img.to(dev)
            if not return_stages:
                return out
            zero = torch.zeros_like(msk).to(dev)
            return EditStages(out, out, out, out, out, zero, zero)
        dis = disassembly if disassembly is not None else disassemble(img, lab, inst, msk, self.rules)
        plan = plan_objects(dis.objects, bank)
        img_d, msk_d = img.to(dev, non_blocking=True), msk.to(dev, non_blocking=True)
        lab_d, inst_d = lab.to(dev, non_blocking=True), inst.to(dev, non_blocking=True)
        fg_mask = dis.fg_mask.to(dev, non_blocking=True)
        bg_mask = 1 - fg_mask
        masked_img = img_d * (1 - msk_d)
        objects: List[ObjectResult] = []
        if plan.objects:
            outputs = self._generate(plan, bank)
            boxes = [o.box for o in plan.objects]
            classes = [o.cls for o in plan.objects]
            canvas = paste_objects(outputs, plan.crops["inst_crop"].to(dev, non_blocking=True), boxes, classes, h, w)
            if return_stages:
                objects = [
                    ObjectResult(o.id, o.cls, o.box, g, s, outputs[i])
                    for i, (o, g, s) in enumerate(zip(plan.objects, plan.generation, plan.slots))
                ]
        else:
            canvas = torch.zeros_like(img_d)
        fg_in = fg_mask * msk_d
        fg_output = canvas * fg_mask * msk_d + masked_img * (1 - fg_in)
        segmap = one_hot_labels(lab_d[None])
        edge = edge_map(inst_d[None]) * msk_d[None]
        g_in = torch.cat((masked_img[None], torch.cat((segmap, edge), 1) * bg_mask[None], msk_d[None]), 1)
        bg_output = self.background(g_in, segmap, msk_d[None], bg_mask[None])[0]
        masked_g = fg_output * fg_mask * msk_d + bg_output * bg_mask * msk_d + img_d * (1 - msk_d)
        fake_f = self.fusion(masked_g[None], segmap, msk_d[None], edge)[0]
        result = fake_f * msk_d + img_d * (1 - msk_d)
        if not return_stages:
            return result
        return EditStages(result, fg_output, bg_output, masked_g, fake_f, fg_mask, msk_d, objects, dis)
