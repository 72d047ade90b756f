"""``siedob-quickstart``: the whole system end to end on the CPU in a few minutes, from nothing.

Makes synthetic Cityscapes-format data, trains the four stages for a few hundred steps at reduced
widths, exports the released-format sub-network files, edits the bundled example with them and
writes the result and a panel of every stage. ``--profile ade20k-room`` does the same on synthetic
rooms of the ADE20K-Room profile and edits the first test room under its predefined mask.
The networks are tiny and briefly trained, so the
edit shows the machinery, not the paper's quality; for that, load the authors' checkpoints.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from siedob.cli import Parser, add_device, add_overwrite, check_output_dir, positive_int
from siedob.errors import SiedobError, UsageError, run_cli
from siedob.profiles import PROFILE_NAMES
from siedob.stages import STAGES

#: Reduced widths and small scene crops so that all four stages train in minutes on two cores.
COMMON = [
    "model.ngf=8",
    "model.ndf=8",
    "train.num_workers=0",
    "log.fid_every_epochs=0",
    "train.vgg_width_divisor=8",
    "log.sample_every=100",
    "log.print_every=25",
]
OBJECT = {"instance_inpainting": ["train.batch_size=8"], "instance_style": ["train.batch_size=4"]}
SCENE = [
    "train.batch_size=2",
    "data.crop_size=128",
    "data.box_size=64",
    "data.brush={min_vertex: 4, max_vertex: 8, min_width: 25, max_width: 70}",
]
PATCHES = ["train.patch_size=[48,80]", "train.patch_resize=80"]


def stage_overrides(stage: str) -> List[str]:
    """The quickstart's config overrides of one stage."""
    extra = OBJECT.get(stage, SCENE)
    return COMMON + extra + (PATCHES if stage == "background" else [])


def _prepare_output(out: Path, overwrite: bool) -> None:
    """Create the output folder; refuse to write into a non-empty one unless asked to."""
    if out.exists() and not out.is_dir():
        raise SiedobError(f"{out}: output folder is a file")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise SiedobError(f"{out}: output folder exists and is not empty (use --overwrite or another --output)")
        if not (out / ".siedob-quickstart").is_file():
            raise SiedobError(f"{out}: not a quickstart folder; refusing to overwrite it")
        shutil.rmtree(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / ".siedob-quickstart").write_text("made by siedob-quickstart\n")
    except OSError as exc:
        raise SiedobError(f"{out}: cannot create output folder ({exc.strerror})") from None


def _room_edit_args(data: Path, out: Path) -> List[str]:
    """``siedob-edit`` arguments for the first prepared test room under its predefined mask, with style
    references copied from the training crops into the ``<class>/{images,inst_mask}`` layout."""
    styles = out / "styles"
    for folder in sorted((data / "object_datasets").iterdir()):
        train = folder / "train"
        if train.is_dir():
            for part in ("images", "inst_mask"):
                shutil.copytree(train / part, styles / folder.name / part, dirs_exist_ok=True)
    images = sorted((data / "test" / "images").glob("*.jpg"))
    masks = sorted((data / "predefined_mask").glob("*.png"))
    if not images or not masks:
        raise SiedobError(f"{data}: the synthetic rooms have no test scene; use more --scenes")
    name = images[0].stem
    return [
        "--image",
        str(images[0]),
        "--labels",
        str(data / "test" / "labels" / f"{name}.png"),
        "--instances",
        str(data / "test" / "inst_map" / f"{name}.png"),
        "--mask",
        str(masks[0]),
        "--style-dir",
        str(styles),
        "--output-file",
        str(out / "results" / f"{name}.png"),
    ]


def run(
    out: Path,
    steps: int = 200,
    scenes: int = 12,
    seed: int = 0,
    progress: bool = True,
    device: str = "cpu",
    profile: str = "cityscapes",
) -> Dict[str, Path]:
    """Data → four trained stages → released files → edited example; returns the key output paths."""
    from siedob.data.synthetic import write_prepared
    from siedob.data.synthetic_ade import write_prepared_ade
    from siedob.edit.cli import main as edit_main
    from siedob.train.run import train_stage

    data = out / "data"
    checkpoints = out / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    print(f"[1/3] synthetic data ({profile}): {scenes} scenes -> {data}", flush=True)
    if profile == "cityscapes":
        write_prepared(data, scenes, seed=seed, progress=progress)
    else:
        write_prepared_ade(data, scenes, seed=seed, progress=progress)
    extra = [] if profile == "cityscapes" else [f"data.profile={profile}"]
    for stage in STAGES.values():
        print(f"[2/3] training {stage.name} ({stage.number}/4, {steps} steps)", flush=True)
        result = train_stage(
            stage.name,
            out / "runs" / stage.name,
            data_root=data,
            overrides=extra + stage_overrides(stage.name),
            device=device,
            max_steps=steps,
            seed=seed,
            vgg_weights="random",
            submodels=checkpoints,
            progress=progress,
        )
        shutil.copyfile(result.released, checkpoints / stage.released)
    results = out / "results"
    target = ["--output", str(results)] if profile == "cityscapes" else _room_edit_args(data, out)
    what = "the bundled example" if profile == "cityscapes" else "the first test room"
    print(f"[3/3] editing {what} -> {results}", flush=True)
    code = edit_main(
        ["--checkpoints", str(checkpoints), *target, "--seed", str(seed), "--save-stages", "--device", device]
    )
    if code:
        raise SiedobError("editing the bundled example failed")
    print(
        f"done in {time.perf_counter() - start:.0f} s: result and stage panel in {results}, "
        f"released-format checkpoints in {checkpoints}"
    )
    print(f"edit it in the browser: siedob-studio --checkpoints {checkpoints} --data {data}")
    return {"data": data, "checkpoints": checkpoints, "results": results}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse arguments and run the quickstart."""
    parser = Parser(prog="siedob-quickstart", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("quickstart_out"),
        metavar="DIR",
        help="folder for everything (default: quickstart_out)",
    )
    parser.add_argument(
        "--steps",
        type=positive_int,
        default=200,
        help="training steps per stage (default 200; 2 checks the machinery in seconds)",
    )
    parser.add_argument("--scenes", type=positive_int, default=12, help="synthetic scenes to generate (at least 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--profile",
        choices=PROFILE_NAMES,
        default="cityscapes",
        help="dataset profile: street scenes (cityscapes, default) or rooms (ade20k-room)",
    )
    add_device(parser, "cpu")
    add_overwrite(parser, "an earlier quickstart folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.scenes < 2:
        raise UsageError("--scenes must be at least 2 (one train and one test scene)")
    check_output_dir(args.output)
    _prepare_output(args.output, args.overwrite)
    run(args.output, args.steps, args.scenes, args.seed, not args.no_progress, args.device, args.profile)
    return 0


def cli() -> None:
    """Console-script entry point."""
    raise SystemExit(run_cli(main))


if __name__ == "__main__":
    cli()
