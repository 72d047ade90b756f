"""The one base trainer every stage derives from (docs/spec.md §4 optimisation and step order).

Each iteration: one generator forward; each discriminator's step on detached outputs (in the order
of ``d_names``); then the generator step with the discriminators frozen. Adam(2e-4, (0.5, 0.999))
per network; optional linear learning-rate decay (off by default, as the authors never step it);
AMP ``none`` | ``bf16`` | ``fp16`` (fp16 with a GradScaler); optional channels-last memory format.
A NaN/inf loss stops training with the step and the loss name.
"""

from __future__ import annotations

import contextlib
import math
import random
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from siedob.checkpoints import CheckpointError, load_state_into, released_state
from siedob.errors import SiedobError
from siedob.nn import build_discriminator, init_weights
from siedob.profiles import as_profile
from siedob.train.distributed import DistContext
from siedob.train.losses import VGGLoss
from siedob.train.vgg import VGG19Features, load_vgg19

AMP_MODES = ("none", "bf16", "fp16")
Tensors = Dict[str, torch.Tensor]


class NonFiniteLossError(SiedobError):
    """A loss became NaN or infinite; training stops and the last good checkpoint stays."""


def loss_floats(records: Sequence[Tuple[int, Mapping[str, torch.Tensor]]], stage: str) -> List[Dict[str, float]]:
    """The loss terms of several steps as floats, read back in one transfer; a NaN/inf stops the run.

    ``records`` holds ``(step, train_step output)`` pairs in step order; the error names the first
    non-finite term and its step.
    """
    names = [list(rec) for _, rec in records]
    flat = [torch.as_tensor(v).detach().float().reshape(()) for _, rec in records for v in rec.values()]
    values = torch.stack(flat).tolist() if flat else []
    out, pos = [], 0
    for (step, _), keys in zip(records, names):
        row = dict(zip(keys, values[pos : pos + len(keys)]))
        pos += len(keys)
        for name, value in row.items():
            if not math.isfinite(value):
                raise NonFiniteLossError(
                    f"step {step}: loss {name} is {value} ({stage}); stopping, the last good checkpoint is kept"
                )
        out.append(row)
    return out


def optimizer_name(net_name: str) -> str:
    """Checkpoint entry of a network's optimiser: netG → optimizer_G, netD_BG → optimizer_D_BG."""
    return "optimizer_" + net_name[3:] if net_name.startswith("net") else "optimizer_" + net_name


def set_requires_grad(net: nn.Module, flag: bool) -> None:
    """Switch gradients of every parameter of ``net`` on or off."""
    for p in net.parameters():
        p.requires_grad_(flag)


def _linear_decay(epochs: int, start: int):
    """LambdaLR factor: 1 until ``start``, then linearly down to 1/(epochs − start + 1) at the last epoch."""
    span = max(1, epochs - start + 1)
    return lambda epoch: 1.0 - max(0, epoch - start) / span


class Trainer:
    """One generator and its discriminators, their Adam optimisers, AMP and the §4 step order.

    Subclasses set ``stage``, ``role``, ``g_name`` and ``d_names`` and implement
    :meth:`build_generator`, :meth:`prepare`, :meth:`forward_g`, :meth:`loss_d`, :meth:`loss_g`,
    :meth:`released_module` and :meth:`panel`.
    """

    stage: str = ""
    role: str = ""
    g_name: str = "netG"
    d_names: Tuple[str, ...] = ()

    def __init__(
        self,
        cfg: Mapping[str, Any],
        ctx: Optional[DistContext] = None,
        amp: str = "none",
        channels_last: bool = False,
        vgg: Optional[VGG19Features] = None,
        vgg_weights: Optional[str] = None,
    ) -> None:
        if amp not in AMP_MODES:
            raise SiedobError(f"--amp {amp!r}: expected one of {', '.join(AMP_MODES)}")
        self.cfg = cfg
        self.tcfg = cfg["train"]
        self.mcfg = cfg["model"]
        #: the dataset profile (``data.profile``): class-code width, lab_dim, the released files' profile entry
        self.profile = as_profile(cfg["data"].get("profile"))
        self.ctx = ctx or DistContext()
        self.device = self.ctx.device
        self.amp = amp
        self.channels_last = channels_last
        self.evaluating = False
        self.nets: Dict[str, nn.Module] = {self.g_name: self.build_generator()}
        # Only the scene stages' configs have lab_dim; the object discriminators do not take the label map.
        scene = {"lab_dim": int(self.mcfg["lab_dim"])} if "lab_dim" in self.mcfg else {}
        for name in self.d_names:
            self.nets[name] = build_discriminator(name, int(self.mcfg["ndf"]), code_nc=self.profile.code_width, **scene)
        for net in self.nets.values():
            init_weights(net, str(self.mcfg["init"]))
            net.to(self.device)
            if channels_last:
                net.to(memory_format=torch.channels_last)
        if vgg is None:
            vgg = load_vgg19(vgg_weights, int(self.tcfg["vgg_width_divisor"]))
        self.vgg_loss = VGGLoss(vgg).to(self.device)
        if channels_last:
            self.vgg_loss.to(memory_format=torch.channels_last)
        lr, betas = float(self.tcfg["lr"]), (float(self.tcfg["beta1"]), float(self.tcfg["beta2"]))
        self.optimizers = {
            optimizer_name(n): torch.optim.Adam(net.parameters(), lr=lr, betas=betas) for n, net in self.nets.items()
        }
        self.schedulers: Dict[str, torch.optim.lr_scheduler.LambdaLR] = {}
        if self.tcfg["lr_decay"]:
            epochs = int(self.tcfg["epochs"])
            start = int(self.tcfg["lr_decay_start"])
            self.schedulers = {
                k: torch.optim.lr_scheduler.LambdaLR(opt, _linear_decay(epochs, start))
                for k, opt in self.optimizers.items()
            }
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=amp == "fp16")
        self.train_nets: Dict[str, nn.Module] = dict(self.nets)
        if self.ctx.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_nets = {n: DistributedDataParallel(net, device_ids=ids) for n, net in self.nets.items()}
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0

    # ----------------------------------------------------------------- stage interface

    def build_generator(self) -> nn.Module:
        """The generator as saved under ``g_name`` (e.g. the G_OI training wrapper)."""
        raise NotImplementedError

    def released_module(self) -> nn.Module:
        """The bare network written to the released-format file."""
        raise NotImplementedError

    def prepare(self, batch: Mapping[str, Any]) -> Tensors:
        """Move a loader batch to the device and derive the stage's inputs."""
        raise NotImplementedError

    def forward_g(self, b: Tensors) -> Tensors:
        """The generator forward of one iteration."""
        raise NotImplementedError

    def loss_d(self, name: str, b: Tensors, out: Tensors) -> Tuple[Optional[torch.Tensor], Tensors]:
        """Loss of discriminator ``name`` on detached outputs, and its named parts (None: no step this time)."""
        raise NotImplementedError

    def loss_g(self, b: Tensors, out: Tensors) -> Tuple[torch.Tensor, Tensors]:
        """Generator loss with the discriminators frozen, and its named parts."""
        raise NotImplementedError

    def panel(self, b: Tensors, out: Tensors) -> Tensors:
        """Images for the sample panel: ``input``, ``mask``, ``output``, ``target`` (B×C×H×W)."""
        raise NotImplementedError

    # ----------------------------------------------------------------- helpers for stages

    @property
    def generator(self) -> nn.Module:
        """The bare generator module (not DDP-wrapped)."""
        return self.nets[self.g_name]

    def G(self, *args: torch.Tensor) -> Any:
        """Generator forward (through its DDP wrapper when distributed and training)."""
        nets = self.nets if self.evaluating else self.train_nets
        return nets[self.g_name](*args)

    def D(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """Discriminator forward for its own step (DDP-wrapped when distributed)."""
        return self.train_nets[name](self._fmt(x))

    def D_frozen(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """Discriminator forward for the generator step: the bare module, its parameters frozen."""
        return self.nets[name](self._fmt(x))

    def _fmt(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def to_device(self, batch: Mapping[str, Any]) -> Tensors:
        """Tensors of a batch on the training device (channels-last for 4-D tensors when enabled)."""
        out = {}
        for k, v in batch.items():
            if isinstance(v, torch.Tensor):
                v = v.to(self.device, non_blocking=True)
                if v.is_floating_point():
                    v = self._fmt(v.float())
                out[k] = v
        return out

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast context for the chosen AMP mode (a no-op for ``none``)."""
        if self.amp == "none":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def vgg_target(self, y: torch.Tensor) -> List[torch.Tensor]:
        """VGG features of a target, computed without an autograd graph (the authors build one, then detach)."""
        return self.vgg_loss.target_features(y)

    # ----------------------------------------------------------------- the step

    def train_step(self, batch: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
        """One iteration in the §4 order; returns the loss terms as detached 0-d tensors.

        Nothing here reads a device value back (no ``.item()``, no host-side finiteness check), so on a GPU
        the host runs ahead; :func:`loss_floats` reads the terms when the logger wants them.
        """
        for net in self.nets.values():
            net.train()
        b = self.prepare(batch)
        with self.autocast():
            out = self.forward_g(b)
        logs: Dict[str, torch.Tensor] = {}
        for name in self.d_names:
            set_requires_grad(self.nets[name], True)
            opt = self.optimizers[optimizer_name(name)]
            opt.zero_grad(set_to_none=True)
            with self.autocast():
                loss, parts = self.loss_d(name, b, out)
            if loss is None:
                continue
            logs.update({k: v.detach() for k, v in parts.items()})
            logs[f"{name}_total"] = loss.detach()
            self.scaler.scale(loss).backward()
            self.scaler.step(opt)
        for name in self.d_names:
            set_requires_grad(self.nets[name], False)
        opt_g = self.optimizers[optimizer_name(self.g_name)]
        opt_g.zero_grad(set_to_none=True)
        with self.autocast():
            loss, parts = self.loss_g(b, out)
        logs.update({k: v.detach() for k, v in parts.items()})
        logs["G_total"] = loss.detach()
        self.scaler.scale(loss).backward()
        self.scaler.step(opt_g)
        self.scaler.update()
        for name in self.d_names:
            set_requires_grad(self.nets[name], True)
        self.step += 1
        self.batch_in_epoch += 1
        self._last = (b, out)
        return logs

    def last_panel(self) -> Optional[Tensors]:
        """Sample-panel images of the latest step (detached, on CPU)."""
        if not hasattr(self, "_last"):
            return None
        with torch.no_grad():
            return {k: v.detach().float().cpu() for k, v in self.panel(*self._last).items()}

    @contextlib.contextmanager
    def evaluation(self) -> Iterator[None]:
        """Networks in eval mode and DDP bypassed (rank-0-only evaluation); restored afterwards."""
        modes = {n: net.training for n, net in self.nets.items()}
        self.evaluating = True
        for net in self.nets.values():
            net.eval()
        try:
            yield
        finally:
            self.evaluating = False
            for n, net in self.nets.items():
                net.train(modes[n])

    def eval_panel(self, batch: Mapping[str, Any]) -> Tensors:
        """Panel images (``output``, ``target`` …) of a batch without gradients."""
        with torch.no_grad(), self.autocast():
            b = self.prepare(batch)
            return {k: v.float() for k, v in self.panel(b, self.forward_g(b)).items()}

    def end_epoch(self) -> None:
        """Advance the epoch counter and step the (optional) learning-rate schedulers."""
        self.epoch += 1
        self.batch_in_epoch = 0
        for sched in self.schedulers.values():
            sched.step()

    def learning_rate(self) -> float:
        """Current generator learning rate."""
        return float(self.optimizers[optimizer_name(self.g_name)].param_groups[0]["lr"])

    # ----------------------------------------------------------------- state

    def state_dict(self) -> Dict[str, Any]:
        """Authors' training-checkpoint entries (``epoch``, networks, optimisers) plus a ``resume`` record."""
        state: Dict[str, Any] = {"epoch": self.epoch}
        for name, net in self.nets.items():
            state[name] = {k: v.detach().cpu() for k, v in net.state_dict().items()}
        for name, opt in self.optimizers.items():
            state[name] = opt.state_dict()
        state["resume"] = {
            "stage": self.stage,
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "scaler": self.scaler.state_dict(),
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
        }
        return state

    def load_state_dict(self, state: Mapping[str, Any], where: str) -> None:
        """Restore networks, optimisers and counters from :meth:`state_dict` output (strict)."""
        resume = state.get("resume")
        if not isinstance(resume, Mapping):
            raise CheckpointError(f"{where}: no 'resume' record; not a siedob training checkpoint")
        if resume.get("stage") != self.stage:
            raise CheckpointError(f"{where}: checkpoint of stage {resume.get('stage')!r}, not {self.stage!r}")
        for name, net in self.nets.items():
            if name not in state:
                raise CheckpointError(f"{where}: no '{name}' entry")
            load_state_into(net, state[name], f"{where} ['{name}']")
        for name, opt in self.optimizers.items():
            if name not in state:
                raise CheckpointError(f"{where}: no '{name}' entry")
            opt.load_state_dict(state[name])
        self.step = int(resume["step"])
        self.epoch = int(resume["epoch"])
        self.batch_in_epoch = int(resume["batch_in_epoch"])
        if resume.get("scaler"):
            self.scaler.load_state_dict(resume["scaler"])
        for k, s in self.schedulers.items():
            if k in resume.get("schedulers", {}):
                s.load_state_dict(resume["schedulers"][k])

    def released(self) -> Dict[str, Dict[str, torch.Tensor]]:
        """The generator in the authors' released-file format."""
        return released_state(self.released_module(), self.role, self.profile)


# --------------------------------------------------------------------- RNG state


def rng_state() -> Dict[str, Any]:
    """Python, NumPy, torch and CUDA RNG states in a form ``torch.load(weights_only=True)`` accepts."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: Dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` recorded."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
