"""Command line of the four trainers: ``siedob-train <stage> ...`` or ``python <stage>/train.py ...``.

Single process: ``siedob-train instance_inpainting --data-root data/cityscapes512x256 --output runs/oi``.
Continue a run: ``siedob-train --resume runs/oi`` (the stage is read from the run). Several GPUs:
``torchrun --nproc_per_node 4 instance_inpainting/train.py --output runs/oi`` (the config's batch size is
per process). Errors are printed on one line (exit code 2).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

from siedob.cli import Parser, add_config, add_device, check_output_dir, existing_dir
from siedob.config import STAGES, dump_config, load_config
from siedob.errors import UsageError, run_cli

#: Where the fusion stage looks for stages 1-3's released files without ``--checkpoints``.
DEFAULT_SUBMODELS = "fusion/submodels"


def build_parser(stage: Optional[str] = None) -> Parser:
    """Arguments of one stage's trainer (or of ``siedob-train`` with the stage as first argument)."""
    prog = f"{stage}/train.py" if stage else "siedob-train"
    p = Parser(prog=prog, description="Train a SIEDOB stage (docs/spec.md §4).")
    if stage is None:
        p.add_argument(
            "stage",
            nargs="?",
            choices=list(STAGES),
            help="which network to train (optional with --resume: read from the run)",
        )
    add_config(p, "the stage's packaged config, a copy of <stage>/configs/config.yaml")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--data-root", default=None, metavar="DIR", help="prepared data folder (default: data.root)")
    p.add_argument("--output", default=None, metavar="DIR", help="run folder (default: runs/<stage>)")
    p.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its latest checkpoint, with its saved config",
    )
    p.add_argument(
        "--allow-config-change",
        action="store_true",
        help="with --resume: accept a config or precision that differs from the run's",
    )
    add_device(p, None)
    p.add_argument(
        "--amp",
        default=None,
        choices=["none", "bf16", "fp16"],
        help="mixed precision (default: run.amp, none; fp16 uses a GradScaler)",
    )
    p.add_argument("--channels-last", action="store_true", default=None, help="channels-last memory format")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps in total")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the config's train.seed)")
    p.add_argument(
        "--vgg-weights",
        default=None,
        metavar="PATH|torchvision|random",
        help="VGG19 ImageNet weights for the perceptual loss (default: torch hub cache, then torchvision)",
    )
    p.add_argument(
        "--checkpoints",
        default=None,
        metavar="DIR",
        help="fusion only: folder with object_inpainting.pth, object_style.pth and bg.pth "
        f"(default: {DEFAULT_SUBMODELS})",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log.jsonl is still written)")
    return p


def main(argv: Optional[Sequence[str]] = None, stage: Optional[str] = None) -> int:
    """Parse arguments and train (or print the config); returns the exit code."""
    from siedob.train.run import resolve_run_config, train_stage

    args = build_parser(stage).parse_args(argv)
    stage = stage or args.stage
    if args.resume is not None:
        run_dir = existing_dir(args.resume, "run folder to resume")
        if args.output is not None and Path(args.output).resolve() != run_dir.resolve():
            raise UsageError("--resume RUN_DIR and --output DIR name different folders; give one of them")
        saved = run_dir / "config.yaml"
        if stage is None:
            if not saved.is_file():
                raise UsageError(f"{saved}: not found; name the stage to resume")
            stage = load_config(saved)["stage"]
        output = str(run_dir)
    else:
        if stage is None:
            raise UsageError(f"{build_parser().prog}: name the stage ({', '.join(STAGES)}) or pass --resume RUN_DIR")
        if args.allow_config_change:
            raise UsageError("--allow-config-change applies with --resume only")
        output = args.output if args.output is not None else str(Path("runs") / stage)
        if not args.print_config:
            check_output_dir(Path(output), "run folder")
    if args.max_steps is not None and args.max_steps < 0:
        raise UsageError("--max-steps must be >= 0")
    if args.checkpoints is not None and stage != "fusion":
        raise UsageError("--checkpoints applies to the fusion stage only")
    if args.checkpoints is not None:
        existing_dir(args.checkpoints, "sub-network checkpoint folder")
    submodels = args.checkpoints
    if submodels is None and stage == "fusion" and args.resume is None:
        submodels = DEFAULT_SUBMODELS
    if args.data_root is not None:
        existing_dir(args.data_root, "data root")
    options = dict(
        data_root=args.data_root,
        seed=args.seed,
        device=args.device,
        amp=args.amp,
        channels_last=args.channels_last,
        vgg_weights=args.vgg_weights,
        submodels=submodels,
        max_steps=args.max_steps,
    )
    if args.print_config:
        cfg = resolve_run_config(
            stage, output, args.config, args.overrides, args.resume is not None, args.allow_config_change, **options
        )
        sys.stdout.write(dump_config(cfg))
        return 0
    result = train_stage(
        stage,
        output,
        config=args.config,
        overrides=args.overrides,
        resume=args.resume is not None,
        allow_config_change=args.allow_config_change,
        progress=not args.no_progress,
        **options,
    )
    if result.checkpoint is not None:
        print(f"{stage}: {result.step} steps, checkpoint {result.checkpoint}, released {result.released}")
    return 0


def stage_entry(stage: str, argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``<stage>/train.py``."""
    return run_cli(lambda a: main(a, stage), argv)


def console_main() -> None:
    """``siedob-train <stage> ...`` console script."""
    sys.exit(run_cli(main))
