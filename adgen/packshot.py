"""A packshot without a model: a studio backdrop and a floor reflection (CPU only, pure Pillow/NumPy, deterministic).

`packshot` makes the background; `compose.composite` then adds the contact shadow and the product as for any ad.
"""

from __future__ import annotations

import re

import numpy as np
from PIL import Image

from .errors import InputError

STYLES = ("white", "color", "gradient")
MAX_SIDE = 8192
NEUTRAL = "#EDEDED"  # "color" without brand colours
WARM_GREYS = ("#B4ADA3", "#A8A096")  # "gradient" without brand colours: wall, floor (before the tint with white)
HORIZON = 0.62  # the wall/floor join, as a share of the height from the top
JOIN = 0.035  # half the height of the soft wall/floor blend, as a share of the height
WALL_WHITE = (0.88, 0.80)  # share of white mixed into colour A: at the top, at the horizon (a deeper tone)
FLOOR_WHITE = (0.82, 0.92)  # share of white mixed into colour B: at the horizon, at the bottom (toward the viewer)
VIGNETTE = 0.08  # light falloff: the corners are this much darker than the centre
LIGHT_Y = 0.45  # the light's centre, as a share of the height
FALLOFF_Y = 0.6  # the falloff is gentler up and down than sideways (the wall must stay lighter at the top)
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
_BAYER = (np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]], np.float32) + 0.5) / 16 - 0.5


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise InputError("size", f"must look like WIDTHxHEIGHT, e.g. 1024x1024 (got {size!r})")
    for side in size:
        if isinstance(side, bool) or not isinstance(side, (int, np.integer)):
            raise InputError("size", f"must be a whole number from 1 to {MAX_SIDE} (got {side!r})")
        if not 1 <= side <= MAX_SIDE:
            raise InputError("size", f"must be from 1 to {MAX_SIDE} (got {side})")
    return int(size[0]), int(size[1])


def _check_style(style: str) -> str:
    if style not in STYLES:
        raise InputError("background", f"must be one of white, color, gradient (got {style!r})")
    return style


def _rgb(colors: tuple[str, ...] | list[str] | str) -> list[np.ndarray]:
    """Each '#RRGGBB' as a float32 [r, g, b] array (0..255); a bare string is one colour."""
    colors = (colors,) if isinstance(colors, str) else tuple(colors or ())
    rgbs = []
    for value in colors:
        if not isinstance(value, str) or not _HEX.fullmatch(value):
            raise InputError("brand hex colours", f"must be hex colours like #FF6600 (got {value!r})")
        rgbs.append(np.array([int(value[i:i + 2], 16) for i in (1, 3, 5)], np.float32))
    return rgbs


def _tint(rgb: np.ndarray, white: np.ndarray | float) -> np.ndarray:
    """`rgb` mixed with white; `white` (the share of white) may be a column of shares, giving one row each."""
    white = np.asarray(white, np.float32)[..., None]
    return rgb * (1 - white) + 255 * white


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0, 1)
    return x * x * (3 - 2 * x)


def _gradient(width: int, height: int, rgbs: list[np.ndarray]) -> np.ndarray:
    """The studio sweep as an (height, width, 3) uint8 array: wall, soft join, floor, light falloff, dither."""
    wall_rgb = rgbs[0] if rgbs else _rgb(WARM_GREYS[0])[0]
    floor_rgb = (rgbs[1] if len(rgbs) > 1 else rgbs[0]) if rgbs else _rgb(WARM_GREYS[1])[0]
    t = (np.arange(height, dtype=np.float32) + 0.5) / height  # row centres, 0 (top) .. 1 (bottom)
    down_wall = np.clip(t / HORIZON, 0, 1) ** 1.6  # deepens mostly near the horizon
    wall = _tint(wall_rgb, WALL_WHITE[0] + (WALL_WHITE[1] - WALL_WHITE[0]) * down_wall)
    toward_viewer = _smoothstep((t - HORIZON) / (1 - HORIZON))
    floor = _tint(floor_rgb, FLOOR_WHITE[0] + (FLOOR_WHITE[1] - FLOOR_WHITE[0]) * toward_viewer)
    join = _smoothstep((t - (HORIZON - JOIN)) / (2 * JOIN))[:, None]
    rows = wall * (1 - join) + floor * join  # (height, 3)
    # light falloff: an ellipse fitted to the canvas, brightest at the light's centre
    dx = ((np.arange(width, dtype=np.float32) + 0.5) / width - 0.5) / 0.5
    dy = FALLOFF_Y * (t - LIGHT_Y) / max(LIGHT_Y, 1 - LIGHT_Y)
    reach = (dx[None, :] ** 2 + dy[:, None] ** 2) / (1 + FALLOFF_Y**2)  # 0 at the light, 1 in the corners
    falloff = 1 - VIGNETTE * np.minimum(reach, 1)  # (height, width)
    dither = np.tile(_BAYER, (height // 4 + 1, width // 4 + 1))[:height, :width]  # breaks up 8-bit banding
    image = rows[:, None, :] * falloff[:, :, None]
    image += dither[:, :, None]
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def backdrop(size: tuple[int, int], style: str = "gradient", colors: tuple[str, ...] = ()) -> Image.Image:
    """The studio backdrop (RGB): "white" (pure 255), "color" (flat colours[0], else light grey) or "gradient".

    "gradient" is a two-colour sweep: a light tint of colours[0] on the wall deepening a little toward the horizon
    (at 62% of the height), a floor in a tint of colours[1] (else colours[0]) lightening toward the viewer, the join
    blended softly, and a gentle light falloff toward the edges. Without colours: warm neutral greys.
    """
    width, height = _check_size(size)
    _check_style(style)
    rgbs = _rgb(colors)
    if style == "white":
        return Image.new("RGB", (width, height), (255, 255, 255))
    if style == "color":
        flat = rgbs[0] if rgbs else _rgb(NEUTRAL)[0]
        return Image.new("RGB", (width, height), tuple(int(c) for c in flat))
    return Image.fromarray(_gradient(width, height, rgbs), "RGB")


def reflection(product_layer: Image.Image, box: tuple[int, int, int, int], strength: float = 0.28,
               fade: float = 0.35) -> Image.Image:
    """The product mirrored on a glossy floor, as an RGBA layer of the canvas size.

    `product_layer` is canvas-sized with the product at `box` (as `compose.place` returns them). Its pixels are
    flipped below the box's bottom edge, alpha starting at `strength` (times the product's own alpha) and falling
    linearly to 0 over `fade` x the product's height; rows past the canvas are dropped, nothing lies above `bottom`.
    """
    if not 0 <= strength <= 1:
        raise ValueError(f"strength must be from 0 to 1 (got {strength!r})")
    if not fade > 0:
        raise ValueError(f"fade must be above 0 (got {fade!r})")
    width, height = product_layer.size
    left, top, right, bottom = (int(round(v)) for v in box)
    left, right = max(left, 0), min(right, width)
    top, bottom = max(top, 0), min(bottom, height)
    layer = np.zeros((height, width, 4), np.uint8)
    product_h = bottom - top
    reach = fade * product_h  # rows over which the alpha falls to 0
    depth = min(int(np.ceil(reach)), product_h, height - bottom)  # rows of the reflection that exist and fit
    if right > left and depth > 0:
        mirrored = np.asarray(product_layer.convert("RGBA").crop((left, bottom - depth, right, bottom)))[::-1]
        ramp = strength * np.clip(1 - np.arange(depth, dtype=np.float32) / reach, 0, 1)
        alpha = mirrored[:, :, 3].astype(np.float32) * ramp[:, None]
        target = layer[bottom:bottom + depth, left:right]
        target[:, :, :3] = mirrored[:, :, :3]
        target[:, :, 3] = np.clip(alpha + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(layer, "RGBA")


def packshot(size: tuple[int, int], product_layer: Image.Image | None, box: tuple | None, style: str = "gradient",
             colors: tuple[str, ...] = (), reflect: bool | None = None) -> Image.Image:
    """The packshot's background (RGB), ready for `compose.composite`: the backdrop plus the floor reflection.

    `reflect` defaults to on for "gradient" and "color"; "white" never reflects (a marketplace white image allows
    only the product and its shadow). The contact shadow and the product itself are `composite`'s to add.
    """
    background = backdrop(size, style, colors)
    if reflect is None:
        reflect = style != "white"
    if not reflect or style == "white" or product_layer is None or box is None:
        return background
    if product_layer.size != background.size:
        raise ValueError(f"product layer is {product_layer.size}, the canvas {background.size}")
    final = background.convert("RGBA")
    final.alpha_composite(reflection(product_layer, box))
    return final.convert("RGB")
