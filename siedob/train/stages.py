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
from siedob.train.losses import hinge_d_terms, hinge_g_loss, style_cycle_loss
from siedob.train.patches import Box, cut_patches, host_mask, sample_patch_boxes
from siedob.train.trainer import Tensors, Trainer

PathLike = Union[str, Path]


def _cat(*xs: torch.Tensor) -> torch.Tensor:
    return torch.cat(xs, dim=1)


def _hinge_d(prefix: str, real: torch.Tensor, fake: torch.Tensor, weight: float) -> Tuple[torch.Tensor, Tensors]:
    """Discriminator hinge loss and its two terms ``<prefix>_fake``, ``<prefix>_real`` (summed fake first)."""
    fake_term, real_term = hinge_d_terms(real, fake, weight)
    return fake_term + real_term, {f"{prefix}_fake": fake_term, f"{prefix}_real": real_term}


class ObjectInpaintingTrainer(Trainer):
    """G_OI: 10·L1 + GAN(D_inp on the composite with mask and class map) + 10·VGG."""

    stage = "instance_inpainting"
    role = "object_inpainting"
    g_name = "netG"
    d_names = ("netD_inp",)

    def build_generator(self) -> nn.Module:
        return ObjectInpaintingWrapper(int(self.mcfg["ngf"]), self.profile.code_width)

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
        return _hinge_d("D_inp", real, fake, lam)

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
    Ablations (``train.*``): ``style_cycle_loss: false`` drops the style-cycle term; ``style_source: noise``
    gives the transfer pass a N(0, 1) style code instead of the reference's (two forwards then).
    """

    stage = "instance_style"
    role = "object_style"
    g_name = "netG"
    d_names = ("netD_style",)

    def __init__(self, cfg: Mapping[str, Any], *args: Any, **kwargs: Any) -> None:
        self.style_noise = cfg["train"]["style_source"] == "noise"
        self.cycle_loss = bool(cfg["train"]["style_cycle_loss"])
        super().__init__(cfg, *args, **kwargs)
        if self.style_noise:  # recorded in the released file, so that inference draws codes the same way
            self.generator.fg_style.style_source = "noise"

    def build_generator(self) -> nn.Module:
        return ObjectStyleWrapper(int(self.mcfg["ngf"]), self.profile.code_width)

    def released_module(self) -> nn.Module:
        return self.generator.fg_style

    def prepare(self, batch: Mapping[str, Any]) -> Tensors:
        b = self.to_device(batch)
        b["obj"] = b["image"] * b["inst_mask"]
        return b

    def forward_g(self, b: Tensors) -> Tensors:
        cls, inst, obj = b["class_map"], b["inst_mask"], b["obj"]
        if self.style_noise:
            x_rec, code_rec, cyc_rec = self.G(cls, obj, cls, inst)
            noise = torch.randn_like(code_rec) if self.style_noise else None
            x_sty, code_sty, cyc_sty = self.G(cls, b["sty_img"], b["sty_cls_map"], inst, noise)
            x = torch.cat([x_rec, x_sty])
            code, cycle = torch.cat([code_rec, code_sty]), torch.cat([cyc_rec, cyc_sty])
        else:
            x, code, cycle = self.G(
                torch.cat([cls, cls]),
                torch.cat([obj, b["sty_img"]]),
                torch.cat([cls, b["sty_cls_map"]]),
                torch.cat([inst, inst]),
            )
        inst2, cls2 = torch.cat([inst, inst]), torch.cat([cls, cls])
        return {"x": x, "code": code, "cycle": cycle, "fake_in": _cat(x * inst2, cls2)}

    def _real(self, b: Tensors) -> torch.Tensor:
        return _cat(b["obj"], b["class_map"])

    def loss_d(self, name: str, b: Tensors, out: Tensors) -> Tuple[torch.Tensor, Tensors]:
        fake = self.D(name, out["fake_in"].detach())
        real = self.D(name, self._real(b))
        return _hinge_d("D_style", real, fake, float(self.tcfg["lambda_gan"]))

    def loss_g(self, b: Tensors, out: Tensors) -> Tuple[torch.Tensor, Tensors]:
        t = self.tcfg
        n = b["obj"].shape[0]
        x_rec = out["x"][:n]
        l1 = float(t["lambda_l1"]) * F.l1_loss(x_rec.float(), b["obj"])
        gan = float(t["lambda_gan"]) * hinge_g_loss(self.D_frozen("netD_style", out["fake_in"]))
        feats = [torch.cat([f, f]) for f in self.vgg_target(b["obj"])]
        vgg = float(t["lambda_vgg"]) * self.vgg_loss(out["x"], y_feats=feats)
        if not self.cycle_loss:
            return l1 + gan + vgg, {"G_l1": l1, "G_gan": gan, "G_vgg": vgg}
        cyc = float(t["lambda_cycle"]) * style_cycle_loss(out["code"], out["cycle"])
        return l1 + gan + vgg + cyc, {"G_l1": l1, "G_gan": gan, "G_vgg": vgg, "G_cycle": cyc}

    def panel(self, b: Tensors, out: Tensors) -> Tensors:
        n = b["obj"].shape[0]
        return {
            "input": b["sty_img"],
            "mask": b["inst_mask"],
            "output": out["x"][:n],
            "transfer": out["x"][n:] * b["inst_mask"],
            "target": b["obj"],
        }


class BackgroundTrainer(Trainer):
    """G_B: L1 + GAN(D_BG) + 0.2·GAN(D_patch on boundary patches) + 10·VGG, inputs limited to bg_mask.

    Ablations (``train.*``): ``style_propagation: false`` builds G_B without SASPM's context style codes;
    ``patch_discriminator: false`` drops D_patch and its loss term. The patch windows come with the batch
    under ``patch_boxes`` (per sample, a list of ``(top, left, side)``: replaying recorded draws) or are
    drawn here from the loader's host mask by :func:`~siedob.train.patches.sample_patch_boxes`.
    """

    stage = "background"
    role = "background"
    g_name = "netG_BG"
    d_names = ("netD_BG", "netD_patch")

    def __init__(self, cfg: Mapping[str, Any], *args: Any, **kwargs: Any) -> None:
        self.patch_discriminator = bool(cfg["train"]["patch_discriminator"])
        if not self.patch_discriminator:
            self.d_names = ("netD_BG",)
        super().__init__(cfg, *args, **kwargs)

    def build_generator(self) -> nn.Module:
        return BackgroundGenerator(
            int(self.mcfg["ngf"]),
            int(self.mcfg["lab_dim"]),
            style_propagation=bool(self.tcfg["style_propagation"]),
            skipped_classes=self.profile.style_skipped_classes,
        )

    def released_module(self) -> nn.Module:
        return self.generator

    def patch_boxes(self, batch: Mapping[str, Any]) -> Optional[List[List[Box]]]:
        """The batch's ``patch_boxes`` or windows drawn from its host-side ``mask·bg_mask`` (None: no D_patch)."""
        if not self.patch_discriminator:
            return None
        if "patch_boxes" in batch:
            return [[tuple(int(v) for v in box) for box in sample] for sample in batch["patch_boxes"]]
        t = self.tcfg
        return sample_patch_boxes(
            host_mask(batch["mask"], batch["bg_mask"]), int(t["patches_per_sample"]), tuple(t["patch_size"])
        )

    def prepare(self, batch: Mapping[str, Any]) -> Tensors:
        boxes = self.patch_boxes(batch)
        b = self.to_device(batch)
        b["patch_boxes"] = boxes  # type: ignore[assignment]
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
        res = {"out": out, "comp": comp, "real_p": None, "fake_p": None}
        boxes = b["patch_boxes"]
        patches = (
            cut_patches(_cat(b["image"], comp, b["segmap"]), boxes, int(self.tcfg["patch_resize"])) if boxes else None
        )
        if patches is not None:
            res.update(
                real_p=_cat(patches[:, :3], patches[:, 6:]).detach(), fake_p=_cat(patches[:, 3:6], patches[:, 6:])
            )
        return res

    def loss_d(self, name: str, b: Tensors, out: Tensors) -> Tuple[torch.Tensor, Tensors]:
        if name == "netD_BG":
            fake = self.D(name, _cat(b["segmap"], out["comp"].detach()))
            real = self.D(name, _cat(b["segmap"], b["image"]))
            return _hinge_d("D_BG", real, fake, float(self.tcfg["lambda_gan"]))
        if out["fake_p"] is None:
            return None, {}
        fake = self.D(name, out["fake_p"].detach())
        real = self.D(name, out["real_p"])
        return _hinge_d("D_patch", real, fake, float(self.tcfg["lambda_patch"]))

    def loss_g(self, b: Tensors, out: Tensors) -> Tuple[torch.Tensor, Tensors]:
        t = self.tcfg
        l1 = float(t["lambda_l1"]) * F.l1_loss(out["out"].float(), b["target"])
        gan = float(t["lambda_gan"]) * hinge_g_loss(self.D_frozen("netD_BG", _cat(b["segmap"], out["comp"])))
        vgg = float(t["lambda_vgg"]) * self.vgg_loss(out["out"], y_feats=self.vgg_target(b["target"]))
        if out["fake_p"] is None:
            return l1 + gan + vgg, {"G_l1": l1, "G_gan": gan, "G_vgg": vgg}
        patch = float(t["lambda_patch"]) * hinge_g_loss(self.D_frozen("netD_patch", out["fake_p"]))
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
        self,
        cfg: Mapping[str, Any],
        *args: Any,
        submodels: Optional[PathLike] = None,
        data_root: Optional[PathLike] = None,
        **kwargs: Any,
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
            nets[role] = load_network(path, role, fold=not self.submodels_train_mode, profile=self.profile)
        self.chain = Chain(
            nets["object_inpainting"],
            nets["object_style"],
            nets["background"],
            device=self.device,
            profile=self.profile,
        ).requires_grad_(False)
        self.frozen = {
            "object_inpainting": self.chain.inpainting,
            "object_style": self.chain.style,
            "background": self.chain.background,
        }
        self.slots = int(cfg["data"]["styles_per_class"])
        self.style_files = style_files(data_root, profile=self.profile) if data_root is not None else {}
        #: A fixed style bank for every scene instead of draws from the object datasets (benchmarks, tests).
        self.style_bank: Optional[StyleBank] = None

    def scene_batch(self, batch: Mapping[str, Any]) -> SceneBatch:
        """The loader batch as the chain's input (the loader has disassembled every scene)."""
        return SceneBatch(
            batch["image"], batch["labels"], batch["instances"], batch["mask"], batch["fg_mask"], batch["objects"]
        )

    def style_banks(self, n: int) -> List[StyleBank]:
        """One bank of ``slots`` references per class for each of ``n`` scenes, drawn in scene order."""
        return [self.style_bank or draw_style_bank(self.style_files, self.slots, self.profile) for _ in range(n)]

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
        """Device tensors and ``masked_G``: the batch's own when it carries one (F alone), else the frozen chain's."""
        b = self.to_device({k: v for k, v in batch.items() if k not in ("objects", "style_banks")})
        if "masked_G" not in batch:
            b["masked_G"] = self._fmt(self.compose(batch).masked_G)
        b["segmap"] = self._fmt(one_hot_labels(b["labels"], int(self.mcfg["lab_dim"])))
        return b

    def forward_g(self, b: Tensors) -> Tensors:
        fake = self.G(b["masked_G"], b["segmap"], b["mask"], b["edge"])
        return {"fake": fake, "masked_F": fake * b["mask"] + b["image"] * (1 - b["mask"])}

    def loss_d(self, name: str, b: Tensors, out: Tensors) -> Tuple[torch.Tensor, Tensors]:
        fake = self.D(name, out["masked_F"].detach())
        real = self.D(name, b["image"])
        return _hinge_d("D_F", real, fake, float(self.tcfg["lambda_gan"]))

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
