"""Command line of the four trainers: ``siedob-train <stage> ...`` or ``python <stage>/train.py ...``.

Single process: ``siedob-train instance_inpainting --data-root data/cityscapes512x256 --output runs/oi``.
Several GPUs: ``torchrun --nproc_per_node 4 instance_inpainting/train.py --output runs/oi`` (the
config's batch size is per process). Errors are printed on one line (exit code 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from siedob.config import STAGES, default_config_path, repo_root
from siedob.errors import SiedobError, run_cli
from siedob.train.trainer import AMP_MODES


def build_parser(stage: Optional[str] = None) -> argparse.ArgumentParser:
    """Arguments of one stage's trainer (or of ``siedob-train`` with the stage as first argument)."""
    prog = f"{stage}/train.py" if stage else "siedob-train"
    p = argparse.ArgumentParser(prog=prog, description="Train a SIEDOB stage (docs/spec.md §4).")
    if stage is None:
        p.add_argument("stage", choices=list(STAGES), help="which network to train")
    p.add_argument("--config", default=None, help="stage config (default: <stage>/configs/config.yaml)")
    p.add_argument("--data-root", default=None, help="prepared data folder (default: the config's data.root)")
    p.add_argument("--output", default=None, help="run folder (default: runs/<stage>)")
    p.add_argument("--resume", nargs="?", const=True, default=None, metavar="RUN_DIR",
                   help="continue a run from its latest checkpoint (RUN_DIR defaults to --output)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.batch_size=8 (repeatable)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--amp", default="none", choices=list(AMP_MODES), help="mixed precision (fp16 uses a GradScaler)")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps in total")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the config's train.seed)")
    p.add_argument("--vgg-weights", default=None, metavar="PATH|torchvision|random",
                   help="VGG19 ImageNet weights for the perceptual loss (default: torch hub cache, then torchvision)")
    p.add_argument("--submodels", default=None,
                   help="fusion only: folder with object_inpainting.pth, object_style.pth, bg.pth "
                   "(default: fusion/submodels)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log.jsonl is still written)")
    return p


def main(argv: Optional[Sequence[str]] = None, stage: Optional[str] = None) -> int:
    """Parse arguments and train; returns the exit code."""
    from siedob.train.run import train_stage

    args = build_parser(stage).parse_args(argv)
    stage = stage or args.stage
    if args.max_steps is not None and args.max_steps < 0:
        raise SiedobError("--max-steps must be >= 0")
    resume = args.resume is not None
    output = args.resume if isinstance(args.resume, str) else args.output
    if output is None:
        output = str(Path("runs") / stage)
    if args.submodels is not None and stage != "fusion":
        raise SiedobError("--submodels applies to the fusion stage only")
    submodels = args.submodels or (str(repo_root() / "fusion" / "submodels") if stage == "fusion" else None)
    result = train_stage(
        stage,
        output,
        data_root=args.data_root,
        config=args.config or default_config_path(stage),
        overrides=args.overrides,
        resume=resume,
        device=args.device,
        amp=args.amp,
        channels_last=args.channels_last,
        max_steps=args.max_steps,
        seed=args.seed,
        vgg_weights=args.vgg_weights,
        submodels=submodels,
        progress=not args.no_progress,
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
