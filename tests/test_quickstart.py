"""The quickstart, short: synthetic data → four trained stages → released files → edited example."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from siedob.checkpoints import check_folder
from siedob.config import load_config
from siedob.edit.cli import bundled_example
from siedob.errors import SiedobError
from siedob.quickstart import main


def test_quickstart_short_run(tmp_path):
    out = tmp_path / "qs"
    assert main(["--output", str(out), "--steps", "2", "--scenes", "2", "--no-progress"]) == 0
    counts = check_folder(out / "checkpoints")
    assert set(counts) == {"object_inpainting.pth", "object_style.pth", "bg.pth", "Fnet.pth"}
    assert all(info["ngf"] == 8 for info in counts.values())
    example = bundled_example()
    image = cv2.imread(str(example / "images" / "example.jpg"))
    mask = cv2.imread(str(example / "mask" / "example.png"), cv2.IMREAD_GRAYSCALE)
    result = cv2.imread(str(out / "results" / "example.png"))
    panel = cv2.imread(str(out / "results" / "example_stages.png"))
    assert result.shape == image.shape and panel.shape[1] > 5 * image.shape[1]
    keep = mask == 0
    # Outside the mask the result is the input after the authors' truncating write (at most one level lower).
    diff = image[keep].astype(int) - result[keep].astype(int)
    assert diff.min() >= 0 and diff.max() <= 1
    assert np.abs(image[~keep].astype(int) - result[~keep].astype(int)).mean() > 1
    for stage in ("instance_inpainting", "instance_style", "background", "fusion"):
        assert (out / "runs" / stage / "checkpoints" / "latest_ckpt.pth").is_file()
        recorded = load_config(out / "runs" / stage / "config.yaml")
        assert recorded["run"] == {
            "device": "cpu",
            "amp": "none",
            "channels_last": False,
            "vgg_weights": "random",
            "submodels": str(out / "checkpoints"),
            "max_steps": 2,
        }
        assert recorded["model"]["ngf"] == 8 and recorded["data"]["root"] == str(out / "data")


def test_quickstart_never_overwrites_a_users_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(SiedobError, match="not empty"):
        main(["--output", str(tmp_path)])
    with pytest.raises(SiedobError, match="not a quickstart folder"):
        main(["--output", str(tmp_path), "--overwrite"])
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_quickstart_on_the_ade_room_profile(tmp_path):
    out = tmp_path / "qa"
    assert (
        main(["--output", str(out), "--steps", "1", "--scenes", "16", "--no-progress", "--profile", "ade20k-room"]) == 0
    )
    counts = check_folder(out / "checkpoints")
    assert counts["object_inpainting.pth"]["code_nc"] == 6 and counts["bg.pth"]["lab_nc"] == 151
    for stage in ("instance_inpainting", "instance_style", "background", "fusion"):
        recorded = load_config(out / "runs" / stage / "config.yaml")
        assert recorded["data"]["profile"] == "ade20k-room"
    results = sorted((out / "results").glob("*.png"))
    assert [p.name for p in results] == ["ADE_val_00000001.png", "ADE_val_00000001_stages.png"]
    photo = cv2.imread(str(out / "data" / "test" / "images" / "ADE_val_00000001.jpg"))
    assert cv2.imread(str(results[0])).shape == photo.shape


def test_no_progress_means_no_bars(tmp_path, capfd):
    assert main(["--output", str(tmp_path / "q"), "--steps", "1", "--scenes", "6", "--no-progress"]) == 0
    err = capfd.readouterr().err
    assert "synthetic:" not in err and "scene/s" not in err and "step/s" not in err
