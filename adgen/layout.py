"""Where the product, the copy and the logo go, planned at the final pixel size of a channel.

A tall or square canvas stacks them (logo row, copy band, product; or product above the copy);
a very wide banner (aspect >= 3:1) sets them side by side (product, copy, logo). Everything
stays inside the channel's safe zone with a margin, and no box overlaps another, so the copy and
the logo never cover the product. The background is generated at a size ZIT supports and mapped
to the canvas by `cover` (scale to fill, centred crop); `to_generation` maps a canvas box back,
so an inpainted background is painted around the product where it will finally stand.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

Box = tuple[int, int, int, int]  # left, top, right, bottom (right/bottom exclusive)

FILL_MARGIN = 0.03  # over a channel's minimum product fill, so rounding and resampling never fall below it
COPY_BAND = 0.26  # of the safe height: the copy's band on a stacked canvas
LOGO_AREA = (0.24, 0.08)  # of the safe width and height: the largest a logo gets on a stacked canvas


@dataclass(frozen=True)
class Frame:
    """The plan of one canvas: each box None when that element is absent."""

    size: tuple[int, int]
    product: Box | None
    copy: Box | None
    logo: Box | None


def margin(size: tuple[int, int]) -> int:
    return max(2, round(0.04 * min(size)))


def fit_box(item: tuple[int, int], area: Box, scale: float = 1.0, anchor: tuple[float, float] = (0.5, 0.5)) -> Box:
    """`item` (width, height) scaled to fit `scale` of `area`, keeping its aspect, placed at `anchor` in the area."""
    left, top, right, bottom = area
    ratio = min(scale * (right - left) / item[0], scale * (bottom - top) / item[1])
    w, h = max(1, int(item[0] * ratio)), max(1, int(item[1] * ratio))
    x = left + round((right - left - w) * anchor[0])
    y = top + round((bottom - top - h) * anchor[1])
    return x, y, x + w, y + h


def plan(size: tuple[int, int], safe: Box, product: tuple[int, int] | None, copy: bool,
         logo: tuple[int, int] | None, horizontal: bool, product_scale: float | None = None,
         copy_at: str = "top", min_fill: float | None = None) -> Frame:
    """The boxes of one canvas of `size` whose safe area is `safe`; with `min_fill` (a platform's rule) the product
    spans at least that share of the canvas's width or height, centred, margins and safe zone notwithstanding."""
    gap = m = margin(size)
    left, top, right, bottom = safe[0] + m, safe[1] + m, safe[2] - m, safe[3] - m
    copy_box = logo_box = product_box = None
    if horizontal:  # product | copy | logo
        height = bottom - top
        if product is not None:
            width = min(round(0.3 * (right - left)), round(product[0] / product[1] * height))
            product_box = fit_box(product, (left, top, left + max(1, width), bottom), product_scale or 0.92)
            left = product_box[2] + gap
        if logo is not None:
            width = min(round(0.18 * (right - left)), round(logo[0] / logo[1] * 0.7 * height))
            logo_box = fit_box(logo, (right - max(1, width), top, right, bottom), 1.0, (1.0, 0.5))
            right = logo_box[0] - gap
        copy_box = (left, top, right, bottom) if copy else None
        return Frame(size, product_box, copy_box, logo_box)
    width, height = right - left, bottom - top
    if logo is not None:  # the top-right corner, its own row: never over the copy or the product
        area = (right - round(LOGO_AREA[0] * width), top, right, top + round(LOGO_AREA[1] * height))
        logo_box = fit_box(logo, area, 1.0, (1.0, 0.0))
        top = logo_box[3] + gap
    if copy:
        band = round(COPY_BAND * height)
        if copy_at == "bottom":
            copy_box, bottom = (left, bottom - band, right, bottom), bottom - band - gap
        else:
            copy_box, top = (left, top, right, top + band), top + band + gap
    if product is not None:
        product_box = fit_box(product, (left, top, right, bottom), product_scale or 0.9, (0.5, 0.5))
        if min_fill is not None and fill_of(product_box, size) < min_fill + FILL_MARGIN:
            product_box = fit_box(product, (0, 0, *size), min(1.0, min_fill + FILL_MARGIN))
    return Frame(size, product_box, copy_box, logo_box)


def fill_of(box: Box, size: tuple[int, int]) -> float:
    """The share of the canvas a box spans: the larger of its width's and its height's (a marketplace's "fill")."""
    return max((box[2] - box[0]) / size[0], (box[3] - box[1]) / size[1])


def logo_corner(size: tuple[int, int], logo: tuple[int, int], avoid: list[Box | None],
                copy: Box | None = None) -> Box | None:
    """A box for the logo in a corner of the canvas (with a margin, about a fifth of its width) that overlaps
    none of `avoid` (the product, the copy); corners beside the `copy` band come last, so the logo does not
    crowd the headline; smaller if need be; None when no corner is free."""
    m = margin(size)
    for scale in (1.0, 0.75, 0.5):
        w, h = fit_box(logo, (0, 0, round(0.2 * size[0] * scale), round(0.1 * size[1] * scale)))[2:]
        corners = [(size[0] - m - w, m), (m, m), (size[0] - m - w, size[1] - m - h), (m, size[1] - m - h)]
        for x, y in sorted(corners, key=lambda xy, h=h: copy is not None and xy[1] < copy[3] and copy[1] < xy[1] + h):
            box = (x, y, x + w, y + h)
            if not any(other is not None and overlaps(box, other) for other in avoid):
                return box
    return None


def overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def paste_fit(item: Image.Image, size: tuple[int, int], box: Box) -> Image.Image:
    """`item` (RGBA) resized into `box` on a transparent canvas of `size`."""
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    w, h = box[2] - box[0], box[3] - box[1]
    scaled = item.convert("RGBA")
    if scaled.size != (w, h):
        scaled = scaled.resize((w, h), Image.Resampling.LANCZOS)
    layer.paste(scaled, box[:2])
    return layer


# -- generation size <-> canvas --------------------------------------------------------------------
def cover_box(source: tuple[int, int], size: tuple[int, int]) -> tuple[float, float, float, float]:
    """The centred part of a `source`-sized image that, scaled, fills `size` exactly (no bars, no stretch)."""
    scale = max(size[0] / source[0], size[1] / source[1])
    w, h = size[0] / scale, size[1] / scale
    left, top = (source[0] - w) / 2, (source[1] - h) / 2
    return left, top, left + w, top + h


def cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` scaled to fill `size` and centre-cropped (the generated background onto the channel's canvas)."""
    if image.size == size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS, box=cover_box(image.size, size))


def to_generation(box: Box, source: tuple[int, int], size: tuple[int, int]) -> Box:
    """A box on the canvas of `size` mapped onto the `source` (generation) image `cover` fills it from."""
    left, top, right, _ = cover_box(source, size)
    scale = (right - left) / size[0]
    mapped = [left + box[0] * scale, top + box[1] * scale, left + box[2] * scale, top + box[3] * scale]
    x0, y0 = round(mapped[0]), round(mapped[1])
    return x0, y0, max(x0 + 1, round(mapped[2])), max(y0 + 1, round(mapped[3]))
