"""ADE20K-Room end to end on the CPU, through the console commands a user runs:

``siedob-synthetic --profile ade20k-room --raw`` → ``siedob-prepare-ade20k`` → one training step of each
stage (``--set data.profile=ade20k-room``) → ``siedob-edit`` → ``siedob-eval --mode chain``.

Each command runs in its own process (the installed console script), as from a shell; the checks are on what
they write.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from siedob.checkpoints import PROFILE_ENTRY, CheckpointError, load_released_network
from siedob.profiles import get_profile

ADE = get_profile("ade20k-room")
OBJECT_IDS = {8, 16, 20, 24, 31, 37}
TINY = [
    "--set",
    "data.profile=ade20k-room",
    "--set",
    "model.ngf=8",
    "--set",
    "model.ndf=8",
    "--set",
    "train.num_workers=0",
    "--set",
    "log.fid_every_epochs=0",
    "--set",
    "train.vgg_width_divisor=8",
    "--vgg-weights",
    "random",
    "--max-steps",
    "1",
    "--no-progress",
    "--device",
    "cpu",
]
SCENE = ["--set", "train.batch_size=2", "--set", "data.crop_size=128", "--set", "data.box_size=64"]
STAGE_ARGS = {
    "instance_inpainting": ["--set", "train.batch_size=4"],
    "instance_style": ["--set", "train.batch_size=4"],
    "background": SCENE + ["--set", "train.patch_size=[48,80]", "--set", "train.patch_resize=80"],
    "fusion": SCENE,
}
RELEASED = {
    "instance_inpainting": "object_inpainting.pth",
    "instance_style": "object_style.pth",
    "background": "bg.pth",
    "fusion": "Fnet.pth",
}


def script(name: str) -> str:
    """The console script installed beside the running interpreter (``pip install -e .`` puts them there)."""
    path = Path(sys.executable).parent / name
    assert path.is_file(), f"{path}: console script not installed (pip install -e . first)"
    return str(path)


def run(command: str, *args: str, cwd: Path) -> str:
    """Run a console script and return its output; a failure shows the command's output."""
    proc = subprocess.run([script(command), *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{command} {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """The whole chain once; returns the work folder."""
    work = tmp_path_factory.mktemp("ade")
    run("siedob-synthetic", "--profile", "ade20k-room", "--raw", "--scenes", "16", "--output", "raw", cwd=work)
    out = run(
        "siedob-prepare-ade20k",
        "--src",
        "raw/ADEChallengeData2016",
        "--instances",
        "raw/annotations_instance",
        "--dst",
        "prep",
        "--workers",
        "2",
        cwd=work,
    )
    (work / "prepare.txt").write_text(out)
    ck = work / "ck"
    ck.mkdir()
    for stage, extra in STAGE_ARGS.items():
        args = [stage, *TINY, *extra, "--data-root", "prep", "--output", f"runs/{stage}"]
        if stage == "fusion":
            args += ["--checkpoints", "ck"]
        run("siedob-train", *args, cwd=work)
        shutil.copyfile(work / "runs" / stage / RELEASED[stage], ck / RELEASED[stage])
    return work


def test_preparation_writes_the_ade_layout(pipeline):
    prep = pipeline / "prep"
    record = json.loads((prep / "profile.json").read_text())
    assert record["profile"] == "ade20k-room" and record["lab_dim"] == 151
    assert "train" in (pipeline / "prepare.txt").read_text() and "2,246" in (pipeline / "prepare.txt").read_text()
    labels = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted((prep / "train" / "labels").glob("*.png"))]
    assert labels and all(lab.dtype == np.uint8 and lab.max() <= 150 for lab in labels)
    for path in sorted((prep / "train" / "inst_map").glob("*.png")):
        inst = cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.int64)
        ids = np.unique(inst[inst >= 1000])
        assert set((ids // 1000).tolist()) <= OBJECT_IDS, path


@pytest.mark.parametrize("stage", list(STAGE_ARGS))
def test_each_stage_trains_a_step_and_releases_an_ade_file(pipeline, stage):
    path = pipeline / "runs" / stage / RELEASED[stage]
    obj = torch.load(path, weights_only=True)
    assert obj[PROFILE_ENTRY] == "ade20k-room"
    log = [json.loads(line) for line in (pipeline / "runs" / stage / "log.jsonl").read_text().splitlines()]
    assert any(rec.get("step") == 1 for rec in log)
    role = {"instance_inpainting": "object_inpainting", "instance_style": "object_style"}.get(stage, stage)
    net = load_released_network(path, role, profile="ade20k-room")
    first = next(v for k, v in net.state_dict().items() if k.startswith("init_conv") and v.dim() == 4)
    expected = {"instance_inpainting": 3 + 1 + 1 + 6, "instance_style": 6, "background": 3 + 151 + 1 + 1}
    if stage in expected:
        assert first.shape[1] == expected[stage]
    if stage != "fusion":
        with pytest.raises(CheckpointError, match="ade20k-room"):
            load_released_network(path, role, profile="cityscapes")


def test_edit_follows_the_mask_on_an_ade_scene(pipeline):
    prep = pipeline / "prep"
    name = sorted((prep / "test" / "images").glob("*.jpg"))[0].stem
    mask_file = sorted((prep / "predefined_mask").glob("*.png"))[0]
    run(
        "siedob-edit",
        "--checkpoints",
        "ck",
        "--image",
        f"prep/test/images/{name}.jpg",
        "--labels",
        f"prep/test/labels/{name}.png",
        "--instances",
        f"prep/test/inst_map/{name}.png",
        "--mask",
        str(mask_file),
        "--output-file",
        "edited.png",
        "--device",
        "cpu",
        cwd=pipeline,
    )
    result = cv2.imread(str(pipeline / "edited.png"))
    photo = cv2.imread(str(prep / "test" / "images" / f"{name}.jpg"))
    mask = cv2.imread(str(mask_file), cv2.IMREAD_GRAYSCALE) > 0
    assert result.shape == photo.shape
    outside = np.abs(result.astype(int) - photo.astype(int))[~mask]
    assert outside.max() <= 1  # untouched outside the mask
    assert np.abs(result.astype(int) - photo.astype(int))[mask].mean() > 1  # regenerated inside it


def test_a_cityscapes_scene_checkpoint_folder_mismatch_is_one_line(pipeline, tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(pipeline / "ck", mixed)
    from siedob.checkpoints import save_released
    from siedob.nn import FusionGenerator

    save_released(FusionGenerator(8), mixed / "Fnet.pth", "fusion")  # a Cityscapes file among ADE ones
    proc = subprocess.run(
        [script("siedob-edit"), "--checkpoints", str(mixed), "--output", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "different dataset profiles" in lines[0], proc.stderr


def test_the_bundled_street_example_is_refused_for_room_checkpoints(pipeline, tmp_path):
    proc = subprocess.run(
        [script("siedob-edit"), "--checkpoints", str(pipeline / "ck"), "--output", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Cityscapes scene" in proc.stderr and "ade20k-room" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_eval_scores_the_chain_on_ade(pipeline):
    run(
        "siedob-eval",
        "--mode",
        "chain",
        "--data-root",
        "prep",
        "--checkpoints",
        "ck",
        "--metrics",
        "fid,lpips",
        "--output",
        "ev",
        "--device",
        "cpu",
        "--no-progress",
        cwd=pipeline,
    )
    report = json.loads((pipeline / "ev" / "report.json").read_text())
    assert report["dataset"] == "ade20k-room"  # read from the prepared root's profile.json
    n_test = len(list((pipeline / "prep" / "test" / "images").glob("*.jpg")))
    assert len(list((pipeline / "ev").rglob("*.png"))) >= n_test
    values = _metric_values(report)
    assert math.isfinite(values["fid"]) and values["fid"] > 0
    assert 0 < values["lpips"] < 1


def _metric_values(report: dict) -> dict:
    """``{metric: value}`` from siedob-eval's report.json (the value of each measured metric)."""
    found = {}

    def walk(node):
        if isinstance(node, dict):
            for key in ("fid", "lpips"):
                if isinstance(node.get(key), (int, float)):
                    found.setdefault(key, float(node[key]))
                elif isinstance(node.get(key), dict) and isinstance(node[key].get("value"), (int, float)):
                    found.setdefault(key, float(node[key]["value"]))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(report)
    return found


def test_wholly_masked_room_objects_are_drawn_by_the_style_branch(pipeline, tmp_path):
    from siedob.data.io import read_bgr, read_instances, read_labels
    from siedob.edit import Editor
    from siedob.edit.style_bank import load_style_bank

    prep = pipeline / "prep"
    styles = tmp_path / "styles"  # the authors' <class>/{images,inst_mask} layout, from the training crops
    for folder in (prep / "object_datasets").iterdir():
        if (folder / "train").is_dir():
            for part in ("images", "inst_mask"):
                shutil.copytree(folder / "train" / part, styles / folder.name / part)
    name = sorted((prep / "test" / "images").glob("*.jpg"))[0].stem
    inst = read_instances(prep / "test" / "inst_map" / f"{name}.png")
    ids = [int(i) for i in np.unique(inst) if i >= 1000]
    mask = np.zeros(inst.shape, np.float32)
    for i in ids:  # each object's box grown by 4 px: wholly masked, so G_OG draws it
        rows, cols = np.nonzero(inst == i)
        mask[max(0, rows.min() - 4) : rows.max() + 5, max(0, cols.min() - 4) : cols.max() + 5] = 1
    editor = Editor.from_checkpoints(pipeline / "ck", device="cpu")
    assert editor.profile.name == "ade20k-room"
    labels = read_labels(prep / "test" / "labels" / f"{name}.png", editor.profile)
    bank = load_style_bank(styles, seed=0, profile=editor.profile)
    stages = editor.edit(read_bgr(prep / "test" / "images" / f"{name}.jpg"), labels, inst, mask, bank)
    generated = [o for o in stages.objects if o.generation]
    assert generated and all(o.cls in OBJECT_IDS and o.style_slot >= 0 for o in generated)
    assert {o.id for o in stages.objects} <= set(ids)
