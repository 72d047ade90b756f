"""A short demo of the foundation: build the nine networks, export and reload released-format files.

Prints each network's parameter count beside the authors', writes the four sub-network files
in the authors' format (random weights) into ``--output``, reloads them strictly and times one
forward pass of each generator.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Optional, Sequence

import torch

from siedob.checkpoints import RELEASED, load_released, released_path, save_released
from siedob.errors import SiedobError, run_cli
from siedob.maps import one_hot_labels
from siedob.nn import (
    DISCRIMINATORS,
    BackgroundGenerator,
    FusionGenerator,
    ObjectInpaintingGenerator,
    ObjectStyleGenerator,
    build_discriminator,
)

AUTHORS_PARAMETERS = {
    "object_inpainting": 81436032, "object_style": 15364288, "background": 13088096, "fusion": 3550048,
    "netD_inp": 4331200, "netD_style": 4329600, "netD_BG": 4379200, "netD_patch": 4379200, "netD_F": 4324800,
}
GENERATORS = {"object_inpainting": ObjectInpaintingGenerator, "object_style": ObjectStyleGenerator,
              "background": BackgroundGenerator, "fusion": FusionGenerator}


def _example_inputs(role: str) -> tuple:
    """Plausible inputs of each generator: 64×64 object crops, 256×256 scenes."""
    g = torch.Generator().manual_seed(0)
    if role in ("object_inpainting", "object_style"):
        inst = torch.zeros(1, 1, 64, 64)
        inst[..., 8:56, 12:52] = 1
        cls_map = inst * torch.tensor([1.0, 0, 0]).view(1, 3, 1, 1)
        img = (torch.rand(1, 3, 64, 64, generator=g) * 2 - 1) * inst
        if role == "object_style":
            return cls_map, img, cls_map, inst
        hole = torch.zeros_like(inst)
        hole[..., 30:, :] = 1
        return img * (1 - hole * inst), inst, hole * inst, cls_map
    labels = torch.full((1, 1, 256, 256), 7)
    labels[..., :100, :] = 23
    segmap = one_hot_labels(labels)
    mask = torch.zeros(1, 1, 256, 256)
    mask[..., 64:192, 64:192] = 1
    img = (torch.rand(1, 3, 256, 256, generator=g) * 2 - 1) * (1 - mask)
    if role == "background":
        bg = torch.ones_like(mask)
        return torch.cat((img, torch.cat((segmap, torch.zeros_like(mask)), 1), mask), 1), segmap, mask, bg
    return img, segmap, mask, torch.zeros_like(mask)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the demo; returns the exit code."""
    parser = argparse.ArgumentParser(prog="siedob-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("results/demo"), help="folder for the four files")
    args = parser.parse_args(argv)
    try:
        args.output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SiedobError(f"{args.output}: cannot create output folder ({exc.strerror})") from None
    print(f"{'network':<20}{'parameters':>14}{'authors':>14}")
    torch.manual_seed(0)
    for role, factory in GENERATORS.items():
        net = factory().eval()
        count = sum(p.numel() for p in net.parameters())
        print(f"{role:<20}{count:>14,}{AUTHORS_PARAMETERS[role]:>14,}")
        path = released_path(args.output, role)
        save_released(net, path, role)
        load_released(factory().eval(), path, role)
        start = time.perf_counter()
        with torch.no_grad():
            net(*_example_inputs(role))
        print(f"{'':<4}wrote {path} ({RELEASED[role].entry}), reloaded strictly; "
              f"forward {1000 * (time.perf_counter() - start):.0f} ms")
    for name in DISCRIMINATORS:
        count = sum(p.numel() for p in build_discriminator(name).parameters())
        print(f"{name:<20}{count:>14,}{AUTHORS_PARAMETERS[name]:>14,}")
    return 0


def cli() -> None:
    """Console-script entry point."""
    raise SystemExit(run_cli(main))


if __name__ == "__main__":
    cli()
