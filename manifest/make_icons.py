"""Draw Seatdesk's Teams app icons: `color.png` (192×192) and `outline.png` (32×32).

Run from the repository root: `.venv/bin/python manifest/make_icons.py`. The output is
deterministic, so regenerating the icons leaves the committed files unchanged.

The glyph is a desk with a monitor and an office chair drawn on a 32-unit grid, so that
the 32×32 outline icon lands on whole pixels and stays crisp; the color icon draws the
same glyph larger, in white on a blue tile.
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent

BRAND_TOP = (43, 125, 233)  # lighter blue at the top of the tile
BRAND_BOTTOM = (15, 91, 194)  # the accent color in the manifest, #0F5BC2
WHITE = (255, 255, 255)

# Draw at this multiple of the final size and scale down: Pillow does not anti-alias shapes.
SUPERSAMPLE = 8


def draw_glyph(draw: ImageDraw.ImageDraw, unit: float, origin: tuple[float, float], fill) -> None:
    """Draw the desk-and-chair glyph, defined on a 32×32 grid, with `unit` pixels per grid step."""
    ox, oy = origin

    def box(x0: float, y0: float, x1: float, y1: float) -> list[float]:
        return [ox + x0 * unit, oy + y0 * unit, ox + x1 * unit - 1, oy + y1 * unit - 1]

    def rect(x0: float, y0: float, x1: float, y1: float, radius: float = 0) -> None:
        draw.rounded_rectangle(box(x0, y0, x1, y1), radius=radius * unit, fill=fill)

    # Monitor: a frame with an open screen, standing on the desk.
    draw.rounded_rectangle(box(15, 3, 29, 12), radius=1.2 * unit, outline=fill, width=round(2 * unit))
    rect(21, 12, 23, 14)
    # Desk: top and one leg at the far end.
    rect(11, 14, 31, 17, radius=0.8)
    rect(27, 17, 30, 29, radius=0.5)
    # Chair, facing the desk: backrest, seat, post and a base on feet.
    rect(2, 8, 5, 23, radius=1.5)
    rect(2, 20, 15, 23, radius=1.2)
    rect(8, 23, 10, 26)
    rect(3, 26, 15, 28, radius=1.0)
    rect(3, 28, 5, 30, radius=0.6)
    rect(13, 28, 15, 30, radius=0.6)


def make_color(size: int = 192) -> Image.Image:
    """A rounded blue tile with a soft vertical gradient and the white glyph in the middle."""
    big = size * SUPERSAMPLE
    gradient = Image.new("RGB", (1, big))
    for y in range(big):
        t = y / (big - 1)
        gradient.putpixel((0, y), tuple(round(a + (b - a) * t) for a, b in zip(BRAND_TOP, BRAND_BOTTOM)))
    tile = gradient.resize((big, big), Image.Resampling.NEAREST)

    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).rounded_rectangle([0, 0, big - 1, big - 1], radius=round(big * 0.22), fill=255)
    image = Image.new("RGBA", (big, big), (*BRAND_BOTTOM, 0))
    image.paste(tile, (0, 0), mask)

    glyph_size = round(size * 0.625)  # 120 px of 192: Teams' safe area for the symbol
    unit = glyph_size * SUPERSAMPLE / 32
    offset = (big - glyph_size * SUPERSAMPLE) / 2
    draw_glyph(ImageDraw.Draw(image), unit, (offset, offset), fill=(*WHITE, 255))
    return image.resize((size, size), Image.Resampling.LANCZOS)


def make_outline(size: int = 32) -> Image.Image:
    """The white glyph on a fully transparent background; every pixel is white, only alpha varies."""
    big = size * SUPERSAMPLE
    alpha = Image.new("L", (big, big), 0)
    draw_glyph(ImageDraw.Draw(alpha), big / 32, (0, 0), fill=255)
    image = Image.new("RGBA", (size, size), (*WHITE, 0))
    image.putalpha(alpha.reduce(SUPERSAMPLE))
    return image


def main() -> None:
    make_color().save(HERE / "color.png", optimize=True)
    make_outline().save(HERE / "outline.png", optimize=True)
    print(f"wrote {HERE / 'color.png'} and {HERE / 'outline.png'}")


if __name__ == "__main__":
    main()
