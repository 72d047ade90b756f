"""SIEDOB's composition (docs/spec.md §6) for a batch of scenes: object plan, object networks, paste, G_B, masked_G, F.

One module for the edit chain (:class:`siedob.edit.Editor`, a validated front end with one scene) and
for fusion training (the frozen chain that feeds F). The plan runs on the host (it needs box
coordinates anyway); the networks and the compositing run on the chain's device without host
synchronisation: the objects of all scenes that go to the same network are one forward, G_B and F
run once per batch, and the paste-back is one scatter for the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Union

import torch
from torch import nn

from siedob.data.disassembly import Disassembly, SceneObject
from siedob.data.style_bank import StyleBank
from siedob.maps import class_code, class_map, edge_map, one_hot_labels
from siedob.model.networks import power_iterations
from siedob.model.paste import paste_objects
from siedob.model.plan import ObjectPlan, plan_objects
from siedob.profiles import ProfileLike, as_profile


@dataclass
class SceneBatch:
    """B scenes of one size: image B×3×H×W in [-1, 1] (BGR), labels B×1×H×W (ids after the profile's unlabeled
    rule), instances B×1×H×W (integer ids), mask B×1×H×W (1 = regenerate), fg_mask B×1×H×W and each scene's kept
    objects (disassembly)."""

    image: torch.Tensor
    labels: torch.Tensor
    instances: torch.Tensor
    mask: torch.Tensor
    fg_mask: torch.Tensor
    objects: Sequence[Sequence[SceneObject]]


@dataclass
class ObjectResult:
    """One generated object: id, class, box ``[b0:b1, b2:b3]``, branch, style slot (-1 for inpainting), output."""

    id: int
    cls: int
    box: tuple
    generation: bool
    style_slot: int
    output: torch.Tensor


@dataclass
class EditStages:
    """The intermediates of one scene (3×H×W in [-1, 1] on the chain's device, masks 1×H×W).

    ``fake_F`` is None when the chain ran without the fusion network (then ``result`` is ``masked_G``).
    """

    result: torch.Tensor
    fg_output: torch.Tensor
    bg_output: torch.Tensor
    masked_G: torch.Tensor
    fake_F: Optional[torch.Tensor]
    fg_mask: torch.Tensor
    mask: torch.Tensor
    objects: List[ObjectResult] = field(default_factory=list)
    disassembly: Optional[Disassembly] = None


@dataclass
class ChainOutput:
    """The chain's outputs for a batch (B×C×H×W each), the object plan and the raw object outputs (N×3×64×64)."""

    result: torch.Tensor
    fg_output: torch.Tensor
    bg_output: torch.Tensor
    masked_G: torch.Tensor
    fake_F: Optional[torch.Tensor]
    fg_mask: torch.Tensor
    mask: torch.Tensor
    plan: ObjectPlan
    object_outputs: Optional[torch.Tensor]

    def scene(self, i: int) -> EditStages:
        """The stages of scene ``i``, with its generated objects."""
        objects = [
            ObjectResult(o.id, o.cls, o.box, g, s, self.object_outputs[k])
            for k, (o, sc, g, s) in enumerate(
                zip(self.plan.objects, self.plan.scenes, self.plan.generation, self.plan.slots)
            )
            if sc == i
        ]
        fake = self.fake_F[i] if self.fake_F is not None else None
        return EditStages(
            self.result[i],
            self.fg_output[i],
            self.bg_output[i],
            self.masked_G[i],
            fake,
            self.fg_mask[i],
            self.mask[i],
            objects,
        )


class Chain(nn.Module):
    """G_OI, G_OG, G_B and (optionally) F composed as in docs/spec.md §6; call it on a :class:`SceneBatch`.

    The networks keep the mode their owner sets: the editor runs them in eval mode; fusion training
    runs the frozen ones in train mode, as the authors do, so their spectral-norm vectors advance
    (G_B once per batch; G_OI once per inpainted object, see :func:`power_iterations`). ``profile``: the
    dataset profile (class codes, ``lab_dim``, paste order), Cityscapes by default.
    """

    def __init__(
        self,
        inpainting: nn.Module,
        style: nn.Module,
        background: nn.Module,
        fusion: Optional[nn.Module] = None,
        device: Union[str, torch.device] = "cpu",
        profile: ProfileLike = None,
    ) -> None:
        super().__init__()
        self.device = torch.device(device)
        self.profile = as_profile(profile)
        self.inpainting = inpainting.to(self.device)
        self.style = style.to(self.device)
        self.background = background.to(self.device)
        self.fusion = fusion.to(self.device) if fusion is not None else None

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, non_blocking=True)

    def generate(self, plan: ObjectPlan) -> torch.Tensor:
        """Raw outputs (N×3×64×64) of G_OI / G_OG for the planned objects: one forward per network.

        G_OI in train mode makes one spectral-norm power iteration per inpainted object, as the authors'
        one call per object does; its outputs all use the final u/v (theirs: object k the k-th), a
        difference within the power iteration's convergence (docs/model-layer.md).
        """
        inst = plan.crops["inst_crop"]
        classes = [o.cls for o in plan.objects]
        cls_map = inst * torch.stack([class_code(c, profile=self.profile) for c in classes])
        out = torch.empty((len(plan.objects), 3) + tuple(inst.shape[2:]), device=self.device)
        inp, gen = plan.indices(False), plan.indices(True)
        if inp:
            idx = torch.tensor(inp)
            ic = inst.index_select(0, idx)
            masked = plan.crops["masked_image"].index_select(0, idx) * ic
            obj_mask = plan.crops["mask"].index_select(0, idx) * ic
            args = (masked, ic, obj_mask, cls_map.index_select(0, idx))
            with power_iterations(self.inpainting, len(inp)):
                res = self.inpainting(*(self._up(a) for a in args))
            out.index_copy_(0, self._up(idx), res)
        if gen:
            idx = torch.tensor(gen)
            gen_cls = cls_map.index_select(0, idx)
            code = None
            if self.noise_styles:  # N(0, 1) codes from torch's global generator (on the host: device-independent)
                code = self._up(torch.randn(len(gen), self.style.style_dim, 1, 1))
                sty_img, sty_cls = torch.zeros((len(gen), 3) + tuple(inst.shape[2:])), torch.zeros_like(gen_cls)
            else:
                sty_img = torch.stack(
                    [plan.refs[i].images[plan.slots[i]] * plan.refs[i].masks[plan.slots[i]] for i in gen]
                )
                sty_cls = torch.stack(
                    [class_map(plan.refs[i].masks[plan.slots[i]], classes[i], self.profile) for i in gen]
                )
            with power_iterations(self.style, len(gen)):
                res = self.style.synthesise(*(self._up(a) for a in (gen_cls, sty_img, sty_cls)), code)[0]
            out.index_copy_(0, self._up(idx), res)
        return out

    @property
    def noise_styles(self) -> bool:
        """Whether G_OG was trained on noise codes (``train.style_source: noise``) and so draws them here too."""
        return getattr(self.style, "style_source", "bank") == "noise"

    def forward(
        self, scenes: SceneBatch, banks: Sequence[StyleBank], pooled_styles: bool = False, fuse: bool = True
    ) -> ChainOutput:
        """Compose every scene of the batch; ``banks``: one style bank per scene (see :func:`plan_objects`
        for ``pooled_styles``); ``fuse=False`` stops before F and returns ``masked_G`` as the result."""
        if fuse and self.fusion is None:
            raise ValueError("fuse=True needs a chain built with the fusion network")
        plan = plan_objects(
            scenes.objects, banks, pooled=pooled_styles, profile=self.profile, need_styles=not self.noise_styles
        )
        img, msk = self._up(scenes.image), self._up(scenes.mask)
        lab, inst = self._up(scenes.labels), self._up(scenes.instances)
        fg_mask = self._up(scenes.fg_mask)
        b, _, h, w = img.shape
        bg_mask = 1 - fg_mask
        masked_img = img * (1 - msk)
        outputs = None
        if plan.objects:
            outputs = self.generate(plan)
            boxes = [o.box for o in plan.objects]
            classes = [o.cls for o in plan.objects]
            inst_crops = self._up(plan.crops["inst_crop"])
            canvas = paste_objects(outputs, inst_crops, boxes, classes, h, w, plan.scenes, b, self.profile.object_ids)
        else:
            canvas = torch.zeros_like(img)
        fg_in = fg_mask * msk
        fg_output = canvas * fg_in + masked_img * (1 - fg_in)
        segmap = one_hot_labels(lab, self.profile.lab_dim)
        edge = edge_map(inst) * msk
        g_in = torch.cat((masked_img, torch.cat((segmap, edge), 1) * bg_mask, msk), 1)
        bg_output = self.background(g_in, segmap, msk, bg_mask)
        masked_g = fg_output * fg_in + bg_output * bg_mask * msk + img * (1 - msk)
        fake_f, result = None, masked_g
        if fuse:
            fake_f = self.fusion(masked_g, segmap, msk, edge)
            result = fake_f * msk + img * (1 - msk)
        return ChainOutput(result, fg_output, bg_output, masked_g, fake_f, fg_mask, msk, plan, outputs)
