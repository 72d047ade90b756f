"""The generator ``siedob-eval --mode`` calls by default: our networks over the test split.

``chain`` writes the edit chain's results, ``background`` G_B's output inside the mask
(from the same chain, with the pasted objects left out), ``objects`` G_OI's completion of each test
crop under its object mask. Checkpoints come from ``siedob-eval --checkpoints DIR`` (``job.checkpoints["dir"]``,
default ``fusion/submodels``); style references are seeded draws from the object datasets' test crops.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import torch
from PIL import Image
from tqdm import tqdm

from siedob.checkpoints import RELEASED, folder_profile, load_released_network
from siedob.data.datasets import read_crop
from siedob.data.io import (
    image_to_tensor,
    map_to_tensor,
    read_bgr,
    read_instances,
    read_labels,
    read_test_mask,
    tensor_to_image,
    write_image,
)
from siedob.edit.chain import Editor, resolve_device
from siedob.edit.style_bank import STYLE_SLOTS, draw_style_bank, style_files
from siedob.errors import SiedobError
from siedob.maps import class_map
from siedob.profiles import as_profile

#: Seed of the style-reference draws (one stream over the whole split, so results are reproducible).
STYLE_SEED = 0
OBJECT_BATCH = 32


def _checkpoint_dir(job) -> Path:
    """``--checkpoint dir=DIR`` or the default ``fusion/submodels`` (relative to the working directory)."""
    return Path(job.checkpoints.get("dir", "fusion/submodels"))


def _scene_outputs(job) -> None:
    """Chain results (``chain``/``fusion``) or G_B's output inside the mask (``background``)."""
    editor = Editor.from_checkpoints(_checkpoint_dir(job), device=job.device)
    profile = editor.profile
    files = style_files(job.data_root, split="test", profile=profile)
    torch.manual_seed(STYLE_SEED)
    for image, mask in tqdm(list(zip(job.images, job.masks)), desc=f"generating ({job.mode})", unit="img"):
        img = read_bgr(image)
        labels = read_labels(job.data_root / "test" / "labels" / f"{image.stem}.png", profile)
        instances = read_instances(job.data_root / "test" / "inst_map" / f"{image.stem}.png")
        m = read_test_mask(mask)
        bank = draw_style_bank(files, STYLE_SLOTS, profile)
        stages = editor.edit(img, labels, instances, m, bank)
        if job.mode == "background":
            msk = stages.mask
            out = stages.bg_output * msk + image_to_tensor(img).to(msk.device) * (1 - msk)
        else:
            out = stages.result
        write_image(job.out_dir / f"{image.stem}.png", out)


def _object_outputs(job) -> None:
    """G_OI over the test crops: the crop with its masked part completed, written at the crop's stored size."""
    path = _checkpoint_dir(job) / RELEASED["object_inpainting"].filename
    device = resolve_device(job.device)
    profile = as_profile(folder_profile(path.parent))
    net = load_released_network(path, "object_inpainting", profile=profile).to(device)
    names = profile.object_names
    pairs = list(zip(job.images, job.masks))
    for start in tqdm(range(0, len(pairs), OBJECT_BATCH), desc="generating (objects)", unit="batch"):
        chunk = pairs[start : start + OBJECT_BATCH]
        imgs, insts, holes, cls_maps = [], [], [], []
        for image, mask in chunk:
            cls = names[image.parent.parent.parent.name]
            img, inst = read_crop(image, 64)
            inst_t = map_to_tensor(inst) / 255
            hole = map_to_tensor(cv2.resize(read_test_mask(mask), (64, 64), interpolation=cv2.INTER_NEAREST))
            imgs.append(image_to_tensor(img))
            insts.append(inst_t)
            holes.append(hole * inst_t)
            cls_maps.append(class_map(inst_t, cls, profile))
        img, inst, hole, cmap = (torch.stack(t).to(device) for t in (imgs, insts, holes, cls_maps))
        masked = img * (1 - hole) * inst
        with torch.inference_mode():
            out = net(masked, inst, hole, cmap)
        composite = out * hole + img * inst * (1 - hole)
        for (image, _), result in zip(chunk, composite):
            with Image.open(image) as stored:
                size = stored.size
            write_image(job.out_dir / f"{image.stem}.png", cv2.resize(tensor_to_image(result), size))


def eval_generator(job) -> None:
    """Write ``<stem>.png`` for every test input of ``job.mode`` into ``job.out_dir`` (siedob-eval's hook)."""
    if job.mode in ("chain", "fusion", "background"):
        _scene_outputs(job)
    elif job.mode == "objects":
        _object_outputs(job)
    else:
        raise SiedobError(f"no generator for mode {job.mode!r}")
