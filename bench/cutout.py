"""The cutout's quality and speed on drawn products with a known anti-aliased outline.

`python -m bench.cutout` prints the quality table of docs/BENCHMARKS.md (before = the hard 0/255 mask
of AdGen before soft edges, after = `segment.cut`); `speed_row` is the bench row (a 12-megapixel photo's
soft cutout vs decoding it). The tests use `drawn` and `scores` on small images.
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adgen.errors import InputError  # noqa: E402
from adgen.segment import cut  # noqa: E402

BACKDROPS = ("plain", "coloured", "gradient", "busy")
PRODUCT_RGB = (200, 40, 50)  # a red bottle with a white label
LABEL_RGB = (245, 245, 240)


def drawn(size: tuple[int, int], backdrop: str, seed: int = 0) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """(photo RGB, true alpha 0..1, true product colour HxWx3 0..255): a bottle drawn 4x larger, then reduced."""
    w, h = size
    big = Image.new("L", (4 * w, 4 * h), 0)
    draw = ImageDraw.Draw(big)
    cx = 2 * w
    draw.rounded_rectangle((cx - 0.8 * w, 1.2 * h, cx + 0.8 * w, 3.6 * h), radius=0.3 * w, fill=255)
    draw.rectangle((cx - 0.3 * w, 0.6 * h, cx + 0.3 * w, 1.4 * h), fill=255)  # the neck
    draw.ellipse((cx - 0.45 * w, 0.35 * h, cx + 0.45 * w, 0.75 * h), fill=255)  # the cap
    alpha = np.asarray(big.reduce(4), np.float64) / 255.0  # an anti-aliased outline, like a lens gives
    fore = np.empty((h, w, 3))
    fore[:] = PRODUCT_RGB
    fore[int(0.5 * h):int(0.7 * h), int(0.35 * w):int(0.65 * w)] = LABEL_RGB  # light parts inside stay
    back = _backdrop(size, backdrop, seed)
    photo = alpha[..., None] * fore + (1 - alpha[..., None]) * back
    rng = np.random.default_rng(seed)
    photo = np.clip(photo + rng.normal(0, 1.5, photo.shape), 0, 255)  # a camera's noise
    return Image.fromarray(photo.round().astype(np.uint8), "RGB"), alpha, fore


def _backdrop(size: tuple[int, int], kind: str, seed: int) -> np.ndarray:
    w, h = size
    if kind == "plain":
        return np.full((h, w, 3), 250.0)
    if kind == "coloured":
        return np.broadcast_to(np.array([40.0, 90.0, 200.0]), (h, w, 3)).copy()  # a blue card
    if kind == "gradient":
        t = np.linspace(0, 1, h)[:, None, None]
        return (1 - t) * np.array([235.0, 235.0, 245.0]) + t * np.array([150.0, 160.0, 190.0]) + 0 * np.zeros((h, w, 3))
    rng = np.random.default_rng(seed + 1)  # busy: a wooden table under a cluttered wall
    image = Image.fromarray(rng.integers(0, 255, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)).resize(
        (w, h), Image.Resampling.NEAREST).filter(ImageFilter.GaussianBlur(1))
    back = np.asarray(image, np.float64)
    grain = 25 * np.sin(np.arange(w) / 3.0)[None, :, None]
    back[h // 2:] = np.clip(np.array([150.0, 105.0, 60.0]) + grain + rng.normal(0, 12, (h - h // 2, w, 3)), 0, 255)
    return back


def hard_before(photo: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """AdGen's cutout before soft edges (compose.auto_mask until issue 19, kept here as the baseline): the border's
    median colour keyed out at a hard 0/255 edge, the photo's own colours, any backdrop accepted."""
    from adgen.segment import off_backdrop

    rgb = np.asarray(photo.convert("RGB"), dtype=np.int16)
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    product = off_backdrop(np.abs(rgb - np.median(border, axis=0)).max(axis=2) <= 28)  # the same tolerance then
    if not 0.01 <= product.mean() <= 0.98:
        raise InputError("product photo", "no plain backdrop to remove")
    return product.astype(np.float64), rgb.astype(np.float64)


def scores(alpha: np.ndarray, rgb: np.ndarray, true_alpha: np.ndarray, true_fore: np.ndarray) -> dict[str, float]:
    """IoU of the mask, mean alpha error in the band around the outline, colour error on white in that band."""
    from scipy import ndimage

    ours, truth = alpha >= 0.5, true_alpha >= 0.5
    iou = (ours & truth).sum() / max((ours | truth).sum(), 1)
    edge = (true_alpha > 0) & (true_alpha < 1)
    band = ndimage.binary_dilation(edge, iterations=2)
    white = 255.0
    on_white = alpha[..., None] * rgb + (1 - alpha[..., None]) * white
    true_on_white = true_alpha[..., None] * true_fore + (1 - true_alpha[..., None]) * white
    return {"iou": float(iou), "alpha_error": float(np.abs(alpha - true_alpha)[band].mean()),
            "colour_error": float(np.abs(on_white - true_on_white)[band].mean()),
            "soft": float(((alpha > 0.02) & (alpha < 0.98))[band].mean())}


def after(photo: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """The soft cut: alpha 0..1 and the cleaned colours."""
    found = cut(photo)
    return np.asarray(found.mask, np.float64) / 255.0, np.asarray(found.rgb, np.float64)


def table(size: tuple[int, int] = (480, 600)) -> str:
    """The quality table (markdown) over the four backdrops, before and after."""
    rows = ["| backdrop | cutout | IoU | alpha error (edge band) | colour error on white (edge band, /255) |"
            " soft edge pixels |", "| --- | --- | --- | --- | --- | --- |"]
    for backdrop in BACKDROPS:
        photo, true_alpha, true_fore = drawn(size, backdrop)
        for name, method in (("before (hard 0/255)", hard_before), ("after (soft, unmixed)", after)):
            try:
                s = scores(*method(photo), true_alpha, true_fore)
                rows.append(f"| {backdrop} | {name} | {s['iou']:.3f} | {s['alpha_error']:.3f} | "
                            f"{s['colour_error']:.1f} | {s['soft'] * 100:.0f}% |")
            except InputError as exc:
                rows.append(f"| {backdrop} | {name} | refused: {exc.message.split(':')[0]} | | | |")
    return "\n".join(rows)


def speed_row(runs: int = 3, size: tuple[int, int] = (4032, 3024)) -> tuple[str, str, str, str]:
    """(what, measured, ratio, note): the soft cutout of a phone-size JPEG vs decoding it, medians of `runs`."""
    from adgen.images import decode_image

    photo, _, _ = drawn((size[0] // 4, size[1] // 4), "coloured")
    photo = photo.resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=90)
    data = buffer.getvalue()
    decoded = decode_image(data)
    cut(decoded)  # warm-up: imports (scipy, cv2) are not the cutout's cost
    decode_s, cut_s = [], []
    for _ in range(runs):
        start = time.perf_counter()
        decode_image(data)
        decode_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        cut(decoded)
        cut_s.append(time.perf_counter() - start)
    d, c = statistics.median(decode_s), statistics.median(cut_s)
    return (f"soft cutout of a {size[0]}x{size[1]} photo vs decoding it", f"{c:.2f} s vs {d:.2f} s",
            f"{c / d:.1f}x", "<= 10x (then cached per photo)")


if __name__ == "__main__":
    print(table())
    print("| " + " | ".join(speed_row()) + " |")
