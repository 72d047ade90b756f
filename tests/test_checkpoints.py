"""Released-format checkpoint files: strict, safe loading, byte-exact round trips, clear errors."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from siedob.checkpoints import (
    RELEASED,
    CheckpointError,
    load_file,
    load_released,
    read_released,
    save_file,
    save_released,
)
from siedob.nn import BackgroundGenerator, FusionGenerator, ObjectInpaintingGenerator, ObjectStyleGenerator
from tests.support.paths import FIXTURES

KEYS = json.loads((FIXTURES / "state_dict_keys.json").read_text())
NETS = {
    "object_inpainting": ObjectInpaintingGenerator,
    "object_style": ObjectStyleGenerator,
    "background": BackgroundGenerator,
    "fusion": FusionGenerator,
}


def _file_from_key_list(role: str, path: Path, seed: int = 0) -> dict:
    """A file in the released format built from the reference key list alone (not from our nets)."""
    fmt = RELEASED[role]
    g = torch.Generator().manual_seed(seed)
    entry = {k: torch.randn(shape, generator=g) for k, shape in KEYS[f"submodels/{fmt.filename}"][fmt.entry].items()}
    torch.save({fmt.entry: entry}, path)
    return entry


@pytest.mark.parametrize("role", list(NETS))
def test_released_round_trip_is_byte_exact(role, tmp_path):
    fmt = RELEASED[role]
    original = _file_from_key_list(role, tmp_path / fmt.filename)
    net = load_released(NETS[role](), tmp_path / fmt.filename, role)
    save_released(net, tmp_path / "again.pth", role)
    again = torch.load(tmp_path / "again.pth", weights_only=True)
    assert list(again) == [fmt.entry]
    assert set(again[fmt.entry]) == set(original)
    for key, tensor in original.items():
        assert again[fmt.entry][key].dtype == tensor.dtype
        assert torch.equal(again[fmt.entry][key], tensor), key
    net2 = load_released(NETS[role](), tmp_path / "again.pth", role)
    for (k1, v1), (k2, v2) in zip(net.state_dict().items(), net2.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)


def test_read_released_strips_prefix(tmp_path):
    _file_from_key_list("object_style", tmp_path / "object_style.pth")
    state = read_released(tmp_path / "object_style.pth", "object_style")
    assert "enc_style.model.0.conv.weight" in state
    assert not any(k.startswith("fg_style.") for k in state)


def _error(fn, *args) -> str:
    with pytest.raises(CheckpointError) as info:
        fn(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_key_is_named(tmp_path):
    entry = _file_from_key_list("fusion", tmp_path / "Fnet.pth")
    del entry["enc3.conv2d.bias"]
    torch.save({"netG_F": entry}, tmp_path / "Fnet.pth")
    msg = _error(load_released, FusionGenerator(), tmp_path / "Fnet.pth", "fusion")
    assert "Fnet.pth" in msg and "missing key enc3.conv2d.bias" in msg


def test_unexpected_key_is_named(tmp_path):
    entry = _file_from_key_list("fusion", tmp_path / "Fnet.pth")
    entry["extra.weight"] = torch.zeros(1)
    torch.save({"netG_F": entry}, tmp_path / "Fnet.pth")
    assert "unexpected key extra.weight" in _error(load_released, FusionGenerator(), tmp_path / "Fnet.pth", "fusion")


def test_lab_dim_mismatch_is_explained(tmp_path):
    """A G_B trained with 35 label channels: the message names the layer, both shapes and both lab_dims."""
    fmt = RELEASED["background"]
    state = BackgroundGenerator(lab_nc=35).state_dict()
    torch.save({fmt.entry: state}, tmp_path / "bg.pth")
    msg = _error(load_released, BackgroundGenerator(), tmp_path / "bg.pth", "background")
    assert "init_conv.conv.weight has shape [32, 40, 7, 7] in the file but [32, 39, 7, 7]" in msg
    assert "lab_dim of 35 against 34" in msg


def test_wrong_entry_is_reported(tmp_path):
    _file_from_key_list("fusion", tmp_path / "Fnet.pth")
    msg = _error(load_released, BackgroundGenerator(), tmp_path / "Fnet.pth", "background")
    assert "no 'netG_BG' entry (found: netG_F)" in msg


def test_missing_prefix_is_reported(tmp_path):
    torch.save({"netG": ObjectInpaintingGenerator(ngf=4).state_dict()}, tmp_path / "object_inpainting.pth")
    msg = _error(load_released, ObjectInpaintingGenerator(), tmp_path / "object_inpainting.pth", "object_inpainting")
    assert "lacks the 'fg_inpainting.' prefix" in msg


def test_truncated_file_is_not_a_checkpoint(tmp_path):
    _file_from_key_list("fusion", tmp_path / "Fnet.pth")
    data = (tmp_path / "Fnet.pth").read_bytes()
    (tmp_path / "Fnet.pth").write_bytes(data[: len(data) // 3])
    assert "not a PyTorch checkpoint" in _error(load_file, tmp_path / "Fnet.pth")


def test_foreign_file_is_not_a_checkpoint(tmp_path):
    (tmp_path / "bg.pth").write_text("<html>404 not found</html>")
    assert "bg.pth: not a PyTorch checkpoint" in _error(load_file, tmp_path / "bg.pth")


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/siedob-should-not-exist"),))


def test_pickled_code_is_refused(tmp_path):
    """weights_only loading: a file that would run code on unpickling is refused, and nothing runs."""
    marker = Path("/tmp/siedob-should-not-exist")
    marker.unlink(missing_ok=True)
    with open(tmp_path / "evil.pth", "wb") as handle:
        pickle.dump({"netG_F": _Payload()}, handle, protocol=2)
    assert "not a PyTorch checkpoint" in _error(load_file, tmp_path / "evil.pth")
    assert not marker.exists()


def test_missing_file(tmp_path):
    assert "Fnet.pth: file not found" in _error(load_file, tmp_path / "Fnet.pth")


def test_save_file_is_atomic(tmp_path, monkeypatch):
    """A failure while writing leaves the previous file intact and no temporary file behind."""
    target = tmp_path / "latest_ckpt.pth"
    save_file({"epoch": 1}, target)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_file({"epoch": 2}, target)
    assert torch.load(target, weights_only=True) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["latest_ckpt.pth"]


def test_check_folder_cli_reports_one_line(tmp_path):
    """At the CLI a corrupt file gives one line naming it, exit code 2, no traceback."""

    for role in NETS:
        _file_from_key_list(role, tmp_path / RELEASED[role].filename)
    ok = subprocess.run([sys.executable, "-m", "siedob.checkpoints", str(tmp_path)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count(" ok ") == 4
    (tmp_path / "bg.pth").write_bytes(b"\x00" * 100)
    bad = subprocess.run([sys.executable, "-m", "siedob.checkpoints", str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0
    assert "bg.pth: not a PyTorch checkpoint" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize(
    "role,kwargs",
    [
        ("object_inpainting", {"ngf": 8}),
        ("object_style", {"ngf": 4}),
        ("background", {"ngf": 4, "lab_nc": 20}),
        ("fusion", {"ngf": 6}),
    ],
)
def test_load_released_network_infers_width(role, kwargs, tmp_path):
    """Reduced-width files (the quickstart's) load into networks of the width they were saved with."""
    from siedob.checkpoints import GENERATOR_FACTORIES, load_released_network

    torch.manual_seed(0)
    net = GENERATOR_FACTORIES[role](**kwargs)
    save_released(net, tmp_path / "f.pth", role)
    loaded = load_released_network(tmp_path / "f.pth", role)
    assert not loaded.training
    assert loaded.init_conv.conv.weight.shape == net.init_conv.conv.weight.shape
    for (k1, v1), (k2, v2) in zip(net.state_dict().items(), loaded.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)


def test_skip_init_restores_initialisation():
    """Inside ``skip_init`` constructors leave parameters alone; afterwards (even after an error) they fill them."""
    from siedob.nn import skip_init

    with pytest.raises(RuntimeError), skip_init():
        conv = torch.nn.Conv2d(2, 4, 3)
        conv.weight.data.fill_(7.0)
        conv.reset_parameters()
        assert torch.all(conv.weight == 7.0)
        raise RuntimeError
    conv.reset_parameters()
    assert conv.weight.abs().max() < 1


def test_loading_a_network_does_not_import_dynamo(tmp_path):
    """A released file loads without importing torch._dynamo (over a second of every edit process's start-up)."""
    torch.manual_seed(0)
    save_released(BackgroundGenerator(ngf=4), tmp_path / "bg.pth", "background")
    code = (
        "import sys; from siedob.checkpoints import load_released_network; "
        f"load_released_network({str(tmp_path / 'bg.pth')!r}, 'background'); "
        "print('torch._dynamo' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("zip_format", [True, False])
def test_mmap_loading_equals_reading(zip_format, tmp_path):
    """Mapped weights equal read ones; a file in torch's legacy (non-zip) format is read instead of failing."""
    from siedob.checkpoints import load_released_network

    torch.manual_seed(0)
    net = FusionGenerator(ngf=4)
    state = net.state_dict()
    torch.save({RELEASED["fusion"].entry: state}, tmp_path / "Fnet.pth", _use_new_zipfile_serialization=zip_format)
    mapped = load_released_network(tmp_path / "Fnet.pth", "fusion", mmap=True)
    read = load_released_network(tmp_path / "Fnet.pth", "fusion")
    for (k1, v1), (k2, v2) in zip(mapped.state_dict().items(), read.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2) and torch.equal(v1, state[k1])
