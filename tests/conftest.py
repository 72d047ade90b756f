"""Shared fixtures: the reference folder, fixtures path and a deterministic thread count."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``$SIEDOB_REFERENCE_DIR`` (CI sets it to ../shared/reference); skips when unset or absent."""
    value = os.environ.get("SIEDOB_REFERENCE_DIR")
    if not value:
        pytest.skip("SIEDOB_REFERENCE_DIR is not set: conformance material unavailable")
    path = Path(value)
    if not (path / "ref_networks.pt").is_file():
        pytest.skip(f"{path}/ref_networks.pt not found")
    return path


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
