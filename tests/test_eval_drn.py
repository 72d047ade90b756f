"""DRN-D-105: the official key layout, every conformance file in $SIEDOB_REFERENCE_DIR/drn, and loading files.

Each ``*.pt`` file there holds inputs and the reference implementation's outputs for weights that
``detweights.fill`` rebuilds from the key names (recipes ``fill`` and ``fill_bn1``, see the folder's
notes). The test reads whatever runs a file holds (every ``<group>/<recipe>/logits`` entry), so new
files with other seeds, inputs and sizes are checked the same way. In CI (SIEDOB_REQUIRE_REFERENCE=1)
missing material fails instead of skipping.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import pytest
import torch

from siedob.eval.drn import CITYSCAPES_MEAN, CITYSCAPES_STD, DRNSeg, bilinear_up_kernel, normalise_bgr
from siedob.eval.errors import EvalError
from siedob.eval.miou import DRNSegmenter, load_segmenter

REQUIRE = os.environ.get("SIEDOB_REQUIRE_REFERENCE") == "1"
TOL = 1e-4
MARGIN = 1e-3
RECIPES = ("fill", "fill_bn1")


def reference_folder() -> Optional[Path]:
    value = os.environ.get("SIEDOB_REFERENCE_DIR")
    return Path(value) / "drn" if value else None


def conformance_files() -> List[Optional[Path]]:
    folder = reference_folder()
    files = sorted(folder.glob("*.pt")) if folder is not None and folder.is_dir() else []
    return files or [None]


def unavailable(reason: str) -> None:
    """Fail under SIEDOB_REQUIRE_REFERENCE=1 (CI), otherwise skip with the reason."""
    if REQUIRE:
        pytest.fail(f"{reason} (SIEDOB_REQUIRE_REFERENCE=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def folder() -> Path:
    path = reference_folder()
    if path is None or not (path / "drn_d_105_keys.json").is_file():
        unavailable(f"no DRN reference material at {path} (set SIEDOB_REFERENCE_DIR)")
    return path


@pytest.fixture(scope="module")
def fill(folder: Path) -> Callable:
    """The reference ``detweights.fill`` (deterministic weights from key names)."""
    spec = importlib.util.spec_from_file_location("detweights", folder.parent / "detweights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fill


@pytest.fixture(scope="module")
def drn() -> DRNSeg:
    return DRNSeg().eval()


@pytest.fixture(scope="module")
def filled(drn: DRNSeg, fill: Callable) -> Callable[[int], Dict[str, torch.Tensor]]:
    """fill(state dict, seed), cached per seed (it takes seconds for 54M parameters)."""
    cache: Dict[int, Dict[str, torch.Tensor]] = {}
    template = drn.state_dict()

    def get(seed: int) -> Dict[str, torch.Tensor]:
        if seed not in cache:
            cache.clear()
            cache[seed] = fill(template, seed)
        return cache[seed]

    return get


def recipe_state(recipe: str, raw: Dict[str, torch.Tensor], up: torch.Tensor) -> Dict[str, torch.Tensor]:
    """``fill``: the filled dict with the bilinear ``up.weight`` put back; ``fill_bn1``: BN weights + 1."""
    if recipe not in RECIPES:
        pytest.fail(f"unknown weight recipe {recipe!r} (known: {', '.join(RECIPES)})")
    state = dict(raw)
    state["up.weight"] = up
    if recipe == "fill_bn1":
        for key, value in state.items():
            if key.endswith(".weight") and value.dim() == 1:
                state[key] = value + 1.0
    return state


def test_official_key_layout(folder: Path, drn: DRNSeg) -> None:
    layout = json.loads((folder / "drn_d_105_keys.json").read_text())
    ours = drn.state_dict()
    assert [k["key"] for k in layout["keys"]] == list(ours)
    for entry in layout["keys"]:
        tensor = ours[entry["key"]]
        assert list(tensor.shape) == entry["shape"], entry["key"]
        assert str(tensor.dtype).replace("torch.", "") == entry["dtype"], entry["key"]
    counters = [k for k in ours if k.endswith("num_batches_tracked")]
    assert len(ours) == layout["n_keys"] and len(ours) - len(counters) == layout["n_keys_without_num_batches_tracked"]
    assert sum(p.numel() for p in drn.parameters()) == layout["n_parameters"]
    assert sum(p.numel() for p in drn.parameters() if p.requires_grad) == layout["n_parameters_trainable_in_fyu"]
    assert not any(k.startswith("fc.") for k in ours)


def entry(ref: Dict[str, torch.Tensor], prefix: str, name: str) -> torch.Tensor:
    """``<prefix><name>``, else the same name one group up, …, else at the top level."""
    parts = prefix.strip("/").split("/") if prefix else []
    for depth in range(len(parts), -1, -1):
        key = "".join(f"{p}/" for p in parts[:depth]) + name
        if key in ref:
            return ref[key]
    pytest.fail(f"no {name!r} entry for the run group {prefix!r}")


def check_close(what: str, got: torch.Tensor, want: torch.Tensor, errors: Dict[str, float], rel: bool = False) -> None:
    assert tuple(got.shape) == tuple(want.shape), f"{what}: shape {tuple(got.shape)} vs {tuple(want.shape)}"
    diff = (got.double() - want.double()).abs()
    if rel:
        diff = diff / want.double().abs().clamp(min=1.0)
    errors[what] = float(diff.max()) if diff.numel() else 0.0
    assert errors[what] <= TOL, f"{what}: max {'relative ' if rel else ''}error {errors[what]:.3g} > {TOL}"


def check_intermediates(run: str, ref: Dict[str, torch.Tensor], taps: Dict[int, torch.Tensor], errors: dict) -> None:
    """``<run>/base.<i>/{shape,stats,channel_mean,crop_tl,crop_mid}`` against the captured child outputs."""
    pattern = re.compile(re.escape(run) + r"/base\.(\d+)/(\w+)$")
    for key in sorted(ref):
        match = pattern.match(key)
        if not match:
            continue
        i, what = int(match.group(1)), match.group(2)
        out = taps[i].double()
        if what == "shape":
            assert list(out.shape) == ref[key].tolist(), key
            continue
        check_close(key, summary(out, what, key), ref[key], errors, rel=True)


def summary(out: torch.Tensor, what: str, key: str) -> torch.Tensor:
    """One of the stored summaries of a child output (batch item 0 for the per-channel ones)."""
    h, w = out.shape[-2:]
    if what == "stats":
        return torch.stack([out.mean(), out.std(unbiased=False), out.min(), out.max(), out.abs().mean()])
    if what == "channel_mean":
        return out[0].mean(dim=(1, 2))
    if what == "crop_tl":
        return out[0, :, :8, :8]
    if what == "crop_mid":
        return out[0, :, h // 2 - 4 : h // 2 + 4, w // 2 - 4 : w // 2 + 4]
    pytest.fail(f"{key}: unknown intermediate entry")


def capture(taps: Dict[int, torch.Tensor], i: int) -> Callable:
    """A forward hook storing a copy of the module's output as ``taps[i]``."""

    def hook(_module: torch.nn.Module, _inputs: tuple, out: torch.Tensor) -> None:
        taps[i] = out.detach().clone()

    return hook


@pytest.mark.parametrize("ref_file", conformance_files(), ids=lambda p: p.name if p else "missing")
def test_conformance_vectors(ref_file: Optional[Path], drn: DRNSeg, filled: Callable) -> None:
    if ref_file is None:
        unavailable(f"no *.pt conformance files in {reference_folder()}")
    ref = torch.load(ref_file, weights_only=True)
    runs = sorted(k[: -len("/logits")] for k in ref if k.endswith("/logits"))
    assert runs, f"{ref_file}: no <recipe>/logits entries"
    errors: Dict[str, float] = {}
    for key in (k for k in ref if k == "up.weight" or k.endswith("/up.weight")):
        check_close(key, bilinear_up_kernel(), ref[key], errors)
    if "fill_sums" in ref:  # in the official key order
        state = recipe_state("fill", filled(int(entry(ref, "", "weight_seed"))), entry(ref, "", "up.weight"))
        sums = torch.tensor([float(state[k].double().sum()) for k in drn.state_dict()], dtype=torch.float64)
        check_close("fill_sums", sums, ref["fill_sums"], errors, rel=True)
    for run in runs:
        group, _, recipe = run.rpartition("/")
        prefix = f"{group}/" if group else ""
        seed = int(entry(ref, prefix, "weight_seed"))
        drn.load_state_dict(recipe_state(recipe, filled(seed), entry(ref, prefix, "up.weight")))
        x = ref[f"{prefix}input_normalized"]
        for name, ours in (("norm_mean", CITYSCAPES_MEAN), ("norm_std", CITYSCAPES_STD)):
            if any(k == name or k.endswith(f"/{name}") for k in ref):
                torch.testing.assert_close(entry(ref, prefix, name).float(), torch.tensor(ours), rtol=0, atol=1e-7)
        if f"{prefix}image_uint8" in ref:
            rgb01 = ref[f"{prefix}image_uint8"].float() / 255
            bgr = rgb01.flip(1) * 2 - 1
            check_close(f"{prefix}normalisation", normalise_bgr(bgr), x, errors)
        taps: Dict[int, torch.Tensor] = {}
        hooks = [child.register_forward_hook(capture(taps, i)) for i, child in enumerate(drn.base)]
        try:
            with torch.no_grad():
                log_softmax, logits = drn(x)
        finally:
            for hook in hooks:
                hook.remove()
        check_close(f"{run}/logits", logits, ref[f"{run}/logits"], errors)
        check_close(f"{run}/log_softmax", log_softmax, ref[f"{run}/log_softmax"], errors)
        if f"{run}/pred" in ref:
            confident = ref[f"{run}/margin"] >= MARGIN
            agree = log_softmax.argmax(1) == ref[f"{run}/pred"]
            assert bool(agree[confident].all()), f"{run}: {int((~agree & confident).sum())} confident pixels differ"
        check_intermediates(run, ref, taps, errors)
    outputs = ", ".join(f"{k} {v:.2g}" for k, v in errors.items() if k.endswith(("logits", "log_softmax")))
    print(f"{ref_file.name}: {len(errors)} comparisons within {TOL}; max abs error {outputs}")


def test_bgr_input_normalisation() -> None:
    """Our BGR [-1, 1] tensors → RGB [0, 1] → (x − mean) / std; swapping channels would differ."""
    rgb_u8 = torch.tensor([[10, 200], [128, 255], [0, 77]], dtype=torch.uint8).view(1, 3, 1, 2)
    bgr = (rgb_u8.flip(1).float() / 255 - 0.5) / 0.5
    want = (rgb_u8.double() / 255 - torch.tensor(CITYSCAPES_MEAN, dtype=torch.float64).view(1, 3, 1, 1)) / torch.tensor(
        CITYSCAPES_STD, dtype=torch.float64
    ).view(1, 3, 1, 1)
    np.testing.assert_allclose(normalise_bgr(bgr).double().numpy(), want.numpy(), atol=1e-6)
    assert (normalise_bgr(bgr.flip(1)).double() - want).abs().max() > 0.1


def cheap_state(drn: DRNSeg, classes: int = 19) -> Dict[str, torch.Tensor]:
    """A DRN-shaped state dict whose tensors share one element (tiny on disk), without BN counters."""
    out = {}
    for key, value in drn.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        shape = list(value.shape)
        if key.startswith(("seg.", "up.")) and classes != 19:
            shape[0] = classes
        out[key] = torch.full((1,), 0.5).expand(shape)
    return out


def test_checkpoint_forms_load_and_bad_files_are_one_line_errors(tmp_path: Path, drn: DRNSeg) -> None:
    state = cheap_state(drn)
    forms = {
        "bare.pth": state,
        "wrapped.pth.tar": {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}},
    }
    for name, obj in forms.items():
        torch.save(obj, tmp_path / name)
        seg = load_segmenter(tmp_path / name)
        assert isinstance(seg, DRNSegmenter) and seg.describe()["kind"] == "drn-d-105"
        assert float(seg.net.base[4][1].conv2.weight[0, 0, 0, 0]) == 0.5
        assert seg.file_sha256 == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        assert seg.describe()["official_md5"] is False
    missing = {k: v for k, v in state.items() if k != "base.5.7.bn2.running_var"}
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(EvalError, match=r"missing.pth: not a DRN-D-105.*1 missing \(e.g. base.5.7.bn2.running_var\)"):
        load_segmenter(tmp_path / "missing.pth")
    torch.save(cheap_state(drn, classes=21), tmp_path / "classes21.pth")
    with pytest.raises(EvalError, match=r"seg.weight has shape \(21, 512, 1, 1\)"):
        load_segmenter(tmp_path / "classes21.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(EvalError, match="junk.pth: not a segmentation checkpoint"):
        load_segmenter(tmp_path / "junk.pth")
    with pytest.raises(EvalError, match="mapping applies to TorchScript models only"):
        load_segmenter(tmp_path / "bare.pth", mapping=tmp_path / "m.json")


def test_deterministic_checkpoint_end_to_end(tmp_path: Path, folder: Path, filled: Callable) -> None:
    """A fill_bn1 state dict saved like the official file (no BN counters) predicts the reference log-softmax."""
    candidates = []  # (pixels, file, run) of every fill_bn1 run stored with its uint8 image
    for file in (f for f in conformance_files() if f is not None):
        ref = torch.load(file, weights_only=True)
        for key in (k for k in ref if k.endswith("fill_bn1/logits")):
            run = key[: -len("/logits")]
            if f"{run[: -len('fill_bn1')]}image_uint8" in ref:
                candidates.append((ref[f"{run}/log_softmax"].numel(), file, run))
    if not candidates:
        unavailable(f"no fill_bn1 run with an image_uint8 input in {folder}")
    _, file, run = min(candidates)  # the smallest input is the cheapest
    ref = torch.load(file, weights_only=True)
    prefix = run[: -len("fill_bn1")]
    state = recipe_state("fill_bn1", filled(int(entry(ref, prefix, "weight_seed"))), entry(ref, prefix, "up.weight"))
    path = tmp_path / "drn-d-105_deterministic.pth"
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, path)
    seg = load_segmenter(path)
    rgb_u8 = ref[f"{prefix}image_uint8"]
    bgr = (rgb_u8.flip(1).float() / 255 - 0.5) / 0.5
    scores = seg.predict(bgr)
    h, w = rgb_u8.shape[-2:]
    assert scores.shape == (1, 19, h, w)
    err = float((scores - ref[f"{run}/log_softmax"][..., :h, :w]).abs().max())
    assert err <= TOL, f"end-to-end log-softmax error {err:.3g}"
