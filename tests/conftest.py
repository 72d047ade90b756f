"""Shared fixtures: the reference folder, the Cityscapes sample tree and a deterministic thread count."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


#: Set (CI sets it to 1) to make a missing reference folder an error instead of a skip.
REQUIRE_REFERENCE = "SIEDOB_REQUIRE_REFERENCE"


def _missing(reason: str, required: bool) -> None:
    """Fail when the material is required (``$SIEDOB_REQUIRE_REFERENCE=1``), else skip saying why."""
    if required:
        pytest.fail(f"{reason} (and {REQUIRE_REFERENCE}=1 requires it)", pytrace=False)
    pytest.skip(reason)


def _env_folder(var: str, marker: str, what: str, required: bool) -> Path:
    """The folder named by ``$var`` holding ``marker``; skips (or fails when required) without it."""
    value = os.environ.get(var)
    if not value:
        _missing(f"{var} is not set: {what} unavailable", required)
    path = Path(value)
    if not (path / marker).exists():
        _missing(f"{var}={path}: {marker} not found, {what} unavailable", required)
    return path


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``$SIEDOB_REFERENCE_DIR``; skips without it, fails with ``$SIEDOB_REQUIRE_REFERENCE=1``."""
    return _env_folder(
        "SIEDOB_REFERENCE_DIR", "ref_networks.pt", "conformance material", os.environ.get(REQUIRE_REFERENCE) == "1"
    )


@pytest.fixture(scope="session")
def cityscapes_samples() -> Path:
    """``$SIEDOB_CITYSCAPES_SAMPLES``, a prepared Cityscapes sample tree (never shipped); skips without it."""
    return _env_folder("SIEDOB_CITYSCAPES_SAMPLES", "test/images", "the prepared Cityscapes sample tree", False)


@pytest.fixture(scope="session")
def detweights(reference_dir: Path):
    """The reference ``detweights`` module (deterministic weights from key names)."""
    spec = importlib.util.spec_from_file_location("detweights", reference_dir / "detweights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def reference_vectors(reference_dir: Path) -> dict:
    """The stored inputs and outputs of the nine reference networks."""
    return torch.load(reference_dir / "ref_networks.pt", weights_only=True)
