"""The product's soft mask from any photo: backdrop keying with soft edges, a segmentation model, or a refusal.

1. A photo with transparency: its own alpha, soft as it is.
2. A plain backdrop (one colour, or a smooth gradient): the backdrop is fitted from the photo's border
   (a robust quadratic per channel), the hard mask is what differs from it and is not connected to the
   border (so light parts inside the product stay), found on a copy of at most WORK_SIDE pixels; then,
   at full size and only in a band around that edge, the alpha is the pixel's position between the
   fitted backdrop B and the nearby product colour F (keying), and the edge colour is unmixed from B
   (F = B + (C - B) / alpha), so no rim of the backdrop's colour is left.
3. A busy backdrop: a segmentation model (BiRefNet-style ONNX: 1x3xHxW ImageNet-normalised in, 1x1xHxW
   out) when its file is on disk, with pymatting's foreground estimation at the soft edge (the backdrop
   is unknown there); without the model, a one-line refusal that says what to do.
The product's own pixels are never repainted: only edge pixels with alpha < 1 get an estimated colour.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import InputError, ModelError

TOLERANCE = 28  # max per-channel distance from the fitted backdrop still counted as backdrop
MIN_PART = 0.0005  # foreground specks smaller than this share of the photo are dropped
WORK_SIDE = 1024  # the hard mask and the backdrop fit are found on a copy this size at most
PLAIN_SHARE = 0.6  # a plain backdrop: at least this share of the border fits the backdrop
PRODUCT_SHARE = (0.01, 0.98)  # a mask outside this share of the photo found no product
SEGMENT_REPO = "onnx-community/BiRefNet-ONNX"  # BiRefNet, MIT licence (never RMBG-2.0: non-commercial)
SEGMENT_FILE = "onnx/model.onnx"
SEGMENT_ENV = "ADGEN_SEGMENT_MODEL"  # a local .onnx file instead of the downloaded one


@dataclass(frozen=True)
class Cut:
    """A photo's product mask: `mask` (L, 0..255, soft edges), `rgb` (edge colours cleaned), how it was found."""

    mask: Image.Image
    rgb: Image.Image
    method: str  # alpha | plain | model | user


class BusyBackdrop(InputError):
    """The backdrop is not plain and no segmentation model is installed."""


def _border(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The border pixels' colours and their (y, x) positions in 0..1."""
    h, w = rgb.shape[:2]
    ys = np.concatenate([np.zeros(w), np.full(w, h - 1), np.arange(h), np.arange(h)])
    xs = np.concatenate([np.arange(w), np.arange(w), np.zeros(h), np.full(h, w - 1)])
    ys, xs = ys.astype(int), xs.astype(int)
    return rgb[ys, xs].astype(np.float64), np.stack([ys / max(h - 1, 1), xs / max(w - 1, 1)], axis=1)


def _terms(pos: np.ndarray) -> np.ndarray:
    y, x = pos[:, 0], pos[:, 1]
    return np.stack([np.ones_like(y), y, x, y * x, y * y, x * x], axis=1)


def fit_backdrop(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """(quadratic backdrop coefficients 6x3, share of the border that fits them): a robust fit of the border."""
    colours, pos = _border(rgb)
    terms = _terms(pos)
    inliers = np.abs(colours - np.median(colours, axis=0)).max(axis=1) <= TOLERANCE  # start: the median colour
    if inliers.sum() < 12:
        inliers[:] = True
    for _ in range(3):  # refit on the pixels that fit, so a product touching the border does not bend it
        coef, *_ = np.linalg.lstsq(terms[inliers], colours[inliers], rcond=None)
        inliers = np.abs(colours - terms @ coef).max(axis=1) <= TOLERANCE
        if inliers.sum() < 12:
            break
    return coef, float(inliers.mean())


def backdrop_at(coef: np.ndarray, ys: np.ndarray, xs: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The fitted backdrop's colour at pixel rows `ys`, columns `xs` of an image of `shape` (h, w)."""
    h, w = shape
    pos = np.stack([ys / max(h - 1, 1), xs / max(w - 1, 1)], axis=1)
    return _terms(pos) @ coef


def _small(photo: Image.Image) -> Image.Image:
    scale = WORK_SIDE / max(photo.size)
    if scale >= 1:
        return photo
    size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
    return photo.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def _check_share(mask: np.ndarray, field: str = "product photo") -> None:
    share = float(mask.mean())
    if not PRODUCT_SHARE[0] <= share <= PRODUCT_SHARE[1]:
        raise InputError(field, f"no product found: the mask covers {share * 100:.1f}% of the photo (1% to 98% "
                         "allowed); upload a PNG with transparency, paint the mask, or fetch the segmentation model "
                         "with `python -m adgen download --segment`")


def hard_mask(rgb: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """The product (bool): pixels off the fitted backdrop or inside the product, not connected to the border."""
    h, w = rgb.shape[:2]
    y = (np.arange(h) / max(h - 1, 1))[:, None, None]
    x = (np.arange(w) / max(w - 1, 1))[None, :, None]
    c = coef.astype(np.float32)
    backdrop = (c[0] + c[1] * y + c[4] * y * y) + (c[2] * x + c[5] * x * x) + c[3] * (y * x)  # the grid, separably
    return off_backdrop(np.abs(rgb - backdrop).max(axis=2) <= TOLERANCE)


def off_backdrop(near: np.ndarray) -> np.ndarray:
    """The product (bool): everything not connected to the border through backdrop pixels (`near`), specks dropped."""
    from scipy import ndimage

    labels, _ = ndimage.label(near)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    product = ~np.isin(labels, edge[edge > 0])
    parts, count = ndimage.label(product)
    if count:
        sizes = ndimage.sum(product, parts, range(1, count + 1))
        product = np.isin(parts, np.flatnonzero(sizes >= MIN_PART * product.size) + 1)
    return product


def _band(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within `radius` of the mask's edge (bool)."""
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    m = mask.astype(np.uint8)
    return cv2.dilate(m, kernel) != cv2.erode(m, kernel)


def _local_colour(rgb: np.ndarray, sure: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """(each pixel's nearby mean colour over `sure` pixels only, the share of sure pixels nearby)."""
    import cv2

    k = (2 * radius + 1, 2 * radius + 1)
    weight = cv2.blur(sure.astype(np.float32), k)
    total = cv2.blur(rgb.astype(np.float32) * sure[..., None], k)
    return total / np.maximum(weight, 1e-6)[..., None], weight


def plain_cut(photo: Image.Image) -> Cut:
    """The product cut from a plain or gradient backdrop, with soft, keyed edges and unmixed edge colours."""
    import cv2

    rgb = np.asarray(photo.convert("RGB"))
    small = np.asarray(_small(photo).convert("RGB"))
    coef, share = fit_backdrop(small)
    if share < PLAIN_SHARE:
        raise BusyBackdrop("product photo", "the backdrop is not plain and no segmentation model is installed: "
                           "upload a PNG with transparency, paint the mask, or fetch the segmentation model with "
                           "`python -m adgen download --segment`")
    hard_small = hard_mask(small.astype(np.int16), coef)
    _check_share(hard_small)
    h, w = rgb.shape[:2]
    scale = w / small.shape[1]
    # 1. the hard edge at full size, and a band around it wide enough to cover the small copy's rounding
    alpha = cv2.resize(hard_small.astype(np.uint8) * 255, (w, h), interpolation=cv2.INTER_LINEAR)
    hard = alpha >= 128
    alpha[hard] = 255
    alpha[~hard] = 0
    radius = int(np.ceil(scale)) + 1
    ys, xs = np.nonzero(_band(hard, radius))
    colours = rgb[ys, xs].astype(np.float32)
    ys_s, xs_s = ys / scale, xs / scale
    # 2. the product's colour near each band pixel (from the small copy's sure product, outside the band)
    sure = hard_small & ~_band(hard_small, 2)
    near_f, weight = _local_colour(small, sure, 3)
    fy = np.minimum(ys_s.astype(int), small.shape[0] - 1)
    fx = np.minimum(xs_s.astype(int), small.shape[1] - 1)
    fore = near_f[fy, fx]
    back = backdrop_at(coef, ys_s, xs_s, small.shape[:2]).astype(np.float32)
    # 3. alpha: where the pixel sits between backdrop and product colour (keying); unsure where they are alike
    span = fore - back
    length = (span * span).sum(axis=1)
    keyed = ((colours - back) * span).sum(axis=1) / np.maximum(length, 1e-6)
    keyed = np.clip((keyed - 0.04) / 0.92, 0.0, 1.0)  # JPEG noise on the backdrop stays backdrop
    alike = (length < TOLERANCE**2) | (weight[fy, fx] < 1e-3)  # product like its backdrop, or none nearby
    a = np.where(alike, alpha[ys, xs] / 255.0, keyed)
    alpha[ys, xs] = (a * 255).round().astype(np.uint8)
    # 4. the edge colour without the backdrop in it: C = a F + (1 - a) B  =>  F = B + (C - B) / a
    unmixed = back + (colours - back) / np.maximum(a, 1e-3)[:, None]
    unmixed = np.where((a < 0.15)[:, None], fore, unmixed)  # too little product to unmix: its neighbour's colour
    clean = rgb.copy()
    clean[ys, xs] = np.clip(unmixed, 0, 255).round().astype(np.uint8)
    return Cut(Image.fromarray(alpha, "L"), Image.fromarray(clean, "RGB"), "plain")


# --- the segmentation model -------------------------------------------------------------------------------


def model_path() -> Path | None:
    """The segmentation model's file: $ADGEN_SEGMENT_MODEL, else the downloaded one; None when absent."""
    named = os.environ.get(SEGMENT_ENV)
    if named:
        return Path(named).expanduser()
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(SEGMENT_REPO, SEGMENT_FILE, cache_dir=os.environ.get("HF_HUB_CACHE"))
    return Path(found) if isinstance(found, str) else None


def download_segment_model() -> Path:
    """Fetch the segmentation model's ONNX file into the Hugging Face cache (network)."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(SEGMENT_REPO, SEGMENT_FILE))
    except Exception as exc:
        from .errors import first_line

        raise ModelError(f"segmentation model: cannot download {SEGMENT_REPO} ({first_line(exc, 160)})") from None


@functools.lru_cache(maxsize=2)
def _session(path: str, stamp: tuple):
    import onnxruntime as ort

    from .errors import first_line

    if not path.endswith(".onnx"):
        raise ModelError(f"segmentation model: {path} is not an .onnx file; AdGen loads segmentation models from "
                         "ONNX only")
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    try:
        session = ort.InferenceSession(path, providers=providers)
    except Exception as exc:
        raise ModelError(f"segmentation model: {path} is not a valid ONNX model ({first_line(exc, 120)}); delete it "
                         "and run `python -m adgen download --segment`") from None
    shape = session.get_inputs()[0].shape
    if len(shape) != 4 or shape[1] not in (3, "3"):
        raise ModelError(f"segmentation model: {path} takes {shape}; a 1x3xHxW image input is needed")
    return session


def load_model(path: Path):
    """An onnxruntime session for the model file at `path` (cached; a changed file is loaded again)."""
    try:
        stat = path.stat()
    except OSError:
        raise ModelError(f"segmentation model: file not found: {path}") from None
    return _session(str(path), (stat.st_mtime_ns, stat.st_size))


MEAN, STD = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)


def model_mask(session, photo: Image.Image) -> np.ndarray:
    """The model's product probability (float32, 0..1) at the photo's size."""
    import cv2

    spec = session.get_inputs()[0]
    h, w = (d if isinstance(d, int) and d > 0 else 1024 for d in spec.shape[2:])
    x = np.asarray(photo.convert("RGB").resize((w, h), Image.Resampling.BILINEAR), np.float32) / 255.0
    x = ((x - MEAN) / STD).transpose(2, 0, 1)[None]
    if spec.type == "tensor(float16)":
        x = x.astype(np.float16)
    out = np.asarray(session.run(None, {spec.name: x})[0], np.float32).reshape(-1, *x.shape[2:])[0]
    if out.min() < 0 or out.max() > 1:  # logits (BiRefNet's ONNX export): the sigmoid is ours to apply
        out = 1.0 / (1.0 + np.exp(-np.clip(out, -30, 30)))
    return cv2.resize(out, photo.size, interpolation=cv2.INTER_LINEAR)


def model_cut(photo: Image.Image, session) -> Cut:
    """The product cut by the segmentation model, its soft edge's colour estimated by pymatting."""
    prob = model_mask(session, photo)
    _check_share(prob >= 0.5)
    rgb = np.asarray(photo.convert("RGB"))
    edge = (prob > 0.02) & (prob < 0.98)
    clean = rgb.copy()
    if edge.any():
        from pymatting import estimate_foreground_ml  # the backdrop is unknown here: the field's estimator

        small = _small(photo)
        a_small = np.asarray(Image.fromarray((prob * 255).astype(np.uint8)).resize(small.size, Image.BILINEAR))
        fore = estimate_foreground_ml(np.asarray(small.convert("RGB"), np.float64) / 255.0, a_small / 255.0)
        ys, xs = np.nonzero(edge)
        fy = np.minimum((ys * small.height / photo.height).astype(int), small.height - 1)
        fx = np.minimum((xs * small.width / photo.width).astype(int), small.width - 1)
        clean[ys, xs] = np.clip(fore[fy, fx] * 255, 0, 255).round().astype(np.uint8)
    mask = Image.fromarray((prob * 255).round().astype(np.uint8), "L")
    return Cut(mask, Image.fromarray(clean, "RGB"), "model")


# --- the one entry point ----------------------------------------------------------------------------------


def cut(photo: Image.Image, model: Path | None = None) -> Cut:
    """The product's soft mask and clean colours: the photo's alpha, its plain backdrop keyed, or the model.

    `model`: the segmentation model's file (default `model_path()`); it is loaded only for a busy backdrop,
    so a broken model file never stops a plain-backdrop photo.
    """
    if photo.mode == "RGBA":
        alpha = photo.getchannel("A")
        if alpha.getextrema()[0] < 255:
            return Cut(alpha, photo.convert("RGB"), "alpha")
    try:
        return plain_cut(photo)
    except BusyBackdrop:
        path = model if model is not None else model_path()
        if path is None:
            raise
        return model_cut(photo, load_model(path))
