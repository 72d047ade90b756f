"""JSON and Markdown reports: our numbers beside every cell of the paper's Tables 1 and 2, with the protocol."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Union

from siedob.files import atomic_write_bytes

from .metrics import get_metric, list_metrics, metric_entry

PathLike = Union[str, Path]

PAPER_SOURCE = (
    "second-hand: the paper's figures (SIEDOB, CVPR 2023, Tables 1 and 2) as quoted in our issue 12, "
    "not re-measured by us"
)
TASKS = ("free-form", "extension", "outpainting", "object-addition")


class PaperCell(NamedTuple):
    """One number of the paper: dataset, task (mask protocol or object addition), metric, value."""

    dataset: str
    task: str
    metric: str
    value: float
    table: str


#: Every paper figure we have (second-hand). Object-addition FID and mIoU are Cityscapes as we read the issue.
PAPER_CELLS: List[PaperCell] = [
    PaperCell("cityscapes", "free-form", "fid", 11.07, "Table 1"),
    PaperCell("cityscapes", "free-form", "lpips", 0.077, "Table 1"),
    PaperCell("cityscapes", "free-form", "miou", 59.41, "Table 1"),
    PaperCell("cityscapes", "outpainting", "fid", 27.90, "Table 1"),
    PaperCell("ade20k-room", "free-form", "fid", 17.61, "Table 1"),
    PaperCell("ade20k-room", "free-form", "miou", 29.72, "Table 1"),
    PaperCell("ade20k-room", "extension", "fid", 31.66, "Table 1"),
    PaperCell("cityscapes", "object-addition", "fid", 6.29, "Table 2"),
    PaperCell("cityscapes", "object-addition", "miou", 58.88, "Table 2"),
    PaperCell("cityscapes", "object-addition", "div", 0.0055, "Table 2"),
    PaperCell("ade20k-room", "object-addition", "div", 0.0362, "Table 2"),
]
DATASETS = sorted({c.dataset for c in PAPER_CELLS})


def paper_values(dataset: str, task: str) -> Dict[str, float]:
    """The paper's figures for one dataset and task, by metric name."""
    return {c.metric: c.value for c in PAPER_CELLS if c.dataset == dataset and c.task == task}


def build_report(
    metrics: Mapping[str, Dict[str, Any]], dataset: str, task: str, protocol: Mapping[str, Any], **context: Any
) -> Dict[str, Any]:
    """The JSON report: context (mode, folders …), the protocol, our metrics and every paper cell."""
    return {
        **context,
        "dataset": dataset,
        "task": task,
        "protocol": dict(protocol),
        "metrics": dict(metrics),
        "paper": {
            "values": paper_values(dataset, task),
            "cells": [c._asdict() for c in PAPER_CELLS],
            "source": PAPER_SOURCE,
        },
    }


def _fmt(value: Optional[float], digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def _digits(name: str) -> int:
    return get_metric(name).digits if name in list_metrics() else 4


def _protocol_lines(protocol: Mapping[str, Any]) -> List[str]:
    lines = []
    for key, value in protocol.items():
        if isinstance(value, Mapping):
            value = "; ".join(f"{k} {v}" for k, v in value.items())
        lines.append(f"- {key}: {value}")
    return lines


def markdown_table(report: Mapping[str, Any]) -> str:
    """Our numbers beside the paper's for this run's dataset and task, the protocol, then every paper cell."""
    paper = report["paper"]["values"]
    dataset, task = report["dataset"], report["task"]
    lines = [f"| metric | ours | paper ({dataset}, {task}) |", "|---|---|---|"]
    notes: List[str] = []
    for name, entry in report["metrics"].items():
        title = get_metric(name).title if name in list_metrics() else name
        ours = _fmt(entry.get("value"), _digits(name))
        if entry.get("value") is None:
            ours = f"n/a ({len(notes) + 1})"
            notes.append(entry.get("reason") or "not computed")
        lines.append(f"| {title} | {ours} | {_fmt(paper.get(name), _digits(name))} |")
    lines += ["", f"Paper column: {report['paper']['source']}."]
    lines += [f"({i}) {note}" for i, note in enumerate(notes, 1)]
    lines += ["", "Protocol:"] + _protocol_lines(report.get("protocol", {}))
    lines += ["", "Every paper cell (second-hand) beside ours where this run measured it:", ""]
    lines += ["| table | dataset | task | metric | paper | ours |", "|---|---|---|---|---|---|"]
    for cell in report["paper"]["cells"]:
        entry = report["metrics"].get(cell["metric"], metric_entry())
        here = cell["dataset"] == dataset and cell["task"] == task
        ours = _fmt(entry.get("value"), _digits(cell["metric"])) if here else "not this run"
        lines.append(
            f"| {cell['table']} | {cell['dataset']} | {cell['task']} | {cell['metric']} | "
            f"{_fmt(cell['value'], _digits(cell['metric']))} | {ours} |"
        )
    return "\n".join(lines) + "\n"


def write_reports(report: Mapping[str, Any], out_dir: PathLike) -> Dict[str, Path]:
    """Write ``report.json`` and ``report.md`` into ``out_dir`` (atomically); return their paths."""
    out = Path(out_dir)
    paths = {"json": out / "report.json", "markdown": out / "report.md"}
    atomic_write_bytes(paths["json"], (json.dumps(report, indent=2, default=str) + "\n").encode())
    atomic_write_bytes(paths["markdown"], markdown_table(report).encode())
    return paths
