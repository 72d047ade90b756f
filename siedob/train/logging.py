"""Training progress: tqdm bar (step, rate, ETA, running losses), ``log.jsonl``, PNG sample panels, TensorBoard.

Only rank 0 creates a logger that writes; other ranks get a silent one. Losses arrive as device tensors and
are read back (and checked for NaN/inf) only every ``print_every`` steps, in one transfer, or on :meth:`flush`.
"""

from __future__ import annotations

import json
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch
from tqdm import tqdm

from siedob.data.io import tensor_to_image, write_atomic
from siedob.panels import titled_grid
from siedob.train.trainer import NonFiniteLossError, loss_floats

PathLike = Union[str, Path]
PANEL_ROWS = 4


def panel_image(images: Mapping[str, torch.Tensor], rows: int = PANEL_ROWS) -> np.ndarray:
    """A BGR uint8 grid: one row per sample, one column per entry (1-channel maps shown as grey)."""
    grid = []
    n = min(rows, min(v.shape[0] for v in images.values()))
    h = max(v.shape[-2] for v in images.values())
    w = max(v.shape[-1] for v in images.values())
    for i in range(n):
        row = []
        for v in images.values():
            x = v[i].detach().float().cpu()
            if x.shape[0] == 1:
                x = x.repeat(3, 1, 1) * 2 - 1
            x = x[:3]
            if x.shape[-2:] != (h, w):
                x = torch.nn.functional.interpolate(x[None], size=(h, w), mode="nearest")[0]
            row.append(tensor_to_image(x))
        grid.append(row)
    return titled_grid(grid, list(images))


class TrainLogger:
    """Progress bar, running-mean losses, ``log.jsonl`` records, sample panels and optional TensorBoard."""

    def __init__(
        self,
        run_dir: PathLike,
        total_steps: int,
        start_step: int = 0,
        print_every: int = 100,
        sample_every: int = 1000,
        enabled: bool = True,
        tensorboard: bool = True,
        progress: bool = True,
        stage: str = "",
    ) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.print_every = max(1, int(print_every))
        self.sample_every = int(sample_every)
        self.stage = stage
        self.sums: Dict[str, float] = defaultdict(float)
        self.count = 0
        self.pending: List[Tuple[int, Mapping[str, Any]]] = []
        #: Every step's loss values as floats, in step order (filled as they are read back).
        self.history: List[Dict[str, float]] = []
        self.t0 = time.perf_counter()
        self.bar = tqdm(
            total=total_steps,
            initial=start_step,
            disable=not (enabled and progress),
            dynamic_ncols=True,
            unit="step",
            mininterval=1.0,
        )
        self.writer = None
        if enabled:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.jsonl = self.run_dir / "log.jsonl"
            if tensorboard:
                self.writer = self._tensorboard()

    def _tensorboard(self) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from torch.utils.tensorboard import SummaryWriter
        except Exception:
            return None
        return SummaryWriter(str(self.run_dir / "tensorboard"))

    def event(self, kind: str, **fields: Any) -> None:
        """Append one record to ``log.jsonl`` (e.g. a checkpoint or an FID value)."""
        if not self.enabled:
            return
        rec = {"event": kind, "time": round(time.time(), 3), **fields}
        with open(self.jsonl, "a") as f:
            f.write(json.dumps(rec) + "\n")
        if self.writer is not None:
            for k, v in fields.items():
                if isinstance(v, (int, float)) and k not in ("step", "epoch"):
                    self.writer.add_scalar(f"{kind}/{k}", v, fields.get("step", 0))

    def step(self, step: int, epoch: int, losses: Mapping[str, Any], lr: float) -> None:
        """Record one step's losses (tensors or floats); every ``print_every`` steps write their running means."""
        if not self.enabled:
            return
        self.pending.append((step, losses))
        self.bar.update(1)
        if step % self.print_every == 0 or step == 1:
            self.flush()
            means = {k: v / self.count for k, v in self.sums.items()}
            short = {k: f"{v:.3f}" for k, v in means.items() if k.endswith("total") or k.startswith("G_")}
            self.bar.set_postfix(short, refresh=False)
            rate = self.count / max(1e-9, time.perf_counter() - self.t0)
            self.event(
                "train",
                step=step,
                epoch=epoch,
                lr=lr,
                steps_per_s=round(rate, 4),
                **{k: round(v, 6) for k, v in means.items()},
            )
            self.sums.clear()
            self.count = 0
            self.t0 = time.perf_counter()

    def flush(self) -> None:
        """Read the pending steps' losses back into the running sums; a NaN/inf raises :class:`NonFiniteLossError`.

        Call it before writing a checkpoint so that a diverged step never becomes the latest one.
        """
        if not self.enabled or not self.pending:
            return
        records, self.pending = self.pending, []
        try:
            rows = loss_floats(records, self.stage)
        except NonFiniteLossError as exc:
            self.event("stopped", step=records[-1][0], reason=str(exc))
            raise
        self.history += rows
        for row in rows:
            for k, v in row.items():
                self.sums[k] += v
            self.count += 1

    def wants_sample(self, step: int) -> bool:
        """Whether a sample panel is due at this step."""
        return self.enabled and self.sample_every > 0 and step % self.sample_every == 0

    def sample(self, step: int, images: Optional[Mapping[str, torch.Tensor]]) -> Optional[Path]:
        """Write ``samples/step_NNNNNNN.png`` (columns: the panel entries, e.g. input, mask, output, target)."""
        if not self.enabled or not images:
            return None
        path = self.run_dir / "samples" / f"step_{step:07d}.png"
        grid = panel_image(images)
        write_atomic(path, grid)
        if self.writer is not None:
            self.writer.add_image("samples", torch.from_numpy(grid[:, :, ::-1].copy()).permute(2, 0, 1), step)
        return path

    def write(self, message: str) -> None:
        """A message above the bar (rank 0 only)."""
        if self.enabled:
            self.bar.write(message)

    def close(self) -> None:
        """Close the bar and the TensorBoard writer."""
        self.bar.close()
        if self.writer is not None:
            self.writer.close()
