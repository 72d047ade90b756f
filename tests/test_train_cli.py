"""The training CLI: one-line errors, SIGKILL then resume, and 2-process DDP (gloo) staying in sync."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from siedob.checkpoints import load_file
from tests.support.train import cli_overrides, make_data

REPO = Path(__file__).resolve().parent.parent
STAGE = "instance_inpainting"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_data(tmp_path_factory.mktemp("cli_data"), scenes=2)


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _args(data: Path, out: Path, *extra: str) -> list:
    return ["--data-root", str(data), "--output", str(out), "--device", "cpu", "--vgg-weights", "random",
            "--no-progress", *cli_overrides(STAGE), *extra]


def test_unknown_override_is_one_line_error(data, tmp_path):
    cmd = [sys.executable, str(REPO / STAGE / "train.py"), *_args(data, tmp_path / "r", "--set", "train.nope=1")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --set 'train.nope=1': no key 'train.nope'"), proc.stderr
    assert not (tmp_path / "r").exists()


def test_sigkill_then_resume_continues_from_last_checkpoint(data, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, str(REPO / STAGE / "train.py"),
           *_args(data, out, "--max-steps", "1000", "--set", "log.save_every_steps=1", "--set", "log.print_every=1")]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = out / "checkpoints" / "latest_ckpt.pth"
    step = 0
    try:
        deadline = time.time() + 150
        while time.time() < deadline and step < 2:
            time.sleep(0.5)
            if latest.is_file():
                step = load_file(latest)["resume"]["step"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert step >= 2, "the run never wrote a checkpoint"
    killed_at = load_file(latest)["resume"]["step"]
    again = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=120)
    assert again.returncode == 2 and "--resume" in again.stderr
    target = killed_at + 2
    resume = [sys.executable, str(REPO / STAGE / "train.py"), "--resume", str(out), *_args(data, out)[4:],
              "--max-steps", str(target)]
    done = subprocess.run(resume, capture_output=True, text=True, env=_env(), timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert load_file(latest)["resume"]["step"] == target
    steps = [r["step"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if r["event"] == "train"]
    assert steps[-1] == target and killed_at + 1 in steps


def test_ddp_two_cpu_processes_stay_in_sync(data, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / STAGE / "train.py"), *_args(data, out, "--max-steps", "3", "--set", "log.print_every=1")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    sync = [r for r in records if r["event"] == "ddp_sync"]
    assert sync == [{**sync[0], "world_size": 2, "in_sync": True}]
    assert [r["step"] for r in records if r["event"] == "train"] == [1, 2, 3]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["latest_ckpt.pth"]
    assert load_file(out / "checkpoints" / "latest_ckpt.pth")["resume"]["world_size"] == 2
