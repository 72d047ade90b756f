"""siedob-prepare-cityscapes end to end on a synthetic raw tree, resumption, and malformed input."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from siedob.data import prepare_cityscapes
from siedob.data.synthetic import main as synthetic_main
from siedob.data.synthetic import write_raw
from siedob.errors import run_cli

RAW = "1024x512"  # half the official size keeps the test fast; the code path is the same
SCENES = 3  # two train scenes, one val scene


def prepare(src, dst, *extra):
    return run_cli(
        prepare_cityscapes.main, ["--src", str(src), "--dst", str(dst), "--workers", "1", "--raw-size", RAW, *extra]
    )


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    assert synthetic_main(["--output", str(root), "--scenes", str(SCENES), "--raw", "--size", RAW, "--seed", "3"]) == 0
    return root


@pytest.fixture(scope="module")
def prepared(raw, tmp_path_factory):
    dst = tmp_path_factory.mktemp("prep") / "cityscapes512x256"
    assert prepare(raw, dst) == 0
    return dst


def names(folder: Path):
    return sorted(p.name for p in folder.iterdir())


def test_raw_tree_has_the_official_names(raw):
    photos = sorted(raw.glob("leftImg8bit/*/*/*_leftImg8bit.png"))
    assert [p.parts[-3] for p in photos] == ["train", "train", "val"]
    for p in photos:
        stem = p.name[: -len("_leftImg8bit.png")]
        assert re.fullmatch(r"[a-z]+_\d{6}_\d{6}", stem)
        gt = raw / "gtFine" / p.parts[-3] / p.parts[-2]
        inst = cv2.imread(str(gt / f"{stem}_gtFine_instanceIds.png"), cv2.IMREAD_UNCHANGED)
        lab = cv2.imread(str(gt / f"{stem}_gtFine_labelIds.png"), cv2.IMREAD_UNCHANGED)
        assert inst.dtype == np.uint16 and lab.dtype == np.uint8 and inst.shape == lab.shape == (512, 1024)


def test_full_layout(prepared, raw):
    train = names(prepared / "train" / "images")
    assert len(train) == 2 and all(n.endswith(".jpg") for n in train)
    for sub, ext in (("labels", ".png"), ("inst_map", ".png"), ("images2048", ".jpg")):
        assert names(prepared / "train" / sub) == [n.replace(".jpg", ext) for n in train]
    assert cv2.imread(str(prepared / "train" / "images" / train[0])).shape == (256, 512, 3)
    assert cv2.imread(str(prepared / "train" / "images2048" / train[0])).shape == (512, 1024, 3)
    test = names(prepared / "test" / "images")
    assert [n[-6:] for n in test] == ["_l.jpg", "_r.jpg"]
    stem = test[0][:-6]
    raw_lab = cv2.imread(str(next(raw.glob(f"gtFine/val/*/{stem}_gtFine_labelIds.png"))), cv2.IMREAD_UNCHANGED)
    raw_inst = cv2.imread(str(next(raw.glob(f"gtFine/val/*/{stem}_gtFine_instanceIds.png"))), cv2.IMREAD_UNCHANGED)
    small_lab, small_inst = raw_lab[::2, ::2], raw_inst[::2, ::2]  # nearest at exact factor 2
    for side, cols in (("l", slice(0, 256)), ("r", slice(256, 512))):
        lab = cv2.imread(str(prepared / "test" / "labels" / f"{stem}_{side}.png"), cv2.IMREAD_UNCHANGED)
        inst = cv2.imread(str(prepared / "test" / "inst_map" / f"{stem}_{side}.png"), cv2.IMREAD_UNCHANGED)
        assert lab.dtype == np.uint8 and inst.dtype == np.uint16
        assert np.array_equal(lab, small_lab[:, cols]) and np.array_equal(inst, small_inst[:, cols])
        assert cv2.imread(str(prepared / "test" / "images" / f"{stem}_{side}.jpg")).shape == (256, 256, 3)
    masks = names(prepared / "predefined_mask")
    assert masks == ["0000.png", "0001.png"]
    m = cv2.imread(str(prepared / "predefined_mask" / masks[0]), cv2.IMREAD_UNCHANGED)
    assert m.shape == (256, 256) and set(np.unique(m)) == {0, 255}


def test_object_datasets(prepared):
    n_test = 0
    for cls, size in (("car", (64, 64)), ("person", (64, 32))):
        for split, prefix in (("train", "synthtown"), ("test", "synthville")):
            base = prepared / "object_datasets" / cls / split
            imgs = names(base / "images")
            assert imgs, (cls, split)
            assert names(base / "inst_mask") == [n.replace(".jpg", ".png") for n in imgs]
            for n in imgs:
                assert re.fullmatch(rf"{cls}_{prefix}_\d{{6}}_000019_\d\d\.jpg", n)
                img = cv2.imread(str(base / "images" / n))
                m = cv2.imread(str(base / "inst_mask" / n.replace(".jpg", ".png")), cv2.IMREAD_UNCHANGED)
                assert img.shape[:2] == m.shape == size
                assert set(np.unique(m)) == {0, 255}
                # the object fills its box above the threshold (mask resized nearest from the box)
                assert (m > 0).mean() > {"car": 0.6, "person": 0.35}[cls] * 0.8
            if split == "test":
                n_test += len(imgs)
    obj_masks = names(prepared / "object_datasets" / "object_mask")
    assert len(obj_masks) == n_test
    assert cv2.imread(str(prepared / "object_datasets" / "object_mask" / obj_masks[0]), 0).shape == (64, 64)


def test_crop_is_cut_from_the_full_resolution_photo(prepared, raw):
    crop_name = names(prepared / "object_datasets" / "car" / "test" / "images")[0]
    crop = cv2.imread(str(prepared / "object_datasets" / "car" / "test" / "images" / crop_name)).astype(float)
    stem = crop_name[len("car_") : -len("_00.jpg")]
    photo = cv2.imread(str(next(raw.glob(f"leftImg8bit/val/*/{stem}_leftImg8bit.png"))))
    inst = cv2.imread(str(next(raw.glob(f"gtFine/val/*/{stem}_gtFine_instanceIds.png"))), cv2.IMREAD_UNCHANGED)
    best = np.inf
    for iid in np.unique(inst[(inst >= 26000) & (inst < 27000)]):
        ys, xs = np.nonzero(inst == iid)
        box = photo[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        best = min(best, np.abs(cv2.resize(box, (64, 64), interpolation=cv2.INTER_AREA) - crop).mean())
    assert best < 25  # one of the cars, up to the 2-px margin and JPEG


def test_summary_and_idempotent_rerun(raw, tmp_path, capsys):
    dst = tmp_path / "out"
    assert prepare(raw, dst) == 0
    first = capsys.readouterr().out
    assert "scenes: test 2, train 2" in first
    assert re.search(r"objects: car/test \d+, car/train \d+, person/test \d+, person/train \d+", first)
    assert "instances skipped:" in first
    written = int(re.search(r"images written: (\d+)", first).group(1))
    assert written >= 2 * 4 + 2 * 3
    photo = dst / "train" / "images" / names(dst / "train" / "images")[0]
    stamp = photo.stat().st_mtime_ns
    assert prepare(raw, dst) == 0
    again = capsys.readouterr().out
    assert photo.stat().st_mtime_ns == stamp
    assert again.split("images written")[0] == first.split("images written")[0]  # totals from markers
    # an interrupted run: one scene's marker and an output are missing -> re-run completes it
    victim = dst / "test" / "labels" / names(dst / "test" / "labels")[0]
    victim.unlink()
    next((dst / prepare_cityscapes.MARKERS / "val").glob("*.json")).unlink()
    assert prepare(raw, dst) == 0
    assert victim.is_file() and photo.stat().st_mtime_ns == stamp
    assert "images written: 1\n" in capsys.readouterr().out
    assert prepare(raw, dst, "--overwrite") == 0
    assert photo.stat().st_mtime_ns != stamp
    assert not list(dst.rglob("*.tmp"))


def test_parallel_workers_give_the_same_files(raw, prepared, tmp_path):
    dst = tmp_path / "par"
    assert prepare_cityscapes.main(["--src", str(raw), "--dst", str(dst), "--workers", "2", "--raw-size", RAW]) == 0
    files = sorted(p.relative_to(dst) for p in dst.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(prepared) for p in prepared.rglob("*") if p.is_file())
    differ = [str(rel) for rel in files if (dst / rel).read_bytes() != (prepared / rel).read_bytes()]
    assert not differ, f"two workers wrote different bytes than one in {differ[:5]}"


def one_scene_tree(root: Path, size=(64, 32)):
    """Tiny valid raw tree (header checks only look at sizes and bit depths)."""
    w, h = size
    img_dir = root / "leftImg8bit" / "train" / "x"
    gt_dir = root / "gtFine" / "train" / "x"
    img_dir.mkdir(parents=True)
    gt_dir.mkdir(parents=True)
    cv2.imwrite(str(img_dir / "x_000000_000019_leftImg8bit.png"), np.zeros((h, w, 3), np.uint8))
    cv2.imwrite(str(gt_dir / "x_000000_000019_gtFine_labelIds.png"), np.zeros((h, w), np.uint8))
    cv2.imwrite(str(gt_dir / "x_000000_000019_gtFine_instanceIds.png"), np.zeros((h, w), np.uint16))
    return (
        img_dir / "x_000000_000019_leftImg8bit.png",
        gt_dir / "x_000000_000019_gtFine_labelIds.png",
        gt_dir / "x_000000_000019_gtFine_instanceIds.png",
    )


def run_bad(tmp_path, capsys, dst=None, raw_size="64x32"):
    src = tmp_path / "raw"
    dst = dst or tmp_path / "out"
    code = run_cli(
        prepare_cityscapes.main, ["--src", str(src), "--dst", str(dst), "--workers", "1", "--raw-size", raw_size]
    )
    err = capsys.readouterr().err.strip().splitlines()
    err = [line for line in err if not line.startswith("prepare:")]  # progress bar
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ")
    assert "Traceback" not in err[0]
    return err[0]


def test_image_without_label(tmp_path, capsys):
    _, lab, _ = one_scene_tree(tmp_path / "raw")
    lab.unlink()
    msg = run_bad(tmp_path, capsys)
    assert "x_000000_000019_leftImg8bit.png" in msg and "x_000000_000019_gtFine_labelIds.png" in msg


def test_wrong_size(tmp_path, capsys):
    photo, _, _ = one_scene_tree(tmp_path / "raw")
    cv2.imwrite(str(photo), np.zeros((30, 64, 3), np.uint8))
    msg = run_bad(tmp_path, capsys)
    assert str(photo) in msg and "64x30" in msg and "expected 64x32" in msg


def test_default_size_is_the_official_one(tmp_path, capsys):
    one_scene_tree(tmp_path / "raw")
    src = tmp_path / "raw"
    assert run_cli(prepare_cityscapes.main, ["--src", str(src), "--dst", str(tmp_path / "o"), "--workers", "1"]) == 2
    assert "expected 2048x1024" in capsys.readouterr().err


def test_eight_bit_instance_map(tmp_path, capsys):
    _, _, inst = one_scene_tree(tmp_path / "raw")
    cv2.imwrite(str(inst), np.zeros((32, 64), np.uint8))
    msg = run_bad(tmp_path, capsys)
    assert str(inst) in msg and "8-bit instance map" in msg


def test_unreadable_files(tmp_path, capsys):
    photo, lab, _ = one_scene_tree(tmp_path / "raw")
    photo.write_bytes(b"not an image at all")
    msg = run_bad(tmp_path, capsys)
    assert str(photo) in msg and "not a PNG" in msg


def test_truncated_png_is_reported_by_name(raw, tmp_path, capsys):
    src = tmp_path / "raw"
    write_raw(src, 1, seed=5, size=(1024, 512))
    lab = next(src.glob("gtFine/train/*/*_labelIds.png"))
    lab.write_bytes(lab.read_bytes()[:200])
    msg = run_bad(tmp_path, capsys, raw_size=RAW)
    assert str(lab) in msg


def test_destination_inside_source_is_refused(tmp_path, capsys):
    one_scene_tree(tmp_path / "raw")
    msg = run_bad(tmp_path, capsys, dst=tmp_path / "raw" / "prepared")
    assert "inside the source" in msg
    assert not (tmp_path / "raw" / "prepared").exists()


def test_module_entry_point_gives_one_line_and_exit_2(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "siedob.data.prepare_cityscapes",
            "--src",
            str(tmp_path / "nope"),
            "--dst",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    expected = f"error: {tmp_path / 'nope'}: source folder not found"
    assert proc.stderr.strip().splitlines() == [expected]
