"""Train one stage for N steps: the public API behind ``siedob-train`` and the four ``<stage>/train.py``.

``train_stage("instance_inpainting", output="runs/oi", data_root=..., max_steps=100,
overrides=["model.ngf=8"])`` trains, writes checkpoints and the released-format file, and returns
a :class:`TrainResult`.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from siedob.config import (
    STAGES,
    ConfigError,
    config_differences,
    load_config,
    load_stage_config,
    resolve_stage_config,
    save_config,
    validate,
)
from siedob.configs.schema import STAGE_SCHEMAS
from siedob.errors import SiedobError
from siedob.train.checkpointing import CheckpointManager, released_export_path
from siedob.train.distributed import (
    DistContext,
    ResumableSampler,
    all_equal,
    barrier,
    batches_per_epoch,
    init_distributed,
    shutdown_distributed,
)
from siedob.train.logging import TrainLogger
from siedob.train.trainer import Trainer, rng_state, seed_everything, set_rng_state
from siedob.train.vgg import VGG19Features

PathLike = Union[str, Path]


@dataclass
class TrainResult:
    """What a training call left behind."""

    run_dir: Path
    step: int
    epoch: int
    checkpoint: Optional[Path]
    released: Path
    losses: Dict[str, float] = field(default_factory=dict)
    history: list = field(default_factory=list)


def build_dataset(
    stage: str, cfg: Mapping[str, Any], data_root: PathLike, train: bool = True
) -> Tuple[Dataset, Callable]:
    """The stage's dataset from :mod:`siedob.data.datasets` and its collate function."""
    from siedob.data.datasets import ObjectDataset, SceneDataset, collate_scenes
    from siedob.data.io import PROFILE_RECORD, DataError, prepared_profile

    root = Path(data_root).expanduser()
    wanted = cfg["data"]["profile"]
    try:
        found = prepared_profile(root)
    except DataError as exc:
        raise SiedobError(str(exc)) from None
    if root.is_dir() and found != wanted:
        where = (
            f"{root / PROFILE_RECORD}" if found != "cityscapes" else f"{root} (no {PROFILE_RECORD}: a Cityscapes tree)"
        )
        raise SiedobError(
            f"{where}: the data is of the {found} dataset profile but the config has data.profile={wanted}"
        )
    try:
        if stage == "instance_inpainting":
            return ObjectDataset(root, cfg["data"], "inpaint", train), default_collate
        if stage == "instance_style":
            return ObjectDataset(root, cfg["data"], "style", train), default_collate
        return SceneDataset(root, cfg["data"], stage, train), collate_scenes
    except DataError as exc:
        tool = "siedob-prepare-ade20k" if wanted == "ade20k-room" else "siedob-prepare-cityscapes"
        hint = f"prepare it with {tool} or siedob-synthetic --profile {wanted}"
        raise SiedobError(f"{exc} (data root {root}; {hint})") from None


def build_trainer(
    stage: str,
    cfg: Mapping[str, Any],
    ctx: Optional[DistContext] = None,
    amp: str = "none",
    channels_last: bool = False,
    vgg: Optional[VGG19Features] = None,
    vgg_weights: Optional[str] = None,
    submodels: Optional[PathLike] = None,
    data_root: Optional[PathLike] = None,
) -> Trainer:
    """The stage's trainer (fusion also needs the sub-network folder and the data root for style references)."""
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    kwargs: Dict[str, Any] = dict(ctx=ctx, amp=amp, channels_last=channels_last, vgg=vgg, vgg_weights=vgg_weights)
    if stage == "fusion":
        kwargs.update(submodels=submodels, data_root=Path(data_root).expanduser() if data_root else None)
    return STAGES[stage].trainer_class()(cfg, **kwargs)


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block (e.g. an evaluation) without disturbing the training RNG streams."""
    state = rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


class PeriodicFID:
    """FID (the eval registry's ``fid`` metric) of the generator on the stage's test split; disabled with a
    warning when it cannot run."""

    def __init__(self, stage: str, cfg: Mapping[str, Any], data_root: PathLike, device: torch.device) -> None:
        self.backends = None
        self.max_images = int(cfg["log"]["fid_max_images"])
        try:
            from siedob.eval.errors import EvalError
            from siedob.eval.metrics import Backends, prepare_metrics

            self.dataset, self.collate = build_dataset(stage, cfg, data_root, train=False)
            backends = Backends(device=str(device))
            missing = prepare_metrics(["fid"], backends)
        except ImportError as exc:
            warnings.warn(f"periodic FID skipped: siedob.eval unavailable ({exc})", stacklevel=2)
        except (EvalError, SiedobError) as exc:
            warnings.warn(f"periodic FID skipped: {exc}", stacklevel=2)
        else:
            if missing:
                warnings.warn(f"periodic FID skipped: {missing['fid']}", stacklevel=2)
            else:
                self.backends = backends

    def __call__(self, trainer: Trainer, batch_size: int) -> Optional[float]:
        """FID of the test outputs (at most ``max_images`` when > 0) against their targets (None when disabled)."""
        from siedob.eval.metrics import MetricInputs, compute_metrics

        if self.backends is None:
            return None
        loader = DataLoader(self.dataset, batch_size=batch_size, shuffle=False, collate_fn=self.collate)
        reals, fakes, seen = [], [], 0
        with preserved_rng(), trainer.evaluation():
            for batch in loader:
                panel = trainer.eval_panel(batch)
                reals.append(panel["target"].cpu())
                fakes.append(panel["output"].cpu())
                seen += reals[-1].shape[0]
                if 0 < self.max_images <= seen:
                    break
        return float(compute_metrics(["fid"], MetricInputs(real=reals, fake=fakes), self.backends)["fid"]["value"])


#: Keys a resumed run may change without ``allow_config_change``: where it runs, how long, where the data lies,
#: how often it prints (none of them changes the numbers a step computes).
RESUME_MAY_CHANGE = (
    "run.device",
    "run.max_steps",
    "data.root",
    "train.num_workers",
    "log.print_every",
    "log.sample_every",
)


def resolve_run_config(
    stage: str,
    run_dir: PathLike,
    config: Union[None, PathLike, Mapping[str, Any]] = None,
    overrides: Sequence[str] = (),
    resume: bool = False,
    allow_config_change: bool = False,
    data_root: Optional[PathLike] = None,
    seed: Optional[int] = None,
    **run_options: Any,
) -> Dict[str, Any]:
    """The resolved config of a run: the stage's packaged config (or ``config``), ``overrides``, then the run
    options given (``device``, ``amp``, ``channels_last``, ``vgg_weights``, ``submodels``, ``max_steps``; None
    keeps the config's value), ``data_root`` and ``seed``.

    With ``resume`` the base is the run's saved config.yaml, and a result that differs from it (other than
    in :data:`RESUME_MAY_CHANGE`) is refused, naming the difference, unless ``allow_config_change``.
    """
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    run_dir = Path(run_dir)
    saved_path = run_dir / "config.yaml"
    saved = None
    if resume:
        if not (run_dir / "checkpoints" / "latest_ckpt.pth").is_file():
            raise SiedobError(f"{run_dir}: nothing to resume (no checkpoints/latest_ckpt.pth)")
        if not saved_path.is_file():
            raise SiedobError(f"{saved_path}: the run's saved config is missing; cannot resume")
        saved = load_config(saved_path)
        if saved["stage"] != stage:
            raise ConfigError(f"{run_dir}: the run is of stage {saved['stage']!r}, not {stage!r}")
    if isinstance(config, Mapping):
        cfg = resolve_stage_config(stage, config, overrides)
    elif config is not None:
        cfg = load_stage_config(stage, config, overrides)
    elif saved is not None:
        cfg = resolve_stage_config(stage, saved, overrides, str(saved_path))
    else:
        cfg = load_stage_config(stage, None, overrides)
    for key, value in run_options.items():
        if key not in cfg["run"]:
            raise TypeError(f"unknown run option {key!r}")
        if value is not None:
            cfg["run"][key] = str(value) if key in ("submodels", "vgg_weights", "device") else value
    if data_root is not None:
        cfg["data"]["root"] = str(data_root)
    if seed is not None:
        cfg["train"]["seed"] = int(seed)
    cfg = validate(cfg, STAGE_SCHEMAS[stage], "run options")
    if saved is not None and not allow_config_change:
        diffs = config_differences(saved, cfg, RESUME_MAY_CHANGE)
        if diffs:
            more = f" (and {len(diffs) - 1} more)" if len(diffs) > 1 else ""
            raise ConfigError(
                f"{run_dir}: cannot resume with a different config: {diffs[0]}{more}; "
                "pass --allow-config-change to accept it"
            )
    return cfg


def _sync_check(trainer: Trainer, ctx: DistContext) -> Optional[bool]:
    """Whether every rank holds bit-identical generator and discriminator weights."""
    if not ctx.enabled:
        return None
    flat = torch.cat([p.detach().reshape(-1).float() for net in trainer.nets.values() for p in net.parameters()])
    return all_equal(ctx, flat)


def train_stage(
    stage: str,
    output: PathLike,
    *,
    data_root: Optional[PathLike] = None,
    config: Union[None, PathLike, Mapping[str, Any]] = None,
    overrides: Sequence[str] = (),
    resume: bool = False,
    allow_config_change: bool = False,
    device: Optional[str] = None,
    amp: Optional[str] = None,
    channels_last: Optional[bool] = None,
    max_steps: Optional[int] = None,
    seed: Optional[int] = None,
    vgg_weights: Optional[str] = None,
    vgg: Optional[VGG19Features] = None,
    submodels: Optional[PathLike] = None,
    dataset: Optional[Dataset] = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``stage`` into the run folder ``output`` (or continue it with ``resume=True``).

    The run options (``device`` ... ``submodels``; None keeps the config's ``run:`` value, or on resume the
    run's) are recorded in the run's ``config.yaml``; see :func:`resolve_run_config`. Stops after
    ``max_steps`` total steps (counted across resumes) or ``train.epochs`` epochs; writes ``config.yaml``,
    ``log.jsonl``, sample panels, checkpoints and the released-format generator. Nothing is written before
    the config, the data and the networks have been checked.
    """
    run_dir = Path(output)
    cfg = resolve_run_config(
        stage,
        run_dir,
        config,
        overrides,
        resume,
        allow_config_change,
        data_root,
        seed,
        device=device,
        amp=amp,
        channels_last=channels_last,
        vgg_weights=vgg_weights,
        submodels=submodels,
        max_steps=max_steps,
    )
    if not resume and CheckpointManager(run_dir).has_checkpoints():
        raise SiedobError(
            f"{run_dir}: run folder already holds checkpoints; pass --resume to continue it or choose another --output"
        )
    ctx = init_distributed(cfg["run"]["device"])
    try:
        return _train(stage, run_dir, ctx, cfg, resume, vgg, dataset, progress)
    finally:
        shutdown_distributed()


def _train(
    stage: str,
    run_dir: Path,
    ctx: DistContext,
    cfg: Dict[str, Any],
    resume: bool,
    vgg: Optional[VGG19Features],
    dataset: Optional[Dataset],
    progress: bool,
) -> TrainResult:
    tcfg, lcfg, rcfg = cfg["train"], cfg["log"], cfg["run"]
    seed = int(tcfg["seed"])
    if stage == "fusion" and rcfg["submodels"] is None:
        raise SiedobError(
            "fusion: no sub-network folder; pass --checkpoints DIR with object_inpainting.pth, "
            "object_style.pth and bg.pth"
        )
    seed_everything(seed)
    if dataset is None:
        dataset, collate = build_dataset(stage, cfg, cfg["data"]["root"])
    else:
        collate = _collate_for(stage)
    if len(dataset) == 0:
        raise SiedobError(f"{stage}: the training set is empty (data root {cfg['data']['root']})")
    trainer = build_trainer(
        stage,
        cfg,
        ctx,
        rcfg["amp"],
        rcfg["channels_last"],
        vgg,
        rcfg["vgg_weights"],
        rcfg["submodels"],
        cfg["data"]["root"],
    )
    ckpt = CheckpointManager(run_dir, ctx, int(lcfg["keep_last"]), seed)
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
    barrier(ctx)
    seed_everything(seed + 7919 * ctx.rank)
    if resume:
        ckpt.resume(trainer)

    bs = int(tcfg["batch_size"])
    per_epoch = batches_per_epoch(len(dataset), bs, ctx.world_size)
    total = int(tcfg["epochs"]) * per_epoch
    if rcfg["max_steps"] is not None:
        total = min(total, int(rcfg["max_steps"]))
    save_every = int(lcfg["save_every_steps"])
    snap_every = int(lcfg["save_every_epochs"])
    fid_every = int(lcfg["fid_every_epochs"])
    fid = PeriodicFID(stage, cfg, cfg["data"]["root"], ctx.device) if fid_every > 0 and ctx.is_main else None
    logger = TrainLogger(
        run_dir,
        total,
        trainer.step,
        int(lcfg["print_every"]),
        int(lcfg["sample_every"]),
        enabled=ctx.is_main,
        progress=progress,
        stage=stage,
    )
    sampler = ResumableSampler(dataset, ctx, seed)
    workers = int(tcfg["num_workers"])
    path = None
    try:
        while trainer.step < total:
            sampler.set_epoch(trainer.epoch)
            sampler.set_start(trainer.batch_in_epoch * bs)
            gen = torch.Generator().manual_seed(seed * 1_000_003 + trainer.epoch * 7919 + trainer.batch_in_epoch)
            loader = DataLoader(
                dataset,
                batch_size=bs,
                sampler=sampler,
                num_workers=workers,
                collate_fn=collate,
                generator=gen,
                pin_memory=ctx.device.type == "cuda",
                drop_last=False,
            )
            finished_epoch = True
            for batch in loader:
                losses = trainer.train_step(batch)
                logger.step(trainer.step, trainer.epoch, losses, trainer.learning_rate())
                if logger.wants_sample(trainer.step):
                    logger.sample(trainer.step, trainer.last_panel())
                if save_every > 0 and trainer.step % save_every == 0:
                    logger.flush()
                    path = ckpt.save_latest(trainer) or path
                    logger.event("checkpoint", step=trainer.step, epoch=trainer.epoch, path=str(path))
                if trainer.step >= total:
                    finished_epoch = trainer.batch_in_epoch >= per_epoch
                    break
            if not finished_epoch:
                break
            trainer.end_epoch()
            logger.flush()
            path = ckpt.save_latest(trainer) or path
            if snap_every > 0 and trainer.epoch % snap_every == 0:
                snap = ckpt.save_snapshot(trainer)
                logger.event("snapshot", step=trainer.step, epoch=trainer.epoch, path=str(snap))
            if fid is not None and (trainer.epoch - 1) % fid_every == 0:  # after epochs 1, 21, 41 … (the authors')
                value = fid(trainer, bs)
                if value is not None:
                    logger.event("fid", step=trainer.step, epoch=trainer.epoch, fid=value)
                    if ckpt.save_best(trainer, "fid", value):
                        logger.event("best", step=trainer.step, epoch=trainer.epoch, fid=value)
        logger.flush()
        path = ckpt.save_latest(trainer) or path
        in_sync = _sync_check(trainer, ctx)
        if in_sync is not None:
            logger.event("ddp_sync", step=trainer.step, world_size=ctx.world_size, in_sync=bool(in_sync))
            if not in_sync:
                raise SiedobError(f"ranks diverged: weights differ across the {ctx.world_size} processes")
        logger.event("done", step=trainer.step, epoch=trainer.epoch, path=str(path))
    finally:
        logger.close()
    history = logger.history
    return TrainResult(
        run_dir,
        trainer.step,
        trainer.epoch,
        path,
        released_export_path(run_dir, trainer.role),
        history[-1] if history else {},
        history,
    )


def _collate_for(stage: str) -> Callable:
    """Collate function of a stage's batches."""
    if stage in ("background", "fusion"):
        from siedob.data.datasets import collate_scenes

        return collate_scenes
    return default_collate
