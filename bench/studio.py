"""Benchmark siedob-studio: an edit request through the server against the bare ``Editor`` forward on the same scene.

Starts a real server (uvicorn, loopback, a free port) in this process over full-size networks with
default-initialised weights saved in the released format (or ``--checkpoints DIR``), sends ``--requests``
``POST /api/edit`` of the bundled 256×256 example one after another and times each from the request to
the PNG received; after each request it times the bare ``Editor.edit`` + ``tensor_to_image`` on the
already decoded scene, on the server's model thread (alternating, so both see the same machine load).
Prints p50 / p95 of both, the model time the server reports for each request
(``X-Siedob-Edit-Ms``), the per-request overhead (round trip minus that model time: parsing, decoding,
encoding, transport; robust to a busy machine, unlike a difference of two runs) and the ratio.

Usage: ``python bench/studio.py [--requests 10] [--device cpu] [--checkpoints DIR]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from siedob.data.io import tensor_to_image  # noqa: E402
from siedob.edit.cli import bundled_example  # noqa: E402
from siedob.edit.inputs import read_example_folder  # noqa: E402


def write_full_size_checkpoints(out: Path) -> Path:
    """The four generators at the authors' widths, default-initialised, as released files."""
    from siedob.checkpoints import RELEASED, save_released
    from siedob.nn import BackgroundGenerator, FusionGenerator, ObjectInpaintingGenerator, ObjectStyleGenerator

    nets = (ObjectInpaintingGenerator(), ObjectStyleGenerator(), BackgroundGenerator(), FusionGenerator())
    for net, role in zip(nets, RELEASED):
        save_released(net.eval(), out / RELEASED[role].filename, role)
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10, help="timed requests (and bare forwards)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--checkpoints", type=Path, help="released files to load (default: full-size, untrained)")
    args = parser.parse_args(argv)
    from siedob.studio.cli import build_parser, make_studio, serve

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.checkpoints or write_full_size_checkpoints(Path(tmp))
        studio = make_studio(build_parser().parse_args(["--checkpoints", str(ckpt), "--device", args.device]))
        ready: List = []
        thread = threading.Thread(target=serve, args=(studio, "127.0.0.1", 0, ready), daemon=True)
        thread.start()
        while len(ready) < 2:
            time.sleep(0.02)
        server, url = ready
        example = bundled_example()
        files = {
            "image": (example / "images" / "example.jpg").read_bytes(),
            "labels": (example / "labels" / "example.png").read_bytes(),
            "instances": (example / "inst_map" / "example.png").read_bytes(),
            "mask": (example / "mask" / "example.png").read_bytes(),
        }
        scene = read_example_folder(example)[0]
        editor = studio.editor
        bank = studio.styles.bank(0)

        def forward() -> float:
            start = time.perf_counter()
            out = tensor_to_image(editor.edit(scene.image, scene.labels, scene.instances, scene.mask, bank).result)
            assert out.shape == scene.image.shape
            return time.perf_counter() - start

        request_s: List[float] = []
        model_s: List[float] = []
        forward_s: List[float] = []
        with httpx.Client(base_url=url, timeout=600) as client:
            for i in range(args.requests + 1):  # alternate, so both see the same machine load
                start = time.perf_counter()
                response = client.post("/api/edit", files=files)
                elapsed = time.perf_counter() - start
                response.raise_for_status()
                bare = studio.worker.submit(forward).result()  # on the server's own model thread
                if i:  # the first round warms up
                    request_s.append(elapsed)
                    model_s.append(float(response.headers["X-Siedob-Edit-Ms"]) / 1000)
                    forward_s.append(bare)
        server.should_exit = True
        thread.join(30)
    r50, r95 = percentile(request_s, 0.5), percentile(request_s, 0.95)
    f50, f95 = percentile(forward_s, 0.5), percentile(forward_s, 0.95)
    print(f"siedob-studio on {editor.device}, 256×256 bundled example, {args.requests} requests after one warm-up")
    print(f"{'':24s}{'p50 s':>10s}{'p95 s':>10s}{'mean s':>10s}")
    print(f"{'POST /api/edit':24s}{r50:10.3f}{r95:10.3f}{statistics.mean(request_s):10.3f}")
    print(f"{'bare Editor forward':24s}{f50:10.3f}{f95:10.3f}{statistics.mean(forward_s):10.3f}")
    overhead = [r - m for r, m in zip(request_s, model_s)]
    print(
        f"{'server model time':24s}{percentile(model_s, 0.5):10.3f}{percentile(model_s, 0.95):10.3f}"
        f"{statistics.mean(model_s):10.3f}"
    )
    print(
        f"{'request − model time':24s}{percentile(overhead, 0.5):10.3f}{percentile(overhead, 0.95):10.3f}"
        f"{statistics.mean(overhead):10.3f}   (parsing, decoding, encoding, transport)"
    )
    print(f"request p50 / bare forward p50: {r50 / f50:.3f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
