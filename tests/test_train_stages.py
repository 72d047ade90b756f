"""Every stage trains on synthetic data on CPU, writes both checkpoint kinds, resumes exactly and learns."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

from siedob.checkpoints import RELEASED, load_file, load_released
from siedob.model import load_network
from siedob.nn import BackgroundGenerator, FusionGenerator, ObjectInpaintingGenerator, ObjectStyleGenerator
from siedob.train import NonFiniteLossError, train_stage
from siedob.train.run import build_dataset
from tests.support.train import FIXTURES_KEYS, make_data, overrides, tiny_vgg

STAGES = ["instance_inpainting", "instance_style", "background", "fusion"]
NETWORKS = {
    "instance_inpainting": ("netG", ["netD_inp"], lambda: ObjectInpaintingGenerator(4)),
    "instance_style": ("netG", ["netD_style"], lambda: ObjectStyleGenerator(4)),
    "background": ("netG_BG", ["netD_BG", "netD_patch"], lambda: BackgroundGenerator(4)),
    "fusion": ("netG_F", ["netD_F"], lambda: FusionGenerator(4)),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_data(tmp_path_factory.mktemp("train_data"))


@pytest.fixture(scope="module")
def vgg():
    return tiny_vgg()


@pytest.fixture(scope="module")
def runs(data, vgg, tmp_path_factory):
    """Three steps of every stage, in order; fusion uses the first three stages' released files."""
    root = tmp_path_factory.mktemp("runs")
    sub = root / "submodels"
    sub.mkdir()
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for stage in STAGES:
            out[stage] = train_stage(stage, root / stage, data_root=data, overrides=overrides(stage), max_steps=3,
                                     device="cpu", vgg=vgg, submodels=sub, progress=True)
            if stage != "fusion":
                (sub / out[stage].released.name).write_bytes(out[stage].released.read_bytes())
    return out


@pytest.mark.parametrize("stage", STAGES)
def test_stage_writes_training_and_released_checkpoints(stage, runs):
    res = runs[stage]
    assert res.step == 3
    g_name, d_names, make = NETWORKS[stage]
    ckpt = load_file(res.checkpoint)
    assert ckpt["epoch"] == res.epoch
    assert ckpt["resume"]["step"] == 3
    for name in [g_name] + d_names:
        assert name in ckpt
        assert "optimizer_" + name[3:] in ckpt
        assert ckpt["optimizer_" + name[3:]]["state"], f"{name}'s optimiser never stepped"
    ref = json.loads(FIXTURES_KEYS.read_text())["training_checkpoints"][stage]
    for d in d_names:
        assert list(ckpt[d]) == list(ref[d]), f"{d} keys differ from the authors' training checkpoint"
    role = {"instance_inpainting": "object_inpainting", "instance_style": "object_style"}.get(stage, stage)
    assert res.released.name == RELEASED[role].filename
    net = load_released(make(), res.released, role)
    prefix = RELEASED[role].prefix
    for k, v in net.state_dict().items():
        assert torch.equal(v, ckpt[g_name][prefix + k]), f"released {k} differs from the training checkpoint"
    log = [json.loads(line) for line in (res.run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["event"] == "train"][:1] == [1]
    assert log[-1]["event"] == "done"
    assert (res.run_dir / "config.yaml").is_file()


def test_fusion_submodels_move_only_spectral_norm_buffers(runs):
    sub = runs["instance_inpainting"].run_dir.parent / "submodels"
    ckpt = load_file(runs["fusion"].checkpoint)
    for role in ("object_inpainting", "object_style", "background"):
        frozen = ckpt["resume"]["frozen"][role]
        orig = load_network(sub / RELEASED[role].filename, role, fold=False).state_dict()
        moved = [k for k in orig if not torch.equal(orig[k], frozen[k])]
        assert all(k.endswith(("weight_u", "weight_v")) for k in moved), moved
        if role == "background":
            assert moved, "train-mode G_B should advance its spectral-norm vectors (docs/spec.md §8)"


def _weights(path: Path) -> dict:
    ckpt = load_file(path)
    return {f"{n}.{k}": v for n, sd in ckpt.items() if n.startswith("net") for k, v in sd.items()}


@pytest.mark.parametrize("stage", ["instance_inpainting", "background"])
def test_exact_resume(stage, data, vgg, tmp_path):
    kw = dict(data_root=data, overrides=overrides(stage, "log.save_every_steps=0"), device="cpu", vgg=vgg,
              progress=False)
    straight = train_stage(stage, tmp_path / "a", max_steps=4, **kw)
    train_stage(stage, tmp_path / "b", max_steps=2, **kw)
    resumed = train_stage(stage, tmp_path / "b", max_steps=4, resume=True, **kw)
    assert resumed.step == straight.step == 4
    a, b = _weights(straight.checkpoint), _weights(resumed.checkpoint)
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"resumed run differs in {different[:3]}"
    opt = "optimizer_" + NETWORKS[stage][0][3:]
    state_a, state_b = load_file(straight.checkpoint)[opt]["state"], load_file(resumed.checkpoint)[opt]["state"]
    assert torch.equal(state_a[0]["exp_avg"], state_b[0]["exp_avg"])


def test_refuses_to_overwrite_and_nan_stops_keeping_last_checkpoint(data, vgg, tmp_path):
    stage = "instance_inpainting"
    kw = dict(data_root=data, device="cpu", vgg=vgg, progress=True)
    first = train_stage(stage, tmp_path, max_steps=2, overrides=overrides(stage, "log.save_every_steps=1"), **kw)
    before = _weights(first.checkpoint)
    with pytest.raises(Exception, match="already holds checkpoints"):
        train_stage(stage, tmp_path, max_steps=3, overrides=overrides(stage), **kw)
    with pytest.raises(NonFiniteLossError, match=r"step 3: loss G_l1 is nan"):
        train_stage(stage, tmp_path, max_steps=5, resume=True, overrides=["train.lambda_l1=.nan"],
                    allow_config_change=True, **kw)
    after = load_file(first.checkpoint)
    assert after["resume"]["step"] == 2
    assert all(torch.equal(before[k], v) for k, v in _weights(first.checkpoint).items())
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert log[-1]["event"] == "stopped" and "G_l1" in log[-1]["reason"]


def _fixed_items(stage: str, data: Path, n: int = 2):
    """n dataset items drawn once (a fixed tiny training set to overfit)."""
    from siedob.config import load_stage_config

    cfg = load_stage_config(stage, overrides=overrides(stage))
    ds, _ = build_dataset(stage, cfg, data)
    torch.manual_seed(5)
    return [ds[i] for i in range(n)]


LEARN = {"instance_inpainting": "G_l1", "instance_style": "G_l1", "background": "G_l1", "fusion": "G_vgg"}


@pytest.mark.parametrize("stage", STAGES)
def test_reconstruction_loss_falls(stage, data, vgg, runs, tmp_path):
    """Overfitting two fixed samples (GAN terms off, lr 1e-3): the reconstruction loss drops clearly."""
    items = _fixed_items(stage, data)
    sub = runs["instance_inpainting"].run_dir.parent / "submodels"
    scene = stage in ("background", "fusion")
    extra = ["model.ngf=8" if scene else "model.ngf=4", "train.lr=0.001", "train.lambda_gan=0"]
    extra += ["train.lambda_patch=0"] if stage == "background" else []
    res = train_stage(stage, tmp_path, data_root=data, overrides=overrides(stage, *extra),
                      max_steps=24 if scene else 16, device="cpu", vgg=vgg, submodels=sub, dataset=items,
                      progress=False)
    curve = [h[LEARN[stage]] for h in res.history]
    first, last = sum(curve[:3]) / 3, sum(curve[-3:]) / 3
    assert last < 0.75 * first, f"{LEARN[stage]} went from {first:.4f} to {last:.4f}"


def test_each_step_writes_latest_once(data, vgg, tmp_path, monkeypatch):
    """Where an epoch ends on a save step and the run ends there too, latest_ckpt.pth is written once."""
    import siedob.train.checkpointing as checkpointing

    written = []
    real_save = checkpointing.save_file

    def recording_save(obj, path):
        written.append((Path(path).name, obj["resume"]["step"] if "resume" in obj else None))
        real_save(obj, path)

    monkeypatch.setattr(checkpointing, "save_file", recording_save)
    stage = "background"
    from siedob.config import load_stage_config

    dataset, _ = build_dataset(stage, load_stage_config(stage, overrides=overrides(stage)), data)
    per_epoch = -(-len(dataset) // 2)  # batch size 2 in the test overrides
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_stage(stage, tmp_path / "run", data_root=data, overrides=overrides(stage, "log.save_every_steps=1"),
                    max_steps=per_epoch, device="cpu", vgg=vgg, progress=False)
    latest = [step for name, step in written if name == "latest_ckpt.pth"]
    assert latest == list(range(1, per_epoch + 1))
