"""Make the README's figures in ``images/``: the four-stage diagram, and the quickstart's stage panel.

``python tools/make_figures.py`` draws ``images/stages.png``; with ``--quickstart-results DIR`` (the
``results/`` folder of ``siedob-quickstart``) it also copies the edit's ``*_stages.png`` panel to
``images/quickstart_panel.png``. Drawn with Pillow's bundled font, so the output does not depend on
the fonts a machine has.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Optional, Sequence, Tuple

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
Colour = Tuple[int, int, int]

#: One colour per stage (1 G_OI, 2 G_OG, 3 G_B, 4 F) and for the steps that have no network.
STAGE_COLOURS = {1: (222, 235, 247), 2: (229, 245, 224), 3: (254, 230, 206), 4: (239, 227, 245)}
PLAIN: Colour = (242, 242, 242)
INK: Colour = (40, 40, 40)
SCALE = 2  # drawn at twice the size, then halved, for smooth edges


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size * SCALE)


class Canvas:
    """A white drawing surface in figure coordinates (scaled internally)."""

    def __init__(self, width: int, height: int) -> None:
        self.size = (width, height)
        self.image = Image.new("RGB", (width * SCALE, height * SCALE), (255, 255, 255))
        self.draw = ImageDraw.Draw(self.image)

    def box(self, x: int, y: int, w: int, h: int, lines: Sequence[str], fill: Colour) -> None:
        """A rounded box with centred lines of text; the first line larger."""
        s = SCALE
        self.draw.rounded_rectangle((x * s, y * s, (x + w) * s, (y + h) * s), 10 * s, fill=fill, outline=INK, width=s)
        fonts = [_font(15 if i == 0 else 12) for i in range(len(lines))]
        heights = [f.getbbox("Ag")[3] for f in fonts]
        gap = 5 * s
        top = y * s + (h * s - sum(heights) - gap * (len(lines) - 1)) / 2
        for line, font, lh in zip(lines, fonts, heights):
            tw = self.draw.textlength(line, font=font)
            self.draw.text((x * s + (w * s - tw) / 2, top), line, font=font, fill=INK)
            top += lh + gap

    def arrow(self, points: Sequence[Tuple[int, int]]) -> None:
        """A polyline with an arrow head at its last point."""
        s = SCALE
        pts = [(px * s, py * s) for px, py in points]
        self.draw.line(pts, fill=INK, width=2 * s, joint="curve")
        (x0, y0), (x1, y1) = pts[-2], pts[-1]
        length = max(((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5, 1e-6)
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        head = 9 * s
        left = (x1 - head * ux + head * 0.5 * uy, y1 - head * uy - head * 0.5 * ux)
        right = (x1 - head * ux - head * 0.5 * uy, y1 - head * uy + head * 0.5 * ux)
        self.draw.polygon([pts[-1], left, right], fill=INK)

    def text(self, x: int, y: int, line: str, size: int = 12) -> None:
        self.draw.text((x * SCALE, y * SCALE), line, font=_font(size), fill=INK)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.image.resize(self.size, Image.Resampling.LANCZOS).save(path, optimize=True)


def stages_diagram(path: Path) -> None:
    """The edit chain of docs/spec.md §6 with the network of each of the four stages."""
    c = Canvas(1180, 430)
    c.text(20, 14, "SIEDOB edit chain: objects and background are generated apart, then fused", 16)
    c.box(20, 150, 150, 110, ["Input", "photo, edited labels", "and instances, mask"], PLAIN)
    c.box(205, 150, 150, 110, ["Disassemble", "objects (car, person)", "and background"], PLAIN)
    networks = (
        (60, 1, ["1  G_OI  object inpainting", "partly masked object:", "complete its hidden part"]),
        (165, 2, ["2  G_OG  object generator", "fully masked (new) object,", "in a style-bank object's style"]),
        (270, 3, ["3  G_B  background", "fills background classes,", "style propagated from context"]),
    )
    for y, stage, lines in networks:
        c.box(400, y, 240, 80, lines, STAGE_COLOURS[stage])
    c.box(690, 112, 150, 80, ["Paste back", "objects into", "their boxes"], PLAIN)
    c.box(690, 220, 150, 110, ["Compose", "masked_G = objects", "+ background", "+ photo outside mask"], PLAIN)
    c.box(880, 150, 130, 110, ["4  F  fusion", "blends the parts", "into one image"], STAGE_COLOURS[4])
    c.box(1045, 150, 115, 110, ["Result", "F inside mask,", "photo outside"], PLAIN)

    c.arrow([(170, 205), (205, 205)])
    c.arrow([(355, 190), (375, 190), (375, 100), (400, 100)])
    c.arrow([(355, 205), (400, 205)])
    c.arrow([(355, 220), (375, 220), (375, 310), (400, 310)])
    c.arrow([(640, 100), (665, 100), (665, 140), (690, 140)])
    c.arrow([(640, 205), (665, 205), (665, 165), (690, 165)])
    c.arrow([(765, 192), (765, 220)])
    c.arrow([(640, 310), (690, 310)])
    c.arrow([(840, 275), (860, 275), (860, 205), (880, 205)])
    c.arrow([(1010, 205), (1045, 205)])

    c.text(20, 378, "Training: stages 1-3 train independently (instance_inpainting/, instance_style/, background/);")
    c.text(20, 398, "stage 4 (fusion/) trains F on this chain with G_OI, G_OG and G_B frozen.  Details: docs/spec.md.")
    c.save(path)


def copy_quickstart_panel(results: Path, path: Path) -> None:
    """Copy the one ``*_stages.png`` panel of a quickstart ``results/`` folder to ``path``."""
    panels = sorted(results.glob("*_stages.png"))
    if len(panels) != 1:
        raise SystemExit(f"{results}: expected one *_stages.png panel, found {len(panels)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(panels[0], path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", type=Path, default=ROOT / "images", help="figure folder (default: images/)")
    p.add_argument("--quickstart-results", type=Path, help="results/ folder of a siedob-quickstart run")
    args = p.parse_args(argv)
    stages_diagram(args.output / "stages.png")
    if args.quickstart_results is not None:
        copy_quickstart_panel(args.quickstart_results, args.output / "quickstart_panel.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
