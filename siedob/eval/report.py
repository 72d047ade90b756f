"""JSON and Markdown reports: our numbers beside the paper's (second-hand, as reported there)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

PathLike = Union[str, Path]

PAPER_SOURCE = "second-hand, from the paper as reported (SIEDOB, CVPR 2023); not re-measured by us"
#: The paper's numbers per dataset (free-form masks); None where the paper reports none.
PAPER_RESULTS: Dict[str, Dict[str, Optional[float]]] = {
    "cityscapes": {"fid": 11.07, "lpips": 0.077, "miou": 59.41},
    "ade20k-room": {"fid": 17.61, "lpips": None, "miou": 29.72},
}
METRICS = (("fid", "FID ↓", 2), ("lpips", "LPIPS ↓", 3), ("miou", "mIoU ↑", 2))


def metric_entry(value: Optional[float] = None, reason: Optional[str] = None, **extra: Any) -> Dict[str, Any]:
    """One metric: a value, or ``None`` with the reason it could not be computed."""
    return {"value": value, "reason": reason, **extra}


def build_report(metrics: Mapping[str, Dict[str, Any]], dataset: str, **context: Any) -> Dict[str, Any]:
    """The JSON report: context (mode, folders, colour order, backend …), metrics, paper numbers."""
    return {
        **context,
        "dataset": dataset,
        "metrics": dict(metrics),
        "paper": {"values": PAPER_RESULTS.get(dataset, {}), "source": PAPER_SOURCE},
    }


def _fmt(value: Optional[float], digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def markdown_table(report: Mapping[str, Any]) -> str:
    """A Markdown table of our numbers beside the paper's, with footnotes for unavailable metrics."""
    paper = report["paper"]["values"]
    lines = [
        f"| metric | ours | paper ({report['dataset']}) |",
        "|---|---|---|",
    ]
    notes = []
    for key, title, digits in METRICS:
        entry = report["metrics"].get(key, metric_entry(reason="not computed"))
        ours = _fmt(entry.get("value"), digits)
        if entry.get("value") is None:
            ours = f"n/a ({len(notes) + 1})"
            notes.append(entry.get("reason") or "not computed")
        lines.append(f"| {title} | {ours} | {_fmt(paper.get(key), digits)} |")
    lines.append("")
    lines.append(f"Paper column: {report['paper']['source']}.")
    ctx = [f"{k}: {report[k]}" for k in ("mode", "n_images", "color_order", "fid_backend", "fid_method") if k in report]
    if ctx:
        lines.append("Ours: " + "; ".join(ctx) + ".")
    for i, note in enumerate(notes, 1):
        lines.append(f"({i}) {note}")
    return "\n".join(lines) + "\n"


def write_reports(report: Mapping[str, Any], out_dir: PathLike) -> Dict[str, Path]:
    """Write ``report.json`` and ``report.md`` into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "markdown": out / "report.md"}
    paths["json"].write_text(json.dumps(report, indent=2, default=str) + "\n")
    paths["markdown"].write_text(markdown_table(report))
    return paths
