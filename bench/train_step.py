"""Median training-step time per stage with full-size networks: ours vs the authors' order of operations.

``python bench/train_step.py [--device cpu|cuda] [--batch-scale 0.05 | --batch N] [--steps 3] [--stages ...]``
The authors' batch sizes (90, 50, 21, 30) are scaled by ``--batch-scale`` to fit, or all set to
``--batch`` (printed). The baselines live here, not in the package: for G_OI, G_OG and G_B the authors'
order (G_OG's two passes as two forwards, D on the duplicated real batch, VGG target features with an
autograd graph); for F the frozen chain composed one scene at a time (the composition before the model
layer: G_B at batch 1, B times per step) against ours (the whole batch in one chain call). On CUDA the
AMP and channels-last variants are timed as well. Inputs are random tensors shaped like the loaders' batches.
The fusion step at batch 8 on the CPU: ``python bench/train_step.py --device cpu --stages fusion --batch 8``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import types
import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping, Type

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from siedob.checkpoints import save_released  # noqa: E402
from siedob.config import load_stage_config  # noqa: E402
from siedob.data.disassembly import EDIT_RULES, disassemble  # noqa: E402
from siedob.data.style_bank import ClassBank, StyleBank  # noqa: E402
from siedob.labels import CAR, PERSON  # noqa: E402
from siedob.maps import edge_map  # noqa: E402
from siedob.model import SceneBatch  # noqa: E402
from siedob.nn import BackgroundGenerator, ObjectInpaintingGenerator, ObjectStyleGenerator  # noqa: E402
from siedob.stages import STAGES as STAGE_TABLE  # noqa: E402
from siedob.train.distributed import DistContext  # noqa: E402
from siedob.train.stages import FusionTrainer, ObjectStyleTrainer, _cat  # noqa: E402
from siedob.train.trainer import Tensors, Trainer  # noqa: E402
from siedob.train.vgg import VGG19Features  # noqa: E402

STAGES = ["instance_inpainting", "instance_style", "background", "fusion"]


def object_batch(b: int, style: bool) -> Dict[str, torch.Tensor]:
    """Random 64×64 object crops with an elliptic instance mask and a half mask."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    inst = ((yy / 0.9) ** 2 + (xx / 0.6) ** 2 < 1).float().expand(b, 1, 64, 64).clone()
    code = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    batch = {"image": torch.rand(b, 3, 64, 64) * 2 - 1, "inst_mask": inst, "class_map": inst * code}
    if style:
        batch.update(sty_img=batch["image"].flip(0) * inst, sty_inst_mask=inst, sty_cls_map=inst * code)
    else:
        mask = inst.clone()
        mask[..., :32] = 0
        batch.update(mask=mask)
    return batch


def scene_batch(b: int, size: int = 256) -> Dict[str, torch.Tensor]:
    """Random scenes: sky over road, one car and one person partly inside a masked box."""
    labels = torch.full((b, 1, size, size), 23, dtype=torch.int64)
    labels[..., size // 2 :, :] = 7
    inst = labels.clone()
    s = size // 8
    labels[..., 4 * s : 5 * s, 2 * s : 4 * s] = 26
    inst[..., 4 * s : 5 * s, 2 * s : 4 * s] = 26001
    labels[..., 3 * s : 5 * s, 5 * s : 5 * s + s // 2] = 24
    inst[..., 3 * s : 5 * s, 5 * s : 5 * s + s // 2] = 24001
    mask = torch.zeros(b, 1, size, size)
    mask[..., 3 * s : 7 * s, 3 * s : 7 * s] = 1
    image = torch.rand(b, 3, size, size) * 2 - 1
    parts = [disassemble(image[i], labels[i], inst[i], mask[i], EDIT_RULES) for i in range(b)]
    return {
        "image": image,
        "labels": labels,
        "instances": inst,
        "mask": mask,
        "edge": edge_map(inst.float()) * mask,
        "fg_mask": torch.stack([d.fg_mask for d in parts]),
        "bg_mask": torch.stack([d.bg_mask for d in parts]),
        "bg_mask_ori": torch.stack([d.bg_mask_ori for d in parts]),
        "objects": [d.objects for d in parts],
    }


def submodels(directory: Path) -> Path:
    """Full-size random G_OI, G_OG and G_B in released format (fusion's frozen chain)."""
    save_released(ObjectInpaintingGenerator(), directory / "object_inpainting.pth", "object_inpainting")
    save_released(ObjectStyleGenerator(), directory / "object_style.pth", "object_style")
    save_released(BackgroundGenerator(), directory / "bg.pth", "background")
    return directory


# ---------------------------------------------------------------- baselines (the bench's own, not the package's)


class AuthorsOrder:
    """The authors' VGG target: features computed with an autograd graph, then detached."""

    def vgg_target(self, y: torch.Tensor) -> List[torch.Tensor]:
        return [f.detach() for f in self.vgg_loss.vgg(y)]


class AuthorsObjectStyle(AuthorsOrder, ObjectStyleTrainer):
    """G_OG as the authors run it: two forwards, D on the duplicated real batch, VGG on cat(obj, obj)."""

    def forward_g(self, b: Tensors) -> Tensors:
        cls, inst, obj = b["class_map"], b["inst_mask"], b["obj"]
        x_rec, code_rec, cyc_rec = self.G(cls, obj, cls, inst)
        x_sty, code_sty, cyc_sty = self.G(cls, b["sty_img"], b["sty_cls_map"], inst)
        x = torch.cat([x_rec, x_sty])
        inst2, cls2 = torch.cat([inst, inst]), torch.cat([cls, cls])
        return {
            "x": x,
            "code": torch.cat([code_rec, code_sty]),
            "cycle": torch.cat([cyc_rec, cyc_sty]),
            "fake_in": _cat(x * inst2, cls2),
        }

    def _real(self, b: Tensors) -> torch.Tensor:
        real = _cat(b["obj"], b["class_map"])
        return torch.cat([real, real])

    def vgg_target(self, y: torch.Tensor) -> List[torch.Tensor]:
        """φ(cat(obj, obj)) with a graph, as theirs; the stage concatenates the half it gets back twice."""
        n = y.shape[0]
        return [f[:n].detach() for f in self.vgg_loss.vgg(torch.cat([y, y]))]


class PerSceneFusion(FusionTrainer):
    """F's frozen chain composed one scene at a time, as before the model layer (G_B B times at batch 1)."""

    def compose(self, batch: Mapping[str, Any]) -> Any:
        self.chain.train(self.submodels_train_mode and not self.evaluating)
        out = []
        for i in range(batch["image"].shape[0]):
            scene = SceneBatch(
                batch["image"][i : i + 1],
                batch["labels"][i : i + 1],
                batch["instances"][i : i + 1],
                batch["mask"][i : i + 1],
                batch["fg_mask"][i : i + 1],
                [batch["objects"][i]],
            )
            with torch.no_grad():
                out.append(self.chain(scene, self.style_banks(1), fuse=False).masked_G)
        return types.SimpleNamespace(masked_G=torch.cat(out))


def baseline_class(stage: str) -> Type[Trainer]:
    """The stage's baseline trainer class."""
    if stage == "fusion":
        return PerSceneFusion
    if stage == "instance_style":
        return AuthorsObjectStyle
    return type(
        f"Authors{STAGE_TABLE[stage].trainer_class().__name__}", (AuthorsOrder, STAGE_TABLE[stage].trainer_class()), {}
    )


def time_steps(trainer, batch, steps: int, warmup: int) -> float:
    """Median seconds per ``train_step``."""
    times: List[float] = []
    for i in range(warmup + steps):
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        trainer.train_step(batch)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch-scale", type=float, default=None, help="default 0.03 on CPU, 1.0 on CUDA")
    p.add_argument("--batch", type=int, default=None, help="one batch size for every stage (instead of scaling)")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--stages", nargs="*", default=STAGES)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    device = torch.device(args.device)
    scale = args.batch_scale if args.batch_scale is not None else (1.0 if device.type == "cuda" else 0.03)
    torch.manual_seed(0)
    vgg = VGG19Features().eval().requires_grad_(False)
    variants = [("ours", "none", False), ("baseline", "none", False)]
    if device.type == "cuda":
        variants += [
            ("ours bf16", "bf16", False),
            ("ours fp16", "fp16", False),
            ("ours bf16 + channels-last", "bf16", True),
        ]
    print(
        f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"median of {args.steps} steps after {args.warmup} warm-up"
    )
    with tempfile.TemporaryDirectory() as tmp:
        sub = submodels(Path(tmp)) if "fusion" in args.stages else None
        for stage in args.stages:
            cfg = load_stage_config(stage, overrides=["train.num_workers=0"])
            bs = args.batch or max(1, round(int(cfg["train"]["batch_size"]) * scale))
            if stage in ("instance_inpainting", "instance_style"):
                batch = object_batch(bs, stage == "instance_style")
            else:
                batch = scene_batch(bs)
            for name, amp, cl in variants:
                cls = baseline_class(stage) if name == "baseline" else STAGE_TABLE[stage].trainer_class()
                extra = {"submodels": sub} if stage == "fusion" else {}
                trainer = cls(cfg, DistContext(device=device), amp=amp, channels_last=cl, vgg=vgg, **extra)
                if stage == "fusion":
                    refs = object_batch(4, True)
                    bank = ClassBank(refs["image"], refs["inst_mask"], ["random"] * 4)
                    trainer.style_bank = StyleBank({CAR: bank, PERSON: bank}, "random references")
                label = name
                if name == "baseline":
                    label = "per-scene chain (before)" if stage == "fusion" else "authors' order"
                elif stage == "fusion" and name == "ours":
                    label = "batched chain (ours)"
                sec = time_steps(trainer, batch, args.steps, args.warmup)
                print(
                    f"{stage:20s} batch {bs:3d} (authors {cfg['train']['batch_size']:3d})  {label:28s} "
                    f"{sec * 1000:9.1f} ms/step"
                )


if __name__ == "__main__":
    main()
