"""The four stage trainers (docs/spec.md §4): G_OI, G_OG, G_B with boundary patches, and F on the frozen chain.

Batches are those of :mod:`siedob.data.datasets` (``ObjectDataset`` / ``SceneDataset``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from siedob.checkpoints import RELEASED, CheckpointError, load_state_into
from siedob.data.style_bank import StyleBank, draw_style_bank, style_files
from siedob.errors import SiedobError
from siedob.maps import one_hot_labels
from siedob.model import Chain, ChainOutput, SceneBatch, load_network
from siedob.nn import BackgroundGenerator, FusionGenerator, ObjectInpaintingWrapper, ObjectStyleWrapper
from siedob.train.losses import hinge_d_loss, hinge_g_loss, style_cycle_loss
from siedob.train.trainer import Tensors, Trainer

PathLike = Union[str, Path]


def _cat(*xs: torch.Tensor) -> torch.Tensor:
    return torch.cat(xs, dim=1)


class ObjectInpaintingTrainer(Trainer):
    """G_OI: 10·L1 + GAN(D_inp on the composite with mask and class map) + 10·VGG."""

    stage = "instance_inpainting"
    role = "object_inpainting"
    g_name = "netG"
    d_names = ("netD_inp",)

    def build_generator(self) -> nn.Module:
        return ObjectInpaintingWrapper(int(self.mcfg["ngf"]))

    def released_module(self) -> nn.Module:
        return self.generator.fg_inpainting

    def prepare(self, batch: Mapping[str, Any]) -> Tensors:
        b = self.to_device(batch)
        inst = b["inst_mask"]
        b["mask"] = b["mask"] * inst
        b["obj"] = b["image"] * inst
        b["input"] = b["image"] * (1 - b["mask"]) * inst
        return b

    def forward_g(self, b: Tensors) -> Tensors:
        out, comp = self.G(b["input"], b["inst_mask"], b["mask"], b["class_map"])
        return {"out": out, "comp": comp}

    def loss_d(self, name: str, b: Tensors, out: Tensors) -> Tuple[torch.Tensor, Tensors]:
        lam = float(self.tcfg["lambda_gan"])
        fake = self.D(name, _cat(out["comp"].detach(), b["mask"], b["class_map"]))
        real = self.D(name, _cat(b["obj"], b["mask"], b["class_map"]))
        loss = hinge_d_loss(real, fake, lam)
        return loss, {"D_inp": loss}

    def loss_g(self, b: Tensors, out: Tensors) -> Tuple[torch.Tensor, Tensors]:
        t = self.tcfg
        l1 = float(t["lambda_l1"]) * F.l1_loss(out["out"].float(), b["obj"])
        fake = self.D_frozen("netD_inp", _cat(out["comp"], b["mask"], b["class_map"]))
        gan = float(t["lambda_gan"]) * hinge_g_loss(fake)
        vgg = float(t["lambda_vgg"]) * self.vgg_loss(out["out"], y_feats=self.vgg_target(b["obj"]))
        return l1 + gan + vgg, {"G_l1": l1, "G_gan": gan, "G_vgg": vgg}

    def panel(self, b: Tensors, out: Tensors) -> Tensors:
        return {"input": b["input"], "mask": b["mask"], "output": out["comp"], "target": b["obj"]}


class ObjectStyleTrainer(Trainer):
    """G_OG: a reconstruction and a style-transfer pass per batch (batched into one forward here).

    Losses: 10·L1(x_rec, obj) + GAN over both passes + 10·VGG(cat(x_rec, x_sty), cat(obj, obj))
    + style-cycle over both passes. InstanceNorm is per sample, so one forward of the 2B batch
    equals the authors' two forwards; the VGG target φ(obj) is computed once.
    """

    stage = "instance_style"
    role = "object_style"
    g_name = "netG"
    d_names = ("netD_style",)

    def build_generator(self) -> nn.Module:
        return ObjectStyleWrapper(int(self.mcfg["ngf"]))

    def released_module(self) -> nn.Module:
        return self.generator.fg_style

    def prepare(self, batch: Mapping[str, Any]) -> Tensors:
        b = self.to_device(batch)
        b["obj"] = b["image"] * b["inst_mask"]
        return b

    def forward_g(self, b: Tensors) -> Tensors:
        cls, inst, obj = b["class_map"], b["inst_mask"], b["obj"]
        x, code, cycle = self.G(
            torch.cat([cls, cls]), torch.cat([obj, b["sty_img"]]), torch.cat([cls, b["sty_cls_map"]]),
            torch.cat([inst, inst]),
        )
        inst2, cls2 = torch.cat([inst, inst]), torch.cat([cls, cls])
        return {"x": x, "code": code, "cycle": cycle, "fake_in": _cat(x * inst2, cls2)}

    def _real(self, b: Tensors) -> torch.Tensor:
        return _cat(b["obj"], b["class_map"])

    def loss_d(self, name: str, b: Tensors, out: Tensors) -> Tuple[torch.Tensor, Tensors]:
        fake = self.D(name, out["fake_in"].detach())
        real = self.D(name, self._real(b))
        loss = hinge_d_loss(real, fake, float(self.tcfg["lambda_gan"]))
        return loss, {"D_style": loss}

    def loss_g(self, b: Tensors, out: Tensors) -> Tuple[torch.Tensor, Tensors]:
        t = self.tcfg
        n = b["obj"].shape[0]
        x_rec = out["x"][:n]
        l1 = float(t["lambda_l1"]) * F.l1_loss(x_rec.float(), b["obj"])
        gan = float(t["lambda_gan"]) * hinge_g_loss(self.D_frozen("netD_style", out["fake_in"]))
        feats = [torch.cat([f, f]) for f in self.vgg_target(b["obj"])]
        vgg = float(t["lambda_vgg"]) * self.vgg_loss(out["x"], y_feats=feats)
        cyc = float(t["lambda_cycle"]) * style_cycle_loss(out["code"], out["cycle"])
        return l1 + gan + vgg + cyc, {"G_l1": l1, "G_gan": gan, "G_vgg": vgg, "G_cycle": cyc}

    def panel(self, b: Tensors, out: Tensors) -> Tensors:
        n = b["obj"].shape[0]
        return {"input": b["sty_img"], "mask": b["inst_mask"], "output": out["x"][:n],
                "transfer": out["x"][n:] * b["inst_mask"], "target": b["obj"]}


def boundary_map(mask: torch.Tensor) -> torch.Tensor:
    """``mask − erode(mask, 2×2 rect)`` with OpenCV's anchor (offsets −1, 0) and border (no erosion)."""
    padded = F.pad(mask, (1, 0, 1, 0), value=1.0)
    eroded = -F.max_pool2d(-padded, 2, stride=1)
    return mask - eroded


def sample_patch_boxes(
    mask: torch.Tensor, per_sample: int, side_range: Tuple[int, int], generator: Optional[torch.Generator] = None
) -> List[List[Tuple[int, int, int]]]:
    """Per sample, ``per_sample`` boxes (top, left, side) around random boundary pixels of a B×1×H×W mask.

    Sides are uniform in ``side_range`` (clamped to the image); boxes are shifted, not shrunk, to stay
    inside. A sample without boundary pixels draws its centres anywhere.
    """
    bnd = boundary_map(mask.float()).detach().cpu()
    _, _, h, w = mask.shape
    lo, hi = min(side_range[0], h, w), min(side_range[1], h, w)
    boxes = []
    for i in range(mask.shape[0]):
        pts = torch.nonzero(bnd[i, 0] > 0)
        picks = []
        for _ in range(per_sample):
            if pts.shape[0]:
                y, x = pts[int(torch.randint(pts.shape[0], (1,), generator=generator))].tolist()
            else:
                y = int(torch.randint(h, (1,), generator=generator))
                x = int(torch.randint(w, (1,), generator=generator))
            side = int(torch.randint(lo, hi + 1, (1,), generator=generator))
            top = min(max(0, y - side // 2), h - side)
            left = min(max(0, x - side // 2), w - side)
            picks.append((top, left, side))
        boxes.append(picks)
    return boxes


def cut_patches(x: torch.Tensor, boxes: List[List[Tuple[int, int, int]]], size: int) -> torch.Tensor:
    """Crop every box of every sample from B×C×H×W ``x`` and resize bilinearly to size × size."""
    crops = [
        F.interpolate(x[i : i + 1, :, top : top + s, left : left + s], size=(size, size), mode="bilinear",
                      align_corners=False)
        for i, sample in enumerate(boxes)
        for top, left, s in sample
    ]
    return torch.cat(crops)


class BackgroundTrainer(Trainer):
    """G_B: L1 + GAN(D_BG) + 0.2·GAN(D_patch on boundary patches) + 10·VGG, inputs limited to bg_mask."""

    stage = "background"
    role = "background"
    g_name = "netG_BG"
    d_names = ("netD_BG", "netD_patch")

    def build_generator(self) -> nn.Module:
        return BackgroundGenerator(int(self.mcfg["ngf"]), int(self.mcfg["lab_dim"]))

    def released_module(self) -> nn.Module:
        return self.generator

    def prepare(self, batch: Mapping[str, Any]) -> Tensors:
        b = self.to_device(batch)
        lab_dim = int(self.mcfg["lab_dim"])
        bg = b["bg_mask"]
        b["segmap"] = self._fmt(one_hot_labels(b["labels"], lab_dim))
        b["mask_b"] = b["mask"] * bg
        b["seg_b"] = b["segmap"] * bg
        b["input"] = _cat(b["image"] * (1 - b["mask"]) * bg, _cat(b["segmap"], b["edge"]) * bg, b["mask_b"])
        b["target"] = b["image"] * bg
        return b

    def forward_g(self, b: Tensors) -> Tensors:
        out = self.G(b["input"], b["seg_b"], b["mask_b"], b["bg_mask"])
        comp = out * b["mask_b"] + b["image"] * (1 - b["mask_b"])
        t = self.tcfg
        boxes = sample_patch_boxes(b["mask_b"], int(t["patches_per_sample"]), tuple(t["patch_size"]))
        patches = cut_patches(_cat(b["image"], comp, b["segmap"]), boxes, int(t["patch_resize"]))
        return {"out": out, "comp": comp, "real_p": _cat(patches[:, :3], patches[:, 6:]).detach(),
                "fake_p": _cat(patches[:, 3:6], patches[:, 6:])}

    def loss_d(self, name: str, b: Tensors, out: Tensors) -> Tuple[torch.Tensor, Tensors]:
        if name == "netD_BG":
            fake = self.D(name, _cat(b["segmap"], out["comp"].detach()))
            real = self.D(name, _cat(b["segmap"], b["image"]))
            loss = hinge_d_loss(real, fake, float(self.tcfg["lambda_gan"]))
            return loss, {"D_BG": loss}
        fake = self.D(name, out["fake_p"].detach())
        real = self.D(name, out["real_p"])
        loss = hinge_d_loss(real, fake, float(self.tcfg["lambda_patch"]))
        return loss, {"D_patch": loss}

    def loss_g(self, b: Tensors, out: Tensors) -> Tuple[torch.Tensor, Tensors]:
        t = self.tcfg
        l1 = float(t["lambda_l1"]) * F.l1_loss(out["out"].float(), b["target"])
        gan = float(t["lambda_gan"]) * hinge_g_loss(self.D_frozen("netD_BG", _cat(b["segmap"], out["comp"])))
        patch = float(t["lambda_patch"]) * hinge_g_loss(self.D_frozen("netD_patch", out["fake_p"]))
        vgg = float(t["lambda_vgg"]) * self.vgg_loss(out["out"], y_feats=self.vgg_target(b["target"]))
        return l1 + gan + patch + vgg, {"G_l1": l1, "G_gan": gan, "G_patch": patch, "G_vgg": vgg}

    def panel(self, b: Tensors, out: Tensors) -> Tensors:
        return {"input": b["input"][:, :3], "mask": b["mask_b"], "output": out["comp"], "target": b["image"]}


class FusionTrainer(Trainer):
    """F on the frozen chain (docs/spec.md §4, §6 steps 2–5): GAN(D_F on masked_F) + 10·VGG(fake_F, gt).

    G_OI, G_OG and G_B come from released-format files in ``submodels``; gradients are off, and with
    ``model.submodels_train_mode`` they run in train mode so their spectral-norm vectors move (§8).
    The frozen chain is :class:`siedob.model.Chain` on the whole batch, as the authors' step: G_B runs
    once per step, every inpainted object advances G_OI's power iteration once, and the batch's style
    references are pooled (object j of a class in the batch takes reference j mod 4·B).
    """

    stage = "fusion"
    role = "fusion"
    g_name = "netG_F"
    d_names = ("netD_F",)

    def __init__(
        self, cfg: Mapping[str, Any], *args: Any, submodels: Optional[PathLike] = None,
        data_root: Optional[PathLike] = None, **kwargs: Any,
    ) -> None:
        super().__init__(cfg, *args, **kwargs)
        if submodels is None:
            raise SiedobError(
                "fusion training needs --submodels DIR holding object_inpainting.pth, object_style.pth and bg.pth"
            )
        directory = Path(submodels)
        self.submodels_train_mode = bool(self.mcfg["submodels_train_mode"])
        nets = {}
        for role in ("object_inpainting", "object_style", "background"):
            path = directory / RELEASED[role].filename
            if not path.is_file():
                raise CheckpointError(
                    f"{path}: file not found; train stages 1-3 first (their runs write {RELEASED[role].filename}) "
                    f"or put the authors' released file there"
                )
            nets[role] = load_network(path, role, fold=not self.submodels_train_mode)
        self.chain = Chain(nets["object_inpainting"], nets["object_style"], nets["background"],
                           device=self.device).requires_grad_(False)
        self.frozen = {"object_inpainting": self.chain.inpainting, "object_style": self.chain.style,
                       "background": self.chain.background}
        self.slots = int(cfg["data"]["styles_per_class"])
        self.style_files = style_files(data_root) if data_root is not None else {}
        #: A fixed style bank for every scene instead of draws from the object datasets (benchmarks, tests).
        self.style_bank: Optional[StyleBank] = None

    def scene_batch(self, batch: Mapping[str, Any]) -> SceneBatch:
        """The loader batch as the chain's input (the loader has disassembled every scene)."""
        return SceneBatch(batch["image"], batch["labels"], batch["instances"], batch["mask"], batch["fg_mask"],
                          batch["objects"])

    def style_banks(self, n: int) -> List[StyleBank]:
        """One bank of ``slots`` references per class for each of ``n`` scenes, drawn in scene order."""
        return [self.style_bank or draw_style_bank(self.style_files, self.slots) for _ in range(n)]

    def compose(self, batch: Mapping[str, Any]) -> ChainOutput:
        """The frozen chain on the whole batch (objects, paste, G_B, ``masked_G``; not F).

        The scenes' style references are the batch's ``style_banks`` (one per scene) when the loader
        supplies them (the authors' loader does; pinned references replay a recorded step), else drawn here.
        """
        self.chain.train(self.submodels_train_mode and not self.evaluating)
        n = batch["image"].shape[0]
        banks = batch["style_banks"] if "style_banks" in batch else self.style_banks(n)
        with torch.no_grad():
            return self.chain(self.scene_batch(batch), banks, pooled_styles=True, fuse=False)

    def build_generator(self) -> nn.Module:
        return FusionGenerator(int(self.mcfg["ngf"]))

    def released_module(self) -> nn.Module:
        return self.generator

    def prepare(self, batch: Mapping[str, Any]) -> Tensors:
        masked_g = self.compose(batch).masked_G
        b = self.to_device({k: v for k, v in batch.items() if k not in ("objects", "style_banks")})
        b["masked_G"] = self._fmt(masked_g)
        b["segmap"] = self._fmt(one_hot_labels(b["labels"], int(self.mcfg["lab_dim"])))
        return b

    def forward_g(self, b: Tensors) -> Tensors:
        fake = self.G(b["masked_G"], b["segmap"], b["mask"], b["edge"])
        return {"fake": fake, "masked_F": fake * b["mask"] + b["image"] * (1 - b["mask"])}

    def loss_d(self, name: str, b: Tensors, out: Tensors) -> Tuple[torch.Tensor, Tensors]:
        fake = self.D(name, out["masked_F"].detach())
        real = self.D(name, b["image"])
        loss = hinge_d_loss(real, fake, float(self.tcfg["lambda_gan"]))
        return loss, {"D_F": loss}

    def loss_g(self, b: Tensors, out: Tensors) -> Tuple[torch.Tensor, Tensors]:
        t = self.tcfg
        gan = float(t["lambda_gan"]) * hinge_g_loss(self.D_frozen("netD_F", out["masked_F"]))
        vgg = float(t["lambda_vgg"]) * self.vgg_loss(out["fake"], y_feats=self.vgg_target(b["image"]))
        return gan + vgg, {"G_gan": gan, "G_vgg": vgg}

    def panel(self, b: Tensors, out: Tensors) -> Tensors:
        return {"input": b["masked_G"], "mask": b["mask"], "output": out["masked_F"], "target": b["image"]}

    def state_dict(self) -> Dict[str, Any]:
        state = super().state_dict()
        state["resume"]["frozen"] = {
            role: {k: v.detach().cpu() for k, v in net.state_dict().items()} for role, net in self.frozen.items()
        }
        return state

    def load_state_dict(self, state: Mapping[str, Any], where: str) -> None:
        super().load_state_dict(state, where)
        for role, sd in state["resume"].get("frozen", {}).items():
            load_state_into(self.frozen[role], sd, f"{where} ['resume']['frozen']['{role}']")
