"""Product cutout (its mask: segment.py), placement, contact shadow and the final composite (CPU only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from .errors import InputError
from .segment import Cut, cut


@dataclass(frozen=True)
class Placement:
    """Where the product goes: its centre (fractions of the canvas) and its height (fraction of the canvas)."""

    x: float = 0.5
    y: float = 0.6  # the lower middle
    scale: float = 0.45

    def __post_init__(self) -> None:
        for name, lo, hi in (("x", 0.0, 1.0), ("y", 0.0, 1.0), ("scale", 0.05, 1.0)):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise InputError(f"placement {name}", f"must be from {lo} to {hi} (got {value!r})")


def auto_mask(photo: Image.Image) -> Image.Image:
    """The product's soft mask (L, 255 = product) as `segment.cut` finds it (alpha, plain backdrop, or model)."""
    return cut(photo).mask


def product_cut(photo: Image.Image, mask: Image.Image | None = None) -> Cut:
    """The cut a cutout uses: the user's `mask` (thresholded, photo-sized: their override), else `segment.cut`."""
    if mask is None:
        found = cut(photo)
    else:
        painted = mask.convert("L").resize(photo.size).point(lambda a: 255 if a >= 128 else 0)
        found = Cut(painted, photo.convert("RGB"), "user")
    if found.mask.getbbox() is None:
        raise InputError("product mask", "is empty: paint the product white")
    return found


def product_mask(photo: Image.Image, mask: Image.Image | None = None) -> Image.Image:
    """The mask a cutout uses, photo-sized, L (white = product; soft edges unless the user painted it)."""
    return product_cut(photo, mask).mask


def cut_image(found: Cut) -> Image.Image:
    """A cut as RGBA (its cleaned colours, its soft mask as alpha), cropped to the mask's bounding box."""
    product = found.rgb.copy()
    product.putalpha(found.mask)
    return product.crop(found.mask.getbbox())


def cutout(photo: Image.Image, mask: Image.Image | None = None) -> Image.Image:
    """The product as RGBA, cropped to its mask's bounding box (the mask as `product_mask` makes it)."""
    return cut_image(product_cut(photo, mask))


def place(product: Image.Image, size: tuple[int, int], placement: Placement) -> tuple[Image.Image, tuple]:
    """The product scaled and positioned on a transparent canvas of `size`; returns (layer, box)."""
    width, height = size
    target_h = placement.scale * height
    ratio = min(target_h / product.height, 0.9 * width / product.width)
    w, h = max(1, round(product.width * ratio)), max(1, round(product.height * ratio))
    scaled = product.resize((w, h), Image.Resampling.LANCZOS) if (w, h) != product.size else product
    left = min(max(round(placement.x * width - w / 2), 0), width - w)
    top = min(max(round(placement.y * height - h / 2), 0), height - h)
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    layer.paste(scaled, (left, top))
    return layer, (left, top, left + w, top + h)


def inpaint_inputs(layer: Image.Image, grey: int = 128) -> tuple[Image.Image, Image.Image]:
    """The inpaint pipeline's image (product on flat grey) and mask (white = repaint, i.e. not the product)."""
    canvas = Image.new("RGB", layer.size, (grey, grey, grey))
    canvas.paste(layer, (0, 0), layer)
    repaint = layer.getchannel("A").point(lambda a: 0 if a >= 128 else 255)
    return canvas, repaint


def contact_shadow(size: tuple[int, int], box: tuple, strength: int = 110, clear: int = 0) -> Image.Image:
    """A soft dark ellipse under the product's base, as an RGBA layer; with `clear` it fades out toward the canvas's
    edges, none within `clear` pixels of them (a pure-white channel's border stays #FFFFFF under a large product)."""
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    shadow = Image.new("L", size, 0)
    rx, ry = 0.45 * w, max(2.0, 0.06 * h)
    cx, cy = (left + right) / 2, bottom - ry * 0.3
    ImageDraw.Draw(shadow).ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=strength)
    shadow = shadow.filter(ImageFilter.GaussianBlur(max(1.0, ry * 0.8)))
    if clear:
        shadow = ImageChops.multiply(shadow, _edge_fade(size, clear))
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    layer.putalpha(shadow)
    return layer


def _edge_fade(size: tuple[int, int], clear: int) -> Image.Image:
    """An L mask: 0 within `clear` pixels of an edge, rising to 255 over the next 2 x `clear` pixels."""
    width, height = size
    x = np.minimum(np.arange(width), np.arange(width)[::-1])
    y = np.minimum(np.arange(height), np.arange(height)[::-1])
    distance = np.minimum(x[None, :], y[:, None]).astype(np.float32)
    return Image.fromarray((np.clip((distance - clear) / (2 * clear), 0, 1) * 255).astype(np.uint8), "L")


def composite(background: Image.Image, product_layer: Image.Image | None, box: tuple | None,
              copy_layer: Image.Image | None, clear: int = 0) -> Image.Image:
    """Step 3: background + contact shadow + the product's own pixels + the copy layer, as RGB (`clear`: the
    shadow's edge margin, see `contact_shadow`)."""
    final = background.convert("RGBA")
    if product_layer is not None and box is not None:
        final.alpha_composite(contact_shadow(final.size, box, clear=clear))
        final.alpha_composite(product_layer)  # the product's pixels, untouched by the model
    if copy_layer is not None:
        final.alpha_composite(copy_layer)
    return final.convert("RGB")
