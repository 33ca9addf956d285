"""Reading user images safely: size caps, decompression-bomb check, clear errors."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, ImageOps

from .errors import InputError

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000  # ~6300x6300; larger headers are refused before any decoding


def read_image_file(path: str | Path, field: str = "image") -> bytes:
    """The bytes of an image file the user named, checked to decode."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        raise InputError(field, f"file not found: {path}") from None
    if not path.is_file():
        raise InputError(field, f"not a file: {path}")
    if size > MAX_IMAGE_BYTES:
        raise InputError(field, f"file is {size / 2**20:.1f} MB; at most {MAX_IMAGE_BYTES // 2**20} MB allowed")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(field, f"cannot read {path}: {exc.strerror}") from None
    decode_image(data, field)
    return data


def decode_image(data: bytes, field: str = "image") -> Image.Image:
    """Decode PNG/JPEG/WebP bytes to an RGB or RGBA image (EXIF rotation applied)."""
    if len(data) > MAX_IMAGE_BYTES:
        raise InputError(field, f"is {len(data) / 2**20:.1f} MB; at most {MAX_IMAGE_BYTES // 2**20} MB allowed")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                limit = MAX_IMAGE_PIXELS // 10**6
                raise InputError(field, f"is {width}x{height} pixels; at most {limit} megapixels allowed")
            image.load()
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        limit = MAX_IMAGE_PIXELS // 10**6
        raise InputError(field, f"is too large to decode safely; at most {limit} megapixels") from None
    except Exception:  # Pillow raises many kinds for a non-image or a damaged one
        raise InputError(field, "is not a readable PNG, JPEG or WebP image") from None
    image = ImageOps.exif_transpose(image)
    keep_alpha = image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info)
    return image.convert("RGBA" if keep_alpha else "RGB")


def fit_to(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale and centre-crop `image` to exactly width x height (like a cover fit)."""
    return ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS)
