"""A campaign file as its platform takes it: PNG where allowed and within the byte limit, else a JPEG whose quality
is searched to fit the limit with a margin; then measured against the channel's rules (rules.py).

AdGen's parameters travel with the file either way (the PNG's `adgen` chunk, the JPEG's comment), so Load from
image and `metadata.read_params` read both. Deterministic: the same PNG gives the same bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from .metadata import jpeg_bytes, read_chunk
from .rules import Check, Rules, check_decoded, check_image

BYTE_MARGIN = 0.05  # a JPEG is made to fit 95% of a byte limit: room for a platform that counts a little differently
JPEG_QUALITY = (40, 95)  # the search's range: below 40 a product photo shows blocks; above 95 only bytes grow
EXTENSIONS = {"png": "png", "jpeg": "jpg"}


@dataclass(frozen=True)
class Delivered:
    """One file to write: its bytes, format ("png" or "jpeg"), JPEG quality, and its checks."""

    data: bytes
    format: str
    quality: int | None
    checks: tuple[Check, ...]
    note: str | None = None  # why the file could not meet a rule (a warning), None when it could

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


def deliver(png: bytes, rules: Rules, size: tuple[int, int]) -> Delivered:
    """`png` (an ad AdGen made for a channel of `size`) in the format `rules` allow, fitted to the byte limit.

    The PNG is decoded once, here: the JPEG is encoded from those pixels, and a PNG that ships is checked on them
    (a JPEG that ships is checked on its own pixels, as the platform will see them)."""
    with Image.open(io.BytesIO(png)) as opened:
        opened.load()
        data, fmt, quality, note = _encode(png, opened, rules)
        checks = check_decoded(opened, len(png), rules, size) if data is png else check_image(data, rules, size)
    return Delivered(data, fmt, quality, tuple(checks), note)


def _encode(png: bytes, decoded: Image.Image, rules: Rules) -> tuple[bytes, str, int | None, str | None]:
    limit = rules.max_bytes
    budget = int(limit * (1 - BYTE_MARGIN)) if limit else None
    if "png" in rules.formats and (budget is None or len(png) <= budget):
        return png, "png", None, None
    if "jpeg" not in rules.formats:
        return png, "png", None, f"a PNG of {len(png):,} bytes is over the limit of {limit:,} and JPEG is not allowed"
    params = read_chunk(png)
    image = decoded.convert("RGB")
    if budget is None:
        return jpeg_bytes(image, params, JPEG_QUALITY[1]), "jpeg", JPEG_QUALITY[1], None
    # the highest quality that fits: a binary search (JPEG size grows with quality), never more than ~6 encodes
    low, high, best = JPEG_QUALITY[0], JPEG_QUALITY[1], None
    while low <= high:
        quality = (low + high) // 2
        data = jpeg_bytes(image, params, quality)
        if len(data) <= budget:
            best, low = (data, quality), quality + 1
        else:
            high = quality - 1
    if best is not None:
        return best[0], "jpeg", best[1], None
    data = jpeg_bytes(image, params, JPEG_QUALITY[0])
    return data, "jpeg", JPEG_QUALITY[0], (f"even at JPEG quality {JPEG_QUALITY[0]} the file is {len(data):,} bytes, "
                                           f"over the limit of {limit:,}")
