"""Configs as validated plain data: packaged YAML, checked against the typed schema, with ``--set`` overrides.

Each stage's config ships in the package (``siedob/configs/<stage>.yaml``, read with
:mod:`importlib.resources`); a user may pass an edited copy with ``--config``. :func:`load_stage_config`
reads it, applies ``key.sub=value`` overrides and checks every key and type against
:mod:`siedob.configs.schema`, returning a nested dict (``cfg["model"]["ngf"]``) with every default
filled in. Runs save the resolved result so that they record exactly what they used.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Dict, Iterable, List, Literal, Mapping, Optional, Sequence, Union

import yaml

from siedob.configs import schema
from siedob.errors import SiedobError
from siedob.files import atomic_write_bytes
from siedob.profiles import DEFAULT_PROFILE, PROFILE_NAMES, get_profile
from siedob.stages import STAGES, Stage

PathLike = Union[str, Path]

__all__ = [
    "STAGES",
    "ConfigError",
    "Stage",
    "apply_overrides",
    "config_differences",
    "dump_config",
    "load_config",
    "load_prepare_settings",
    "load_stage_config",
    "packaged_text",
    "resolve_stage_config",
    "check_profile_fields",
    "save_config",
    "stage_resource",
]

#: Packaged resource of the dataset-preparation settings.
PREPARE_RESOURCE = "prepare.yaml"


class ConfigError(SiedobError, ValueError):
    """A configuration file or override that cannot be used; the message names the problem."""


def packaged_text(name: str) -> str:
    """Text of a packaged config resource (``instance_inpainting.yaml``, ``ade20k-room/fusion.yaml``, ...)."""
    node = resources.files("siedob.configs")
    for part in name.split("/"):
        node = node.joinpath(part)
    return node.read_text(encoding="utf-8")


def stage_resource(stage: str, profile: Optional[str] = None) -> str:
    """The packaged config of a stage for a dataset profile: ``<stage>.yaml`` or ``<profile>/<stage>.yaml``."""
    name = _stage(stage).config
    if profile is None or profile == DEFAULT_PROFILE:
        return name
    if profile not in PROFILE_NAMES:
        raise ConfigError(f"data.profile={profile}: unknown dataset profile (known: {', '.join(PROFILE_NAMES)})")
    return f"{profile}/{name}"


def _override_profile(overrides: Sequence[str]) -> Optional[str]:
    """The last ``data.profile=NAME`` among the overrides, if any."""
    found = None
    for item in overrides:
        key, _, value = item.partition("=")
        if key.strip() == "data.profile":
            found = value.strip()
    return found


def _stage(stage: str) -> Stage:
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    return STAGES[stage]


def _read_yaml(path: Optional[PathLike], resource: str) -> tuple:
    """(parsed mapping, name for messages) of a user file or, without one, a packaged resource."""
    if path is None:
        where, text = f"packaged {resource}", packaged_text(resource)
    else:
        p = Path(path).expanduser()
        where = str(p)
        if p.is_dir():
            raise ConfigError(f"{p}: is a folder, expected a YAML config file")
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{p}: config file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: cannot read config ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{where}: expected a mapping at top level, got {type(cfg).__name__}")
    return cfg, where


def load_stage_config(
    stage: str, path: Optional[PathLike] = None, overrides: Iterable[str] = (), profile: Optional[str] = None
) -> Dict[str, Any]:
    """The resolved, validated config of ``stage``: the packaged one or ``path``, with ``overrides`` applied.

    Without ``path`` the packaged config of the dataset ``profile`` is the base; ``--set data.profile=NAME``
    among the overrides picks that profile's packaged config too.
    """
    overrides = list(overrides)
    if path is None:
        profile = _override_profile(overrides) or profile
    elif profile is not None:
        raise ConfigError(f"{path}: give the dataset profile in the config file (data.profile), not beside it")
    cfg, where = _read_yaml(path, stage_resource(stage, profile))
    return resolve_stage_config(stage, cfg, overrides, where)


def resolve_stage_config(
    stage: str, cfg: Mapping[str, Any], overrides: Iterable[str] = (), where: str = "config"
) -> Dict[str, Any]:
    """``cfg`` (a mapping; ``where`` names it in messages) validated as ``stage``'s config, with overrides."""
    _stage(stage)
    if cfg.get("stage", stage) != stage:
        raise ConfigError(f"{where}: config is for stage {cfg.get('stage')!r}, not {stage!r}")
    cls = schema.STAGE_SCHEMAS[stage]
    overrides = list(overrides)
    resolved = _with_overrides(validate({"stage": stage, **cfg}, cls, where), cls, overrides)
    check_profile_fields(resolved, f"{where} with --set {' '.join(overrides)}" if overrides else where)
    return resolved


def check_profile_fields(cfg: Mapping[str, Any], where: str) -> None:
    """The dataset-dependent keys must fit ``data.profile``: object class names, ``model.lab_dim``, the aspect test.

    Checked once all overrides are applied, so that ``--set`` may change the profile and its classes together.
    """
    data = cfg["data"]
    prof = get_profile(data["profile"])
    known = prof.object_names
    hint = f"(object classes of the {prof.name} profile: {', '.join(known)})"

    def names(key: str, values: Iterable[str], what: str) -> None:
        for name in values:
            if name not in known:
                raise ConfigError(f"{where}: data.{key}{what} {name!r} is not an object class {hint}")

    for key in ("classes", "object_order"):
        if key in data:
            names(key, data[key], "")
    for key in ("fill_ratio", "object_size"):
        if key in data:
            names(key, data[key], " key")
            order = data.get("object_order", [])
            if set(order) - set(data[key]):
                missing = sorted(set(order) - set(data[key]))[0]
                raise ConfigError(f"{where}: data.{key} has no entry for {missing!r}, which data.object_order lists")
    if data.get("person_aspect") is not None and "person" not in known:
        raise ConfigError(f"{where}: data.person_aspect needs a person object class {hint}; set it to null")
    lab_dim = cfg["model"].get("lab_dim")
    if lab_dim is not None and lab_dim != prof.lab_dim:
        packaged = f" (its packaged config: --set data.profile={prof.name})" if prof.name != DEFAULT_PROFILE else ""
        raise ConfigError(
            f"{where}: model.lab_dim is {lab_dim} but the {prof.name} profile has {prof.lab_dim}{packaged}"
        )


def _with_overrides(resolved: Dict[str, Any], cls: type, overrides: Iterable[str]) -> Dict[str, Any]:
    """Apply and validate one override at a time, so that an error names the ``--set`` item at fault."""
    for item in overrides:
        resolved = validate(apply_overrides(resolved, [item]), cls, f"--set {item!r}")
    return resolved


def load_config(path: PathLike, overrides: Iterable[str] = ()) -> Dict[str, Any]:
    """A stage config file (its ``stage:`` key says which schema applies), validated, with overrides."""
    cfg, where = _read_yaml(path, "")
    stage = cfg.get("stage")
    if stage not in STAGES:
        raise ConfigError(f"{where}: 'stage' must be one of {', '.join(STAGES)}, got {stage!r}")
    return resolve_stage_config(stage, cfg, overrides, where)


def load_prepare_settings(path: Optional[PathLike] = None, overrides: Iterable[str] = ()) -> schema.PrepareSettings:
    """Dataset-preparation settings: the packaged ``prepare.yaml`` or ``path``, validated, with overrides."""
    cfg, where = _read_yaml(path, PREPARE_RESOURCE)
    resolved = _with_overrides(validate(cfg, schema.PrepareSettings, where), schema.PrepareSettings, overrides)
    return schema.PrepareSettings(**{k: _tuples(v) for k, v in resolved.items()})


def _tuples(value: Any) -> Any:
    """Lists to tuples, recursively (settings compare against tuples such as image sizes)."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def apply_overrides(cfg: Mapping[str, Any], overrides: Iterable[str]) -> Dict[str, Any]:
    """Return a copy of ``cfg`` with each ``dotted.key=value`` set (values parsed as YAML); unknown keys are errors."""
    out = copy.deepcopy(dict(cfg))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = out
        for i, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                known = ", ".join(sorted(node)) if isinstance(node, dict) else "(not a section)"
                where = ".".join(parts[: i + 1])
                raise ConfigError(f"--set {item!r}: no key {where!r} (known here: {known})")
            if i < len(parts) - 1:
                node = node[part]
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML") from None
    return out


# ---- validation -----------------------------------------------------------------------------------------------


def _type_name(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return " or ".join(repr(a) for a in args)
    if origin is Union:
        return " or ".join(_type_name(a) for a in args)
    if origin in (list, tuple, dict):
        return {list: "a list", tuple: f"a list of {len(args)}", dict: "a mapping"}[origin]
    if dataclasses.is_dataclass(hint):
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "null"}.get(
        hint, str(hint)
    )


def _fail(where: str, key: str, hint: Any, value: Any) -> ConfigError:
    return ConfigError(f"{where}: {key} must be {_type_name(hint)}, got {value!r}")


def _check(value: Any, hint: Any, key: str, where: str) -> Any:
    """``value`` checked against a type hint and normalised to plain YAML data (lists, dicts, floats)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise _fail(where, key, hint, value)
        return _check_dataclass(value, hint, key, where)
    if origin is Union:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _check(value, inner[0], key, where)
    if origin is Literal:
        if value not in args:
            raise _fail(where, key, hint, value)
        return value
    if origin is list:
        if not isinstance(value, list):
            raise _fail(where, key, hint, value)
        return [_check(v, args[0], f"{key}[{i}]", where) for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise _fail(where, key, hint, value)
        return [_check(v, a, f"{key}[{i}]", where) for i, (v, a) in enumerate(zip(value, args))]
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(where, key, hint, value)
        return {
            _check(k, args[0], f"{key} key", where): _check(v, args[1], f"{key}.{k}", where) for k, v in value.items()
        }
    if hint is bool:
        if not isinstance(value, bool):
            raise _fail(where, key, hint, value)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(where, key, hint, value)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(where, key, hint, value)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise _fail(where, key, hint, value)
        return value
    raise TypeError(f"schema type {hint!r} of {key} is not supported")


def _check_dataclass(value: Mapping[str, Any], cls: type, prefix: str, where: str) -> Dict[str, Any]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    dotted = f"{prefix}." if prefix else ""
    unknown = [k for k in value if k not in fields]
    if unknown:
        raise ConfigError(f"{where}: unknown key {dotted}{unknown[0]} (known here: {', '.join(fields)})")
    out: Dict[str, Any] = {}
    for name, f in fields.items():
        key = f"{dotted}{name}"
        if name in value:
            v = _check(value[name], hints[name], key, where)
        elif f.default is not dataclasses.MISSING:
            v = copy.deepcopy(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            v = _check_dataclass({}, f.default_factory, key, where)
        elif "default" in f.metadata:
            v = copy.deepcopy(f.metadata["default"])
        else:
            raise ConfigError(f"{where}: missing key {key}")
        lo, pattern = f.metadata.get("min"), f.metadata.get("pattern")
        if lo is not None and v is not None and v < lo:
            raise ConfigError(f"{where}: {key} must be at least {lo}, got {v!r}")
        if pattern is not None and v is not None and not re.fullmatch(pattern, v):
            raise ConfigError(f"{where}: {key} must match {pattern}, got {v!r}")
        out[name] = v
    return out


def validate(cfg: Mapping[str, Any], cls: type, where: str) -> Dict[str, Any]:
    """``cfg`` checked against the schema dataclass ``cls``: unknown or missing keys and wrong types are errors."""
    return _check_dataclass(dict(cfg), cls, "", where)


# ---- saving and comparing -------------------------------------------------------------------------------------


def dump_config(cfg: Mapping[str, Any]) -> str:
    """A resolved config as YAML text."""
    return yaml.safe_dump(dict(cfg), sort_keys=False)


def save_config(cfg: Mapping[str, Any], path: PathLike) -> None:
    """Write a resolved config as YAML, atomically (used to record what a run used)."""
    atomic_write_bytes(path, dump_config(cfg).encode())


def _flatten(cfg: Any, prefix: str = "") -> Dict[str, Any]:
    if isinstance(cfg, dict) and cfg:
        out: Dict[str, Any] = {}
        for k, v in cfg.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: cfg}


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any], ignore: Sequence[str] = ()) -> List[str]:
    """``key: old -> new`` for every leaf that differs between two resolved configs (keys in ``ignore`` skipped)."""
    a, b = _flatten(dict(old)), _flatten(dict(new))
    out = []
    for key in list(a) + [k for k in b if k not in a]:
        if key in ignore or any(key.startswith(f"{i}.") for i in ignore):
            continue
        if a.get(key, "(absent)") != b.get(key, "(absent)"):
            out.append(f"{key}: {a.get(key, '(absent)')!r} -> {b.get(key, '(absent)')!r}")
    return out
