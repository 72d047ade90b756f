"""Conformance: our nine networks reproduce the authors' outputs under deterministic weights.

Weights come from the reference ``detweights.fill`` applied to each network's own state dict,
inputs are built as ``ref_networks.json`` describes, and every output must lie within 1e-4 of
the authors' (docs/spec.md, and the README of $SIEDOB_REFERENCE_DIR).
"""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from siedob.maps import edge_map
from tests.support.conformance import CASES, check_outputs, run_reference_network


def sha256_tensor(t: torch.Tensor) -> str:
    """The reference README's hash: dtype string + shape-tuple string + raw bytes."""
    t = t.detach().contiguous()
    return hashlib.sha256(str(t.dtype).encode() + str(tuple(t.shape)).encode() + t.numpy().tobytes()).hexdigest()


@pytest.fixture(scope="module")
def reference_json(reference_dir) -> dict:
    return json.loads((reference_dir / "ref_networks.json").read_text())["networks"]


def test_every_reference_network_is_covered(reference_vectors, reference_json):
    assert set(reference_vectors) == set(CASES) == set(reference_json)


@pytest.mark.parametrize("name", list(CASES))
def test_network_matches_reference(name, reference_vectors, reference_json, detweights):
    ref = reference_vectors[name]
    spec = reference_json[name]
    args, outputs, captured = run_reference_network(name, ref, detweights)
    assert [list(a.shape) for a in args] == spec["built_args_shapes"]
    assert [sha256_tensor(a.float()) for a in args] == spec["built_args_sha256"]
    assert ("pre" in captured) == ("conv_img_pre_tanh" in ref["intermediates"])
    check_outputs(name, ref, outputs, captured)


@pytest.mark.parametrize("name", ["bg_G", "F_stage"])
def test_edge_map_matches_reference_inputs(name, reference_vectors):
    """Our edge map of the label map, times the mask, is exactly the authors' stored edge input."""
    inputs = reference_vectors[name]["inputs"]
    got = edge_map(inputs["lab"].float()) * inputs["mask"]
    assert torch.equal(got, inputs["edge_map"])
    assert got.sum() > 0


def test_reference_inputs_rebuild_from_detweights(reference_vectors, detweights):
    """The stored fg_inpainting inputs are what ref_networks.json's recipe gives (checks our reading)."""

    def blocky(shape, name, block):
        b, c, h, w = shape
        t = detweights.det_tensor([b, c, h // block, w // block], name, 0, "binary")
        return t.repeat_interleave(block, dim=2).repeat_interleave(block, dim=3)

    inst = blocky([2, 1, 64, 64], "fg_inpainting.inst_mask", 8)
    hole = blocky([2, 1, 64, 64], "fg_inpainting.hole", 8) * inst
    img = detweights.det_tensor([2, 3, 64, 64], "fg_inpainting.img", 0, "signed") * inst * (1 - hole)
    stored = reference_vectors["fg_inpainting"]["inputs"]
    assert torch.equal(inst, stored["inst_mask"])
    assert torch.equal(hole, stored["mask"])
    assert torch.equal(img, stored["input"])
