"""Benchmark the edit chain: ours (siedob.edit) against a re-implementation of the authors' chain approach.

Per synthetic 256×256 scene with 1, 3 and 6 objects to synthesise: the forward time of one edit (both
chains loaded in one child process and timed alternately, ``--repeat`` times each after a warm-up), the
whole-process time (a fresh process per chain, from its start to the PNG written; ``--trials`` of them),
the peak memory (process RSS on CPU, one edit's allocations on CUDA) and the time of G_B and F alone. Both
chains run the same G_B and F, so "G_B+F alone" (the faster of the two) over the authors' forward is the
lowest forward ratio a chain running these networks can reach on that machine.
Both use the same full-size networks with default-initialised weights saved in the released format.

The authors' approach, as modelled here (docs/spec.md §6, §7, §8): inputs padded into fixed 180-slot tensors
per class on a fixed 256×256 canvas; objects generated one at a time in a Python loop, with a host
synchronisation per slot for the emptiness and branch tests; a per-slot paste loop; the style
propagation's per-sample, per-class loop; spectral-norm weights recomputed at every forward; G_OG's
unused cycle encoder run; and, in the process, networks built with random initialisation before
loading and the unused VGG19 of their test script built and given its ImageNet weights from the hub
cache, as torchvision does on every run after the first (the first run's download is not modelled).

Usage: ``python bench/edit.py [--device cpu|cuda|all] [--objects 1 3 6] [--repeat 5] [--trials 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

if TYPE_CHECKING:
    from siedob.edit.chain import Editor
    from siedob.edit.inputs import Scene
    from siedob.edit.style_bank import StyleBank

Runner = Callable[[], torch.Tensor]
MAX_NUM = 180
CANVAS = 256
VGG19_CACHE = "hub/checkpoints/vgg19-dcbb9e9d.pth"
REPO = Path(__file__).resolve().parent.parent


def make_bench_scene(n_objects: int, out: Path, seed: int = 0) -> Path:
    """A synthetic scene in the example layout whose mask makes the chain synthesise ``n_objects`` objects.

    Every other chosen object is fully masked (generation), the rest have their lower half masked
    (inpainting); style references are the bundled example's.
    """
    from siedob.data.disassembly import EDIT_RULES, disassemble
    from siedob.data.io import image_to_tensor, write_atomic
    from siedob.data.synthetic import make_scene
    from siedob.edit.style_bank import load_style_bank
    from siedob.labels import CAR, PERSON
    from siedob.model import plan_objects

    style = REPO / "fusion" / "example" / "object_style"
    bank = load_style_bank(style)
    for s in range(seed, seed + 300):
        scene = make_scene(np.random.default_rng([s, n_objects]), CANVAS, CANVAS, n_cars=4, n_persons=4)
        inst = scene.instances
        ids = [int(i) for i in np.unique(inst) if i // 1000 in (CAR, PERSON) and (inst == i).sum() > 150]
        if len(ids) < n_objects:
            continue
        mask = np.zeros(inst.shape, np.uint8)
        for j, iid in enumerate(ids[:n_objects]):
            m = (inst == iid).astype(np.uint8)
            if j % 2 == 0:
                mask |= cv2.dilate(m, np.ones((5, 5), np.uint8))
            else:
                rows = np.flatnonzero(m.any(1))
                half = np.zeros_like(m)
                half[(rows[0] + rows[-1]) // 2 :] = 1
                mask |= m & half
        labels = scene.labels.copy()
        labels[labels == 0] = 33
        tens = [torch.from_numpy(a.astype(np.int64))[None] for a in (labels, inst)]
        dis = disassemble(
            image_to_tensor(scene.image), *tens, torch.from_numpy(mask.astype(np.float32))[None], EDIT_RULES
        )
        plan = plan_objects([dis.objects], [bank])
        if len(plan.objects) != n_objects:
            continue
        write_atomic(out / "images" / "scene.png", scene.image)
        write_atomic(out / "labels" / "scene.png", scene.labels)
        write_atomic(out / "inst_map" / "scene.png", inst.astype(np.uint16))
        write_atomic(out / "mask" / "scene.png", mask * 255)
        shutil.copytree(style, out / "object_style")
        return out
    raise RuntimeError(f"no synthetic scene with {n_objects} objects found")


def write_checkpoints(out: Path) -> Path:
    """Full-size networks with default initialisation, saved in the released format."""
    from siedob.checkpoints import RELEASED, save_released
    from siedob.nn import BackgroundGenerator, FusionGenerator, ObjectInpaintingGenerator, ObjectStyleGenerator

    torch.manual_seed(0)
    nets = (ObjectInpaintingGenerator(), ObjectStyleGenerator(), BackgroundGenerator(), FusionGenerator())
    for net, role in zip(nets, RELEASED):
        save_released(net.eval(), out / RELEASED[role].filename, role)
    return out


# ---------------------------------------------------------------- the authors' approach (baseline)


def _authors_class_codes(f: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """The authors' per-sample, per-class Python loop for the class codes (a host sync per class)."""
    b, c = f.shape[:2]
    codes = torch.zeros(b, context.shape[1], c, device=f.device)
    for i in range(b):
        for j in range(context.shape[1]):
            if 24 <= j <= 33:
                continue
            sel = context[i, j] != 0
            if torch.sum(sel) > 0:
                codes[i, j] = f[i][:, sel].mean(1)
    return codes


def _authors_propagate(self, feat, segmap, bg_mask, mask):
    """``StylePropagate.forward`` with the authors' class-code loop in place of the vectorised codes."""
    f = self.conv(feat)
    size = f.shape[2:]
    segmap = F.interpolate(segmap, size=size, mode="nearest")
    bg_mask = F.interpolate(bg_mask, size=size, mode="nearest")
    mask = F.interpolate(mask, size=size, mode="nearest")
    bg_seg = segmap * bg_mask
    codes = _authors_class_codes(f, bg_seg * (1 - mask))
    style_map = torch.bmm(codes.transpose(1, 2), bg_seg.flatten(2)).view(f.shape)
    return self.stylelayer(feat, torch.cat((style_map, bg_seg), dim=1))


def write_vgg19_cache(work: Path) -> Path:
    """Weights in the place of torchvision's cached ImageNet VGG19 file (random values, the same size)."""
    path = work / VGG19_CACHE
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(build_vgg19().state_dict(), path)
    return path


def build_vgg19() -> nn.Module:
    """torchvision's VGG19 layout (features + classifier) with its initialisation; the authors build one."""
    from siedob.train.vgg import VGG19_CFG, VGG19Features

    features = VGG19Features(splits=(2 * sum(v != "M" for v in VGG19_CFG) + VGG19_CFG.count("M"),)).features
    net = nn.Sequential(
        features,
        nn.AdaptiveAvgPool2d(7),
        nn.Flatten(),
        nn.Linear(512 * 49, 4096),
        nn.ReLU(True),
        nn.Dropout(),
        nn.Linear(4096, 4096),
        nn.ReLU(True),
        nn.Dropout(),
        nn.Linear(4096, 1000),
    )
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
    return net


class AuthorsChain:
    """The authors' edit chain approach: fixed slots and canvas, one object at a time, per-slot loops."""

    def __init__(self, ckpt: Path, device: torch.device) -> None:
        from siedob.checkpoints import RELEASED, load_released
        from siedob.nn import (
            BackgroundGenerator,
            FusionGenerator,
            ObjectInpaintingGenerator,
            ObjectStyleGenerator,
            init_weights,
        )

        nets = [ObjectInpaintingGenerator(), ObjectStyleGenerator(), BackgroundGenerator(), FusionGenerator()]
        init_weights(nets[2])
        init_weights(nets[3])
        for net, role in zip(nets, RELEASED):
            load_released(net, ckpt / RELEASED[role].filename, role)
        self.oi, self.og, self.gb, self.f = (n.to(device).eval() for n in nets)
        for name in ("style1", "style2", "style3"):
            mod = getattr(self.gb, name)
            mod.forward = types.MethodType(_authors_propagate, mod)
        self.device = device

    def __call__(self, img, labels, inst, mask, bank) -> torch.Tensor:
        """img 3×256×256, labels / inst / mask 1×256×256 (host tensors); returns the result on the device."""
        from siedob.data.disassembly import EDIT_RULES, disassemble
        from siedob.labels import CAR, CLASS_CODES, PERSON
        from siedob.maps import edge_map, one_hot_labels

        dev = self.device
        dis = disassemble(img, labels, inst, mask, EDIT_RULES)
        slots = {}
        for cls in (CAR, PERSON):
            s = {
                "inst": torch.zeros(MAX_NUM, 1, 64, 64),
                "masked": torch.zeros(MAX_NUM, 3, 64, 64),
                "mask": torch.zeros(MAX_NUM, 1, 64, 64),
                "box": torch.zeros(MAX_NUM, 4, dtype=torch.long),
            }
            for i, o in enumerate(dis.of_class(cls)):
                s["inst"][i], s["masked"][i], s["mask"][i] = o.inst_crop, o.masked_image, o.mask
                s["box"][i] = torch.tensor(o.box)
            slots[cls] = {k: v.to(dev) for k, v in s.items()}
        img, labels, inst, mask = (t[None].to(dev) for t in (img, labels, inst, mask))
        fg_mask = dis.fg_mask[None].to(dev)
        masked_img = img * (1 - mask)
        canvases = []
        for cls in (CAR, PERSON):
            code = torch.tensor(CLASS_CODES[cls], device=dev).view(1, 3, 1, 1)
            refs = bank.get(cls)
            s = slots[cls]
            outs: Dict[int, torch.Tensor] = {}
            k = 0
            for i in range(MAX_NUM):
                ic = s["inst"][i : i + 1]
                if torch.sum(ic) == 0:
                    continue
                obj_mask = s["mask"][i : i + 1] * ic
                cls_map = ic * code
                if torch.sum(obj_mask) == torch.sum(ic):
                    j = k % len(refs)
                    sty_m = refs.masks[j : j + 1].to(dev)
                    sty = refs.images[j : j + 1].to(dev) * sty_m
                    outs[i] = self.og(cls_map, sty, sty_m * code, ic)[0]
                else:
                    outs[i] = self.oi(s["masked"][i : i + 1] * ic, ic, obj_mask, cls_map)
                k += 1
            canvas = torch.zeros(1, 3, CANVAS, CANVAS, device=dev)
            for i in range(MAX_NUM):
                ic = s["inst"][i : i + 1]
                if torch.sum(ic) == 0:
                    continue
                b0, b1, b2, b3 = s["box"][i].tolist()
                o = F.interpolate(outs[i], size=(b1 - b0, b3 - b2), mode="bilinear", align_corners=False)
                m = F.interpolate(ic, size=(b1 - b0, b3 - b2), mode="nearest")
                canvas[:, :, b0:b1, b2:b3] = o * m + canvas[:, :, b0:b1, b2:b3] * (1 - m)
            canvases.append(canvas)
        canvas = canvases[0] + canvases[1]
        fg_output = canvas * fg_mask * mask + masked_img * (1 - fg_mask * mask)
        bg_mask = 1 - fg_mask
        segmap = one_hot_labels(labels)
        edge = edge_map(inst) * mask
        bg_output = self.gb(
            torch.cat((masked_img, torch.cat((segmap, edge), 1) * bg_mask, mask), 1), segmap, mask, bg_mask
        )
        masked_g = fg_output * fg_mask * mask + bg_output * bg_mask * mask + img * (1 - mask)
        fake_f = self.f(masked_g, segmap, mask, edge)
        return (fake_f * mask + img * (1 - mask))[0]


# ---------------------------------------------------------------- child processes


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _scene_and_bank(scene_dir: Path) -> Tuple[Scene, StyleBank]:
    """The bench scene of an example folder and its style bank."""
    from siedob.edit.inputs import read_example_folder
    from siedob.edit.style_bank import load_style_bank

    return read_example_folder(scene_dir)[0], load_style_bank(scene_dir / "object_style")


def _authors_runner(ckpt: Path, scene_dir: Path, device: torch.device) -> Tuple[AuthorsChain, Runner]:
    """The authors' chain and a function editing the scene with it (their input conversion included)."""
    chain = AuthorsChain(ckpt, device)
    scene, bank = _scene_and_bank(scene_dir)
    img = torch.from_numpy(scene.image).permute(2, 0, 1).float().div(255).sub(0.5).div(0.5)
    lab, inst, mask = (
        torch.from_numpy(np.asarray(a, np.float32))[None] for a in (scene.labels, scene.instances, scene.mask)
    )

    def run() -> torch.Tensor:
        with torch.no_grad():
            return chain(img, lab.long(), inst.long(), mask, bank)

    return chain, run


def _our_runner(ckpt: Path, scene_dir: Path, device: torch.device) -> Tuple[Editor, Runner]:
    """Our editor and a function editing the scene with it."""
    from siedob.edit.chain import Editor

    editor = Editor.from_checkpoints(ckpt, device)
    scene, bank = _scene_and_bank(scene_dir)

    def run() -> torch.Tensor:
        return editor.edit(scene.image, scene.labels, scene.instances, scene.mask, bank).result

    return editor, run


def process_child(impl: str, scene_dir: Path, ckpt: Path, out: Path, device_name: str) -> None:
    """Edit the scene as the implementation's command would, from a fresh process to the PNG; print JSON."""
    from siedob.data.io import write_image
    from siedob.device import resolve_device

    device = resolve_device(device_name)
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
    if impl == "ours":
        from siedob.edit.cli import main

        main(
            [
                "--checkpoints",
                str(ckpt),
                "--input",
                str(scene_dir),
                "--output",
                str(out.parent),
                "--device",
                device_name,
                "--overwrite",
            ]
        )
    else:
        build_vgg19().load_state_dict(torch.load(ckpt.parent / VGG19_CACHE, map_location="cpu", weights_only=True))
        _, run = _authors_runner(ckpt, scene_dir, device)
        write_image(out, run())
    print(json.dumps({"png_written_at": time.time(), "process_peak_mb": _rss_peak_mb()}))


def forward_child(scene_dir: Path, ckpt: Path, device_name: str, repeat: int) -> None:
    """Both chains in one process, timed alternately ``repeat`` times after a warm-up; print JSON.

    Alternating puts both under the same machine load, so their ratio is steadier than timings taken
    in separate processes.
    """
    from siedob.device import resolve_device

    device = resolve_device(device_name)
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
    authors, run_a = _authors_runner(ckpt, scene_dir, device)
    ours, run_o = _our_runner(ckpt, scene_dir, device)
    runs = {"authors": run_a, "ours": run_o}
    nets = {"authors": (authors.gb, authors.f), "ours": (ours.background, ours.fusion)}
    results = {impl: run().float().cpu() for impl, run in runs.items()}
    times: Dict[str, list] = {impl: [] for impl in runs}
    for _ in range(repeat):
        for impl, run in runs.items():
            _sync(device)
            t = time.perf_counter()
            run()
            _sync(device)
            times[impl].append(time.perf_counter() - t)
    report = {"max_abs_diff": float((results["ours"] - results["authors"]).abs().max())}
    for impl, run in runs.items():
        report[impl] = {
            "forward_s": float(np.median(times[impl])),
            "forward_min_s": min(times[impl]),
            "scene_nets_s": _scene_nets_time(run, nets[impl], device, repeat),
            "edit_peak_mb": _edit_peak_mb(run, device),
        }
    print(json.dumps(report))


def _edit_peak_mb(run: Runner, device: torch.device) -> float:
    """Device memory one edit allocates beyond what was already held (CUDA only; NaN on CPU)."""
    if device.type != "cuda":
        return float("nan")
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    run()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def _scene_nets_time(run: Runner, nets: Sequence[nn.Module], device: torch.device, repeat: int) -> float:
    """Time per edit spent in G_B and F (fastest of ``repeat`` extra edits, synchronised around each network).

    Both chains run the same G_B and F on the same full-size scene, so this is a floor under either
    chain's forward time on this machine.
    """
    spent = [0.0]

    def start(module: nn.Module, args: object) -> None:
        _sync(device)
        module._bench_t0 = time.perf_counter()

    def stop(module: nn.Module, args: object, out: object) -> None:
        _sync(device)
        spent[0] += time.perf_counter() - module._bench_t0

    hooks = [h for net in nets for h in (net.register_forward_pre_hook(start), net.register_forward_hook(stop))]
    best = float("inf")
    for _ in range(repeat):
        spent[0] = 0.0
        run()
        best = min(best, spent[0])
    for h in hooks:
        h.remove()
    return best


def _spawn(args: Sequence[str]) -> Dict:
    """Run a child; its JSON output, and (for a process child) the time from spawning it to its PNG."""
    start = time.time()
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[:2]} failed:\n{proc.stderr[-2000:]}")
    out: Dict = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            out.update(json.loads(line))
    if "png_written_at" in out:
        out["wall_s"] = out["png_written_at"] - start
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Build scenes and checkpoints, then time both implementations per scene and device."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="all", choices=("cpu", "cuda", "all"))
    p.add_argument("--objects", type=int, nargs="+", default=[1, 3, 6])
    p.add_argument("--repeat", type=int, default=5, help="alternate timed forwards of each chain")
    p.add_argument("--trials", type=int, default=2, help="fresh processes per chain for the process time (fastest)")
    p.add_argument(
        "--process-child", nargs=5, metavar=("IMPL", "SCENE", "CKPT", "OUT", "DEVICE"), help=argparse.SUPPRESS
    )
    p.add_argument("--forward-child", nargs=3, metavar=("SCENE", "CKPT", "DEVICE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.process_child:
        impl, scene, ckpt, out, device = args.process_child
        process_child(impl, Path(scene), Path(ckpt), Path(out), device)
        return 0
    if args.forward_child:
        scene, ckpt, device = args.forward_child
        forward_child(Path(scene), Path(ckpt), device, args.repeat)
        return 0
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if not torch.cuda.is_available():
        devices = [d for d in devices if d != "cuda"]
    work = Path(tempfile.mkdtemp(prefix="siedob-bench-"))
    try:
        ckpt = write_checkpoints(work / "ckpt")
        write_vgg19_cache(work)
        print(f"threads: {torch.get_num_threads()}  torch {torch.__version__}")
        print(
            "forward s: median of the alternate timed edits (fastest in brackets); process s: fresh process to "
            "PNG written (fastest of the trials); peak MB: process RSS on CPU, one edit's allocations on CUDA"
        )
        header = (
            f"{'device':6} {'objects':>7} {'impl':8} {'forward s':>16} {'process s':>9} {'peak MB':>8} {'G_B+F s':>8}"
        )
        for device in devices:
            print(header)
            for n in args.objects:
                scene = make_bench_scene(n, work / f"scene{n}")
                fwd = _spawn(["--forward-child", str(scene), str(ckpt), device, "--repeat", str(args.repeat)])
                res = {}
                for impl in ("authors", "ours"):
                    out = work / f"{impl}{n}{device}" / "scene.png"
                    runs = [
                        _spawn(["--process-child", impl, str(scene), str(ckpt), str(out), device])
                        for _ in range(args.trials)
                    ]
                    r = res[impl] = {**fwd[impl], **{k: min(run[k] for run in runs) for k in runs[0]}}
                    peak = r["edit_peak_mb"] if device == "cuda" else r["process_peak_mb"]
                    forward = f"{r['forward_s']:.3f} ({r['forward_min_s']:.3f})"
                    print(
                        f"{device:6} {n:7d} {impl:8} {forward:>16} {r['wall_s']:9.2f} {peak:8.0f} "
                        f"{r['scene_nets_s']:8.3f}",
                        flush=True,
                    )
                ratio_f = res["ours"]["forward_s"] / res["authors"]["forward_s"]
                ratio_p = res["ours"]["wall_s"] / res["authors"]["wall_s"]
                floor = min(r["scene_nets_s"] for r in res.values()) / res["authors"]["forward_s"]
                print(
                    f"{device:6} {n:7d} ratio    {ratio_f:16.2f} {ratio_p:9.2f}   G_B+F alone: {floor:.2f} of the "
                    f"authors' forward;  max |ours - authors| = {fwd['max_abs_diff']:.2e}",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
