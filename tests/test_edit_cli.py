"""``siedob-edit`` / ``fusion/test_one_image.py``: outputs, stage panels, derived masks and every bad input."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from siedob.edit.cli import main
from siedob.errors import run_cli
from siedob.panels import TITLE_HEIGHT
from tests.support.edit import small_networks, toy_scene, write_checkpoints, write_example, write_style_dir

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return write_checkpoints(tmp_path_factory.mktemp("ckpt"), small_networks())


@pytest.fixture()
def example(tmp_path: Path) -> Path:
    return write_example(tmp_path / "example", toy_scene())


def _run(argv, capsys):
    rc = run_cli(main, [str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _assert_bad(argv, capsys, out_dir: Path, *words: str) -> str:
    rc, _, err = _run(argv, capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for word in words:
        assert word in lines[0], lines[0]
    assert not list(out_dir.rglob("*.png")) if out_dir.exists() else True
    return lines[0]


def test_folder_mode_writes_results_and_panel(example, ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    rc, stdout, _ = _run(
        ["--checkpoints", ckpt, "--input", example, "--output", out, "--save-stages", "--device", "cpu"], capsys
    )
    assert rc == 0
    result = cv2.imread(str(out / "scene.png"))
    panel = cv2.imread(str(out / "scene_stages.png"))
    scene = toy_scene()
    assert result.shape == (128, 128, 3)
    assert panel.shape == (TITLE_HEIGHT + 128, 7 * 128 + 6 * 4, 3)
    assert np.array_equal(panel[TITLE_HEIGHT:, :128], scene["image"])
    assert np.array_equal(panel[TITLE_HEIGHT:, -128:], result)
    assert (panel[:TITLE_HEIGHT] < 128).any()  # the titles are drawn
    keep = scene["mask"] == 0
    assert np.abs(result[keep].astype(int) - scene["image"][keep]).max() <= 1  # truncation of (x + 1) / 2 * 255
    assert not np.array_equal(result[~keep], scene["image"][~keep])


def test_folder_of_several_images_shows_progress(ckpt, tmp_path, capsys):
    example = write_example(tmp_path / "example", toy_scene(seed=0), name="a")
    write_example(example, toy_scene(seed=1), name="b")
    rc, stdout, err = _run(["--checkpoints", ckpt, "--input", example, "--output", tmp_path / "out"], capsys)
    assert rc == 0 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    assert "editing" in err and "2/2" in err


def test_all_zero_mask_is_bit_exact(example, ckpt, tmp_path, capsys):
    cv2.imwrite(str(example / "mask" / "scene.png"), np.zeros((128, 128), np.uint8))
    out = tmp_path / "out"
    rc, _, _ = _run(["--checkpoints", ckpt, "--input", example, "--output", out], capsys)
    assert rc == 0
    assert np.array_equal(cv2.imread(str(out / "scene.png")), toy_scene()["image"])


def test_single_mode_with_mask_derived_from_labels(tmp_path, ckpt, capsys):
    scene = toy_scene()
    orig = scene["labels"].copy()
    orig[orig == 26] = 7  # the original has no cars: the edit adds them
    for name, arr in (
        ("img.png", scene["image"]),
        ("lab.png", scene["labels"]),
        ("orig.png", orig),
        ("inst.png", scene["instances"].astype(np.uint16)),
    ):
        cv2.imwrite(str(tmp_path / name), arr)
    style = write_style_dir(tmp_path / "style")
    out = tmp_path / "res" / "edited.png"
    rc, _, err = _run(
        [
            "--image",
            tmp_path / "img.png",
            "--labels",
            tmp_path / "lab.png",
            "--instances",
            tmp_path / "inst.png",
            "--orig-labels",
            tmp_path / "orig.png",
            "--style-dir",
            style,
            "--output-file",
            out,
            "--style",
            "car_2",
            "--device",
            "cpu",
            "--checkpoints",
            ckpt,
        ],
        capsys,
    )
    assert rc == 0, err
    result = cv2.imread(str(out))
    changed = scene["labels"] != orig
    far = cv2.dilate(changed.astype(np.uint8), np.ones((7, 7), np.uint8)) == 0
    assert not np.array_equal(result[changed], scene["image"][changed])
    assert np.abs(result[far].astype(int) - scene["image"][far]).max() <= 1


@pytest.mark.parametrize(
    "case, words",
    [
        ("missing_image", ["example/images", "no images to edit"]),
        ("missing_labels", ["labels/scene.png", "file not found"]),
        ("unreadable_image", ["scene.png", "not a readable image"]),
        ("size_mismatch", ["labels/scene.png", "does not match"]),
        ("not_multiple_of_16", ["images/scene.png", "multiples of 16"]),
        ("label_out_of_range", ["labels/scene.png", "0..33"]),
        ("instances_8bit", ["inst_map/scene.png", "16-bit"]),
        ("instances_3ch", ["inst_map/scene.png", "single-channel"]),
        ("empty_style_bank", ["no car style references"]),
        ("car_reference_size", ["car/images/car_", "64×64"]),
        ("missing_checkpoint", ["Fnet.pth", "file not found", "download the authors' released sub-networks"]),
        ("corrupt_checkpoint", ["bg.pth", "damaged"]),
        ("no_checkpoint_folder", ["checkpoint folder not found", "siedob-quickstart"]),
        ("unwritable_output", ["not writable"]),
    ],
)
def test_bad_inputs_are_one_line_exit_2(case, words, example, ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    ck = tmp_path / "ck"
    shutil.copytree(ckpt, ck)
    scene = toy_scene()
    if case == "missing_image":
        (example / "images" / "scene.png").unlink()
    elif case == "missing_labels":
        (example / "labels" / "scene.png").unlink()
    elif case == "unreadable_image":
        (example / "images" / "scene.png").write_bytes(b"not a png")
    elif case == "size_mismatch":
        cv2.imwrite(str(example / "labels" / "scene.png"), scene["labels"][:64])
    elif case == "not_multiple_of_16":
        small = toy_scene(120, 128)
        shutil.rmtree(example)
        write_example(example, small)
    elif case == "label_out_of_range":
        bad = scene["labels"].copy()
        bad[5, 5] = 34
        cv2.imwrite(str(example / "labels" / "scene.png"), bad)
    elif case == "instances_8bit":
        cv2.imwrite(str(example / "inst_map" / "scene.png"), scene["labels"])
    elif case == "instances_3ch":
        three = np.repeat(scene["instances"].astype(np.uint16)[..., None], 3, 2)
        cv2.imwrite(str(example / "inst_map" / "scene.png"), three)
    elif case == "empty_style_bank":
        shutil.rmtree(example / "object_style" / "car")
    elif case == "car_reference_size":
        shutil.rmtree(example / "object_style")
        write_style_dir(example / "object_style", car_size=(48, 64))
    elif case == "missing_checkpoint":
        (ck / "Fnet.pth").unlink()
    elif case == "corrupt_checkpoint":
        (ck / "bg.pth").write_bytes((ck / "bg.pth").read_bytes()[:1000])
    elif case == "no_checkpoint_folder":
        shutil.rmtree(ck)
    elif case == "unwritable_output":
        out.write_text("a file, not a folder")
        out = out / "sub"
    _assert_bad(
        ["--checkpoints", ck, "--input", example, "--output", out, "--device", "cpu"],
        capsys,
        tmp_path / "out" if case != "unwritable_output" else tmp_path / "none",
        *words,
    )


def test_bad_arguments_are_one_line(capsys, tmp_path):
    _assert_bad(["--image", tmp_path / "x.png"], capsys, tmp_path, "--image needs --labels")
    _assert_bad(["--no-such-flag"], capsys, tmp_path, "unrecognized")


def test_entry_script_reports_one_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "fusion" / "test_one_image.py"),
            "--checkpoints",
            str(tmp_path / "none"),
            "--input",
            str(REPO / "fusion" / "example"),
            "--output",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "download the authors'" in proc.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_existing_results_and_inputs_are_never_overwritten(example, ckpt, tmp_path, capsys):
    """A second run into the same folder needs --overwrite; an output that is an input is always refused."""
    out = tmp_path / "out"
    base = ["--checkpoints", ckpt, "--input", example, "--output", out, "--device", "cpu"]
    assert _run(base, capsys)[0] == 0
    before = (out / "scene.png").read_bytes()
    (out / "scene.png").write_bytes(b"user's file")
    rc, _, err = _run(base, capsys)
    assert rc == 2 and "already exists (pass --overwrite" in err and err.strip().count("\n") == 0
    assert (out / "scene.png").read_bytes() == b"user's file"
    assert _run(base + ["--overwrite"], capsys)[0] == 0
    assert (out / "scene.png").read_bytes() == before
    image = Path(example) / "images" / "scene.png"
    original = image.read_bytes()
    rc, _, err = _run(
        [
            "--checkpoints",
            ckpt,
            "--image",
            image,
            "--labels",
            Path(example) / "labels" / "scene.png",
            "--instances",
            Path(example) / "inst_map" / "scene.png",
            "--mask",
            Path(example) / "mask" / "scene.png",
            "--output-file",
            image,
            "--overwrite",
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert rc == 2 and "is one of the edit's input files" in err
    assert image.read_bytes() == original
