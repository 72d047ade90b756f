"""Read and write the authors' checkpoint formats, safely and with errors a user can act on.

Released sub-network files (docs/spec.md §6): ``object_inpainting.pth`` → ``{'netG': fg_inpainting.*}``,
``object_style.pth`` → ``{'netG': fg_style.*}``, ``bg.pth`` → ``{'netG_BG': ...}``,
``Fnet.pth`` → ``{'netG_F': ...}``. Everything is loaded with ``weights_only=True`` so that a
downloaded file cannot run code, and strictly: a missing, unexpected or mis-shaped tensor is
reported by file and key.

Files of a dataset profile other than Cityscapes also hold ``{'siedob_profile': name}`` beside the
network; a file without it is a Cityscapes file (the authors' format, kept byte for byte). Loading a
file for another profile than the one it was trained for is a :class:`CheckpointError`.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Union

import torch
from torch import nn

from siedob.errors import SiedobError, run_cli
from siedob.files import atomic_write
from siedob.nn import skip_init
from siedob.profiles import DEFAULT_PROFILE, PROFILE_NAMES, DatasetProfile, ProfileLike, as_profile
from siedob.stages import STAGES

PathLike = Union[str, Path]


class CheckpointError(SiedobError):
    """A checkpoint file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class ReleasedFormat:
    """Where a sub-network lives in the authors' released file: entry name and key prefix."""

    filename: str
    entry: str
    prefix: str


#: Entry name and key prefix of each network role's released file.
_ENTRIES = {
    "object_inpainting": ("netG", "fg_inpainting."),
    "object_style": ("netG", "fg_style."),
    "background": ("netG_BG", ""),
    "fusion": ("netG_F", ""),
}

#: The four released sub-network files, by network role (file names from the stage table).
RELEASED: Dict[str, ReleasedFormat] = {s.role: ReleasedFormat(s.released, *_ENTRIES[s.role]) for s in STAGES.values()}

#: Top-level entry naming the dataset profile of a released file (absent: Cityscapes, the authors' files).
PROFILE_ENTRY = "siedob_profile"
#: Top-level entry of a file trained with an ablation switch that changes inference: G_B without style
#: propagation (``{'style_propagation': False}``), G_OG on noise codes (``{'style_source': 'noise'}``). Absent
#: for the authors' setting.
OPTIONS_ENTRY = "siedob_options"

#: For layers whose input width is ``lab_dim + offset``: a shape mismatch there names the lab_dims.
LAB_DIM_OFFSETS: Dict[str, Dict[str, int]] = {
    "background": {"init_conv.conv.weight": 3 + 1 + 1, "stylelayer.spade.mlp_shared.0.weight": 64},
    "netD_BG": {"dis_model.0.conv.weight_orig": 3},
    "netD_patch": {"dis_model.0.conv.weight_orig": 3},
}


def load_file(path: PathLike, mmap: bool = False) -> Dict[str, Any]:
    """``torch.load`` with ``weights_only=True`` on CPU; foreign or truncated files raise one clear error.

    ``mmap`` maps the tensors from the file instead of reading them (files in torch's zip format only;
    older files are read): a network loaded for inference then pages in only the weights it uses.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: file not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and zipfile.is_zipfile(path))
    except Exception as exc:  # torch raises many types for foreign/truncated/unsafe files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a PyTorch checkpoint or damaged ({reason[:200]})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of entries, found {type(obj).__name__}")
    return obj


def save_file(obj: Mapping[str, Any], path: PathLike) -> None:
    """Write atomically (temporary file in the same folder, then rename): never a half-written file."""
    with atomic_write(path) as handle:
        torch.save(dict(obj), handle)


def _lab_dim_hint(key: str, file_shape: torch.Size, net_shape: torch.Size, offsets: Mapping[str, int]) -> str:
    """For a lab_dim-dependent input layer, say which lab_dim the file and the network have."""
    for suffix, offset in offsets.items():
        if key.endswith(suffix) and len(file_shape) > 1 and file_shape[1] != net_shape[1]:
            return f" (a lab_dim of {file_shape[1] - offset} against {net_shape[1] - offset})"
    return ""


def check_state_dict(
    expected: Mapping[str, torch.Tensor],
    found: Mapping[str, Any],
    where: str,
    lab_dim_offsets: Mapping[str, int] = {},
) -> None:
    """Raise a CheckpointError listing missing, unexpected and mis-shaped keys (strict loading)."""
    problems = []
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    if missing:
        extra = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        problems.append(f"missing key {missing[0]}{extra}")
    if unexpected:
        extra = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        problems.append(f"unexpected key {unexpected[0]}{extra}")
    for key, want in expected.items():
        got = found.get(key)
        if got is None:
            continue
        if not isinstance(got, torch.Tensor):
            problems.append(f"{key} is a {type(got).__name__}, not a tensor")
            break
        if got.shape != want.shape:
            hint = _lab_dim_hint(key, got.shape, want.shape, lab_dim_offsets)
            problems.append(
                f"{key} has shape {list(got.shape)} in the file but {list(want.shape)} in the network{hint}"
            )
            break
    if problems:
        raise CheckpointError(f"{where}: " + "; ".join(problems))


def load_state_into(
    net: nn.Module, state: Mapping[str, Any], where: str, lab_dim_offsets: Mapping[str, int] = {}
) -> nn.Module:
    """Strictly load ``state`` into ``net`` after checking names and shapes; returns ``net``."""
    check_state_dict(net.state_dict(), state, where, lab_dim_offsets)
    net.load_state_dict(state, strict=True)
    return net


def released_path(directory: PathLike, role: str) -> Path:
    """Path of a role's released file inside a checkpoint folder."""
    return Path(directory) / _format(role).filename


def _format(role: str) -> ReleasedFormat:
    if role not in RELEASED:
        raise ValueError(f"unknown network role {role!r}; expected one of {', '.join(RELEASED)}")
    return RELEASED[role]


def file_profile(obj: Mapping[str, Any], path: PathLike) -> str:
    """The dataset profile a loaded released file records (no entry: Cityscapes)."""
    name = obj.get(PROFILE_ENTRY, DEFAULT_PROFILE)
    if name not in PROFILE_NAMES:
        raise CheckpointError(f"{path}: unknown dataset profile {name!r} (known: {', '.join(PROFILE_NAMES)})")
    return name


def check_profile(found: str, wanted: ProfileLike, path: PathLike) -> None:
    """A file trained for one profile cannot serve another: one clear error naming both."""
    if wanted is not None and found != as_profile(wanted).name:
        raise CheckpointError(
            f"{path}: trained for the {found} dataset profile, not {as_profile(wanted).name}; "
            f"use networks trained with data.profile={as_profile(wanted).name}"
        )


#: The switches a released file may record, with their allowed values.
FILE_OPTIONS: Dict[str, tuple] = {"style_propagation": (True, False), "style_source": ("bank", "noise")}


def file_options(obj: Mapping[str, Any], path: PathLike) -> Dict[str, Any]:
    """The switches a released file records (:data:`OPTIONS_ENTRY`; none: the authors' setting)."""
    options = obj.get(OPTIONS_ENTRY, {})
    if not isinstance(options, Mapping) or any(options.get(k) not in FILE_OPTIONS.get(k, ()) for k in options):
        raise CheckpointError(f"{path}: unreadable '{OPTIONS_ENTRY}' entry {options!r}")
    return dict(options)


def read_released_file(path: PathLike, role: str, mmap: bool = False) -> tuple:
    """``(state dict without prefix, profile name, recorded options)`` of a released-format file
    (``mmap``: see load_file)."""
    fmt = _format(role)
    obj = load_file(path, mmap=mmap)
    profile = file_profile(obj, path)
    if fmt.entry not in obj:
        found = ", ".join(map(str, obj)) or "nothing"
        raise CheckpointError(f"{path}: no '{fmt.entry}' entry (found: {found}); is this the {fmt.filename} file?")
    state = obj[fmt.entry]
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: entry '{fmt.entry}' is a {type(state).__name__}, not a state dict")
    if fmt.prefix:
        bad = [k for k in state if not k.startswith(fmt.prefix)]
        if bad:
            raise CheckpointError(f"{path}: key {bad[0]} in '{fmt.entry}' lacks the '{fmt.prefix}' prefix")
        state = {k[len(fmt.prefix) :]: v for k, v in state.items()}
    return dict(state), profile, file_options(obj, path)


def read_released(path: PathLike, role: str, mmap: bool = False) -> Dict[str, torch.Tensor]:
    """The network's own state dict (prefix removed) from a released-format file (``mmap``: see load_file)."""
    return read_released_file(path, role, mmap)[0]


def load_released(net: nn.Module, path: PathLike, role: str, profile: ProfileLike = None) -> nn.Module:
    """Load a released-format file strictly into the bare network (G_OI, G_OG, G_B or F).

    ``profile``: the dataset profile ``net`` is built for; a file of another profile is an error.
    """
    state, found, _ = read_released_file(path, role)
    check_profile(found, profile, path)
    fmt = _format(role)
    return load_state_into(net, state, f"{path} ['{fmt.entry}']", LAB_DIM_OFFSETS.get(role, {}))


def released_state(net: nn.Module, role: str, profile: ProfileLike = None) -> Dict[str, Any]:
    """The released-format dict for a bare network: ``{entry: {prefix + key: tensor}}`` on CPU.

    A profile other than Cityscapes adds ``{PROFILE_ENTRY: name}``; Cityscapes files stay the authors' format.
    """
    fmt = _format(role)
    out: Dict[str, Any] = {fmt.entry: {fmt.prefix + k: v.detach().cpu() for k, v in net.state_dict().items()}}
    name = as_profile(profile).name
    if name != DEFAULT_PROFILE:
        out[PROFILE_ENTRY] = name
    if role == "background" and not getattr(getattr(net, "style1", None), "propagate", True):
        out[OPTIONS_ENTRY] = {"style_propagation": False}
    if role == "object_style" and getattr(net, "style_source", "bank") == "noise":
        out[OPTIONS_ENTRY] = {"style_source": "noise"}
    return out


def save_released(net: nn.Module, path: PathLike, role: str, profile: ProfileLike = None) -> None:
    """Write a bare network in the authors' released format (atomically), recording a non-default profile."""
    save_file(released_state(net, role, profile), path)


#: Generator class of each network role (from the stage table).
GENERATOR_FACTORIES = {s.role: s.generator_class() for s in STAGES.values()}


def generator_kwargs(state: Mapping[str, torch.Tensor], role: str) -> Dict[str, int]:
    """The constructor arguments (width ``ngf``, G_B's ``lab_nc``, the object networks' ``code_nc``) of a state dict.

    Lets the edit chain load reduced-width networks (the quickstart's) as well as the authors' own.
    """

    def width(key: str, dim: int = 0) -> int:
        t = state.get(key)
        if not isinstance(t, torch.Tensor) or t.dim() != 4:
            raise CheckpointError(f"{role}: no 4-d '{key}' tensor to infer the network width from")
        return int(t.shape[dim])

    kwargs = {"ngf": width("init_conv.conv.weight")}
    if role == "background":
        kwargs["lab_nc"] = width("init_conv.conv.weight", 1) - LAB_DIM_OFFSETS["background"]["init_conv.conv.weight"]
    if role == "object_inpainting":
        kwargs["code_nc"] = width("init_conv.conv.weight", 1) - 5
    if role == "object_style":
        kwargs["style_dim"] = width("enc_style.model.6.weight")
        kwargs["style_enc_dim"] = width("enc_style.model.0.conv.weight")
        kwargs["code_nc"] = width("init_conv.conv.weight", 1)
    return kwargs


def _check_widths(kwargs: Mapping[str, int], profile: DatasetProfile, recorded: bool, path: PathLike) -> None:
    """The class-code and label widths a file was built with must be its profile's (files without a profile entry
    are only checked for the 3-channel class code: reduced label sets of older files stay loadable)."""
    code = kwargs.get("code_nc")
    if code is not None and code != profile.code_width:
        raise CheckpointError(
            f"{path}: the network takes a {code}-channel class code but the {profile.name} profile has "
            f"{profile.code_width} (a file of another dataset profile?)"
        )
    lab = kwargs.get("lab_nc")
    if recorded and lab is not None and lab != profile.lab_dim:
        raise CheckpointError(
            f"{path}: the network takes lab_dim {lab} but the {profile.name} profile has {profile.lab_dim}"
        )


def load_released_network(path: PathLike, role: str, mmap: bool = False, profile: ProfileLike = None) -> nn.Module:
    """Build the generator a released file holds (widths inferred) and load it strictly, in eval mode.

    The network is built for the profile the file records (G_B's skipped style classes come from it) and
    with the switches it records (a G_B trained without style propagation runs without it); ``profile``
    given, a file of another profile is an error.

    The network is built without random initialisation and takes the file's tensors directly, so no
    time goes into filling parameters that would be overwritten. With ``mmap`` the tensors stay mapped
    from the file (faster start, for short-lived processes: truncating the file under a live mapping
    crashes the process).
    """
    state, found, options = read_released_file(path, role, mmap=mmap)
    check_profile(found, profile, path)
    try:
        kwargs = generator_kwargs(state, role)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    prof = as_profile(found)
    _check_widths(kwargs, prof, found != DEFAULT_PROFILE, path)
    if role == "background":
        kwargs["skipped_classes"] = prof.style_skipped_classes
        kwargs["style_propagation"] = options.get("style_propagation", True)
    with skip_init():
        net = GENERATOR_FACTORIES[role](**kwargs)
    check_state_dict(net.state_dict(), state, f"{path} ['{_format(role).entry}']", LAB_DIM_OFFSETS.get(role, {}))
    net.load_state_dict(state, strict=True, assign=True)
    if role == "object_style":
        net.style_source = options.get("style_source", "bank")
    return net.eval()


def folder_profile(directory: PathLike) -> str:
    """The dataset profile the released files of a folder record; they must agree (no entry: Cityscapes)."""
    directory = Path(directory)
    found = {}
    for fmt in RELEASED.values():
        path = directory / fmt.filename
        if path.is_file():
            found[fmt.filename] = file_profile(load_file(path, mmap=True), path)
    if len(set(found.values())) > 1:
        listing = ", ".join(f"{name} {prof}" for name, prof in found.items())
        raise CheckpointError(f"{directory}: the released files are of different dataset profiles ({listing})")
    return next(iter(found.values()), DEFAULT_PROFILE)


def check_folder(directory: PathLike) -> Dict[str, Dict[str, int]]:
    """Load all four released files of a folder strictly; per file its parameter count and constructor widths."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: checkpoint folder not found")
    report = {}
    folder_profile(directory)
    for role in GENERATOR_FACTORIES:
        path = released_path(directory, role)
        net = load_released_network(path, role, mmap=True)  # dropped before returning
        report[path.name] = {
            "parameters": sum(p.numel() for p in net.parameters()),
            **generator_kwargs(net.state_dict(), role),
        }
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``siedob-check-checkpoints [--checkpoints] DIR``: verify a folder of released sub-network files."""
    from siedob.cli import Parser, existing_dir

    parser = Parser(prog="siedob-check-checkpoints", description=main.__doc__)
    parser.add_argument("directory", nargs="?", default=None, metavar="DIR", help="the same as --checkpoints DIR")
    parser.add_argument(
        "--checkpoints",
        default=None,
        metavar="DIR",
        help="folder holding the four released .pth files (default: fusion/submodels)",
    )
    args = parser.parse_args(argv)
    if args.directory is not None and args.checkpoints is not None:
        raise CheckpointError("give the checkpoint folder once: DIR or --checkpoints DIR")
    directory = existing_dir(args.directory or args.checkpoints or "fusion/submodels", "checkpoint folder")
    for name, info in check_folder(directory).items():
        widths = ", ".join(f"{k} {v}" for k, v in info.items() if k != "parameters")
        print(f"{name:<24} ok  {info['parameters']:>12,} parameters  ({widths})")
    print(f"dataset profile: {folder_profile(directory)}")
    return 0


def cli() -> None:
    """Console-script entry point."""
    raise SystemExit(run_cli(main))


if __name__ == "__main__":
    cli()
