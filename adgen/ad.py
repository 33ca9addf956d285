"""The three-step ad: (1) background around the product, (2) the copy layer, (3) the composite.

Each step's output is cached under its own key, so one step can be redone alone: new copy on the
same background re-runs steps 2-3 on the CPU (the pipeline is not touched); a new background
seed re-runs step 1. Cutout and mask are kept too.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import time
from dataclasses import dataclass, field
from typing import Literal

from PIL import Image, PngImagePlugin

from .compose import Placement, composite, cutout, inpaint_inputs, place, product_mask
from .engine import Engine, Picture, Progress, Result
from .errors import GenerationStopped, InputError
from .images import decode_image
from .jobs import Job
from .metadata import params_of, png_bytes, restamp
from .presets import get_preset
from .prompts import settings_for
from .request import AdRequest, check_text, image_key
from .typography import POSITIONS, TextStyle, find_font, font_id, layout_copy, load_text_styles, render_copy

STEPS = ("cutout", "mask", "background", "copy_layer", "final")


@dataclass(frozen=True)
class AdSpec:
    """An ad: the image request (product with its copy, style, seed, size, photo) plus the layout."""

    request: AdRequest
    subcopy: str = ""
    text_style: str = "extrude_3d"
    text_position: str = "auto"
    placement: Placement = field(default_factory=Placement)
    background: Literal["inpaint", "t2i"] = "inpaint"
    mask: bytes | None = field(default=None, repr=False)  # a user-corrected product mask (white = product)

    def __post_init__(self) -> None:
        object.__setattr__(self, "subcopy", check_text("sub-copy", self.subcopy))
        if self.text_position not in POSITIONS:
            raise InputError("text position", f"must be one of {', '.join(POSITIONS)} (got {self.text_position!r})")
        if self.background not in ("inpaint", "t2i"):
            raise InputError("background", f"must be 'inpaint' or 't2i' (got {self.background!r})")
        if self.mask is not None and self.request.image is None:
            raise InputError("product mask", "needs a product photo")


class AdMaker:
    """Runs the three steps for an `AdSpec` with the engine (step 1) and Pillow (steps 2-3)."""

    def __init__(self, engine: Engine, text_styles: dict[str, TextStyle] | None = None):
        self.engine = engine
        self.text_styles = text_styles if text_styles is not None else load_text_styles()

    def make(self, spec: AdSpec, progress: Progress | None = None, use_cache: bool = True,
             job: Job | None = None) -> Result:
        """The ad's images; `job` owns Stop across all of them (a new one when not given)."""
        with self.engine.jobs.open(job=job) as running:
            return self._make(spec, progress, use_cache, running)

    def _make(self, spec: AdSpec, progress: Progress | None, use_cache: bool, job: Job) -> Result:
        start = time.perf_counter()
        style = self.text_styles.get(spec.text_style)
        if style is None:
            raise InputError("text style", f"unknown {spec.text_style!r}; choose one of {', '.join(self.text_styles)}")
        request = dataclasses.replace(spec.request.resolved(), draw_copy=False)  # the copy is its own layer
        photo = decode_image(request.image, "product photo") if request.image is not None else None
        user_mask = decode_image(spec.mask, "product mask").convert("L") if spec.mask is not None else None
        settings = settings_for(request, get_preset(self.engine.presets, request.preset))
        if request.product.copy or spec.subcopy:  # bad copy is refused before any GPU work
            layout_copy(request.product.copy, spec.subcopy, (settings.width, settings.height), style)
        cache = self.engine.cache if use_cache else None
        images = []
        for n, seed in enumerate(request.seeds()):
            step_progress = (lambda d, t, n=n: progress(n * t + d, len(request.seeds()) * t)) if progress else None
            one = dataclasses.replace(request, seed=seed, count=1, variation=request.variation + n)
            try:
                images.append(self._one(spec, one, settings, photo, user_mask, style, cache, step_progress,
                                        use_cache, job))
            except GenerationStopped as stopped:  # count steps over the whole ad, as the progress does
                count = len(request.seeds())
                raise GenerationStopped(n * stopped.total + stopped.step, count * stopped.total,
                                        stopped.reason) from None
        return Result(tuple(images), settings, self.engine.source.label, self.engine.source.is_demo,
                        time.perf_counter() - start)

    def _one(self, spec, request, settings, photo, user_mask, style, cache, progress, use_cache, job) -> Picture:
        files, keys, cached = {}, {}, {}
        layer = box = None
        # 0. cutout (and the mask it came from), from the photo's alpha or its plain backdrop
        if photo is not None:
            photo_id = hashlib.sha256(request.image).hexdigest()
            mask_id = hashlib.sha256(spec.mask).hexdigest() if spec.mask is not None else "auto"
            make_mask = functools.cache(lambda: product_mask(photo, user_mask))  # at most once, only on a miss
            key = image_key(step="cutout", photo=photo_id, mask=mask_id)
            product = self._step(cache, "cutout", key, files, keys, cached, lambda: cutout(photo, make_mask()))
            # The photo-sized mask the cutout was cut with, cached too (auto_mask takes seconds on a large
            # photo); it is part of the cutout step, so its own key and cache status are not reported.
            self._step(cache, "mask", image_key(step="mask", photo=photo_id, mask=mask_id), files, {}, {}, make_mask)
        # 1. background, from the one pipeline (inpaint around the placed product, or text-to-image)
        if photo is not None and spec.background == "inpaint":
            layer, box = place(product, (settings.width, settings.height), spec.placement)
            canvas, repaint = inpaint_inputs(layer)
            step1 = dataclasses.replace(request, image=_png(canvas, {}), mask=_png(repaint, {}), strength=1.0)
        else:
            step1 = dataclasses.replace(request, image=None, mask=None)
        generated = self.engine.generate(step1, progress=progress, use_cache=use_cache, job=job).images[0]
        files["background"], keys["background"], cached["background"] = generated.png, generated.key, generated.cached
        background = Image.open(io.BytesIO(generated.png)).convert("RGB")
        if photo is not None and layer is None:
            layer, box = place(product, background.size, spec.placement)
        # 2. the copy layer (Pillow); `auto` keeps it off the product and on the calmest band
        copy = request.product.copy
        if copy or spec.subcopy:
            font = find_font(style.weight)
            key = image_key(step="copy", copy=copy, subcopy=spec.subcopy, style=style.model_dump(),
                            font=font_id(font), size=background.size,
                            position=spec.text_position, avoid=box,
                            background=keys["background"] if spec.text_position == "auto" else None)
            copy_layer = self._step(cache, "copy_layer", key, files, keys, cached, lambda: render_copy(
                copy, spec.subcopy, background.size, style, spec.text_position, box, background)[0])
        else:
            copy_layer = None
        # 3. the composite: background + shadow + the product's own pixels + copy
        key = image_key(step="final", background=keys["background"], copy=keys.get("copy_layer"),
                        cutout=keys.get("cutout"), placement=dataclasses.asdict(spec.placement) if photo else None)
        params = params_of(request, settings, request.seed, self.engine.source.label, key, None)
        params["ad"] = {"subcopy": spec.subcopy, "text_style": spec.text_style, "text_position": spec.text_position,
                        "placement": dataclasses.asdict(spec.placement), "background": spec.background,
                        "photo": photo is not None}
        data = cache.get(key) if cache else None
        cached["final"] = data is not None
        if data is not None:  # same pixels; the PNG carries this request's own parameters
            data = restamp(data, params)
        else:
            data = png_bytes(composite(background, layer, box, copy_layer), params)
            if cache:
                cache.put(key, data)
        return Picture(data, request.seed, key, cached.pop("final"), steps=files, step_keys=keys, step_cached=cached)

    def _step(self, cache, name, key, files, keys, cached, make):
        """A cached CPU step: the stored PNG if intact, else `make()` stored under `key`."""
        data = cache.get(key) if cache else None
        cached[name] = data is not None
        if data is None:
            image = make()
            data = _png(image, {"step": name, "key": key})
            if cache:
                cache.put(key, data)
        files[name], keys[name] = data, key
        return Image.open(io.BytesIO(data)).copy()


def _png(image: Image.Image, params: dict) -> bytes:
    """PNG bytes; with `params` its `adgen` chunk carries the step and key the cache checks."""
    info = PngImagePlugin.PngInfo()
    if params:
        info.add_itxt("adgen", json.dumps({"adgen": 1, **params}, sort_keys=True))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()
