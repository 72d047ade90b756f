"""``siedob-edit`` / ``fusion/test_one_image.py``: edit every scene of an example folder, or one scene.

Folder mode (the authors' layout): ``<input>/images/<n>.jpg`` with ``labels/<n>.png``, ``inst_map/<n>.png``,
``mask/<n>.png`` and style references in ``<input>/object_style``; each result is ``<output>/<n>.png``.
Single mode: ``--image --labels --instances (--mask | --orig-labels [--orig-instances]) --out``.
Everything is read and checked before any network runs, and results are written only when every
edit has succeeded; a bad input is one ``error:`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from siedob.config import repo_root
from siedob.data.io import DataError, tensor_to_image, write_atomic
from siedob.edit.chain import Editor, resolve_device
from siedob.edit.inputs import EditError, Scene, read_example_folder, read_scene
from siedob.edit.style_bank import StyleBank, load_style_bank
from siedob.errors import run_cli

DEFAULT_CHECKPOINTS = "fusion/submodels"
DEFAULT_INPUT = "fusion/example"
DEFAULT_OUTPUT = "results"
WRITABLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one-line :class:`EditError`s."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise EditError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = _Parser(prog="siedob-edit", description="Edit images with SIEDOB's chain (docs/spec.md §6).")
    p.add_argument("--checkpoints", default=DEFAULT_CHECKPOINTS, help="folder with the four released .pth files")
    p.add_argument("--input", default=DEFAULT_INPUT, help="example folder in the authors' layout")
    p.add_argument("--output", default=DEFAULT_OUTPUT, help="folder for <name>.png results")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--seed", type=int, default=0, help="seed of the style-bank draws")
    p.add_argument("--save-stages", action="store_true", help="also write <name>_stages.png panels")
    p.add_argument("--overwrite", action="store_true", help="replace result files that already exist")
    p.add_argument("--style", nargs="+", default=(), metavar="NAME", help="pin style reference file names")
    one = p.add_argument_group("single edit")
    one.add_argument("--image", help="photo to edit")
    one.add_argument("--labels", help="edited label map (labelIds PNG)")
    one.add_argument("--instances", help="edited instance map (16-bit instanceIds PNG)")
    one.add_argument("--mask", help="mask PNG (white = regenerate)")
    one.add_argument("--orig-labels", help="original label map: the mask becomes the changed region, dilated")
    one.add_argument("--orig-instances", help="original instance map (with --orig-labels)")
    one.add_argument("--style-dir", help="style references folder ({car,person}/{images,inst_mask})")
    one.add_argument("--out", help="output image file")
    return p


def _default_path(value: str, default: str) -> Path:
    """A default path is looked up in the working directory, then in the repository."""
    path = Path(value)
    if value == default and not path.exists() and (repo_root() / default).exists():
        return repo_root() / default
    return path


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and prove a file can be written there."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".siedob-write-test.", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise EditError(f"{folder}: output folder is not writable ({exc.strerror or exc})") from None


def check_outputs(outputs: Sequence[Path], scenes: Sequence[Scene], overwrite: bool) -> None:
    """Never write over an input file; replace an existing result only with ``--overwrite``."""
    inputs = {Path(p).resolve() for s in scenes for p in s.paths.values()}
    for out in outputs:
        if out.resolve() in inputs:
            raise EditError(f"{out}: is one of the edit's input files; choose another output")
        if out.exists() and not overwrite:
            raise EditError(f"{out}: already exists (pass --overwrite to replace it)")


def _jobs(args: argparse.Namespace) -> Tuple[List[Scene], Optional[Path], List[Path]]:
    """Scenes to edit, their style folder and their output files."""
    if args.image:
        for flag in ("labels", "instances", "out"):
            if not getattr(args, flag):
                raise EditError(f"--image needs --{flag}")
        if not args.mask and not args.orig_labels:
            raise EditError("--image needs --mask, or --orig-labels to derive the mask")
        scene = read_scene(args.image, args.labels, args.instances, args.mask, args.orig_labels, args.orig_instances)
        out = Path(args.out)
        if out.suffix.lower() not in WRITABLE_SUFFIXES:
            raise EditError(f"{out}: output must end in one of {', '.join(WRITABLE_SUFFIXES)}")
        return [scene], Path(args.style_dir) if args.style_dir else None, [out]
    folder = _default_path(args.input, DEFAULT_INPUT)
    scenes = read_example_folder(folder)
    style = Path(args.style_dir) if args.style_dir else folder / "object_style"
    out_dir = Path(args.output)
    return scenes, style if style.is_dir() else None, [out_dir / f"{s.name}.png" for s in scenes]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the edits; see the module docstring."""
    args = build_parser().parse_args(argv)
    device = resolve_device(args.device)
    scenes, style_dir, outputs = _jobs(args)
    rng = random.Random(args.seed)
    banks: List[StyleBank] = [load_style_bank(style_dir, names=args.style, rng=rng) for _ in scenes]
    if args.save_stages:
        outputs_all = [p for o in outputs for p in (o, o.with_name(f"{o.stem}_stages.png"))]
    else:
        outputs_all = list(outputs)
    check_outputs(outputs_all, scenes, args.overwrite)
    for folder in {o.parent for o in outputs}:
        check_writable(folder)
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    editor = Editor.from_checkpoints(_default_path(args.checkpoints, DEFAULT_CHECKPOINTS), device, mmap=True)
    writes: List[Tuple[Path, np.ndarray]] = []
    jobs = tqdm(list(zip(scenes, banks, outputs)), desc="editing", unit="image", disable=len(scenes) < 2)
    for scene, bank, out in jobs:
        if not scene.mask.any():
            writes.append((out, scene.image))
            continue
        stages = editor.edit(scene.image, scene.labels, scene.instances, scene.mask, bank, args.save_stages)
        if args.save_stages:
            from siedob.edit.panel import build_panel

            writes.append((out, tensor_to_image(stages.result)))
            writes.append((out.with_name(f"{out.stem}_stages.png"), build_panel(scene, stages)))
        else:
            writes.append((out, tensor_to_image(stages)))
    for path, img in writes:
        try:
            write_atomic(path, img)
        except (OSError, DataError) as exc:
            raise EditError(f"{path}: could not write ({exc})") from None
        print(f"wrote {path}")
    return 0


def console() -> int:
    """Console-script entry point (``siedob-edit``): exit code 2 and one line on a bad input."""
    return run_cli(main)
