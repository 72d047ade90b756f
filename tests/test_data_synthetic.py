"""Synthetic Cityscapes-format scenes: determinism, label/instance consistency, variety."""

from __future__ import annotations

import cv2
import numpy as np

from siedob.data.synthetic import main, make_scene, scene_for

CAR, PERSON = 26, 24
CONTEXT = {7, 8, 11, 21, 23}  # road, sidewalk, building, vegetation, sky


def test_deterministic_and_seed_dependent():
    a = make_scene(np.random.default_rng(4), 128, 256)
    b = make_scene(np.random.default_rng(4), 128, 256)
    c = make_scene(np.random.default_rng(5), 128, 256)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a.labels, c.labels)
    assert a.image.dtype == np.uint8 and a.image.shape == (128, 256, 3)
    assert a.labels.dtype == np.uint8 and a.instances.dtype == np.int32


def test_instances_follow_the_cityscapes_convention():
    for seed in range(4):
        s = scene_for(seed, 0, 256, 512)
        ids = np.unique(s.instances[s.instances >= 1000])
        classes = {int(i) // 1000 for i in ids}
        assert classes == {CAR, PERSON}
        for iid in ids:
            assert np.all(s.labels[s.instances == iid] == iid // 1000)
        stuff = s.instances < 1000
        assert np.array_equal(s.instances[stuff], s.labels[stuff])  # class id where there is no instance
        assert not np.isin(s.labels, [CAR, PERSON])[stuff].any()
        assert CONTEXT <= set(np.unique(s.labels).tolist())
        assert {17, 19, 20} & set(np.unique(s.labels).tolist())  # pole, light or sign
        assert (s.labels == 0).any()  # some unlabeled pixels, remapped to 33 on load


def test_some_objects_overlap_and_some_touch_the_border():
    touching = overlapping = 0
    for seed in range(4):
        s = scene_for(seed, 0, 256, 512)
        boxes = []
        for iid in np.unique(s.instances[s.instances >= 1000]):
            ys, xs = np.nonzero(s.instances == iid)
            boxes.append((ys.min(), ys.max(), xs.min(), xs.max()))
            touching += xs.min() == 0 or xs.max() == 511
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                overlapping += a[0] <= b[1] and b[0] <= a[1] and a[2] <= b[3] and b[2] <= a[3]
    assert touching >= 2 and overlapping >= 2


def test_photo_is_textured_not_flat():
    s = scene_for(0, 0, 256, 512)
    road = s.image[s.labels == 7].astype(float)
    assert road.std(0).mean() > 4
    assert len(np.unique(s.image.reshape(-1, 3), axis=0)) > 5000


def test_layout_does_not_depend_on_size():
    small, big = scene_for(2, 0, 256, 512), scene_for(2, 0, 512, 1024)
    down = cv2.resize(big.labels, (512, 256), interpolation=cv2.INTER_NEAREST)
    assert (down == small.labels).mean() > 0.95


def test_dense_scenes_have_at_least_20_instances():
    for seed in range(3):
        s = scene_for(seed, 0, 256, 512, dense=True)
        assert len(np.unique(s.instances[s.instances >= 1000])) >= 20


def test_cli_prepared_layout(tmp_path, capsys):
    assert main(["--output", str(tmp_path), "--scenes", "2", "--seed", "7"]) == 0
    out = capsys.readouterr().out
    assert "scenes: test 2, train 1" in out
    assert len(list((tmp_path / "train" / "images2048").glob("*.jpg"))) == 1
    assert cv2.imread(str(next((tmp_path / "train" / "images2048").glob("*.jpg")))).shape == (1024, 2048, 3)
    assert len(list((tmp_path / "predefined_mask").glob("*.png"))) == 2
    assert list((tmp_path / "object_datasets" / "object_mask").glob("*.png"))
