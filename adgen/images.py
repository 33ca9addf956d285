"""Reading user images safely: size caps, decompression-bomb check, clear errors.

Photos as people have them: PNG, JPEG, WebP, the iPhone's HEIC/HEIF (pillow-heif, registered as
Pillow's opener on first use) and AVIF (Pillow's own); 16-bit and float modes scaled to 8 bits.
"""

from __future__ import annotations

import functools
import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, features

from .errors import InputError

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000  # ~6300x6300; larger headers are refused before any decoding
# The page's upload: "image" is the browser's image/* (HEIC on an iPhone); the extensions are named too, because
# a desktop browser and Python's mimetypes don't count .heic/.heif/.avif as images.
UPLOAD_TYPES = ["image", ".png", ".jpg", ".jpeg", ".webp", ".heic", ".heif", ".avif"]


@functools.cache
def read_formats() -> tuple[str, ...]:
    """The image formats this installation decodes (HEIF's opener is registered here, once)."""
    names = ["PNG", "JPEG"]
    if features.check("webp"):
        names.append("WebP")
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()  # Pillow's own registry: HEIC/HEIF open like any other format
        names.append("HEIC/HEIF")
    except ImportError:  # requirements.txt pins it; without it HEIC is refused like any unreadable file
        pass
    if features.check("avif"):
        names.append("AVIF")
    return tuple(names)


def formats_text() -> str:
    """The readable formats as one list, e.g. "PNG, JPEG, WebP, HEIC/HEIF, AVIF" (the same in every language)."""
    return ", ".join(read_formats())


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
    """Decode image bytes (see `read_formats`) to an RGB or RGBA image (EXIF rotation applied, 16-bit scaled)."""
    if len(data) > MAX_IMAGE_BYTES:
        raise InputError(field, f"is {len(data) / 2**20:.1f} MB; at most {MAX_IMAGE_BYTES // 2**20} MB allowed")
    read_formats()
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
        raise InputError(field, f"is not a readable image (AdGen reads {formats_text()})") from None
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        image = _to_8bit(image)
    keep_alpha = image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info)
    return image.convert("RGBA" if keep_alpha else "RGB")


def _to_8bit(image: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit integer or float grey image as 8-bit L (Pillow's own convert clips it to white)."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F" and values.size and np.nanmax(values) <= 1.0:
        values = values * 255.0  # a float image in 0..1
    elif image.mode.startswith("I;16") or (values.size and values.max() > 255):
        values = values / 257.0  # 0..65535 onto 0..255
    return Image.fromarray(np.clip(np.nan_to_num(values), 0, 255).round().astype(np.uint8), "L")


def fit_to(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale and centre-crop `image` to exactly width x height (like a cover fit)."""
    return ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS)
