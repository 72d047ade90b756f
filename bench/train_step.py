"""Median training-step time per stage with full-size networks: ours vs the authors' order of operations.

``python bench/train_step.py [--device cpu|cuda] [--batch-scale 0.05] [--steps 3] [--stages ...]``
The authors' batch sizes (90, 50, 21, 30) are scaled by ``--batch-scale`` to fit (printed). The
baseline (``reference_mode``) runs what their step does: G_OG's two passes as two forwards, D on the
duplicated real batch, VGG target features with an autograd graph. On CUDA the AMP and
channels-last variants are timed as well. Inputs are random tensors shaped like the loaders' batches.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Dict, List

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from siedob.checkpoints import save_released  # noqa: E402
from siedob.config import default_config_path, load_config  # noqa: E402
from siedob.edit.style_bank import ClassBank, StyleBank  # noqa: E402
from siedob.labels import CAR, PERSON  # noqa: E402
from siedob.nn import BackgroundGenerator, ObjectInpaintingGenerator, ObjectStyleGenerator  # noqa: E402
from siedob.train.distributed import DistContext  # noqa: E402
from siedob.train.run import build_trainer  # noqa: E402
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
    from siedob.data.disassembly import disassemble, edit_rules
    from siedob.maps import edge_map

    parts = [disassemble(image[i], labels[i], inst[i], mask[i], edit_rules()) for i in range(b)]
    return {"image": image, "labels": labels, "instances": inst, "mask": mask, "edge": edge_map(inst.float()) * mask,
            "fg_mask": torch.stack([d.fg_mask for d in parts]), "bg_mask": torch.stack([d.bg_mask for d in parts]),
            "bg_mask_ori": torch.stack([d.bg_mask_ori for d in parts]), "objects": [d.objects for d in parts]}


def submodels(directory: Path) -> Path:
    """Full-size random G_OI, G_OG and G_B in released format (fusion's frozen chain)."""
    save_released(ObjectInpaintingGenerator(), directory / "object_inpainting.pth", "object_inpainting")
    save_released(ObjectStyleGenerator(), directory / "object_style.pth", "object_style")
    save_released(BackgroundGenerator(), directory / "bg.pth", "background")
    return directory


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
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--stages", nargs="*", default=STAGES)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    device = torch.device(args.device)
    scale = args.batch_scale if args.batch_scale is not None else (1.0 if device.type == "cuda" else 0.03)
    torch.manual_seed(0)
    vgg = VGG19Features().eval().requires_grad_(False)
    variants = [("ours", "none", False), ("authors' order", "none", False)]
    if device.type == "cuda":
        variants += [("ours bf16", "bf16", False), ("ours fp16", "fp16", False),
                     ("ours bf16 + channels-last", "bf16", True)]
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"median of {args.steps} steps after {args.warmup} warm-up")
    with tempfile.TemporaryDirectory() as tmp:
        sub = submodels(Path(tmp)) if "fusion" in args.stages else None
        for stage in args.stages:
            cfg = load_config(default_config_path(stage), ["train.num_workers=0"])
            bs = max(1, round(int(cfg["train"]["batch_size"]) * scale))
            if stage in ("instance_inpainting", "instance_style"):
                batch = object_batch(bs, stage == "instance_style")
            else:
                batch = scene_batch(bs)
            for name, amp, cl in variants:
                trainer = build_trainer(stage, cfg, DistContext(device=device), amp=amp, channels_last=cl, vgg=vgg,
                                        submodels=sub)
                trainer.reference_mode = name == "authors' order"
                if stage == "fusion":
                    refs = object_batch(4, True)
                    bank = ClassBank(refs["image"], refs["inst_mask"], ["random"] * 4)
                    trainer.style_bank = StyleBank({CAR: bank, PERSON: bank}, "random references")
                sec = time_steps(trainer, batch, args.steps, args.warmup)
                print(f"{stage:20s} batch {bs:3d} (authors {cfg['train']['batch_size']:3d})  {name:28s} "
                      f"{sec * 1000:9.1f} ms/step")


if __name__ == "__main__":
    main()
