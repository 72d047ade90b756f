"""Datasets of the four stages on a synthetic prepared tree and (if present) the real sample tree."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from siedob.config import load_stage_config
from siedob.data.datasets import ObjectDataset, SceneDataset, collate_scenes
from siedob.data.io import image_to_tensor, tensor_to_image
from siedob.data.synthetic import write_prepared

CAR, PERSON = 26, 24


def data_cfg(stage):
    return load_stage_config(stage)["data"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "cityscapes512x256"
    write_prepared(out, 4, seed=1)  # three train scenes (one per mask kind), one val scene
    return out


def test_image_tensor_roundtrip_truncates():
    u8 = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, 2)
    t = image_to_tensor(u8)
    assert t.shape == (3, 16, 16) and t.min() == -1 and t.max() == 1
    assert torch.isclose(t[0, 0, 1], torch.tensor((1 / 255 - 0.5) / 0.5))
    back = tensor_to_image(t).astype(int)
    assert np.all((back == u8) | (back == u8.astype(int) - 1))  # float error is truncated, never rounded up
    assert tensor_to_image(torch.full((3, 1, 1), 0.999))[0, 0, 0] == 254  # 254.87 truncated, not rounded
    assert tensor_to_image(torch.full((3, 1, 1), 1.7))[0, 0, 0] == 255


def test_object_inpainting_train(root):
    torch.manual_seed(0)
    ds = ObjectDataset(root, data_cfg("instance_inpainting"), "inpaint", train=True)
    n_car = len(list((root / "object_datasets/car/train/images").glob("*.jpg")))
    n_person = len(list((root / "object_datasets/person/train/images").glob("*.jpg")))
    assert len(ds) == 2 * 10 * max(n_car, n_person)
    for i in range(6):
        it = ds[i]
        assert it["cls"] == (CAR if i % 2 == 0 else PERSON)
        assert it["image"].shape == (3, 64, 64) and it["mask"].shape == it["inst_mask"].shape == (1, 64, 64)
        inst, mask = it["inst_mask"], it["mask"]
        assert set(inst.unique().tolist()) == {0.0, 1.0}
        assert torch.all(mask <= inst)  # the mask is limited to the object
        assert torch.equal(it["input"], it["image"] * (1 - mask) * inst)
        assert torch.equal(it["obj"], it["image"] * inst)
        code = (1.0, 0.0, 0.0) if it["cls"] == CAR else (0.0, 1.0, 0.0)
        assert torch.equal(it["class_map"], inst * torch.tensor(code).view(3, 1, 1))
    torch.manual_seed(0)
    again = ObjectDataset(root, data_cfg("instance_inpainting"), "inpaint", train=True)[0]
    torch.manual_seed(0)
    first = ds[0]
    assert torch.equal(first["image"], again["image"]) and torch.equal(first["mask"], again["mask"])


def test_object_inpainting_test_uses_the_sorted_object_masks(root):
    ds = ObjectDataset(root, data_cfg("instance_inpainting"), "inpaint", train=False)
    cars = sorted((root / "object_datasets/car/test/images").glob("*.jpg"))
    persons = sorted((root / "object_datasets/person/test/images").glob("*.jpg"))
    assert len(ds) == len(cars) + len(persons)
    masks = sorted((root / "object_datasets/object_mask").glob("*.png"))
    last = ds[len(ds) - 1]
    assert last["name"] == persons[-1].stem and last["cls"] == PERSON
    i = len(cars) - 1
    it = ds[i]
    assert it["name"] == cars[-1].stem
    expected = cv2.imread(str(masks[i]), cv2.IMREAD_GRAYSCALE) / 255.0
    assert torch.equal(it["mask"][0], torch.from_numpy(expected).float() * it["inst_mask"][0])
    img = cv2.resize(cv2.imread(str(cars[-1])), (64, 64))
    assert torch.equal(it["image"], image_to_tensor(img))  # no augmentation at test time
    # persons are stored 64x32 and stretched to 64x64
    assert last["image"].shape == (3, 64, 64)


def test_a_class_without_test_crops_is_left_out_of_the_test_split_only(root, tmp_path):
    import shutil

    from siedob.data.io import DataError

    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    for f in (copy / "object_datasets/car/test/images").glob("*.jpg"):
        f.unlink()
    ds = ObjectDataset(copy, data_cfg("instance_inpainting"), "inpaint", train=False)
    persons = sorted((copy / "object_datasets/person/test/images").glob("*.jpg"))
    assert len(ds) == len(persons) and ds.classes == [PERSON]
    assert ds[0]["cls"] == PERSON and ds[0]["class_map"][:, 32, 16].tolist() == [0.0, 1.0, 0.0]
    for f in (copy / "object_datasets/car/train/images").glob("*.jpg"):
        f.unlink()
    with pytest.raises(DataError, match="car/train/images"):
        ObjectDataset(copy, data_cfg("instance_inpainting"), "inpaint", train=True)


def test_siedob_eval_pairs_object_crops_and_masks_like_the_dataset(root):
    """``siedob-eval --mode objects`` gives every test crop the mask ObjectDataset gives it (the i-th overall)."""
    from siedob.eval.generate import object_split

    ds = ObjectDataset(root, data_cfg("instance_inpainting"), "inpaint", train=False)
    split = object_split(root)
    persons = sorted((root / "object_datasets/person/test/images").glob("*.jpg"))
    assert len(split["images"]) == len(ds) > len(persons) > 0
    for i, (image, mask) in enumerate(zip(split["images"], split["masks"])):
        item = ds[i]
        assert image.stem == item["name"]
        expected = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE) / 255.0
        assert torch.equal(item["mask"][0], torch.from_numpy(expected).float() * item["inst_mask"][0])


def test_object_style_reference_is_another_crop_of_the_same_class(root):
    ds = ObjectDataset(root, data_cfg("instance_style"), "style", train=True)
    for i in range(6):
        it = ds[i]
        prefix = "car_" if it["cls"] == CAR else "person_"
        assert it["sty_name"].startswith(prefix) and it["sty_name"] != it["name"]
        assert torch.equal(it["sty_img"], it["sty_img"] * it["sty_inst_mask"])
        channel = 1 if it["cls"] == PERSON else 0
        assert torch.equal(it["sty_cls_map"][channel], it["sty_inst_mask"][0])
        assert it["sty_cls_map"][1 - channel].sum() == 0


def test_object_style_reference_is_read_plain_not_augmented(root):
    """The authors read G_OG's reference resized to 64 only: no resize-crop, no flip (the target is augmented)."""
    cfg = data_cfg("instance_style")
    ds = ObjectDataset(root, cfg, "style", train=True)
    torch.manual_seed(0)
    for i in range(12):
        it = ds[i]
        c = ds.classes.index(it["cls"])
        path = ds.files[c][ds.names[c].index(it["sty_name"])]
        img = cv2.resize(cv2.imread(str(path)), (64, 64))
        mask = cv2.resize(
            cv2.imread(str(ds.mask_files[c][ds.names[c].index(it["sty_name"])]), 0),
            (64, 64),
            interpolation=cv2.INTER_NEAREST,
        )
        plain = image_to_tensor(img) * torch.from_numpy(mask.astype(np.float32) / 255)[None]
        assert torch.equal(it["sty_img"], plain), f"item {i}: reference {it['sty_name']} was augmented"


@pytest.mark.parametrize("stage, mode", [("instance_inpainting", "inpaint"), ("instance_style", "style")])
@pytest.mark.parametrize("train", [True, False])
def test_object_crop_cache_gives_identical_samples(root, stage, mode, train):
    cfg = data_cfg(stage)
    cached = ObjectDataset(root, cfg, mode, train)
    read = ObjectDataset(root, {**cfg, "cache_crops": False}, mode, train)
    assert cached.cache is not None and read.cache is None
    assert cached.cache_bytes() == sum(map(len, cached.files)) * 64 * 64 * 4
    for i in range(min(len(read), 24)):
        torch.manual_seed(i)
        a = cached[i]
        torch.manual_seed(i)
        b = read[i]
        assert a.keys() == b.keys()
        for key, value in a.items():
            if isinstance(value, torch.Tensor):
                assert value.dtype == torch.float32 and torch.equal(value, b[key]), key
            else:
                assert value == b[key], key


def test_object_crop_cache_over_the_limit_falls_back_to_reading(root):
    cfg = {**data_cfg("instance_inpainting"), "cache_limit_mb": 0}
    with pytest.warns(UserWarning, match="cache_limit_mb"):
        ds = ObjectDataset(root, cfg, "inpaint", train=True)
    assert ds.cache is None and ds[0]["image"].shape == (3, 64, 64)


def _crop_offset(scene_path: Path, crop: torch.Tensor):
    """(left, flipped) of the 256x256 window of the stored 512x256 photo that ``crop`` equals exactly."""
    photo = cv2.imread(str(scene_path), cv2.IMREAD_COLOR)
    for left in range(photo.shape[1] - 256 + 1):
        window = photo[:, left : left + 256]
        for flip in (False, True):
            if torch.equal(crop, image_to_tensor(window[:, ::-1] if flip else window)):
                return left, flip
    raise AssertionError(f"the crop is no 256x256 window of {scene_path}")


def _near_instances(instances: torch.Tensor, margin: int) -> torch.Tensor:
    """Union of every instance's bounding box grown by ``margin`` px (a superset of the instance-box mask)."""
    near = torch.zeros(instances.shape, dtype=torch.bool)
    for iid in instances[instances >= 1000].unique().tolist():
        rows, cols = torch.nonzero(instances == iid, as_tuple=True)
        r0, c0 = max(0, int(rows.min()) - margin), max(0, int(cols.min()) - margin)
        near[r0 : int(rows.max()) + margin + 1, c0 : int(cols.max()) + margin + 1] = True
    return near


@pytest.mark.parametrize("stage", ["background", "fusion"])
def test_scene_train(root, stage):
    torch.manual_seed(0)
    cfg = data_cfg(stage)
    ds = SceneDataset(root, cfg, stage, train=True, load_2048=True)
    for i in range(3):
        it = ds[i]
        assert it["image"].shape == (3, 256, 256) and it["image2048"].shape == (3, 1024, 1024)
        mask = it["mask"]
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        assert it["labels"].min() >= 1  # id 0 remapped to 33
        assert torch.equal(it["masked_image"], it["image"] * (1 - mask))
        assert torch.all(it["edge"] <= mask)
        assert torch.equal(it["fg_mask"] + it["bg_mask"], torch.ones_like(mask))
        things = (it["labels"] == CAR) | (it["labels"] == PERSON)
        assert torch.all(it["fg_mask"] <= things.float())
        # the 1024x1024 window is cut from the stored full-resolution photo at 4x the crop's offset,
        # pixel for pixel (an upsampled 256 crop would not match it)
        left, flip = _crop_offset(root / "train" / "images" / f"{it['name']}.jpg", it["image"])
        full = cv2.imread(str(root / "train" / "images2048" / f"{it['name']}.jpg"), cv2.IMREAD_COLOR)
        window = full[:, 4 * left : 4 * left + 1024]
        assert torch.equal(it["image2048"], image_to_tensor(window[:, ::-1] if flip else window))
    # index 1: the right half is masked; the left half only inside the boxes around instances
    it = ds[1]
    mask, near = it["mask"][0].bool(), _near_instances(it["instances"][0], margin=5)
    assert mask[:, 128:].all()
    assert not (mask[:, :128] & ~near[:, :128]).any()
    # index 2: the outside of a 128x128 box is masked; inside the box, only boxes around instances
    it = ds[2]
    mask, near = it["mask"][0].bool(), _near_instances(it["instances"][0], margin=5)
    rows, cols = torch.nonzero(~mask, as_tuple=True)
    assert len(rows) > 0 and rows.max() - rows.min() < 128 and cols.max() - cols.min() < 128
    box = (slice(int(rows.min()), int(rows.min()) + 128), slice(int(cols.min()), int(cols.min()) + 128))
    assert not (mask[box] & ~near[box]).any()


def test_fusion_objects_and_collate(root):
    cfg = data_cfg("fusion")
    ds = SceneDataset(root, cfg, "fusion", train=False)
    items = [ds[i] for i in range(len(ds))]
    assert any(it["objects"] for it in items)
    for it in items:
        classes = [o.cls for o in it["objects"]]
        assert classes == sorted(classes, reverse=True)  # cars (26) before persons (24)
        for o in it["objects"]:
            assert o.image.shape == (3, 64, 64) and o.inst_crop.shape == (1, 64, 64)
            b0, b1, b2, b3 = o.box
            assert 0 <= b0 < b1 <= 256 and 0 <= b2 < b3 <= 256
    batch = collate_scenes(items)
    assert batch["image"].shape == (len(items), 3, 256, 256)
    assert [len(o) for o in batch["objects"]] == [len(it["objects"]) for it in items]
    loader = DataLoader(ds, batch_size=2, collate_fn=collate_scenes)
    assert next(iter(loader))["mask"].shape == (2, 1, 256, 256)


def test_scene_test_mask_is_greyscale_over_255_not_binarised(root, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    m = np.zeros((256, 256, 3), np.uint8)
    m[:, 100:] = 255
    m[:, 100:110] = 128  # a fractional border, stored as a 3-channel PNG like the authors' examples
    cv2.imwrite(str(copy / "predefined_mask" / "0000.png"), m)
    it = SceneDataset(copy, data_cfg("background"), "background", train=False)[0]
    assert torch.allclose(it["mask"][0, 0, 105], torch.tensor(128 / 255))
    assert it["mask"][0, 0, 0] == 0 and it["mask"][0, 0, 200] == 1


def test_real_samples_load_every_item(cityscapes_samples):
    root = cityscapes_samples
    for stage, mode in (("instance_inpainting", "inpaint"), ("instance_style", "style")):
        for train in (True, False):
            ds = ObjectDataset(root, data_cfg(stage), mode, train)
            n = len(ds) if not train else 2 * len(ds.files[0]) + 2
            for i in range(n):
                assert ds[i]["image"].shape == (3, 64, 64)
    for stage in ("background", "fusion"):
        for train in (True, False):
            ds = SceneDataset(root, data_cfg(stage), stage, train)
            for i in range(len(ds)):
                it = ds[i]
                assert it["image"].shape == (3, 256, 256) and it["fg_mask"].shape == (1, 256, 256)
