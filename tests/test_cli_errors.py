"""Every command's bad inputs: one ``error:`` line on stderr, exit code 2, no traceback, nothing left behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Sequence

import pytest

from siedob import checkpoints, quickstart
from siedob.data import prepare_cityscapes, synthetic
from siedob.edit import cli as edit_cli
from siedob.errors import run_cli
from siedob.train import cli as train_cli

#: A folder that exists but where nothing can be written, even as root.
UNWRITABLE = Path("/proc/siedob-cannot-write-here")


class Case(NamedTuple):
    main: Callable
    argv: Sequence[str]
    words: Sequence[str]  # each must appear in the error line
    absent: Sequence[str] = ()  # paths (relative to the case folder) that must not exist afterwards


def _cases() -> Dict[str, Case]:
    e, t, s, p, c, q = (
        edit_cli.main,
        train_cli.main,
        synthetic.main,
        prepare_cityscapes.main,
        checkpoints.main,
        quickstart.main,
    )
    cpu = ["--device", "cpu"]
    return {
        # siedob-edit / fusion/test_one_image.py
        "edit_missing_input": Case(e, ["--input", "nope", "--output", "out", *cpu], ["nope", "not found"], ["out"]),
        "edit_input_is_file": Case(
            e, ["--input", "afile.txt", "--output", "out"], ["afile.txt", "expected a folder"], ["out"]
        ),
        "edit_missing_checkpoints": Case(e, ["--checkpoints", "nope", "--output", "out", *cpu], ["nope"], ["out"]),
        "edit_mixes_folder_and_single": Case(e, ["--input", "empty", "--image", "x.jpg"], ["--input", "--image"]),
        "edit_output_folder_with_single": Case(
            e, ["--output", "out", "--image", "x.jpg"], ["--output", "--image"], ["out"]
        ),
        "edit_single_option_without_image": Case(e, ["--labels", "x.png"], ["--labels needs --image"]),
        "edit_output_is_file": Case(e, ["--output", "afile.txt/sub", *cpu], ["afile.txt", "not writable"]),
        "edit_unwritable_output": Case(e, ["--output", str(UNWRITABLE), *cpu], ["not writable"]),
        "edit_bad_device": Case(e, ["--device", "gpu0"], ["--device", "cuda:N"]),
        "edit_missing_style_dir": Case(
            e, ["--style-dir", "nope", "--output", "out", *cpu], ["nope", "style folder"], ["out"]
        ),
        "edit_unknown_option": Case(e, ["--out", "x.png"], ["unrecognized arguments", "--help"]),
        # siedob-train / <stage>/train.py
        "train_bad_set_type": Case(
            t,
            ["fusion", "--output", "run", "--set", "train.batch_size=many"],
            ["train.batch_size=many", "must be an integer"],
            ["run"],
        ),
        "train_bad_set_key": Case(
            t, ["background", "--output", "run", "--set", "model.d_in_nc=37"], ["no key 'model.d_in_nc'"], ["run"]
        ),
        "train_set_without_value": Case(
            t, ["background", "--output", "run", "--set", "train.lr"], ["expected key=value"], ["run"]
        ),
        "train_resume_missing_run": Case(t, ["--resume", "nope"], ["nope", "not found"], ["nope"]),
        "train_resume_without_checkpoints": Case(t, ["instance_style", "--resume", "empty"], ["nothing to resume"]),
        "train_empty_data_root": Case(
            t,
            ["instance_inpainting", "--data-root", "empty", "--output", "run", *cpu],
            ["empty", "no *.jpg files"],
            ["run"],
        ),
        "train_missing_data_root": Case(
            t, ["background", "--data-root", "nope", "--output", "run", *cpu], ["nope", "data root not found"], ["run"]
        ),
        "train_missing_config": Case(
            t, ["fusion", "--config", "nope.yaml", "--output", "run"], ["nope.yaml", "not found"], ["run"]
        ),
        "train_config_is_folder": Case(t, ["fusion", "--config", "empty", "--output", "run"], ["is a folder"], ["run"]),
        "train_config_not_yaml": Case(
            t, ["fusion", "--config", "bad.yaml", "--output", "run"], ["not valid YAML"], ["run"]
        ),
        "train_output_is_file": Case(t, ["background", "--output", "afile.txt", *cpu], ["afile.txt", "is a file"]),
        "train_unwritable_output": Case(t, ["background", "--output", str(UNWRITABLE), *cpu], ["not writable"]),
        "train_checkpoints_not_fusion": Case(t, ["background", "--checkpoints", "empty"], ["fusion stage only"]),
        "train_resume_and_other_output": Case(
            t, ["--resume", "empty", "--output", "other"], ["--resume", "--output"], ["other"]
        ),
        "train_no_stage": Case(t, [], ["name the stage"]),
        "train_allow_change_without_resume": Case(t, ["fusion", "--allow-config-change"], ["with --resume only"]),
        "train_unknown_stage": Case(t, ["bogus"], ["invalid choice"]),
        "train_unknown_profile": Case(
            t, ["fusion", "--set", "data.profile=ade20k", "--output", "run"], ["data.profile", "ade20k-room"], ["run"]
        ),
        "train_class_of_another_profile": Case(
            t,
            ["instance_style", "--set", "data.classes=[car, bed]", "--output", "run"],
            ["'bed'", "car, person"],
            ["run"],
        ),
        "train_lab_dim_of_another_profile": Case(
            t, ["background", "--set", "model.lab_dim=151", "--output", "run"], ["lab_dim is 151", "34"], ["run"]
        ),
        "train_data_of_another_profile": Case(
            t,
            ["instance_inpainting", "--data-root", "rooms", "--output", "run", *cpu],
            ["rooms", "ade20k-room", "data.profile=cityscapes"],
            ["run"],
        ),
        # siedob-synthetic
        "synthetic_output_is_file": Case(s, ["--output", "afile.txt", "--scenes", "2"], ["afile.txt", "not writable"]),
        "synthetic_zero_scenes": Case(s, ["--output", "out", "--scenes", "0"], ["--scenes", "at least 1"], ["out"]),
        "synthetic_size_without_raw": Case(s, ["--output", "out", "--size", "64x32"], ["--size", "--raw"], ["out"]),
        "synthetic_bad_set": Case(s, ["--output", "out", "--set", "jpeg_quality=best"], ["jpeg_quality"], ["out"]),
        # siedob-prepare-cityscapes
        "prepare_missing_src": Case(p, ["--src", "nope", "--dst", "out"], ["nope", "not found"], ["out"]),
        "prepare_empty_src": Case(p, ["--src", "empty", "--dst", "out", "--workers", "1"], ["leftImg8bit"], ["out"]),
        "prepare_dst_is_file": Case(p, ["--src", "empty", "--dst", "afile.txt/x"], ["afile.txt", "not writable"]),
        "prepare_missing_config": Case(
            p, ["--src", "empty", "--dst", "out", "--config", "nope.yaml"], ["nope.yaml"], ["out"]
        ),
        # siedob-check-checkpoints
        "check_missing_folder": Case(c, ["--checkpoints", "nope"], ["nope", "not found"]),
        "check_empty_folder": Case(c, ["empty"], ["object_inpainting.pth"]),
        "check_folder_given_twice": Case(c, ["empty", "--checkpoints", "empty"], ["once"]),
        # siedob-quickstart
        "quickstart_output_is_file": Case(q, ["--output", "afile.txt"], ["afile.txt"]),
        "quickstart_zero_steps": Case(q, ["--output", "out", "--steps", "0"], ["--steps"], ["out"]),
        "quickstart_one_scene": Case(q, ["--output", "out", "--scenes", "1"], ["--scenes"], ["out"]),
    }


CASES = _cases()


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch) -> Path:
    """A working directory with a plain file, an empty folder and a file that is not YAML."""
    (tmp_path / "afile.txt").write_text("not a folder")
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    (tmp_path / "rooms").mkdir()  # a prepared ADE20K-Room root (its profile record only)
    objects = '["bed", "table", "chair", "sofa", "armchair", "lamp"]'
    (tmp_path / "rooms" / "profile.json").write_text(f'{{"profile": "ade20k-room", "objects": {objects}}}')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _snapshot(root: Path) -> List[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2(name, workdir, capsys):
    case = CASES[name]
    before = _snapshot(workdir)
    rc = run_cli(case.main, list(case.argv))
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for word in case.words:
        assert word in lines[0], lines[0]
    for path in case.absent:
        assert not (workdir / path).exists(), f"{path} was left behind"
    assert _snapshot(workdir) == before


@pytest.mark.parametrize(
    "exc, line",
    [
        (PermissionError(13, "Permission denied", "/some/output.png"), "error: /some/output.png: Permission denied"),
        (IsADirectoryError(21, "Is a directory", "/some/folder"), "error: /some/folder: Is a directory"),
        (OSError(28, "No space left on device"), "error: No space left on device"),
    ],
)
def test_os_errors_become_one_line_naming_the_file(exc, line, capsys):
    def fails(argv):
        raise exc

    assert run_cli(fails, []) == 2
    assert capsys.readouterr().err == line + "\n"


@pytest.mark.parametrize("script", ["siedob.train.cli", "siedob.data.synthetic"])
def test_console_scripts_print_no_traceback(script, tmp_path):
    """As a process: the module entry points go through run_cli too."""
    code = {
        "siedob.train.cli": "from siedob.train.cli import console_main as m; m()",
        "siedob.data.synthetic": "from siedob.data.synthetic import cli as m; m()",
    }[script]
    argv = {
        "siedob.train.cli": ["fusion", "--set", "train.lr=x"],
        "siedob.data.synthetic": ["--output", str(tmp_path / "f" / "x"), "--scenes", "-3"],
    }[script]
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("error: "), proc.stderr
