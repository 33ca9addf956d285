"""Generation parameters in PNG text chunks, written and read back.

Two chunks, like AUTOMATIC1111 plus an exact one: `parameters` (human-readable, A1111's layout, so
other tools show it) and `adgen` (JSON, read back into an `AdRequest`). Nothing time-dependent is
written, so the same request gives the same bytes.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import reprlib
from pathlib import Path

from PIL import Image, PngImagePlugin

from .errors import InputError
from .prompts import Settings
from .request import AdRequest, Product

FORMAT_VERSION = 1


def params_of(request: AdRequest, settings: Settings, seed: int, model: str, key: str, lora: str | None) -> dict:
    """The JSON-able parameters of image `seed` of `request` run with `settings`."""
    return {
        "adgen": FORMAT_VERSION,
        "product": dataclasses.asdict(request.product),
        "preset": request.preset,
        "lora": lora,
        "lora_scale": settings.lora_scale,
        "prompt_override": request.prompt,
        "product_focus": request.product_focus,
        "seed": seed,
        "width": settings.width,
        "height": settings.height,
        "steps": settings.steps,
        "strength": request.strength if request.image is not None else None,
        "draw_copy": request.draw_copy,
        "variation": settings.variation,
        "same_scene": request.same_scene,
        "scenes_written": list(request.scenes) or None,  # the writer's scene variations, when they were used
        "prompt_written": request.enhanced,  # the prompt was written by the writer (Enhance prompt, --enhance)
        "prompt": settings.prompt,
        "model": model,
        "key": key,
    }


def a1111_text(params: dict) -> str:
    """A1111's 'parameters' layout: the prompt, then 'Key: value, ...' on the last line."""
    fields = [
        f"Steps: {params['steps']}", "Sampler: FlowMatchEuler", "CFG scale: 0", f"Seed: {params['seed']}",
        f"Size: {params['width']}x{params['height']}", f"Model: {params['model']}", f"Style: {params['preset']}",
    ]
    if params.get("lora"):
        fields.append(f"LoRA: {params['lora']}")
    if params.get("lora_scale") is not None:
        fields.append(f"LoRA scale: {params['lora_scale']}")
    if params.get("strength") is not None:
        fields.append(f"Denoising strength: {params['strength']}")
    if params.get("quantize"):
        fields.append(f"Quantization: {params['quantize']}")
    return f"{params['prompt']}\n" + ", ".join(fields)


def png_bytes(image: Image.Image, params: dict) -> bytes:
    """Encode `image` as PNG with both parameter chunks."""
    info = PngImagePlugin.PngInfo()
    info.add_itxt("parameters", a1111_text(params))
    info.add_itxt("adgen", json.dumps(params, ensure_ascii=False, sort_keys=True))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def jpeg_bytes(image: Image.Image, params: dict, quality: int) -> bytes:
    """Encode `image` as a JPEG at `quality` with the parameters in its comment (COM) segment: the same JSON as
    the PNG's `adgen` chunk, so `read_params` and Load from image read a JPEG AdGen wrote (a platform's byte
    limit may need one)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality, optimize=True,
                              comment=json.dumps(params, ensure_ascii=False, sort_keys=True).encode())
    return buffer.getvalue()


# JSON types by the name an error uses for them.
_IS = {
    "text": lambda v: isinstance(v, str),
    "a whole number": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "a number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
    "true or false": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "a list of text": lambda v: isinstance(v, list) and all(isinstance(item, str) for item in v),
    "a width and a height": lambda v: isinstance(v, list) and len(v) == 2 and all(
        isinstance(item, int) and not isinstance(item, bool) and item > 0 for item in v),
    "an object": lambda v: isinstance(v, dict),
}
_PLACEMENT = {"x": ("a number",), "y": ("a number",), "scale": ("a number",)}
_AD = {"subcopy": ("text",), "text_style": ("text",), "text_position": ("text",), "background": ("text",),
       "placement": _PLACEMENT, "photo?": ("true or false",), "size?": ("a width and a height",),
       "channel?": ("text", "null"), "packshot?": ("text", "null"), "brand?": ("an object", "null"),
       "copy_drawn?": ("true or false",), "logo_drawn?": ("true or false",)}
_PRODUCT = {"name": ("text",), "category": ("text",), "features": ("a list of text",), "audience": ("text",),
            "scene": ("text",), "colors": ("text",), "copy": ("text",)}
# What `params_of` writes and readers (`request_from_params`, the app's "Load from image") rely on;
# a "?" marks a field they can do without. Nested objects are closed, the top level is not.
PARAMS = {
    "product": _PRODUCT, "preset": ("text",), "lora?": ("text", "null"), "lora_scale": ("a number", "null"),
    "prompt_override": ("text", "null"), "product_focus": ("true or false",), "seed": ("a whole number",),
    "width": ("a whole number",), "height": ("a whole number",), "steps": ("a whole number",),
    "strength?": ("a number", "null"), "draw_copy?": ("true or false",),
    "variation?": ("a whole number", "null"), "same_scene?": ("true or false",), "prompt": ("text",),
    "scenes_written?": ("a list of text", "null"), "prompt_written?": ("true or false",),
    "model?": ("text",), "quantize?": ("text",),
    "key?": ("text",), "ad?": _AD,
}


def read_chunk(source: bytes | str | Path) -> dict:
    """The `adgen` JSON object of any PNG AdGen wrote (an image or an ad's step), its version checked."""
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else source
    try:
        with Image.open(io.BytesIO(data)) as image:
            # Our chunks precede the pixel data, so `info` has them without decoding the image;
            # `text` (which decodes) is the fallback for files re-saved by other tools.
            text = image.info.get("adgen") if image.format == "PNG" else None
            if text is None and image.format == "PNG":
                text = image.text.get("adgen")  # type: ignore[attr-defined]
            if image.format == "JPEG":  # a JPEG AdGen wrote for a platform's byte limit: the JSON in its comment
                comment = image.info.get("comment") or b""
                text = comment.decode("utf-8", "replace") if comment.startswith(b"{") else None
    except Exception:  # Pillow raises many kinds for a non-image
        raise InputError("image", "not a readable PNG") from None
    if not text:
        raise InputError("image", "has no AdGen parameters (only PNGs saved by AdGen carry them)")
    try:
        params = json.loads(text)
    except json.JSONDecodeError:
        raise InputError("image", "its AdGen parameters are damaged (not JSON)") from None
    if not isinstance(params, dict):
        raise InputError("image", "its AdGen parameters are damaged: must be a JSON object "
                         f"(got {reprlib.repr(params)})")
    version = params.get("adgen")
    if version != FORMAT_VERSION or isinstance(version, bool):  # True == 1 in Python
        raise InputError("image", f"its AdGen parameters are of an unknown version ({version!r})")
    return params


def read_params(source: bytes | str | Path) -> dict:
    """The parameters of an image made by AdGen, every field a reader uses checked against `PARAMS`."""
    params = read_chunk(source)
    if "step" in params and "product" not in params:  # an ad's intermediate (cutout, mask, ...)
        raise InputError("image", f"is the {params['step']} step of an ad, not an image: load the final ad")
    problem = _problem(params, PARAMS, "")
    if problem:
        raise InputError("image", f"its AdGen parameters are damaged: {problem}")
    return params


def _problem(value: object, schema: dict | tuple, where: str) -> str | None:
    """What is wrong with `value` at `where` by `schema` (fields of an object, or the types allowed); None if fine."""
    if isinstance(schema, tuple):
        if any(_IS[kind](value) for kind in schema):
            return None
        return f"{where} must be {' or '.join(schema)} (got {reprlib.repr(value)})"
    if not isinstance(value, dict):
        return f"{where} must be an object (got {reprlib.repr(value)})"
    names = {name.rstrip("?") for name in schema}
    unknown = sorted(set(value) - names) if where else []
    if unknown:
        return f"{where} has an unknown field {unknown[0]!r}"
    for name, inner in schema.items():
        field = name.rstrip("?")
        path = f"{where}.{field}" if where else field
        if field not in value:
            if name.endswith("?"):
                continue
            return f"{path} is missing"
        problem = _problem(value[field], inner, path)
        if problem:
            return problem
    return None


def request_from_params(params: dict, image: bytes | None = None) -> AdRequest:
    """Rebuild the request that made one image (count 1, its own seed). An img2img image needs its photo."""
    try:
        return AdRequest(
            product=Product(**params["product"]),
            preset=params["preset"],
            lora_scale=params["lora_scale"],
            prompt=params["prompt_override"],
            product_focus=params["product_focus"],
            seed=params["seed"],
            width=params["width"],
            height=params["height"],
            steps=params["steps"],
            image=image,
            strength=params["strength"] if params.get("strength") is not None else 0.6,
            draw_copy=params.get("draw_copy", True),
            # The image's own scene: its variation as image 0 (none recorded: the same scene as the prompt says).
            variation=params.get("variation") or 0,
            same_scene=params.get("same_scene", False) or params.get("variation") is None,
            scenes=tuple(params.get("scenes_written") or ()),
            enhanced=params.get("prompt_written", False) and params["prompt_override"] is not None,
        )
    except (KeyError, TypeError) as exc:
        raise InputError("image", f"its AdGen parameters lack a field ({exc})") from None


def restamp(data: bytes, params: dict) -> bytes:
    """`data` with `params` as its parameters: unchanged when they already are, else re-encoded (same pixels).

    The cache is keyed by what changes pixels, so one entry can serve requests that differ
    elsewhere (two products under one prompt override); each saved PNG must carry its own request.
    """
    try:
        if read_params(data) == json.loads(json.dumps(params, ensure_ascii=False)):  # tuples read back as lists
            return data
    except InputError:
        pass
    with Image.open(io.BytesIO(data)) as image:
        return png_bytes(image.copy(), params)
