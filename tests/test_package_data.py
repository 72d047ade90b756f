"""Package data: the stage folders' configs are the packaged ones, the bundled example is what
make_example builds, and pyproject declares every data file so that the wheel carries it."""

from __future__ import annotations

import fnmatch
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from siedob.config import STAGES, packaged_text
from siedob.edit.cli import bundled_example
from siedob.edit.make_example import write_example

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.9/3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_folder_config_is_the_packaged_one(stage):
    copy = (REPO / stage / "configs" / "config.yaml").read_text()
    assert copy == packaged_text(STAGES[stage].config)
    ade = (REPO / stage / "configs" / "ade20k-room.yaml").read_text()
    assert ade == packaged_text(f"ade20k-room/{STAGES[stage].config}")
    assert "profile: ade20k-room" in ade and "profile: cityscapes" in copy


def test_fusion_example_links_to_the_packaged_example():
    assert (REPO / "fusion" / "example").resolve() == (REPO / "siedob" / "example").resolve()
    assert bundled_example().resolve() == (REPO / "siedob" / "example").resolve()


def test_bundled_example_is_what_make_example_builds(tmp_path):
    built = write_example(tmp_path / "ex")
    packaged = bundled_example()
    pngs = sorted(p.relative_to(packaged) for p in packaged.rglob("*.png"))
    assert pngs == sorted(p.relative_to(built) for p in built.rglob("*.png"))
    for rel in pngs:
        a = cv2.imread(str(packaged / rel), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(built / rel), cv2.IMREAD_UNCHANGED)
        assert a.dtype == b.dtype and np.array_equal(a, b), rel
    for rel in sorted(p.relative_to(packaged) for p in packaged.rglob("*.jpg")):
        a = cv2.imread(str(packaged / rel)).astype(int)
        b = cv2.imread(str(built / rel)).astype(int)
        assert a.shape == b.shape and np.abs(a - b).mean() < 1.0, rel


def test_every_data_file_is_declared_package_data():
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    # package -> the folder of its data files (siedob itself holds the dataset profiles' tables)
    data_folders = {"siedob.configs": "", "siedob.example": "", "siedob": "profile_data", "siedob.studio": "static"}
    assert set(declared) == set(data_folders)
    for package, folder in data_folders.items():
        root = REPO / package.replace(".", "/")
        files = [
            p.relative_to(root).as_posix() for p in (root / folder).rglob("*") if p.is_file() and p.suffix != ".py"
        ]
        files = [f for f in files if "__pycache__" not in f]
        assert files
        missing = [
            f
            for f in files
            if not any(fnmatch.fnmatch(f, pat) and f.count("/") == pat.count("/") for pat in declared[package])
        ]
        assert missing == [], f"{package}: not declared as package data: {missing}"
