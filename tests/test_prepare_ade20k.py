"""siedob-prepare-ade20k end to end on synthetic raw ADE20K rooms: split, labels, instances, crops, guarantees."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from siedob.data import prepare_ade20k
from siedob.data.io import DataError
from siedob.data.synthetic import main as synthetic_main
from siedob.data.synthetic_ade import write_prepared_ade, write_raw_ade
from siedob.errors import run_cli

SCENES = 12  # 8 training (4 rooms), 4 validation (3 rooms)
ROOMS = ("bedroom", "hotel_room", "living_room")
#: Instance100 category → SceneParse150 id of the six object classes (classes150.json, typed in by hand).
OBJECT_OF_CATEGORY = {1: 8, 6: 16, 8: 20, 11: 24, 14: 31, 19: 37}


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("ade_raw")
    entries = write_raw_ade(root, SCENES, seed=1)
    return root, entries


@pytest.fixture(scope="module")
def prepared(raw, tmp_path_factory):
    root, _ = raw
    dst = tmp_path_factory.mktemp("ade_prep") / "ade20k_room"
    assert prepare(root / "ADEChallengeData2016", dst) == 0
    return dst


def prepare(src: Path, dst: Path, *extra: str) -> int:
    return run_cli(prepare_ade20k.main, ["--src", str(src), "--dst", str(dst), "--workers", "1", *extra])


def stems(folder: Path):
    return sorted(p.stem for p in folder.iterdir())


def raw_maps(root: Path, split: str, name: str):
    folder = {"train": "training", "val": "validation"}[split]
    labels = np.array(Image.open(root / "ADEChallengeData2016" / "annotations" / folder / f"{name}.png"))
    rgb = np.array(Image.open(root / "annotations_instance" / folder / f"{name}.png").convert("RGB"))
    return labels, rgb[..., 0].astype(np.int64), rgb[..., 1].astype(np.int64)


def expected_instances(labels, r, g):
    """Our encoding written out independently: class*1000+G where the label is the category's object class."""
    out = labels.astype(np.int64)
    for cat, cls in OBJECT_OF_CATEGORY.items():
        sel = (r == cat) & (g > 0) & (labels == cls)
        out[sel] = cls * 1000 + g[sel]
    return out


def read(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_room_split(raw, prepared):
    _, entries = raw
    want = {s: sorted(e.name for e in entries if e.split == s and e.scene in ROOMS) for s in ("train", "val")}
    assert len(want["train"]) == 4 and len(want["val"]) == 3
    assert stems(prepared / "train" / "images") == want["train"]
    assert stems(prepared / "test" / "images") == want["val"]
    for split in ("train", "test"):
        for sub in ("labels", "inst_map"):
            assert stems(prepared / split / sub) == stems(prepared / split / "images")
    excluded = {e.name for e in entries if e.scene not in ROOMS}
    assert {"bathroom", "dining_room", "childs_room", "kitchen"} <= {e.scene for e in entries if e.scene not in ROOMS}
    assert not excluded & {p.stem for p in prepared.rglob("*.jpg")}
    assert not any(name in p.name for name in excluded for p in prepared.rglob("*"))


def test_sizes_follow_the_short_side_rule(raw, prepared):
    _, entries = raw
    expected = {(320, 240): (341, 256), (512, 256): (512, 256), (256, 384): (256, 384), (682, 512): (341, 256)}
    for e in entries:
        if e.scene not in ROOMS:
            continue
        split = "train" if e.split == "train" else "test"
        img = read(prepared / split / "images" / f"{e.name}.jpg")
        lab = read(prepared / split / "labels" / f"{e.name}.png")
        inst = read(prepared / split / "inst_map" / f"{e.name}.png")
        w, h = expected[e.size] if split == "train" else (256, 256)
        assert img.shape == (h, w, 3) and lab.shape == inst.shape == (h, w)
        assert lab.dtype == np.uint8 and inst.dtype == np.uint16


def test_labels_and_instances_where_no_resize_happens(raw, prepared):
    root, entries = raw
    checked = 0
    for e in entries:
        if e.scene not in ROOMS or min(e.size) != 256:
            continue
        labels, r, g = raw_maps(root, e.split, e.name)
        inst = expected_instances(labels, r, g)
        if e.split == "train":
            window = (slice(None), slice(None))
            split = "train"
        else:
            h, w = labels.shape
            top, left = (h - 256) // 2, (w - 256) // 2
            window = (slice(top, top + 256), slice(left, left + 256))
            split = "test"
        lab_out = read(prepared / split / "labels" / f"{e.name}.png")
        inst_out = read(prepared / split / "inst_map" / f"{e.name}.png")
        assert np.array_equal(lab_out, labels[window])
        assert np.array_equal(inst_out.astype(np.int64), inst[window])
        checked += 1
    assert checked >= 3


def test_exact_halving_is_nearest(raw, prepared):
    root, entries = raw
    (e,) = [e for e in entries if e.size == (682, 512) and e.scene in ROOMS]
    labels, r, g = raw_maps(root, e.split, e.name)
    assert np.array_equal(read(prepared / "train" / "labels" / f"{e.name}.png"), labels[::2, ::2])
    inst = expected_instances(labels, r, g)[::2, ::2]
    assert np.array_equal(read(prepared / "train" / "inst_map" / f"{e.name}.png").astype(np.int64), inst)


def test_label_values_kept_and_instance_ids_decoded(raw, prepared):
    values, ks, untagged = set(), set(), 0
    for path in sorted(prepared.glob("*/labels/*.png")):
        lab = read(path)
        inst = read(path.parent.parent / "inst_map" / path.name).astype(np.int64)
        values |= set(np.unique(lab).tolist())
        things = inst >= 1000
        # every instance pixel carries the label of its class; everything else holds its label id
        assert np.array_equal(inst[things] // 1000, lab[things].astype(np.int64))
        assert np.array_equal(inst[~things], lab[~things].astype(np.int64))
        assert set(np.unique(inst[things] // 1000).tolist()) <= set(OBJECT_OF_CATEGORY.values())
        ks |= set((inst[things] % 1000).tolist())
        untagged += int((np.isin(lab, list(OBJECT_OF_CATEGORY.values())) & ~things).any())
    assert 0 in values and 150 in values and max(values) <= 150  # "other" and "flag" both kept as they are
    assert 1 in values and 4 in values and 6 in values  # wall, floor, ceiling
    assert min(ks) >= 1 and max(ks) <= 255 and len(ks) > 3 and ks != set(range(1, len(ks) + 1))
    assert untagged >= 1  # an object-class region without instance id stays a plain label


def test_object_crops(raw, prepared, capsys):
    objects = prepared / "object_datasets"
    n_test, classes = 0, set()
    for folder in sorted(objects.glob("*/*/images")):
        cname, split = folder.parts[-3], folder.parts[-2]
        assert cname in {"bed", "table", "chair", "sofa", "armchair", "lamp"} and split in ("train", "test")
        imgs = stems(folder)
        assert stems(folder.parent / "inst_mask") == imgs
        for stem in imgs:
            assert re.fullmatch(rf"{cname}_ADE_(train|val)_\d{{8}}_\d\d", stem)
            assert ("_val_" in stem) == (split == "test")
            img, m = read(folder / f"{stem}.jpg"), read(folder.parent / "inst_mask" / f"{stem}.png")
            assert img.shape == (64, 64, 3) and m.shape == (64, 64) and set(np.unique(m)) <= {0, 255}
            assert (m > 0).mean() > 0.2
        classes.add(cname)
        n_test += len(imgs) if split == "test" else 0
    assert len(classes) >= 4
    assert len(list((objects / "object_mask").glob("*.png"))) == n_test > 0
    assert len(list((prepared / "predefined_mask").glob("*.png"))) == 3
    assert read(prepared / "predefined_mask" / "0000.png").shape == (256, 256)


def snapshot(root: Path):
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_summary_idempotent_rerun_and_untouched_source(raw, tmp_path, capsys):
    root, _ = raw
    before = snapshot(root)
    dst = tmp_path / "out"
    assert prepare(root / "ADEChallengeData2016", dst, "--instances", str(root / "annotations_instance")) == 0
    first = capsys.readouterr().out
    assert "train 4 (reported 2,246)" in first and "test 3 (reported 255" in first
    assert "scene categories kept: bedroom 3, hotel_room 2, living_room 2" in first
    assert "images not used: other scenes 5" in first
    assert re.search(r"objects: .*bed/t", first) and "instances skipped:" in first
    assert "pixels without instance id" in first
    out_before = snapshot(dst)
    assert prepare(root / "ADEChallengeData2016", dst) == 0
    again = capsys.readouterr().out
    assert "images written: 0" in again and "evaluation masks written: none" in again
    assert again.split("images written")[0] == first.split("images written")[0]
    assert snapshot(dst) == out_before
    assert snapshot(root) == before
    assert not list(dst.rglob("*.tmp"))


def test_parallel_workers_give_the_same_files(raw, prepared, tmp_path):
    root, _ = raw
    dst = tmp_path / "par"
    assert prepare_ade20k.main(["--src", str(root / "ADEChallengeData2016"), "--dst", str(dst), "--workers", "2"]) == 0
    assert snapshot(dst).keys() == snapshot(prepared).keys()


def test_scene_list_is_configurable(raw, tmp_path):
    root, entries = raw
    assert prepare(root / "ADEChallengeData2016", tmp_path / "b", "--scenes", "bathroom") == 0
    want = sorted(e.name for e in entries if e.scene == "bathroom" and e.split == "train")
    assert stems(tmp_path / "b" / "train" / "images") == want


def test_object_list_is_configurable(raw, tmp_path, capsys):
    root, _ = raw
    dst = tmp_path / "o"
    assert prepare(root / "ADEChallengeData2016", dst, "--objects", "bed,cabinet:0.5") == 0
    assert sorted(p.name for p in (dst / "object_datasets").iterdir()) == ["bed", "cabinet", "object_mask"]
    classes = set()
    for path in dst.glob("*/inst_map/*.png"):
        inst = read(path).astype(np.int64)
        classes |= set(np.unique(inst[inst >= 1000] // 1000).tolist())
    assert classes == {8, 11}  # bed and cabinet instances only
    assert '"cabinet"' in (dst / "profile.json").read_text()
    capsys.readouterr()
    assert prepare(root / "ADEChallengeData2016", tmp_path / "s", "--objects", "stool") == 2
    assert "class <= 65" in capsys.readouterr().err


@pytest.fixture()
def bad_tree(raw, tmp_path):
    root, _ = raw
    copy = tmp_path / "raw"
    shutil.copytree(root, copy)
    return copy


def run_bad(copy: Path, capsys, dst: Path = None) -> str:
    code = prepare(copy / "ADEChallengeData2016", dst or copy.parent / "out")
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("prepare:")]
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0]
    return err[0]


def test_rgb_label_map_is_named(bad_tree, capsys):
    path = bad_tree / "ADEChallengeData2016" / "annotations" / "training" / "ADE_train_00000003.png"
    cv2.imwrite(str(path), np.zeros((256, 512, 3), np.uint8))
    msg = run_bad(bad_tree, capsys)
    assert str(path) in msg and "8-bit greyscale" in msg


def test_label_value_out_of_range(bad_tree, capsys):
    path = bad_tree / "ADEChallengeData2016" / "annotations" / "training" / "ADE_train_00000003.png"
    lab = read(path)
    lab[0, 0] = 200
    cv2.imwrite(str(path), lab)
    msg = run_bad(bad_tree, capsys)
    assert str(path) in msg and "200" in msg and "0..150" in msg


def test_missing_instance_file(bad_tree, capsys):
    path = bad_tree / "annotations_instance" / "validation" / "ADE_val_00000001.png"
    path.unlink()
    msg = run_bad(bad_tree, capsys)
    assert str(path) in msg and "ADE_val_00000001.jpg" in msg


def test_bad_scene_line(bad_tree, capsys):
    path = bad_tree / "ADEChallengeData2016" / "sceneCategories.txt"
    path.write_text(path.read_text() + "ADE_train_00000099\n")
    msg = run_bad(bad_tree, capsys)
    assert str(path) in msg and "line 13" in msg


def test_greyscale_instance_map(bad_tree, capsys):
    path = bad_tree / "annotations_instance" / "training" / "ADE_train_00000001.png"
    cv2.imwrite(str(path), read(path)[..., 1])
    msg = run_bad(bad_tree, capsys)
    assert str(path) in msg and "RGB" in msg


def test_destination_inside_the_source(bad_tree, capsys):
    msg = run_bad(bad_tree, capsys, dst=bad_tree / "ADEChallengeData2016" / "prepared")
    assert "inside the source" in msg
    assert not (bad_tree / "ADEChallengeData2016" / "prepared").exists()


def test_other_settings_in_an_existing_tree(raw, prepared, tmp_path, capsys):
    root, _ = raw
    dst = tmp_path / "mixed"
    shutil.copytree(prepared, dst)
    (dst / "profile.json").write_text((dst / "profile.json").read_text().replace('"lamp"', '"stool"'))
    code = prepare(root / "ADEChallengeData2016", dst)
    err = capsys.readouterr().err
    assert code == 2 and "prepared with other settings" in err


def test_console_command_reports_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "siedob.data.prepare_ade20k", "--src", str(tmp_path / "nope"), "--dst", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {tmp_path / 'nope'}: source folder not found"


def test_prepared_directly_matches_the_raw_route(prepared, tmp_path):
    direct = tmp_path / "direct"
    text = write_prepared_ade(direct, SCENES, seed=1)
    assert "train 4 (reported 2,246)" in text
    assert snapshot(direct).keys() == snapshot(prepared).keys()
    for path in sorted(prepared.glob("*/*/*.png")):  # labels, inst_map, predefined masks: lossless, identical
        assert np.array_equal(read(direct / path.relative_to(prepared)), read(path)), path


def test_synthetic_raw_tree_is_kept(tmp_path):
    entries = write_raw_ade(tmp_path, 3, seed=0)
    assert all(e.written for e in entries)
    photo = tmp_path / "ADEChallengeData2016" / "images" / "training" / "ADE_train_00000001.jpg"
    stamp = photo.stat().st_mtime_ns
    assert not any(e.written for e in write_raw_ade(tmp_path, 3, seed=0))
    assert photo.stat().st_mtime_ns == stamp
    with pytest.raises(DataError, match="sceneCategories.txt"):
        write_raw_ade(tmp_path, 4, seed=0)  # would disagree with the existing scene list
    assert all(e.written for e in write_raw_ade(tmp_path, 4, seed=0, overwrite=True))


def test_synthetic_command_raw_then_prepare(tmp_path, capsys):
    raw = tmp_path / "raw"
    args = ["--output", str(raw), "--profile", "ade20k-room", "--raw", "--scenes", "4", "--seed", "2"]
    assert run_cli(synthetic_main, args) == 0
    assert "wrote 4 raw ADE20K scenes" in capsys.readouterr().out
    assert run_cli(synthetic_main, args) == 0
    again = capsys.readouterr().out
    assert "wrote 0 raw ADE20K scenes" in again and "4 kept" in again
    assert prepare(raw / "ADEChallengeData2016", tmp_path / "out") == 0
    assert stems(tmp_path / "out" / "train" / "images") == ["ADE_train_00000001", "ADE_train_00000003"]
    assert stems(tmp_path / "out" / "test" / "images") == ["ADE_val_00000001"]
    assert run_cli(synthetic_main, [*args, "--dense"]) == 2
    assert "--dense" in capsys.readouterr().err
