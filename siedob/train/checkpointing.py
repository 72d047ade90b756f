"""Training checkpoints in the authors' format plus exact-resume state; released-format exports.

A run folder holds ``checkpoints/latest_ckpt.pth`` (rewritten every ``log.save_every_steps`` steps
and at every epoch end), ``checkpoints/epoch_NNNN.pth`` snapshots every ``log.save_every_epochs``
epochs (the last ``log.keep_last`` kept), ``checkpoints/best_ckpt.pth`` (records its metric inside)
and the generator's released-format file (``object_inpainting.pth``, ``object_style.pth``,
``bg.pth`` or ``Fnet.pth``). Each checkpoint holds ``epoch``, every network and optimiser under
the authors' names (``netG``, ``netD_inp``, ``optimizer_G``, ``optimizer_D_inp`` …) and a
``resume`` record: step, position in the epoch, RNG states of every rank, sampler seed, scaler.
All writes are atomic.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch.distributed as dist

from siedob.checkpoints import RELEASED, CheckpointError, load_file, save_file
from siedob.train.distributed import DistContext
from siedob.train.trainer import Trainer, rng_state, set_rng_state

PathLike = Union[str, Path]
LATEST = "latest_ckpt.pth"
BEST = "best_ckpt.pth"
_SNAPSHOT = re.compile(r"^epoch_(\d+)\.pth$")


def checkpoint_dir(run_dir: PathLike) -> Path:
    """``<run>/checkpoints``."""
    return Path(run_dir) / "checkpoints"


def latest_path(run_dir: PathLike) -> Path:
    """``<run>/checkpoints/latest_ckpt.pth``."""
    return checkpoint_dir(run_dir) / LATEST


def released_export_path(run_dir: PathLike, role: str) -> Path:
    """Where a run writes its released-format generator file."""
    return Path(run_dir) / RELEASED[role].filename


def _gather_rng(ctx: DistContext) -> List[Dict[str, Any]]:
    """RNG states of every rank (all ranks must call this)."""
    mine = rng_state()
    if not ctx.enabled:
        return [mine]
    out: List[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, mine)
    return out


class CheckpointManager:
    """Writes and reads a run's checkpoints; only rank 0 touches files, every rank joins the RNG gather."""

    def __init__(self, run_dir: PathLike, ctx: Optional[DistContext] = None, keep_last: int = 5, seed: int = 0):
        self.run_dir = Path(run_dir)
        self.dir = checkpoint_dir(run_dir)
        self.ctx = ctx or DistContext()
        self.keep_last = int(keep_last)
        self.seed = int(seed)
        #: (step, state) of the last state built, and the step ``latest_ckpt.pth`` was last written at:
        #: the end of an epoch writes latest, a snapshot and maybe the best file from one state, once.
        self._built: Optional[Tuple[int, Dict[str, Any]]] = None
        self._latest_step: Optional[int] = None

    def _state(self, trainer: Trainer) -> Dict[str, Any]:
        if self._built is not None and self._built[0] == trainer.step:
            return self._built[1]
        state = trainer.state_dict()
        state["resume"]["rng"] = _gather_rng(self.ctx)
        state["resume"]["seed"] = self.seed
        state["resume"]["world_size"] = self.ctx.world_size
        self._built = (trainer.step, state)
        return state

    def save_latest(self, trainer: Trainer) -> Optional[Path]:
        """Write ``latest_ckpt.pth`` and the released-format file (once per step); the path on rank 0."""
        path = self.dir / LATEST
        if self._latest_step == trainer.step:
            return path if self.ctx.is_main else None
        state = self._state(trainer)
        self._latest_step = trainer.step
        if not self.ctx.is_main:
            return None
        save_file(state, path)
        save_file(trainer.released(), released_export_path(self.run_dir, trainer.role))
        return path

    def save_snapshot(self, trainer: Trainer) -> Optional[Path]:
        """Write ``epoch_NNNN.pth`` (NNNN = completed epochs) and drop all but the last ``keep_last``."""
        state = self._state(trainer)
        if not self.ctx.is_main:
            return None
        path = self.dir / f"epoch_{trainer.epoch:04d}.pth"
        save_file(state, path)
        if self.keep_last > 0:
            for old in self.snapshots()[: -self.keep_last]:
                old.unlink(missing_ok=True)
        return path

    def snapshots(self) -> List[Path]:
        """Epoch snapshots, oldest first."""
        if not self.dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.dir.iterdir() if (m := _SNAPSHOT.match(p.name))]
        return [p for _, p in sorted(found)]

    def best_metric(self) -> Optional[float]:
        """The metric value recorded in ``best_ckpt.pth`` (None when there is none)."""
        path = self.dir / BEST
        if not path.is_file():
            return None
        metric = load_file(path).get("metric", {})
        return float(metric["value"]) if "value" in metric else None

    def save_best(self, trainer: Trainer, name: str, value: float, lower_is_better: bool = True) -> bool:
        """Write ``best_ckpt.pth`` when ``value`` beats the recorded one; the metric goes inside the file."""
        state = dict(self._state(trainer))
        if not self.ctx.is_main or not math.isfinite(value):
            return False
        best = self.best_metric()
        if best is not None and (value >= best if lower_is_better else value <= best):
            return False
        state["metric"] = {"name": name, "value": float(value), "step": trainer.step, "epoch": trainer.epoch}
        save_file(state, self.dir / BEST)
        return True

    def has_checkpoints(self) -> bool:
        """Whether the run folder already holds training checkpoints."""
        return self.dir.is_dir() and any(p.suffix == ".pth" for p in self.dir.iterdir())

    def resume(self, trainer: Trainer, path: Optional[PathLike] = None) -> Mapping[str, Any]:
        """Load ``latest_ckpt.pth`` (or ``path``) into the trainer and restore this rank's RNG state."""
        path = Path(path) if path is not None else self.dir / LATEST
        if not path.is_file():
            raise CheckpointError(f"{path}: no checkpoint to resume from")
        state = load_file(path)
        trainer.load_state_dict(state, str(path))
        resume = state["resume"]
        rngs = resume.get("rng") or []
        if len(rngs) == self.ctx.world_size:
            set_rng_state(rngs[self.ctx.rank])
        else:
            from siedob.train.trainer import seed_everything

            seed_everything(self.seed + 7919 * self.ctx.rank + trainer.step)
        return resume
