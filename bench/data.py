"""Loader throughput: samples/second of one worker for each stage's dataset, ours vs the authors' approach.

``python bench/data.py --root data/cityscapes512x256`` measures an existing prepared tree;
``python bench/data.py --dense 12`` first writes a crowded synthetic tree (>= 20 instances per
scene) to a temporary folder. The baseline re-implements the authors' loaders: they decode the
2048-wide photo for every scene sample and disassemble with Python loops over instance ids and
classes in NumPy; object samples read the crop JPEG and mask PNG with cv2 every sample and draw brush
strokes with PIL. One thread, as in a DataLoader worker. "cold" counts building our dataset (its
decoded crop cache included) plus the first samples; "warm" is the steady state; object datasets are
also measured with ``data.cache_crops: false``.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from siedob.config import load_stage_config  # noqa: E402
from siedob.data.datasets import ObjectDataset, SceneDataset  # noqa: E402
from siedob.data.synthetic import write_prepared  # noqa: E402
from siedob.labels import BACKGROUND_CLASSES  # noqa: E402


def authors_brush(h: int, w: int, min_v: int, max_v: int, min_w: int, max_w: int) -> np.ndarray:
    """The authors' free-form mask generator (PIL polyline + ellipses, global NumPy RNG)."""
    mean_angle, angle_range = 2 * math.pi / 5, 2 * math.pi / 15
    radius = math.sqrt(h * h + w * w) / 8
    mask = Image.new("L", (w, h), 0)
    n = np.random.randint(min_v, max_v)
    a_min = mean_angle - np.random.uniform(0, angle_range)
    a_max = mean_angle + np.random.uniform(0, angle_range)
    angles = [
        2 * math.pi - np.random.uniform(a_min, a_max) if i % 2 == 0 else np.random.uniform(a_min, a_max)
        for i in range(n)
    ]
    vertex = [(int(np.random.randint(0, w)), int(np.random.randint(0, h)))]
    for a in angles:
        r = np.clip(np.random.normal(loc=radius, scale=radius // 2), 0, 2 * radius)
        vertex.append(
            (int(np.clip(vertex[-1][0] + r * math.cos(a), 0, w)), int(np.clip(vertex[-1][1] + r * math.sin(a), 0, h)))
        )
    draw = ImageDraw.Draw(mask)
    width = int(np.random.uniform(min_w, max_w))
    draw.line(vertex, fill=1, width=width)
    for v in vertex:
        draw.ellipse((v[0] - width // 2, v[1] - width // 2, v[0] + width // 2, v[1] + width // 2), fill=1)
    return np.asarray(mask, np.float32)


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """The authors' ToTensor + Normalize(0.5, 0.5)."""
    return (torch.from_numpy(img.transpose(2, 0, 1).copy()).float() / 255 - 0.5) / 0.5


class AuthorsObjects:
    """The authors' object loader: list files, read with cv2, augment, PIL brush or side mask."""

    def __init__(self, root: Path, cfg: Dict, style: bool):
        self.cfg, self.style = cfg, style
        base = root / "object_datasets"
        self.files = {c: sorted((base / c / "train" / "images").glob("*.jpg")) for c in cfg["classes"]}
        self.items = [(c, f) for c in cfg["classes"] for f in (self.files[c] * cfg["repeat"])[: cfg["max_per_class"]]]

    def __len__(self) -> int:
        return len(self.items)

    def _load(self, path: Path):
        img = cv2.resize(cv2.imread(str(path)), (64, 64))
        m = cv2.imread(str(path.parent.parent / "inst_mask" / (path.stem + ".png")), 0)
        m = cv2.resize(m, (64, 64), interpolation=cv2.INTER_NEAREST) / 255.0
        if np.random.rand() < 0.5:
            img, m = cv2.resize(img, (72, 72)), cv2.resize(m, (72, 72), interpolation=cv2.INTER_NEAREST)
            t, lft = np.random.randint(0, 9, 2)
            img, m = img[t : t + 64, lft : lft + 64], m[t : t + 64, lft : lft + 64]
        if np.random.rand() < 0.5:
            img, m = img[:, ::-1], m[:, ::-1]
        return to_tensor(img), torch.from_numpy(m.astype(np.float32).copy())[None]

    def __getitem__(self, i: int):
        c, path = self.items[i]
        img, inst = self._load(path)
        code = torch.tensor([1.0, 0, 0] if c == "car" else [0, 1.0, 0]).view(3, 1, 1)
        out = {"image": img, "inst_mask": inst, "class_map": inst * code}
        if self.style:
            ref, ref_m = self._load(self.files[c][np.random.randint(len(self.files[c]))])
            out.update(sty_img=ref * ref_m, sty_cls_map=ref_m * code)
        else:
            b = self.cfg["brush"]
            if i % 3 < 2:
                mask = authors_brush(64, 64, b["min_vertex"], b["max_vertex"], b["min_width"], b["max_width"])
            else:
                mask = np.zeros((64, 64), np.float32)
                mask[:, : int(64 * np.random.uniform(*self.cfg["side_fraction"]))] = 1
            mask = torch.from_numpy(mask)[None] * inst
            out.update(mask=mask, input=img * (1 - mask) * inst)
        return out


class AuthorsScenes:
    """The authors' scene loader: 2048 photo decoded every sample, disassembly by loops in NumPy."""

    def __init__(self, root: Path, cfg: Dict, stage: str):
        self.cfg, self.stage = cfg, stage
        self.images = sorted((root / "train" / "images").glob("*.jpg"))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        p = self.images[i]
        img = cv2.imread(str(p))
        img2048 = cv2.imread(str(p.parent.parent / "images2048" / p.name))
        lab = cv2.imread(str(p.parent.parent / "labels" / (p.stem + ".png")), 0).astype(np.int64)
        inst = cv2.imread(str(p.parent.parent / "inst_map" / (p.stem + ".png")), -1).astype(np.int64)
        lab[lab == 0] = 33
        x = np.random.randint(0, img.shape[1] - 256 + 1)
        img, lab, inst = img[:, x : x + 256], lab[:, x : x + 256], inst[:, x : x + 256]
        img2048 = img2048[:, 4 * x : 4 * (x + 256)]
        if np.random.rand() < 0.5:
            img, lab, inst, img2048 = img[:, ::-1], lab[:, ::-1], inst[:, ::-1], img2048[:, ::-1]
        b = self.cfg["brush"]
        if i % 3 == 0:
            mask = authors_brush(256, 256, b["min_vertex"], b["max_vertex"], b["min_width"], b["max_width"])
        elif i % 3 == 1:
            mask = np.zeros((256, 256), np.float32)
            mask[:, 128:] = 1
        else:
            mask = np.ones((256, 256), np.float32)
            t, lft = np.random.randint(0, 129, 2)
            mask[t : t + 128, lft : lft + 128] = 0
        if np.random.rand() < 0.5:
            for iid in np.unique(inst):
                if iid >= 1000 and (inst == iid).sum() > 400:
                    ys, xs = np.where(inst == iid)
                    mask[max(0, ys.min() - 5) : ys.max() + 6, max(0, xs.min() - 5) : xs.max() + 6] = 1
        edge = np.zeros_like(inst, dtype=bool)
        edge[:, 1:] |= inst[:, 1:] != inst[:, :-1]
        edge[:, :-1] |= inst[:, 1:] != inst[:, :-1]
        edge[1:, :] |= inst[1:, :] != inst[:-1, :]
        edge[:-1, :] |= inst[1:, :] != inst[:-1, :]
        inpaint, gen = [], []
        for iid in np.unique(inst):
            if iid < 1000:
                continue
            ins_in = inst * mask == iid
            if ins_in.sum() == 0:
                continue
            n24, n26 = (lab[ins_in] == 24).sum(), (lab[ins_in] == 26).sum()
            if n24 + n26 == 0:
                continue
            cls = 26 if n26 > n24 else 24
            ins_mask = ((inst == iid) & (lab == cls)).astype(np.float32)
            (inpaint if (inst * (1 - mask) == iid).sum() > 0 else gen).append((cls, ins_mask))
        bg_ori = np.zeros_like(mask)
        for c in BACKGROUND_CLASSES:
            region = lab == c
            has_in, has_out = (lab * mask == c).sum() > 0, (lab * (1 - mask) == c).sum() > 0
            if has_in and has_out:
                bg_ori[region] = 1
            elif has_in:
                bg_ori[region & (mask == 1)] = 1
        image = to_tensor(img)
        masked = image * (1 - torch.from_numpy(mask))
        fg = np.zeros_like(mask)
        crops = []
        for want in (26, 24):
            for cls, m in inpaint + gen:
                if cls != want:
                    continue
                ys, xs = np.where(m > 0)
                b0, b1 = max(0, ys.min() - 2), min(ys.max() + 2, 512)
                b2, b3 = max(0, xs.min() - 2), min(xs.max() + 2, 256)
                if m.sum() / ((b1 - b0) * (b3 - b2)) <= (0.6 if cls == 26 else 0.35) or (m * mask).sum() == 0:
                    continue
                crops.append(
                    tuple(
                        F.interpolate(t[None, :, b0:b1, b2:b3], size=(64, 64), mode="bilinear", align_corners=False)
                        for t in (image, masked)
                    )
                )
                fg = np.maximum(fg, m)
        return {
            "image": image,
            "image2048": to_tensor(np.ascontiguousarray(img2048)),
            "mask": mask,
            "edge": edge * mask,
            "fg_mask": fg,
            "bg_mask": 1 - fg,
            "bg_ori": bg_ori,
            "crops": crops,
        }


def samples_per_second(ds: Dataset, n: int) -> float:
    """Samples/second of n items of ``ds`` (indices cycle)."""
    t = time.perf_counter()
    for i in range(n):
        ds[i % len(ds)]
    return n / (time.perf_counter() - t)


def rates(make: Callable[[], Dataset], theirs: Dataset, n: int, rounds: int) -> Tuple[float, float, float]:
    """Best cold, warm and authors' samples/second over ``rounds`` rounds that take turns, so load hits all alike.

    Cold builds a fresh dataset (its crop cache included) and times it with its first n samples;
    warm then times n more samples of that dataset; the authors' loader is warmed up by one item.
    """
    theirs[0]
    cold = warm = authors = 0.0
    for _ in range(rounds):
        t = time.perf_counter()
        ours = make()
        build = time.perf_counter() - t
        cold = max(cold, n / (build + n / samples_per_second(ours, n)))
        warm = max(warm, samples_per_second(ours, n))
        authors = max(authors, samples_per_second(theirs, n))
    return cold, warm, authors


def main(argv: List[str] = None) -> int:
    """Print samples/second (ours, authors', ratio) for the four datasets."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", help="prepared tree (default: a temporary dense synthetic tree)")
    p.add_argument("--dense", type=int, default=0, help="write N dense synthetic scenes first (to --root or temp)")
    p.add_argument("--scene-samples", type=int, default=60)
    p.add_argument("--object-samples", type=int, default=600)
    p.add_argument("--rounds", type=int, default=3, help="timed rounds per dataset (best is kept)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    np.random.seed(0)
    tmp = None
    if args.root is None or args.dense:
        if args.root is None:
            tmp = tempfile.TemporaryDirectory()
            args.root = tmp.name
        write_prepared(args.root, max(args.dense, 6), seed=0, dense=True)
    root = Path(args.root)
    cfg = {s: load_stage_config(s)["data"] for s in ("instance_inpainting", "instance_style", "background", "fusion")}
    no_cache = {s: {**c, "cache_crops": False} for s, c in cfg.items()}
    rows = [
        (
            "object inpainting",
            lambda: ObjectDataset(root, cfg["instance_inpainting"], "inpaint", True),
            AuthorsObjects(root, cfg["instance_inpainting"], False),
            args.object_samples,
        ),
        (
            "  without crop cache",
            lambda: ObjectDataset(root, no_cache["instance_inpainting"], "inpaint", True),
            AuthorsObjects(root, cfg["instance_inpainting"], False),
            args.object_samples,
        ),
        (
            "object style",
            lambda: ObjectDataset(root, cfg["instance_style"], "style", True),
            AuthorsObjects(root, cfg["instance_style"], True),
            args.object_samples,
        ),
        (
            "  without crop cache",
            lambda: ObjectDataset(root, no_cache["instance_style"], "style", True),
            AuthorsObjects(root, cfg["instance_style"], True),
            args.object_samples,
        ),
        (
            "background scene",
            lambda: SceneDataset(root, cfg["background"], "background", True),
            AuthorsScenes(root, cfg["background"], "background"),
            args.scene_samples,
        ),
        (
            "fusion scene",
            lambda: SceneDataset(root, cfg["fusion"], "fusion", True),
            AuthorsScenes(root, cfg["fusion"], "fusion"),
            args.scene_samples,
        ),
    ]
    print(f"root: {root}  (one worker, 1 thread, best of {args.rounds} alternating rounds)")
    print("cold = building our dataset (crop cache included) + its first samples; warm = steady state")
    print(f"{'dataset':<22}{'cold/s':>9}{'warm/s':>9}{'authors/s':>11}{'cold ratio':>12}{'warm ratio':>12}")
    for name, make, theirs, n in rows:
        cold, warm, authors = rates(make, theirs, n, args.rounds)
        print(f"{name:<22}{cold:>9.1f}{warm:>9.1f}{authors:>11.1f}{cold / authors:>11.2f}x{warm / authors:>11.2f}x")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
