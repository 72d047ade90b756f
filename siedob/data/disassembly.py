"""Scene disassembly into objects and background (docs/spec.md §5.3 steps 1–4), shared by loaders and the edit chain.

Pure functions on torch tensors (CPU or CUDA). The object order is the authors': step 1 lists all
inpainting objects then all generation objects, each in ascending instance id; step 3 keeps that
order within each class and visits the classes in ``rules.classes`` order (cars, then persons).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F

from siedob.labels import CAR, PERSON
from siedob.profiles import DatasetProfile, ProfileLike, as_profile

Box = Tuple[int, int, int, int]


@dataclass(frozen=True)
class Rules:
    """Object-selection rules of one loader (docs/spec.md §5.3 step 3); build them with :func:`rules_from_config`."""

    classes: Tuple[int, ...] = (CAR, PERSON)
    fill_ratio: Mapping[int, float] = field(default_factory=dict)
    inside_fraction: float = 0.0
    person_aspect: Optional[Tuple[float, float]] = None
    max_num: int = 180
    margin: int = 2
    clamp: Optional[int] = None
    crop_size: Mapping[int, Tuple[int, int]] = field(default_factory=dict)
    #: the dataset profile: object classes and their tie rule, background classes, instance encoding
    profile: DatasetProfile = field(default_factory=lambda: as_profile(None))

    @property
    def aspect_class(self) -> Optional[int]:
        """The class ``person_aspect`` applies to: the profile's person class, if it has one."""
        return self.profile.object_names.get("person")


def _by_class(section: Mapping[str, Any], profile: DatasetProfile) -> Dict[int, Any]:
    """``{car: x, person: y}`` config block to ``{26: x, 24: y}`` (names of the profile's object classes)."""
    return {profile.object_class(name).label_id: value for name, value in section.items()}


def rules_from_config(data_cfg: Mapping[str, Any], train: bool) -> Rules:
    """Rules from a stage's ``data:`` section; the box clamp (G_B's 255) applies in training only."""
    aspect = data_cfg.get("person_aspect")
    profile = as_profile(data_cfg.get("profile"))
    return Rules(
        classes=tuple(profile.object_class(name).label_id for name in data_cfg["object_order"]),
        fill_ratio=_by_class(data_cfg["fill_ratio"], profile),
        inside_fraction=float(data_cfg["inside_fraction"]),
        person_aspect=tuple(aspect) if aspect is not None else None,
        max_num=int(data_cfg["max_num"]),
        margin=int(data_cfg["box_margin"]),
        clamp=data_cfg.get("clamp_box_at") if train else None,
        crop_size={k: tuple(v) for k, v in _by_class(data_cfg["object_size"], profile).items()},
        profile=profile,
    )


def edit_rules(profile: ProfileLike = None) -> Rules:
    """The edit chain's rules for a profile: its F loader's in test mode (no clamp), with its objects' fill ratios."""
    prof = as_profile(profile)
    f = prof.loaders["fusion"]
    return Rules(
        classes=prof.object_ids,
        fill_ratio={o.label_id: o.fill_ratio for o in prof.objects},
        inside_fraction=f.inside_fraction,
        person_aspect=None,
        max_num=f.max_num,
        margin=f.margin,
        clamp=None,
        crop_size=dict(f.crop_size),
        profile=prof,
    )


#: The edit chain's rules (docs/spec.md §6) for Cityscapes: the F loader's in test mode. Cars, then persons; any
#: pixel inside the mask counts; no person aspect test; fill ratios 0.6 (car) and 0.35 (person); box margin 2, no
#: clamp; 64×64 crops. Constants of the model (the profile's), not read from a training config.
EDIT_RULES = edit_rules("cityscapes")


@dataclass
class Candidate:
    """An instance found inside the mask (step 1): id, class, and whether it is wholly masked."""

    id: int
    cls: int
    is_generation: bool


@dataclass
class SceneObject:
    """A kept object (step 3): full-size instance mask, box ``[b0:b1, b2:b3]`` and its resized crops."""

    id: int
    cls: int
    is_generation: bool
    box: Box
    inst_mask: torch.Tensor
    image: torch.Tensor
    masked_image: torch.Tensor
    labels: torch.Tensor
    mask: torch.Tensor
    inst_crop: torch.Tensor


@dataclass
class Disassembly:
    """Result of :func:`disassemble`: candidates, kept objects (class order, then step-1 order), masks."""

    candidates: List[Candidate]
    objects: List[SceneObject]
    fg_mask: torch.Tensor
    bg_mask: torch.Tensor
    bg_mask_ori: torch.Tensor

    def of_class(self, cls: int) -> List[SceneObject]:
        """Kept objects of one class, in order."""
        return [o for o in self.objects if o.cls == cls]


def _plane(x: torch.Tensor) -> torch.Tensor:
    """H × W view of an H × W or 1 × H × W map."""
    return x[0] if x.dim() == 3 else x


def find_candidates(
    labels: torch.Tensor, instances: torch.Tensor, mask: torch.Tensor, profile: ProfileLike = None
) -> Tuple[List[Candidate], torch.Tensor]:
    """Step 1: objects touching the mask and their full-size instance masks (N × H × W bool), in order.

    Inside means mask == 1 and outside mask == 0 exactly; the class is the majority of the profile's
    object classes over the inside pixels, a tie going to the lowest label id (Cityscapes: person 24
    over car 26); inpainting objects come first.
    """
    prof = as_profile(profile)
    labels, instances, mask = _plane(labels), _plane(instances), _plane(mask)
    h, w = instances.shape
    inst = instances.reshape(-1)
    valid = inst >= prof.instance_factor
    ids = torch.unique(inst[valid])
    if ids.numel() == 0:
        return [], torch.zeros((0, h, w), dtype=torch.bool, device=instances.device)
    k = torch.searchsorted(ids, inst[valid])
    lab = labels.reshape(-1)[valid]
    m = mask.reshape(-1)[valid]
    inside, outside = m == 1, m == 0
    n = ids.numel()
    n_in = torch.bincount(k[inside], minlength=n)
    n_out = torch.bincount(k[outside], minlength=n)
    # inside pixels of each object class per candidate, classes in ascending id so that argmax (the first
    # maximum) breaks a tie towards the lowest id
    obj_ids = sorted(prof.object_ids)
    counts = torch.stack([torch.bincount(k[inside & (lab == c)], minlength=n) for c in obj_ids], 1)
    cls = torch.tensor(obj_ids, device=instances.device)[counts.argmax(1)]
    found = (n_in > 0) & (counts.sum(1) > 0)
    generation = n_out == 0
    order = torch.cat([torch.nonzero(found & ~generation)[:, 0], torch.nonzero(found & generation)[:, 0]])
    sel_ids, sel_cls = ids[order], cls[order]
    masks = (instances[None] == sel_ids[:, None, None]) & (labels[None] == sel_cls[:, None, None])
    gen = generation[order]
    cands = [Candidate(int(i), int(c), bool(g)) for i, c, g in zip(sel_ids.tolist(), sel_cls.tolist(), gen.tolist())]
    return cands, masks


def background_mask_ori(labels: torch.Tensor, mask: torch.Tensor, profile: ProfileLike = None) -> torch.Tensor:
    """Step 2: background classes seen inside the mask: whole region if also outside, else its masked part."""
    prof = as_profile(profile)
    labels, mask = _plane(labels).long(), _plane(mask)
    inside, outside = mask == 1, mask == 0
    n = max(prof.lab_dim, int(max(prof.background_classes)) + 1)
    flat = labels.reshape(-1)
    n_in = torch.bincount(flat[inside.reshape(-1)], minlength=n)[:n] > 0
    n_out = torch.bincount(flat[outside.reshape(-1)], minlength=n)[:n] > 0
    is_bg = torch.zeros(n, dtype=torch.bool, device=labels.device)
    is_bg[list(prof.background_classes)] = True
    whole, part = is_bg & n_in & n_out, is_bg & n_in & ~n_out
    lab = labels.clamp(0, n - 1)
    return (whole[lab] | part[lab] & inside)[None].float()


def object_boxes(masks: torch.Tensor) -> List[Optional[Tuple[int, int, int, int]]]:
    """First/last row and column (r0, r1, c0, c1) of each N × H × W mask; None for an empty mask."""
    if masks.shape[0] == 0:
        return []
    h, w = masks.shape[1:]
    rows, cols = masks.any(2), masks.any(1)
    r0 = rows.int().argmax(1)
    r1 = h - 1 - rows.flip(1).int().argmax(1)
    c0 = cols.int().argmax(1)
    c1 = w - 1 - cols.flip(1).int().argmax(1)
    nonempty = rows.any(1)
    stacked = torch.stack([r0, r1, c0, c1, nonempty.long()], 1).tolist()
    return [tuple(s[:4]) if s[4] else None for s in stacked]


def slice_box(extent: Tuple[int, int, int, int], h: int, w: int, rules: Rules) -> Box:
    """Box slice ``[max(0, r0 - m), min(r1 + m, H)]`` × same for columns (end exclusive, clamped)."""
    r0, r1, c0, c1 = extent
    ch = rules.clamp if rules.clamp is not None else h
    cw = rules.clamp if rules.clamp is not None else w
    m = rules.margin
    return max(0, r0 - m), min(r1 + m, ch), max(0, c0 - m), min(c1 + m, cw)


def keep_object(
    cls: int, extent: Optional[Tuple[int, int, int, int]], box: Box, area: float, inside: float, rules: Rules
) -> bool:
    """Step 3 selection test: non-degenerate extent, fill ratio, inside fraction, person aspect."""
    if extent is None or extent[1] - extent[0] <= 0 or extent[3] - extent[2] <= 0:
        return False
    bh, bw = box[1] - box[0], box[3] - box[2]
    if bh <= 0 or bw <= 0 or area <= 0:
        return False
    if not area / (bh * bw) > rules.fill_ratio[cls]:
        return False
    if not inside / area > rules.inside_fraction:
        return False
    if rules.person_aspect is not None and cls == rules.aspect_class:
        lo, hi = rules.person_aspect
        if not lo < bh / bw < hi:
            return False
    return True


def crop_object(
    image: torch.Tensor,
    masked_image: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor,
    inst_mask: torch.Tensor,
    box: Box,
    size: Tuple[int, int],
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cut a box and resize: image and masked image bilinear, labels and mask nearest, instance mask bilinear > 0.5."""
    b0, b1, b2, b3 = box
    smooth = torch.cat([image, masked_image, inst_mask.to(image.dtype)], 0)[None, :, b0:b1, b2:b3]
    sharp = torch.cat([labels.to(image.dtype), mask.to(image.dtype)], 0)[None, :, b0:b1, b2:b3]
    smooth = F.interpolate(smooth, size=size, mode="bilinear", align_corners=False)[0]
    sharp = F.interpolate(sharp, size=size, mode="nearest")[0]
    inst_crop = (smooth[6:7] > 0.5).to(image.dtype)
    return smooth[0:3], smooth[3:6], sharp[0:1], sharp[1:2], inst_crop


def disassemble(
    image: torch.Tensor, labels: torch.Tensor, instances: torch.Tensor, mask: torch.Tensor, rules: Rules
) -> Disassembly:
    """Steps 1–4 of docs/spec.md §5.3 on one scene: image 3×H×W in [-1, 1]; labels, instances, mask 1×H×W."""
    labels1 = labels if labels.dim() == 3 else labels[None]
    inst1 = instances if instances.dim() == 3 else instances[None]
    mask1 = mask if mask.dim() == 3 else mask[None]
    h, w = mask1.shape[1:]
    masked_image = image * (1 - mask1)
    cands, masks = find_candidates(labels1, inst1, mask1, rules.profile)
    extents = object_boxes(masks)
    areas = masks.sum((1, 2))
    insides = (masks * mask1).sum((1, 2))
    stats = torch.stack([areas.to(insides.dtype), insides], 1).tolist() if cands else []
    objects: List[SceneObject] = []
    fg = torch.zeros((1, h, w), dtype=image.dtype, device=image.device)
    for cls in rules.classes:
        kept = 0
        for j, cand in enumerate(cands):
            if cand.cls != cls or kept >= rules.max_num:
                continue
            ext = extents[j]
            box = slice_box(ext, h, w, rules) if ext is not None else (0, 0, 0, 0)
            if not keep_object(cls, ext, box, stats[j][0], stats[j][1], rules):
                continue
            inst_mask = masks[j][None].to(image.dtype)
            crops = crop_object(image, masked_image, labels1, mask1, inst_mask, box, rules.crop_size[cls])
            objects.append(SceneObject(cand.id, cls, cand.is_generation, box, inst_mask, *crops))
            fg = torch.maximum(fg, inst_mask)
            kept += 1
    return Disassembly(cands, objects, fg, 1 - fg, background_mask_ori(labels1, mask1, rules.profile))


def stack_objects(objects: List[SceneObject]) -> Dict[str, torch.Tensor]:
    """Stack the crops of same-size objects into batches (image, masked_image, labels, mask, inst_crop)."""
    if not objects:
        raise ValueError("stack_objects needs at least one object")
    keys = ("image", "masked_image", "labels", "mask", "inst_crop")
    return {k: torch.stack([getattr(o, k) for o in objects]) for k in keys}
