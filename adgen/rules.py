"""A platform's rules for an image (background, copy, logo, product fill, formats, bytes, pixels) and the checker
that measures a file against them.

The rules are data: the `rules:` block of a channel file (presets/channels/), checked by `Rules` (unknown or
impossible rules refused at load). `check_image` measures any image, AdGen's or a seller's own photo, and
returns one `Check` per rule: what was measured, what is allowed, pass or fail, or `None` where it cannot be
measured from the pixels (copy or a logo on a photo AdGen did not make: that needs OCR, which AdGen does not
have). Draws nothing; no torch, no gradio.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from typing import Annotated, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator

FORMATS = ("png", "jpeg")
WHITE_TOLERANCE = 5  # a border pixel within 5 of #FFFFFF on every channel counts as white (JPEG's rounding)
PLAIN_TOLERANCE = 12  # a border pixel within 12 of the border's median colour counts as the same plain colour
BORDER_SHARE = 0.995  # share of the border that must be white (or plain) to pass
PRODUCT_TOLERANCE = 24  # a pixel this far from the backdrop's colour belongs to the product (or its shadow)
ASPECT_TOLERANCE = 0.01

Pixels = Annotated[tuple[Annotated[int, Field(ge=1, le=20000)], Annotated[int, Field(ge=1, le=20000)]], Field()]


class Rules(BaseModel):
    """What a platform allows in an image of one channel (each rule optional; the defaults allow everything)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    background: Literal["any", "plain", "white"] = "any"  # white: pure #FFFFFF but the product and its shadow
    copy_allowed: bool = Field(True, alias="copy")  # False: no text on the image (no copy, no badges)
    logo: bool = True  # False: no logo on the image
    min_fill: Annotated[float, Field(gt=0.0, le=1.0)] | None = None  # the product's extent, share of the frame
    formats: tuple[Literal["png", "jpeg"], ...] = Field(("png",), min_length=1)  # preferred first
    max_bytes: Annotated[int, Field(ge=10_000)] | None = None
    min_pixels: Pixels | None = None  # at least this width and height (a seller's photo may be larger)
    max_pixels: Pixels | None = None  # at most this width and height
    aspect: bool = False  # with min/max pixels: the file must keep the channel's aspect (a 4:5 slot)

    @model_validator(mode="after")
    def _possible(self) -> Rules:
        low, high = self.min_pixels, self.max_pixels
        if low and high and (low[0] > high[0] or low[1] > high[1]):
            raise ValueError(f"min_pixels {list(self.min_pixels)} exceeds max_pixels {list(self.max_pixels)}")
        if len(set(self.formats)) != len(self.formats):
            raise ValueError(f"formats lists one twice ({', '.join(self.formats)})")
        return self

    def fits(self, width: int, height: int) -> str | None:
        """Why a channel of `width` x `height` can never pass these rules; None when it can."""
        if self.min_pixels and (width < self.min_pixels[0] or height < self.min_pixels[1]):
            return f"{width}x{height} is below min_pixels {list(self.min_pixels)}"
        if self.max_pixels and (width > self.max_pixels[0] or height > self.max_pixels[1]):
            return f"{width}x{height} is above max_pixels {list(self.max_pixels)}"
        return None


@dataclass(frozen=True)
class Check:
    """One rule measured on one file: `passed` None when it could not be measured."""

    rule: str
    measured: str
    allowed: str
    passed: bool | None

    def __post_init__(self) -> None:
        if self.passed is not None:  # numpy's bool_ is no JSON
            object.__setattr__(self, "passed", bool(self.passed))

    def to_json(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        mark = {True: "✓", False: "✗", None: "–"}[self.passed]
        return f"{mark} {self.rule}: {self.measured} (allowed: {self.allowed})"


def check_image(data: bytes, rules: Rules, size: tuple[int, int], drawn: dict | None = None) -> list[Check]:
    """Measure the file `data` against `rules` for a channel of `size`; `drawn` ({"copy": bool, "logo": bool})
    is what AdGen's layout put on it (read from its parameters when not given; unknown on a seller's photo)."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return check_decoded(image, len(data), rules, size, drawn)


def check_decoded(image: Image.Image, nbytes: int, rules: Rules, size: tuple[int, int],
                  drawn: dict | None = None) -> list[Check]:
    """`check_image` on a file already decoded (`image`, opened from its `nbytes` bytes): a caller holding the
    pixels never decodes the file twice."""
    fmt = (image.format or "?").lower()
    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    info = dict(image.info)
    height, width = rgb.shape[:2]
    if drawn is None:
        drawn = _drawn_of(info)
    checks = [_pixels(rules, size, width, height),
              Check("format", "JPEG" if fmt == "jpeg" else fmt.upper(), ", ".join(f.upper() for f in rules.formats),
                    fmt in rules.formats)]
    if rules.max_bytes is not None:
        checks.append(Check("bytes", _bytes(nbytes), f"at most {_bytes(rules.max_bytes)}",
                            nbytes <= rules.max_bytes))
    border = _border(rgb)
    if rules.background == "white":
        share = float((np.abs(border - 255).max(axis=1) <= WHITE_TOLERANCE).mean())
        checks.append(Check("background", f"{share:.1%} of the border white", "pure white #FFFFFF",
                            share >= BORDER_SHARE))
    elif rules.background == "plain":
        share = _plain_share(border)
        checks.append(Check("background", f"{share:.1%} of the border one colour", "a plain backdrop",
                            share >= BORDER_SHARE))
    for rule, allowed in (("copy", rules.copy_allowed), ("logo", rules.logo)):
        if not allowed:
            found = drawn.get(rule)
            checks.append(Check(rule, "not measured (no AdGen parameters; needs OCR)" if found is None else
                                ("drawn" if found else "none"), "none", None if found is None else not found))
    if rules.min_fill is not None:
        fill = product_fill(rgb)
        checks.append(Check("fill", "not measured (the backdrop is not plain)" if fill is None else f"{fill:.1%}",
                            f"at least {rules.min_fill:.0%}", None if fill is None else fill >= rules.min_fill))
    return checks


def product_fill(rgb: np.ndarray) -> float | None:
    """The product's extent on a plain backdrop: its bounding box's larger share of the frame's width or height
    (the way marketplaces mean "fills 85%"); None when the border is not one plain colour."""
    border = _border(rgb)
    if _plain_share(border) < BORDER_SHARE:
        return None
    backdrop = np.median(border, axis=0)
    ys, xs = np.nonzero(np.abs(rgb - backdrop).max(axis=2) > PRODUCT_TOLERANCE)
    if len(xs) == 0:
        return 0.0
    height, width = rgb.shape[:2]
    return float(max((xs.max() + 1 - xs.min()) / width, (ys.max() + 1 - ys.min()) / height))


def failed(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.passed is False]


def _pixels(rules: Rules, size: tuple[int, int], width: int, height: int) -> Check:
    measured = f"{width}x{height}"
    if rules.min_pixels is None and rules.max_pixels is None:  # the platform asks for this exact size
        return Check("pixels", measured, f"{size[0]}x{size[1]}", (width, height) == tuple(size))
    allowed, ok = [], True
    if rules.min_pixels:
        allowed.append(f"at least {rules.min_pixels[0]}x{rules.min_pixels[1]}")
        ok &= width >= rules.min_pixels[0] and height >= rules.min_pixels[1]
    if rules.max_pixels:
        allowed.append(f"at most {rules.max_pixels[0]}x{rules.max_pixels[1]}")
        ok &= width <= rules.max_pixels[0] and height <= rules.max_pixels[1]
    if rules.aspect:
        allowed.append(f"aspect {size[0]}:{size[1]}")
        ok &= abs(width / height / (size[0] / size[1]) - 1) <= ASPECT_TOLERANCE
    return Check("pixels", measured, ", ".join(allowed), bool(ok))


def border_width(size: tuple[int, int]) -> int:
    """The width of the frame whose whiteness is measured: 2% of the shorter side, at least 2 px."""
    return max(2, round(0.02 * min(size)))


def _border(rgb: np.ndarray) -> np.ndarray:
    """The pixels of the frame `border_width` wide around the image, as (n, 3)."""
    height, width = rgb.shape[:2]
    d = border_width((width, height))
    return np.concatenate([rgb[:d].reshape(-1, 3), rgb[-d:].reshape(-1, 3),
                           rgb[d:-d, :d].reshape(-1, 3), rgb[d:-d, -d:].reshape(-1, 3)])


def _plain_share(border: np.ndarray) -> float:
    return float((np.abs(border - np.median(border, axis=0)).max(axis=1) <= PLAIN_TOLERANCE).mean())


def _bytes(n: int) -> str:
    return f"{n / 1_000_000:.2f} MB" if n >= 1_000_000 else f"{n / 1000:.0f} KB"


def _drawn_of(info: dict) -> dict:
    """What AdGen's layout drew on the image, from its parameters (PNG text chunk or JPEG comment); {} if none."""
    raw = info.get("adgen") or info.get("comment")
    try:
        params = json.loads(raw.decode() if isinstance(raw, bytes) else raw) if raw else {}
        ad = params.get("ad") or {}
        return {"copy": ad["copy_drawn"], "logo": ad["logo_drawn"]}
    except (ValueError, AttributeError, KeyError, TypeError):
        return {}
