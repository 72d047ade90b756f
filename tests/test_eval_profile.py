"""siedob-eval on a prepared ADE20K-Room root: object addition on floor, ADE classes, mIoU and profile checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Tuple

import cv2
import numpy as np
import pytest
import torch

from siedob.data.synthetic_ade import write_prepared_ade
from siedob.eval.cli import main
from siedob.eval.errors import EvalError
from siedob.eval.generate import object_split
from siedob.eval.metrics import Backends, MetricInputs, compute_metrics
from siedob.eval.miou import evaluate_miou, load_segmenter
from siedob.eval.object_addition import addition_rules, next_instance_id, place_object
from siedob.profiles import get_profile
from tests.support.edit import ade_checkpoints, small_networks, write_checkpoints

ADE_FLOOR = 4  # ADE20K's 'floor, flooring' (docs/datasets.md)
ADE = get_profile("ade20k-room")
WALL = 1


class ConstantLabel(torch.nn.Module):
    """Stand-in ADE segmenter: channel ``best`` scores 2 everywhere, channel ``second`` 1, the rest 0."""

    def __init__(self, channels: int, best: int, second: int) -> None:
        super().__init__()
        self.channels, self.best, self.second = channels, best, second

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], self.channels, x.shape[2], x.shape[3])
        out[:, self.best] = 2.0
        out[:, self.second] = 1.0
        return out


def write_constant_segmenter(folder: Path, channels: int, best: int, second: int) -> Path:
    """Script and save :class:`ConstantLabel`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"ade{channels}.pt"
    torch.jit.script(ConstantLabel(channels, best, second)).save(str(path))
    return path


@pytest.fixture(scope="module")
def ade(tmp_path_factory) -> Tuple[Path, Path, Path]:
    """A prepared synthetic ADE20K-Room root (three test rooms), ADE checkpoints and Cityscapes checkpoints."""
    root = tmp_path_factory.mktemp("eval_ade")
    write_prepared_ade(root / "data", 12, seed=4)
    return (
        root / "data",
        ade_checkpoints(root / "ade_ckpt", ngf=4, seed=2),
        write_checkpoints(root / "cs_ckpt", small_networks(ngf=4)),
    )


def run(tmp_path: Path, *argv: str) -> dict:
    """Run siedob-eval (CPU, quiet) into ``tmp_path/out`` and return its report."""
    assert main([*argv, "--output", str(tmp_path / "out"), "--no-progress", "--no-cache", "--device", "cpu"]) == 0
    return json.loads((tmp_path / "out" / "report.json").read_text())


def error_line(capsys: pytest.CaptureFixture, argv: List[str]) -> str:
    """Run the CLI, require exit 2 and exactly one stderr line; return it."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_ade_rules_place_every_class_on_floor() -> None:
    rules = addition_rules("ade20k-room")
    assert rules.order == ADE.object_ids and set(rules.names.values()) == set(ADE.object_names)
    assert all(rules.ground[c] == (ADE_FLOOR,) for c in rules.order) and ADE.label(ADE_FLOOR).name == "floor, flooring"
    labels = np.full((256, 256), WALL, np.uint8)
    labels[180:] = ADE_FLOOR
    labels[180:, :40] = 7  # road, a Cityscapes ground: never stood on here
    instances = labels.astype(np.int32)
    instances[200:210, 100:110] = 24 * 1000 + 255  # a sofa with the largest Places instance id
    square = np.zeros((64, 64), np.uint8)
    square[16:48, 8:56] = 255
    shapes = {c: [(f"{rules.names[c]}.png", square)] for c in rules.order}
    seen = set()
    for seed in range(12):
        placement, pixels = place_object(np.random.default_rng(seed), labels, instances, shapes, profile=ADE)
        seen.add(placement.cls)
        foot = labels[placement.top + placement.height - 1, placement.left + placement.width // 2]
        assert placement.cls in ADE.object_ids and foot == ADE_FLOOR
        assert 32 <= placement.height <= 96 and pixels.sum() > 0
        assert placement.instance_id // 1000 == placement.cls and placement.instance_id % 1000 <= 255
    assert len(seen) > 1
    assert next_instance_id(instances, 24, 1000, 255) == 24000  # 255 taken: the smallest free index
    no_floor = np.where(labels == ADE_FLOOR, 7, labels).astype(np.uint8)  # wall and road: no floor to stand on
    assert place_object(np.random.default_rng(0), no_floor, instances, shapes, profile=ADE) is None


def test_add_objects_on_an_ade_root(ade, tmp_path: Path) -> None:
    data, ckpt, _ = ade
    report = run(tmp_path, "--mode", "add-objects", "--data-root", str(data), "--checkpoints", str(ckpt),
                 "--results-per-scene", "2", "--seed", "1", "--metrics", "miou")  # fmt: skip
    out = tmp_path / "out"
    placements = json.loads((out / "placements.json").read_text())
    stems = sorted(p.stem for p in (data / "test" / "images").iterdir())
    assert [p["scene"] for p in placements] == stems and len(stems) == 3
    for p in placements:
        assert p["cls"] in ADE.object_ids and p["class"] == ADE.object_class(p["cls"]).name
        assert p["instance_id"] // 1000 == p["cls"]
        before = cv2.imread(str(data / "test" / "labels" / f"{p['scene']}.png"), cv2.IMREAD_UNCHANGED)
        assert before[p["top"] + p["height"] - 1, p["left"] + p["width"] // 2] == ADE_FLOOR  # stands on floor
        lab = cv2.imread(str(out / "labels" / f"{p['scene']}.png"), cv2.IMREAD_UNCHANGED)
        inst = cv2.imread(str(out / "inst_map" / f"{p['scene']}.png"), cv2.IMREAD_UNCHANGED)
        obj = inst == p["instance_id"]
        assert obj.sum() > 0 and (lab[obj] == p["cls"]).all()
        assert (lab[~obj] == before[~obj]).all()
    assert sorted(f.name for f in (out / "images").iterdir()) == [f"{s}_k{j}.png" for s in stems for j in (0, 1)]
    proto = report["protocol"]
    assert proto["dataset profile"] == "ade20k-room"
    assert proto["object addition"]["ground label ids"] == {n: [ADE_FLOOR] for n in ADE.object_names}
    assert proto["object addition"]["heights at 256 px"] == {n: [32, 96] for n in ADE.object_names}
    assert report["paper"]["values"] == {"div": 0.0362}  # the ADE20K-Room cells by default
    miou = report["metrics"]["miou"]
    assert miou["value"] is None and miou["reason"].startswith("unavailable: no segmentation model given for ade20k")


def test_checkpoints_of_another_profile_are_one_line(ade, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data, ade_ckpt, cs_ckpt = ade
    for mode in ("chain", "add-objects", "objects"):
        line = error_line(capsys, ["--mode", mode, "--data-root", str(data), "--checkpoints", str(cs_ckpt),
                                   "--output", str(tmp_path / mode), "--metrics", "lpips"])  # fmt: skip
        assert "cityscapes" in line and "ade20k-room" in line and str(cs_ckpt) in line and str(data) in line
        assert not (tmp_path / mode / "images").exists()
    line = error_line(capsys, ["--mode", "chain", "--data-root", str(data), "--checkpoints", str(ade_ckpt),
                               "--profile", "cityscapes", "--output", str(tmp_path / "p")])  # fmt: skip
    assert "--profile cityscapes" in line and "ade20k-room" in line


def test_chain_and_objects_generate_with_the_ade_networks(ade, tmp_path: Path) -> None:
    data, ckpt, _ = ade
    seg = write_constant_segmenter(tmp_path / "seg", 150, WALL - 1, 0)
    report = run(tmp_path / "chain", "--mode", "chain", "--data-root", str(data), "--checkpoints", str(ckpt),
                 "--metrics", "lpips,miou", "--seg-model", str(seg))  # fmt: skip
    stems = sorted(p.stem for p in (data / "test" / "images").iterdir())
    made = sorted((tmp_path / "chain" / "out" / "images").iterdir())
    assert [p.stem for p in made] == stems and cv2.imread(str(made[0])).shape == (256, 256, 3)
    miou = report["metrics"]["miou"]
    assert 0 < miou["value"] <= 100 and len(miou["classes"]) == 150 and miou["classes"][0] == "wall"
    assert report["protocol"]["segmenter"]["classes"].startswith("ade20k-room: labels 1..150")
    lpips = report["metrics"]["lpips"]
    assert lpips["value"] > 0 if lpips["value"] is not None else lpips["reason"].startswith("unavailable: ")
    split = object_split(data)
    names = [p.parent.parent.parent.name for p in split["images"]]
    assert names == sorted(names, key=list(ADE.object_names).index) and set(names) <= set(ADE.object_names)
    run(tmp_path / "objects", "--mode", "objects", "--data-root", str(data), "--checkpoints", str(ckpt),
        "--metrics", "lpips")  # fmt: skip
    crops = sorted(p.name for p in (tmp_path / "objects" / "out" / "images").iterdir())
    assert crops == sorted(f"{p.stem}.png" for p in split["images"])


def _expected_wall_miou(labels: List[Path]) -> float:
    """mIoU (percent) when every pixel is predicted wall: wall's IoU over the scored pixels, 0 for the rest."""
    gt = np.concatenate([cv2.imread(str(p), cv2.IMREAD_UNCHANGED).ravel() for p in labels])
    scored = gt[gt > 0]  # label 0 ("other") is ignored
    present = np.unique(scored)
    return float((scored == WALL).sum() / scored.size / len(present) * 100)


@pytest.mark.parametrize("channels", [150, 151])
def test_ade_miou_over_labels_1_to_150(ade, tmp_path: Path, channels: int) -> None:
    data, _, _ = ade
    labels = sorted((data / "test" / "labels").iterdir())
    images = sorted((data / "test" / "images").iterdir())
    # 151 channels: "other" (channel 0) scores highest everywhere and is dropped, so wall is predicted
    best, second = (WALL - 1, 0) if channels == 150 else (0, WALL)
    seg_path = write_constant_segmenter(tmp_path, channels, best, second)
    seg = load_segmenter(seg_path, profile="ade20k-room")
    res = evaluate_miou(seg, images, labels)
    assert res["value"] == pytest.approx(_expected_wall_miou(labels))
    assert len(res["per_class"]) == 150 and res["classes"][WALL - 1] == "wall"
    report = run(tmp_path, "--real", str(data / "test" / "images"), "--fake", str(data / "test" / "images"),
                 "--labels", str(data / "test" / "labels"), "--profile", "ade20k-room", "--metrics", "miou",
                 "--seg-model", str(seg_path))  # fmt: skip
    assert report["metrics"]["miou"]["value"] == pytest.approx(res["value"])


def test_ade_miou_needs_an_ade_segmenter(ade, tmp_path: Path) -> None:
    data, _, _ = ade
    labels = sorted((data / "test" / "labels").iterdir())
    inputs = MetricInputs(fake=sorted((data / "test" / "images").iterdir()), labels=labels)
    reason = compute_metrics(["miou"], inputs, Backends(profile="ade20k-room"))["miou"]["reason"]
    assert reason.startswith("unavailable: no segmentation model given for ade20k-room") and "UperNet" in reason
    cs = compute_metrics(["miou"], inputs, Backends())["miou"]["reason"]
    assert cs.startswith("unavailable: no segmentation model given (--seg-model FILE, e.g. drn-d-105")
    state = tmp_path / "drn.pth"
    torch.save({"weight": torch.zeros(1)}, state)
    with pytest.raises(EvalError, match="DRN-D-105 segments Cityscapes only"):
        load_segmenter(state, profile="ade20k-room")
    nineteen = write_constant_segmenter(tmp_path, 19, 0, 1)
    with pytest.raises(EvalError, match="150 or 151 channels"):
        evaluate_miou(load_segmenter(nineteen, profile="ade20k-room"), inputs.fake, labels)
    mapping = tmp_path / "m.json"
    mapping.write_text(json.dumps({"channel_to_train_id": list(range(150))}))
    with pytest.raises(EvalError, match="channel_to_train_id"):
        load_segmenter(write_constant_segmenter(tmp_path, 150, 0, 1), mapping=mapping, profile="ade20k-room")
