"""``siedob-eval``: score two folders (``--real/--fake``), or generate results for a test protocol and score them.

Protocols: ``--mode chain|background`` with ``--masks free-form|extension|outpainting`` (the paper's
Table 1), ``--mode objects`` (G_OI on the object crops), ``--mode add-objects`` (Table 2: new objects,
K results per scene, Div). Metrics come from the registry of :mod:`siedob.eval.metrics`
(``--metrics fid,lpips,miou,div``); one whose network or input is missing reports why instead of failing.
With ``--mode`` the dataset profile is the data root's (``profile.json``; none: Cityscapes): it decides the
object classes, the object-addition rules and mIoU's classes, checkpoints of another profile are refused,
and the paper cells shown default to that dataset. Errors the user can fix are
:class:`~siedob.errors.SiedobError`: one line, exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from siedob.data.eval_masks import FIXED_PROTOCOLS, MASK_FOLDERS, MASK_PROTOCOLS
from siedob.data.io import prepared_profile, read_bgr
from siedob.profiles import DEFAULT_PROFILE, PROFILE_NAMES, as_profile

from ..cli import Parser, add_device, add_overwrite, check_output_dir
from ..device import resolve_device
from ..errors import run_cli
from .errors import EvalError
from .fid import COLOR_ORDERS, DEFAULT_COLOR_ORDER, METHODS
from .generate import MODES, GenerationJob, resolve_generator, run_generation, test_split
from .images import check_same_count, list_images
from .inception import BACKENDS
from .metrics import Backends, MetricInputs, compute_metrics, list_metrics, parse_metric_names, prepare_metrics
from .miou import RESOLUTIONS
from .object_addition import DEFAULT_RESULTS_PER_SCENE, MARGIN, addition_rules, run_object_addition
from .report import DATASETS, build_report, markdown_table, write_reports

DEFAULT_CACHE = Path.home() / ".cache" / "siedob" / "eval_features"
ADD_OBJECTS = "add-objects"
ALL_MODES = MODES + (ADD_OBJECTS,)
DEFAULT_METRICS = "fid,lpips,miou"


def _mode(text: str) -> str:
    if text == "fusion":
        raise argparse.ArgumentTypeError("'fusion' was removed: it wrote the chain's results; use --mode chain")
    if text not in ALL_MODES:
        raise argparse.ArgumentTypeError(f"invalid choice {text!r} (choose from {', '.join(ALL_MODES)})")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = Parser(
        prog="siedob-eval",
        description="FID / LPIPS / mIoU / Div of SIEDOB results, beside the paper's numbers.",
        allow_abbrev=False,
    )
    src = p.add_argument_group("what to score (either --real/--fake or --mode with --data-root)")
    src.add_argument("--real", type=Path, help="folder of real images (paired with --fake in sorted order)")
    src.add_argument("--fake", type=Path, help="folder of generated images")
    src.add_argument("--labels", type=Path, help="folder of label maps for mIoU (paired with --fake; see --profile)")
    src.add_argument("--mode", type=_mode, metavar="|".join(ALL_MODES), help="generate results, then score them")
    src.add_argument(
        "--masks",
        choices=MASK_PROTOCOLS,
        default="free-form",
        help="mask protocol of --mode chain|background (default free-form); with --real/--fake, the protocol the "
        "folder was made with (selects the paper column)",
    )
    src.add_argument("--data-root", type=Path, default=Path("data/cityscapes512x256"), help="prepared data root")
    src.add_argument("--checkpoints", type=Path, default=Path("fusion/submodels"), help="released-format files")
    src.add_argument("--generator", help="module:function writing the results (default siedob.edit:eval_generator)")
    src.add_argument("--skip-generation", action="store_true", help="reuse results already in OUTPUT/images")
    src.add_argument(
        "--results-per-scene",
        type=int,
        default=DEFAULT_RESULTS_PER_SCENE,
        metavar="K",
        help=f"add-objects: results per scene, each with another style reference (default {DEFAULT_RESULTS_PER_SCENE})",
    )
    src.add_argument("--seed", type=int, default=0, help="add-objects: seed of placements and style draws")
    met = p.add_argument_group("metrics")
    met.add_argument(
        "--metrics",
        default=None,
        help=f"comma-separated, from {', '.join(list_metrics())} (default {DEFAULT_METRICS}; add-objects adds div)",
    )
    met.add_argument("--fid-backend", choices=BACKENDS, default="auto")
    met.add_argument("--inception", type=Path, help="Inception weights: TorchScript .pt or pytorch-fid .pth")
    met.add_argument("--fid-method", choices=METHODS, default="sqrtm", help="sqrtm = pytorch-fid's computation")
    met.add_argument(
        "--color-order",
        choices=COLOR_ORDERS,
        default=DEFAULT_COLOR_ORDER,
        help="channel order the Inception sees (bgr = the authors' setting); LPIPS always sees RGB",
    )
    met.add_argument("--lpips-weights", type=Path, help="LPIPS (AlexNet v0.1) weights; default: found offline")
    met.add_argument("--seg-model", type=Path, help="segmenter for mIoU: drn-d-105_ms_cityscapes.pth or TorchScript")
    met.add_argument("--seg-mapping", type=Path, help="label mapping JSON of a TorchScript --seg-model")
    met.add_argument(
        "--miou-resolution",
        choices=RESOLUTIONS,
        default="generated",
        help="generated: at the generated size, labels nearest-resized; full: predictions upsampled to the labels",
    )
    met.add_argument("--miou-in-mask", action="store_true", help="score mIoU only inside each image's edit mask")
    met.add_argument(
        "--dataset",
        choices=DATASETS,
        default=None,
        help="paper cells to show beside ours (default: the run's dataset profile, see --profile)",
    )
    met.add_argument(
        "--profile",
        choices=PROFILE_NAMES,
        default=None,
        help="dataset profile of --labels with --real/--fake (default cityscapes); with --mode the data root's "
        "profile.json decides",
    )
    run = p.add_argument_group("running")
    run.add_argument("--output", type=Path, default=Path("results/eval"), help="report (and generated images) folder")
    add_overwrite(run, "an earlier report and its generated images")
    run.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="Inception feature cache")
    run.add_argument("--no-cache", action="store_true")
    add_device(run)
    run.add_argument("--batch-size", type=int, default=32)
    run.add_argument("--no-progress", action="store_true")
    return p


def _check_args(args: argparse.Namespace) -> None:
    """Conflicting or incomplete options, before any work."""
    if args.mode is None:
        if args.real is None or args.fake is None:
            raise EvalError("give --real DIR and --fake DIR, or --mode MODE (with --data-root)")
    elif args.real is not None or args.fake is not None or args.labels is not None:
        raise EvalError("--mode generates the fake images itself; do not combine it with --real/--fake/--labels")
    if args.mode in ("objects", ADD_OBJECTS) and args.masks != "free-form":
        raise EvalError(f"--masks applies to --mode chain|background, not --mode {args.mode}")
    if args.mode == ADD_OBJECTS and (args.generator or args.skip_generation):
        raise EvalError("--mode add-objects runs our chain itself; --generator and --skip-generation do not apply")
    if args.results_per_scene < 1:
        raise EvalError(f"--results-per-scene must be at least 1, got {args.results_per_scene}")
    if args.batch_size < 1:
        raise EvalError(f"--batch-size must be at least 1, got {args.batch_size}")
    root_profile = prepared_profile(args.data_root) if args.mode is not None else None
    if args.profile is not None and root_profile is not None and args.profile != root_profile:
        raise EvalError(
            f"--profile {args.profile}: the data root {args.data_root} is {root_profile} "
            "(its profile.json decides with --mode; leave --profile out)"
        )
    out = check_output_dir(args.output, "--output folder")
    earlier = [out / "report.json"] + ([] if args.skip_generation else [out / "images"])
    earlier = [p for p in earlier if p.exists()]
    if earlier and not args.overwrite:
        raise EvalError(f"{earlier[0]}: an earlier evaluation is there (use --overwrite or another --output)")


def dataset_profile(args: argparse.Namespace) -> str:
    """The run's dataset profile: the data root's with ``--mode``, else ``--profile`` (default Cityscapes)."""
    if args.mode is not None:
        return as_profile(prepared_profile(args.data_root)).name
    return args.profile or DEFAULT_PROFILE


def check_checkpoint_profile(args: argparse.Namespace, profile: str) -> None:
    """Checkpoints of another dataset profile than the data root's are refused, in one line naming both.

    Only when our networks generate (the default generator, or add-objects) from a folder that holds
    released files; a plugged generator may ignore ``--checkpoints``.
    """
    from siedob.checkpoints import RELEASED, folder_profile

    ours = args.mode == ADD_OBJECTS or (args.generator is None and not args.skip_generation)
    folder = Path(args.checkpoints)
    if args.mode is None or not ours or not any((folder / f.filename).is_file() for f in RELEASED.values()):
        return
    found = folder_profile(folder)
    if found != profile:
        raise EvalError(
            f"{folder}: checkpoints of the {found} dataset profile, but the data root {args.data_root} is "
            f"{profile}; use checkpoints trained on {profile}"
        )


def _backends(args: argparse.Namespace, profile: str = DEFAULT_PROFILE) -> Backends:
    return Backends(
        device=args.device,
        fid_backend=args.fid_backend,
        inception=args.inception,
        fid_method=args.fid_method,
        color_order=args.color_order,
        cache_dir=None if args.no_cache else args.cache_dir,
        batch_size=args.batch_size,
        lpips_weights=args.lpips_weights,
        seg_model=args.seg_model,
        seg_mapping=args.seg_mapping,
        miou_resolution=args.miou_resolution,
        miou_in_mask=args.miou_in_mask,
        progress=not args.no_progress,
        profile=profile,
    )


def _folder_inputs(args: argparse.Namespace) -> Dict[str, Any]:
    real, fake = list_images(args.real), list_images(args.fake)
    check_same_count(real, fake, f"real images in {args.real}", f"fake images in {args.fake}")
    labels = list_images(args.labels) if args.labels is not None else []
    if labels:
        check_same_count(fake, labels, f"fake images in {args.fake}", f"label maps in {args.labels}")
    inputs = MetricInputs(real=real, fake=fake, paired_real=real, labels=labels)
    return {"inputs": inputs, "pending": None, "context": {"real": str(args.real), "fake": str(args.fake)}}


def _generation_inputs(args: argparse.Namespace, profile: str) -> Dict[str, Any]:
    split = test_split(args.mode, args.data_root, args.masks, fallback_dir=args.output / "masks", profile=profile)
    out_dir = args.output / "images"
    job = GenerationJob(
        mode=args.mode,
        data_root=args.data_root,
        images=split["images"],
        masks=split["masks"],
        labels=split["labels"],
        out_dir=out_dir,
        device=args.device,
        checkpoints={"dir": str(args.checkpoints)},
    )
    inputs = MetricInputs(
        real=split["images"], paired_real=split["images"], labels=split["labels"], masks=split["masks"]
    )
    pending = None
    if args.skip_generation:
        inputs.fake = list_images(out_dir)
        check_same_count(split["images"], inputs.fake, "test images", f"results in {out_dir}")
    else:
        pending = (resolve_generator(args.generator), job)
    masks_dir = split["masks"][0].parent if split["masks"] else None
    context = {"data_root": str(args.data_root), "fake": str(out_dir), "mask_files": str(masks_dir)}
    return {"inputs": inputs, "pending": pending, "context": context}


def _mask_protocol(args: argparse.Namespace, mask_files: Optional[str]) -> str:
    if args.mode == ADD_OBJECTS:
        return f"object addition: each added object's box grown by {MARGIN} px"
    if args.mode == "objects":
        return "object_datasets/object_mask (brush strokes or side bands, fixed seed)"
    where = f"files in {mask_files}" if mask_files else MASK_FOLDERS[args.masks]
    if args.masks in FIXED_PROTOCOLS:
        geometry = {"extension": "right half regenerated", "outpainting": "all but the centred H/2 × W/2 box"}
        return f"{args.masks} ({geometry[args.masks]}; {where})"
    return f"free-form (seeded brush strokes; {where})"


def _protocol(
    args: argparse.Namespace, inputs: MetricInputs, backends: Backends, extra: Dict, profile: str = DEFAULT_PROFILE
) -> Dict[str, Any]:
    """The full protocol written into the report."""
    fake = inputs.fake
    resolution = None
    if fake:
        h, w = read_bgr(fake[0]).shape[:2]
        resolution = f"{w}×{h} (as generated; labels at that size)"
    proto: Dict[str, Any] = {
        "mode": args.mode or "folders",
        "dataset profile": profile,
        "masks": _mask_protocol(args, extra.get("mask_files")),
        "colour order": f"Inception sees {args.color_order.upper()}; LPIPS sees RGB (ours are BGR, flipped)",
        "resolution": resolution,
        "images": {"real": len(inputs.real), "generated": len(fake)},
    }
    proto.update(backends.describe())
    if args.mode == ADD_OBJECTS:
        rules = addition_rules(profile)
        proto["object addition"] = {
            "results per scene (K)": args.results_per_scene,
            "seed": args.seed,
            "ground label ids": {rules.names[c]: rules.ground[c] for c in rules.order},
            "heights at 256 px": {rules.names[c]: rules.heights[c] for c in rules.order},
            "Div": "mean LPIPS (AlexNet v0.1, whole image) over all unordered pairs of a scene's K results, "
            "averaged over scenes",
            "scenes without an object": extra.get("skipped", []),
        }
    if args.mode in MODES:
        proto["style references"] = "seeded draws (torch seed 0) from the object datasets' test crops"
    return proto


def evaluate(args: argparse.Namespace) -> Dict[str, Any]:
    """Generate (for ``--mode``), compute the metrics and write the reports; returns the report."""
    _check_args(args)
    profile = dataset_profile(args)
    check_checkpoint_profile(args, profile)
    dataset = args.dataset or (profile if profile in DATASETS else DEFAULT_PROFILE)
    default = DEFAULT_METRICS + (",div" if args.mode == ADD_OBJECTS else "")
    names = parse_metric_names(args.metrics or default)
    backends = _backends(args, profile)
    if args.mode is None:
        state = _folder_inputs(args)
    elif args.mode == ADD_OBJECTS:
        state = {"inputs": MetricInputs(), "pending": None, "context": {"data_root": str(args.data_root)}}
    else:
        state = _generation_inputs(args, profile)
    prepare_metrics(names, backends)  # the networks load (or are found missing) before any slow generation
    inputs: MetricInputs = state["inputs"]
    extra = dict(state["context"])
    if state["pending"] is not None:
        inputs.fake = run_generation(*state["pending"])
    if args.mode == ADD_OBJECTS:
        res = run_object_addition(
            args.data_root, args.checkpoints, args.output, args.results_per_scene, args.seed, args.device,
            progress=not args.no_progress,
        )  # fmt: skip
        inputs = MetricInputs(res.real, res.fake, res.paired_real, res.labels, res.groups, res.masks)
        extra.update(fake=str(args.output / "images"), skipped=res.skipped)
    metrics = compute_metrics(names, inputs, backends)
    task = {ADD_OBJECTS: "object-addition", "objects": "object crops (G_OI alone)",
            "background": f"{args.masks} (G_B alone)"}.get(args.mode, args.masks)  # fmt: skip
    report = build_report(
        metrics,
        dataset,
        task,
        _protocol(args, inputs, backends, extra, profile),
        mode=args.mode or "folders",
        n_images=len(inputs.fake),
        color_order=args.color_order,
        **{k: v for k, v in extra.items() if k != "skipped"},
    )
    report["files"] = {k: str(v) for k, v in write_reports(report, args.output).items()}
    return report


def _run(argv: Optional[Sequence[str]]) -> int:
    args = build_parser().parse_args(argv)
    args.device = str(resolve_device(args.device))
    report = evaluate(args)
    sys.stdout.write(markdown_table(report))
    print(f"report: {report['files']['json']}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``siedob-eval`` / ``python -m siedob.eval``; user errors print one line, exit 2."""
    return run_cli(_run, argv)
