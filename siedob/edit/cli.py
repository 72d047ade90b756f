"""``siedob-edit`` / ``fusion/test_one_image.py``: edit every scene of an example folder, or one scene.

Folder mode (the authors' layout): ``<input>/images/<n>.jpg`` with ``labels/<n>.png``, ``inst_map/<n>.png``,
``mask/<n>.png`` and style references in ``<input>/object_style``; each result is ``<output>/<n>.png``. Without
``--input`` the bundled example (package data, :mod:`siedob.example`) is edited.
Single mode: ``--image --labels --instances (--mask | --orig-labels [--orig-instances]) --output-file FILE``.
Everything is read and checked before any network runs, and results are written only when every
edit has succeeded; a bad input is one ``error:`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from siedob.checkpoints import folder_profile
from siedob.cli import Parser, add_device, add_overwrite, check_output_dir, existing_dir
from siedob.data.io import DataError, tensor_to_image, write_atomic
from siedob.edit.chain import Editor, resolve_device
from siedob.edit.inputs import EditError, Scene, read_example_folder, read_scene
from siedob.edit.style_bank import StyleBank, load_style_bank
from siedob.errors import UsageError, run_cli
from siedob.profiles import DEFAULT_PROFILE

DEFAULT_CHECKPOINTS = "fusion/submodels"
DEFAULT_OUTPUT = "results"
WRITABLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
#: Options of the single-image mode (``--image``); none of them goes with ``--input`` or ``--output``.
SINGLE_OPTIONS = ("image", "labels", "instances", "mask", "orig_labels", "orig_instances", "output_file")


def bundled_example() -> Path:
    """The bundled example folder (package data)."""
    from importlib import resources

    path = Path(str(resources.files("siedob.example")))
    if not (path / "images").is_dir():
        raise EditError(f"{path}: the bundled example is missing from the installed package")
    return path


def build_parser(prog: str = "siedob-edit") -> argparse.ArgumentParser:
    """The command-line interface."""
    p = Parser(prog=prog, description="Edit images with SIEDOB's chain (docs/spec.md §6).")
    p.add_argument(
        "--checkpoints",
        default=DEFAULT_CHECKPOINTS,
        metavar="DIR",
        help=f"folder with the four released .pth files (default: {DEFAULT_CHECKPOINTS})",
    )
    p.add_argument(
        "--input",
        default=None,
        metavar="DIR",
        help="folder of scenes in the authors' layout (default: the bundled example)",
    )
    p.add_argument(
        "--output", default=None, metavar="DIR", help=f"folder for <name>.png results (default: {DEFAULT_OUTPUT})"
    )
    add_device(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the style-bank draws")
    p.add_argument("--save-stages", action="store_true", help="also write <name>_stages.png panels")
    add_overwrite(p, "result files that already exist")
    p.add_argument("--style", nargs="+", default=(), metavar="NAME", help="pin style reference file names")
    p.add_argument(
        "--style-dir",
        metavar="DIR",
        help="style references ({car,person}/{images,inst_mask}; default: <input>/object_style)",
    )
    one = p.add_argument_group("single edit (not with --input or --output)")
    one.add_argument("--image", help="photo to edit")
    one.add_argument("--labels", help="edited label map (labelIds PNG)")
    one.add_argument("--instances", help="edited instance map (16-bit instanceIds PNG)")
    one.add_argument("--mask", help="mask PNG (white = regenerate)")
    one.add_argument("--orig-labels", help="original label map: the mask becomes the changed region, dilated")
    one.add_argument("--orig-instances", help="original instance map (with --orig-labels)")
    one.add_argument("--output-file", metavar="FILE", help="output image file (.png, .jpg, .jpeg or .bmp)")
    return p


def check_outputs(outputs: Sequence[Path], scenes: Sequence[Scene], overwrite: bool) -> None:
    """Never write over an input file; replace an existing result only with ``--overwrite``."""
    inputs = {Path(p).resolve() for s in scenes for p in s.paths.values()}
    for out in outputs:
        if out.resolve() in inputs:
            raise EditError(f"{out}: is one of the edit's input files; choose another output")
        if out.exists() and not overwrite:
            raise EditError(f"{out}: already exists (pass --overwrite to replace it)")


def _jobs(args: argparse.Namespace, profile: str) -> Tuple[List[Scene], Optional[Path], List[Path]]:
    """Scenes to edit (labels checked against the dataset profile), their style folder and their output files."""
    single = [f"--{o.replace('_', '-')}" for o in SINGLE_OPTIONS if getattr(args, o) is not None]
    if single and (args.input is not None or args.output is not None):
        folder = "--input" if args.input is not None else "--output"
        raise UsageError(f"{folder} (folder mode) does not go with {single[0]} (single-image mode)")
    if single and not args.image:
        raise UsageError(f"{single[0]} needs --image (single-image mode)")
    if args.image:
        for flag in ("labels", "instances", "output_file"):
            if not getattr(args, flag):
                raise UsageError(f"--image needs --{flag.replace('_', '-')}")
        if not args.mask and not args.orig_labels:
            raise EditError("--image needs --mask, or --orig-labels to derive the mask")
        scene = read_scene(
            args.image, args.labels, args.instances, args.mask, args.orig_labels, args.orig_instances, profile=profile
        )
        out = Path(args.output_file)
        if out.suffix.lower() not in WRITABLE_SUFFIXES:
            raise EditError(f"{out}: output must end in one of {', '.join(WRITABLE_SUFFIXES)}")
        return [scene], existing_dir(args.style_dir, "style folder"), [out]
    if args.input is None and profile != DEFAULT_PROFILE:
        raise UsageError(
            f"the bundled example is a Cityscapes scene, but the checkpoints are of the {profile} profile: "
            "pass --input DIR or --image ..."
        )
    folder = existing_dir(args.input, "input folder") if args.input is not None else bundled_example()
    scenes = read_example_folder(folder, profile)
    style = existing_dir(args.style_dir, "style folder") if args.style_dir else folder / "object_style"
    out_dir = Path(args.output if args.output is not None else DEFAULT_OUTPUT)
    return scenes, style if style.is_dir() else None, [out_dir / f"{s.name}.png" for s in scenes]


def main(argv: Optional[Sequence[str]] = None, prog: str = "siedob-edit") -> int:
    """Run the edits; see the module docstring."""
    args = build_parser(prog).parse_args(argv)
    device = resolve_device(args.device)
    profile = folder_profile(args.checkpoints) if Path(args.checkpoints).is_dir() else DEFAULT_PROFILE
    scenes, style_dir, outputs = _jobs(args, profile)
    rng = random.Random(args.seed)
    banks: List[StyleBank] = [load_style_bank(style_dir, names=args.style, rng=rng, profile=profile) for _ in scenes]
    if args.save_stages:
        outputs_all = [p for o in outputs for p in (o, o.with_name(f"{o.stem}_stages.png"))]
    else:
        outputs_all = list(outputs)
    check_outputs(outputs_all, scenes, args.overwrite)
    for folder in {o.parent for o in outputs}:
        check_output_dir(folder)
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    editor = Editor.from_checkpoints(Path(args.checkpoints), device, mmap=True, profile=profile)
    writes: List[Tuple[Path, np.ndarray]] = []
    jobs = tqdm(list(zip(scenes, banks, outputs)), desc="editing", unit="image", disable=len(scenes) < 2)
    for scene, bank, out in jobs:
        if not scene.mask.any():
            writes.append((out, scene.image))
            continue
        stages = editor.edit(scene.image, scene.labels, scene.instances, scene.mask, bank)
        writes.append((out, tensor_to_image(stages.result)))
        if args.save_stages:
            from siedob.edit.panel import build_panel

            writes.append((out.with_name(f"{out.stem}_stages.png"), build_panel(scene, stages, profile)))
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
