"""How the app's two icons were drawn: `python -m manifest.icons` writes them next to this file.

The PNGs are committed; this is kept so they can be redrawn. Teams wants a 192x192 full-colour icon
and a 32x32 outline icon: white on a transparent background. Both show two arrows chasing each
other round a circle (a sync). Shapes are drawn on a large alpha mask and scaled down, so edges
are smooth while every visible outline pixel stays pure white.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from PIL import Image, ImageDraw

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
COLOR_SIZE = 192
OUTLINE_SIZE = 32
ACCENT = (0x1B, 0x6A, 0xC9)
_SCALE = 8  # drawn this many times larger, then reduced


def _sync_mask(size: int, radius: float, width: float, head: float) -> Image.Image:
    big = size * _SCALE
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)
    centre = big / 2
    r, w, h = radius * _SCALE, width * _SCALE, head * _SCALE
    box = (centre - r, centre - r, centre + r, centre + r)
    # Two arcs with a gap before each arrow head; angles run clockwise from three o'clock.
    for start, end in ((20.0, 150.0), (200.0, 330.0)):
        draw.arc(box, start, end, fill=255, width=round(w))
        theta = math.radians(end)
        # The arc's stroke is drawn inside the box: its middle line is at r - w/2.
        mid = r - w / 2
        px, py = centre + mid * math.cos(theta), centre + mid * math.sin(theta)
        tx, ty = -math.sin(theta), math.cos(theta)  # direction of travel
        nx, ny = math.cos(theta), math.sin(theta)  # outward
        tip = (px + tx * h, py + ty * h)
        back = (px - tx * h * 0.15, py - ty * h * 0.15)
        left = (back[0] + nx * h * 0.85, back[1] + ny * h * 0.85)
        right = (back[0] - nx * h * 0.85, back[1] - ny * h * 0.85)
        draw.polygon([tip, left, right], fill=255)
    return mask.resize((size, size), Image.Resampling.LANCZOS)


def draw_color_icon() -> Image.Image:
    """192x192, opaque: the accent colour with the white symbol."""
    image = Image.new("RGB", (COLOR_SIZE, COLOR_SIZE), ACCENT)
    white = Image.new("RGB", (COLOR_SIZE, COLOR_SIZE), (255, 255, 255))
    image.paste(white, (0, 0), _sync_mask(COLOR_SIZE, radius=62, width=16, head=26))
    return image


def draw_outline_icon() -> Image.Image:
    """32x32, RGBA: white strokes, everything else fully transparent."""
    mask = _sync_mask(OUTLINE_SIZE, radius=13, width=2.5, head=5)
    image = Image.new("RGBA", (OUTLINE_SIZE, OUTLINE_SIZE), (255, 255, 255, 0))
    image.putalpha(mask)
    return image


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    draw_color_icon().save(HERE / "color.png", optimize=True)
    draw_outline_icon().save(HERE / "outline.png", optimize=True)
    log.info("wrote %s and %s", HERE / "color.png", HERE / "outline.png")


if __name__ == "__main__":
    main()
