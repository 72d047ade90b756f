"""Typed configs: packaged files, the schema's checks, overrides, resume refusals and the stage table."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from siedob.checkpoints import GENERATOR_FACTORIES, RELEASED
from siedob.config import (
    STAGES,
    ConfigError,
    config_differences,
    load_config,
    load_prepare_settings,
    load_stage_config,
    packaged_text,
    save_config,
)
from siedob.train.run import resolve_run_config

REPO = Path(__file__).resolve().parent.parent


def test_ablation_switches_and_run_options_have_their_defaults():
    bg = load_stage_config("background")
    assert bg["train"]["style_propagation"] is True and bg["train"]["patch_discriminator"] is True
    st = load_stage_config("instance_style")
    assert st["train"]["style_cycle_loss"] is True and st["train"]["style_source"] == "bank"
    assert st["run"] == {
        "device": "auto",
        "amp": "none",
        "channels_last": False,
        "vgg_weights": None,
        "submodels": None,
        "max_steps": None,
    }
    assert "style_dim" not in st["model"] and "d_in_nc" not in st["model"]
    assert load_stage_config("background")["model"]["lab_dim"] == 34


def test_overrides_are_typed_and_floats_normalised():
    cfg = load_stage_config("fusion", overrides=["train.lr=1", "train.batch_size=3", "run.device=cuda:1"])
    assert cfg["train"]["lr"] == 1.0 and isinstance(cfg["train"]["lr"], float)
    assert cfg["train"]["batch_size"] == 3 and cfg["run"]["device"] == "cuda:1"


@pytest.mark.parametrize(
    "override, words",
    [
        ("train.batch_size=abc", ["train.batch_size", "must be an integer", "'abc'"]),
        ("train.batch_size=true", ["train.batch_size", "must be an integer"]),
        ("train.batch_size=0", ["train.batch_size", "at least 1"]),
        ("train.lr=fast", ["train.lr", "must be a number"]),
        ("model.submodels_train_mode=1", ["submodels_train_mode", "true or false"]),
        ("model.init=xavier", ["model.init", "'default' or 'normal'"]),
        ("data.brush={min_vertex: 4}", ["missing key data.brush.max_vertex"]),
        ("data.object_size={car: [64, 64], bus: [1, 2]}", ["data.object_size key"]),
        ("run.amp=fp8", ["run.amp"]),
        ("run.device=gpu", ["run.device"]),
        ("model.d_in_nc=3", ["no key 'model.d_in_nc'"]),
        ("train", ["expected key=value"]),
    ],
)
def test_bad_override_names_item_and_problem(override, words):
    with pytest.raises(ConfigError) as info:
        load_stage_config("fusion", overrides=[override])
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda c: c["model"].update(d_in_nc=3), ["unknown key model.d_in_nc"]),
        (lambda c: c["model"].update(style_dim=128), ["unknown key model.style_dim"]),
        (lambda c: c.update(extra={}), ["unknown key extra"]),
        (lambda c: c["train"].pop("lr"), ["missing key train.lr"]),
        (lambda c: c.update(stage="fusion"), ["stage 'fusion'"]),
    ],
)
def test_bad_config_file_names_file_and_key(tmp_path, edit, words):
    cfg = yaml.safe_load(packaged_text("instance_style.yaml"))
    edit(cfg)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError) as info:
        load_stage_config("instance_style", path)
    assert str(path) in str(info.value)
    for word in words:
        assert word in str(info.value)


def test_saved_config_round_trips(tmp_path):
    cfg = load_stage_config("background", overrides=["run.amp=bf16", "train.seed=5"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg


def test_prepare_settings_are_their_own_file():
    settings = load_prepare_settings()
    assert settings.raw_size == (2048, 1024) and settings.size == (512, 256)
    assert settings.object_size == {"car": (64, 64), "person": (64, 32)}
    with pytest.raises(ConfigError, match="jpeg_quality must be an integer"):
        load_prepare_settings(overrides=["jpeg_quality=high"])
    assert "prepare" not in load_stage_config("instance_inpainting")["data"]


def _fake_run(tmp_path: Path, *overrides: str) -> Path:
    """A run folder as train_stage leaves it: its resolved config and a latest checkpoint file."""
    run = tmp_path / "run"
    cfg = resolve_run_config("instance_inpainting", run, overrides=list(overrides), device="cpu", max_steps=3)
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "latest_ckpt.pth").write_bytes(b"")
    save_config(cfg, run / "config.yaml")
    return run


def test_resume_keeps_the_saved_config_and_options(tmp_path):
    run = _fake_run(tmp_path, "train.batch_size=2")
    cfg = resolve_run_config("instance_inpainting", run, resume=True, max_steps=10, device="auto")
    assert cfg["train"]["batch_size"] == 2 and cfg["run"]["max_steps"] == 10 and cfg["run"]["device"] == "auto"


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(overrides=["train.batch_size=4"]), ["train.batch_size: 2 -> 4", "--allow-config-change"]),
        (dict(amp="bf16"), ["run.amp: 'none' -> 'bf16'"]),
        (dict(vgg_weights="random"), ["run.vgg_weights"]),
        (dict(seed=9), ["train.seed: 0 -> 9"]),
    ],
)
def test_resume_with_a_different_config_or_precision_is_refused(tmp_path, kwargs, words):
    run = _fake_run(tmp_path, "train.batch_size=2")
    with pytest.raises(ConfigError) as info:
        resolve_run_config("instance_inpainting", run, resume=True, **kwargs)
    for word in words:
        assert word in str(info.value)
    cfg = resolve_run_config("instance_inpainting", run, resume=True, allow_config_change=True, **kwargs)
    assert config_differences(load_config(run / "config.yaml"), cfg)


def test_resume_of_another_stage_or_a_missing_run_is_refused(tmp_path):
    run = _fake_run(tmp_path)
    with pytest.raises(ConfigError, match="stage 'instance_inpainting', not 'background'"):
        resolve_run_config("background", run, resume=True)
    with pytest.raises(Exception, match="nothing to resume"):
        resolve_run_config("background", tmp_path / "none", resume=True)


def test_stage_table_drives_released_files_generators_and_trainers():
    assert list(STAGES) == ["instance_inpainting", "instance_style", "background", "fusion"]
    assert [s.number for s in STAGES.values()] == [1, 2, 3, 4]
    assert {s.role: s.released for s in STAGES.values()} == {
        "object_inpainting": "object_inpainting.pth",
        "object_style": "object_style.pth",
        "background": "bg.pth",
        "fusion": "Fnet.pth",
    }
    for s in STAGES.values():
        assert RELEASED[s.role].filename == s.released
        assert GENERATOR_FACTORIES[s.role].__name__ == s.generator.split(":")[1]
        trainer = s.trainer_class()
        assert trainer.stage == s.name and trainer.role == s.role


def test_package_locates_nothing_relative_to_its_own_source():
    """Package data is read with importlib.resources; no module builds paths from ``__file__``
    (the wheel check in .ci/wheel_check.sh runs the commands outside the checkout)."""
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "siedob").rglob("*.py") if "__file__" in p.read_text()]
    assert offenders == []


@pytest.mark.parametrize(
    "argv, stage, resume",
    [
        (["--resume", "runs/x", "fusion"], "fusion", "runs/x"),
        (["fusion", "--resume", "runs/x"], "fusion", "runs/x"),
        (["--resume", "runs/x"], None, "runs/x"),
    ],
)
def test_resume_does_not_swallow_the_stage(argv, stage, resume):
    from siedob.train.cli import build_parser

    args = build_parser().parse_args(argv)
    assert (args.stage, args.resume) == (stage, resume)
