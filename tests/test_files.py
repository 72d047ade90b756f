"""Atomic writes: complete or untouched, with ordinary permissions."""

from __future__ import annotations

import os
import stat

import cv2
import numpy as np
import pytest

from siedob.data.io import DataError, read_labels, write_image
from siedob.files import atomic_write, atomic_write_bytes


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_atomic_write_failure_keeps_old_file(tmp_path):
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write(b"partial")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_written_files_follow_umask(tmp_path):
    """Results are readable by others as usual (mkstemp alone would make them 0600)."""
    old = os.umask(0o022)
    try:
        write_image(tmp_path / "x.png", np.zeros((4, 4, 3), np.uint8))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.png").stat().st_mode) == 0o644


def test_read_labels_refuses_16_bit_ids_above_255(tmp_path):
    cv2.imwrite(str(tmp_path / "ok16.png"), np.full((4, 4), 26, np.uint16))
    assert read_labels(tmp_path / "ok16.png").max() == 26
    cv2.imwrite(str(tmp_path / "bad.png"), np.full((4, 4), 26001, np.uint16))
    with pytest.raises(DataError, match="bad.png: label ids must be 8-bit"):
        read_labels(tmp_path / "bad.png")
