"""Stage configuration as plain data: nested dicts read from YAML, with ``key.sub=value`` overrides.

Each stage folder holds ``configs/config.yaml`` with the authors' hyperparameters; programs load
it with :func:`load_config`, apply command-line overrides and save the resolved result next to
their outputs so every run records exactly what it used.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Union

import yaml

from siedob.errors import SiedobError

PathLike = Union[str, Path]

#: The four stages, in training order, with the folder that holds their entry point.
STAGES: Dict[str, str] = {
    "instance_inpainting": "instance_inpainting",
    "instance_style": "instance_style",
    "background": "background",
    "fusion": "fusion",
}


class ConfigError(SiedobError, ValueError):
    """A configuration file or override that cannot be used; the message names the problem."""


def repo_root() -> Path:
    """The repository checkout this package lives in (stage folders sit beside ``siedob/``)."""
    return Path(__file__).resolve().parent.parent


def default_config_path(stage: str) -> Path:
    """``<stage>/configs/config.yaml`` in the repository."""
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    return repo_root() / STAGES[stage] / "configs" / "config.yaml"


def load_config(path: PathLike, overrides: Iterable[str] = ()) -> Dict[str, Any]:
    """Read a YAML config and apply ``key.sub=value`` overrides (values parsed as YAML)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: expected a mapping at top level, got {type(cfg).__name__}")
    return apply_overrides(cfg, overrides)


def apply_overrides(cfg: Mapping[str, Any], overrides: Iterable[str]) -> Dict[str, Any]:
    """Return a copy of ``cfg`` with each ``dotted.key=value`` set; unknown keys are errors."""
    out = copy.deepcopy(dict(cfg))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = out
        for i, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                known = ", ".join(sorted(node)) if isinstance(node, dict) else "(not a section)"
                where = ".".join(parts[: i + 1])
                raise ConfigError(f"override {item!r}: no key {where!r} (known here: {known})")
            if i < len(parts) - 1:
                node = node[part]
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def save_config(cfg: Mapping[str, Any], path: PathLike) -> None:
    """Write a resolved config as YAML (used to record what a run used)."""
    Path(path).write_text(yaml.safe_dump(dict(cfg), sort_keys=False))
