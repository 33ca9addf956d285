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
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from PIL import Image, PngImagePlugin

from .brand import Brand, brand_style
from .channels import Channel
from .compose import Placement, composite, cut_image, inpaint_inputs, place, product_cut
from .engine import Engine, Picture, Progress, Result
from .errors import GenerationStopped, InputError
from .images import decode_image
from .jobs import Job
from .layout import Frame, cover, logo_corner, paste_fit, plan, to_generation
from .metadata import params_of, png_bytes, restamp
from .packshot import STYLES as PACKSHOTS
from .packshot import packshot
from .presets import get_preset
from .prompts import settings_for
from .request import MAX_VARIATIONS, AdRequest, check_text, image_key
from .rules import border_width
from .typography import (
    POSITIONS,
    TextStyle,
    check_text_style,
    copy_font,
    font_id,
    layout_copy,
    load_text_styles,
    render_copy,
    render_copy_in,
)

STEPS = ("cutout", "mask", "background", "copy_layer", "final")


BACKGROUNDS = ("inpaint", "t2i", "packshot")
LAYOUT_VERSION = 3  # in the copy and final keys: a layout change must not serve old cached layers
MAX_ENLARGE = 1.5  # a product enlarged more than this looks soft or jagged: the user is told
CUT_VERSION = 2  # in the cutout keys: soft edges (segment.py) must not serve old hard cutouts


@dataclass(frozen=True)
class AdSpec:
    """An ad: the image request (product with its copy, style, seed, size, photo) plus the layout.

    With a `channel` the ad is made at the channel's exact pixel size (the request's size is then the
    generation size); a `brand` adds its logo, colours and font; `background="packshot"` needs no model.
    """

    request: AdRequest
    subcopy: str = ""
    text_style: str = "extrude_3d"
    text_position: str = "auto"
    placement: Placement = field(default_factory=Placement)
    background: Literal["inpaint", "t2i", "packshot"] = "inpaint"
    mask: bytes | None = field(default=None, repr=False)  # a user-corrected product mask (white = product)
    channel: Channel | None = None
    brand: Brand | None = None
    packshot: str = "gradient"  # with background="packshot": white, color or gradient

    def __post_init__(self) -> None:
        object.__setattr__(self, "subcopy", check_text("sub-copy", self.subcopy))
        if self.text_position not in POSITIONS:
            raise InputError("text position", f"must be one of {', '.join(POSITIONS)} (got {self.text_position!r})")
        if self.background not in BACKGROUNDS:
            raise InputError("background", f"must be one of {', '.join(BACKGROUNDS)} (got {self.background!r})")
        if self.packshot not in PACKSHOTS:
            raise InputError("packshot", f"must be one of {', '.join(PACKSHOTS)} (got {self.packshot!r})")
        if self.mask is not None and self.request.image is None:
            raise InputError("product mask", "needs a product photo")
        if self.request.image is None and (self.background == "packshot" or self.backdrop):
            raise InputError("background", "a packshot shows the product: it needs a product photo")

    @property
    def white(self) -> bool:
        """A channel that must be pure white but for the product and its shadow (a marketplace main image)."""
        return self.channel is not None and self.channel.background == "white"

    @property
    def backdrop(self) -> str | None:
        """The packshot backdrop a channel's background rule imposes: "white", "color" (plain), or None."""
        return {"white": "white", "plain": "color"}.get(self.channel.background) if self.channel else None


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
        style = brand_style(check_text_style(spec.text_style, self.text_styles), spec.brand)
        request = dataclasses.replace(spec.request.resolved(), draw_copy=False)  # the copy is its own layer
        if spec.brand is not None and spec.brand.colors and not request.product.colors:  # colours into the prompt
            request = dataclasses.replace(request, product=dataclasses.replace(
                request.product, colors=spec.brand.color_words))
        settings = settings_for(request, get_preset(self.engine.presets, request.preset))
        cache = self.engine.cache if use_cache else None
        # 0. the product's cutout (and its mask), once for every image, then the layout, both at the final size
        product = self._cutout(spec, request, cache)
        size = spec.channel.size if spec.channel else (settings.width, settings.height)
        # the channel's rules (rules.py): a marketplace main image shows the product only, no copy and no logo
        draws_copy = spec.channel is None or spec.channel.copy
        draws_logo = spec.channel is None or spec.channel.logo
        copy, subcopy = (request.product.copy, spec.subcopy) if draws_copy else ("", "")
        logo = decode_image(spec.brand.logo, "logo") if spec.brand and spec.brand.logo and draws_logo else None
        frame = None
        if spec.channel is not None:
            frame = plan(size, spec.channel.safe_box(), product.image.size if product else None, bool(copy or subcopy),
                         logo.size if logo else None, spec.channel.horizontal, spec.channel.product_scale,
                         "bottom" if spec.text_position == "bottom" else "top", spec.channel.min_fill)
        font = spec.brand.font if spec.brand else None
        if copy or subcopy:  # bad copy (glyphs, length) is refused before any GPU work
            layout_copy(copy, subcopy, size, style, font, frame.copy if frame else None)
        layout = _Layout(size, frame, copy, subcopy, style, font, logo)
        images = []
        for n, seed in enumerate(request.seeds()):
            step_progress = (lambda d, t, n=n: progress(n * t + d, len(request.seeds()) * t)) if progress else None
            one = dataclasses.replace(request, seed=seed, count=1, variation=(request.variation + n) % MAX_VARIATIONS)
            try:
                images.append(self._one(spec, one, settings, product, layout, cache, step_progress, use_cache, job))
            except GenerationStopped as stopped:  # count steps over the whole ad, as the progress does
                count = len(request.seeds())
                raise GenerationStopped(n * stopped.total + stopped.step, count * stopped.total,
                                        stopped.reason) from None
        return Result(tuple(images), settings, self.engine.source.label, self.engine.source.is_demo,
                        time.perf_counter() - start)

    def _cutout(self, spec: AdSpec, request: AdRequest, cache) -> _Product | None:
        """The product cut out of its photo (from the photo's alpha or its plain backdrop), cached with its mask."""
        if request.image is None:
            return None
        photo = decode_image(request.image, "product photo")
        user_mask = decode_image(spec.mask, "product mask").convert("L") if spec.mask is not None else None
        files, keys, cached = {}, {}, {}
        photo_id = hashlib.sha256(request.image).hexdigest()
        mask_id = hashlib.sha256(spec.mask).hexdigest() if spec.mask is not None else "auto"
        made = functools.cache(lambda: product_cut(photo, user_mask))  # at most once, only on a miss
        key = image_key(step="cutout", photo=photo_id, mask=mask_id, cut=CUT_VERSION)
        image = self._step(cache, "cutout", key, files, keys, cached, lambda: cut_image(made()))
        # The photo-sized mask the cutout was cut with, cached too (auto_mask takes seconds on a large
        # photo); it is part of the cutout step, so its own key and cache status are not reported.
        self._step(cache, "mask", image_key(step="mask", photo=photo_id, mask=mask_id, cut=CUT_VERSION), files, {}, {},
                   lambda: made().mask)
        return _Product(image, files, keys, cached, photo.size)

    def _one(self, spec, request, settings, product, layout, cache, progress, use_cache, job) -> Picture:
        files, keys, cached = {}, {}, {}
        if product is not None:
            files.update(product.files)
            keys.update(product.keys)
            cached.update(product.cached)
        size, frame = layout.size, layout.frame
        gen = (settings.width, settings.height)
        settings = settings_for(request, get_preset(self.engine.presets, request.preset))  # this image's own scene
        generated = None
        layer = box = None
        if product is not None and frame is not None:
            layer, box = paste_fit(product.image, size, frame.product), frame.product
        elif product is not None:
            layer, box = place(product.image, size, spec.placement)
        warnings = (too_small(product.photo_size, product.image.size, box, size, spec.channel)
                    if product is not None else ())
        # 1. the background: a packshot (no model), or the one pipeline at the generation size, mapped onto the canvas
        shot = spec.backdrop or spec.packshot
        colors = spec.brand.colors if spec.brand else ()
        if spec.background == "packshot" or spec.backdrop:
            key = image_key(step="packshot", layout=LAYOUT_VERSION, style=shot, colors=colors, size=size, box=box,
                            cutout=keys["cutout"])
            background = self._step(cache, "background", key, files, keys, cached,
                                    lambda: packshot(size, layer, box, shot, colors))
        else:
            if product is not None and spec.background == "inpaint":
                gen_box = to_generation(box, gen, size)
                canvas, repaint = inpaint_inputs(paste_fit(product.image, gen, gen_box))
                step1 = dataclasses.replace(request, image=_png(canvas, {}), mask=_png(repaint, {}), strength=1.0,
                                            width=gen[0], height=gen[1])
            else:
                step1 = dataclasses.replace(request, image=None, mask=None, width=gen[0], height=gen[1])
            generated = self.engine.generate(step1, progress=progress, use_cache=use_cache, job=job).images[0]
            files["background"], keys["background"], cached["background"] = (generated.png, generated.key,
                                                                              generated.cached)
            background = cover(Image.open(io.BytesIO(generated.png)).convert("RGB"), size)
        # 2. the copy layer (Pillow) at the final size: in the frame's copy area, or (`auto`) off the product
        #    on the calmest band
        copy_layer = copy_box = None
        if layout.copy or layout.subcopy:
            font_path = copy_font(layout.style, layout.copy + layout.subcopy, layout.font)
            key = image_key(step="copy", layout=LAYOUT_VERSION, copy=layout.copy, subcopy=layout.subcopy,
                            style=layout.style.model_dump(), font=font_id(font_path), size=size,
                            area=frame.copy if frame else None, position=spec.text_position, avoid=box,
                            background=keys["background"] if frame is None and spec.text_position == "auto" else None)
            if frame is not None:
                make = lambda: render_copy_in(layout.copy, layout.subcopy, size, frame.copy, layout.style,  # noqa: E731
                                              layout.font)[0]
            else:
                make = lambda: render_copy(layout.copy, layout.subcopy, size, layout.style,  # noqa: E731
                                           spec.text_position, box, background, layout.font)[0]
            copy_layer = self._step(cache, "copy_layer", key, files, keys, cached, make)
            copy_box = copy_layer.getchannel("A").getbbox()
        # 3. the logo, in a corner clear of the product and the copy (the frame reserved one)
        logo_box = None
        if layout.logo is not None:
            logo_box = (frame.logo if frame is not None
                        else logo_corner(size, layout.logo.size, [box, copy_box], copy_box))
        # 4. the composite: background + shadow + the product's own pixels + copy + logo
        logo_id = hashlib.sha256(spec.brand.logo).hexdigest() if logo_box is not None else None
        key = image_key(step="final", layout=LAYOUT_VERSION, background=keys["background"],
                        copy=keys.get("copy_layer"), cutout=keys.get("cutout"), size=size, box=box,
                        logo=logo_id, logo_box=logo_box)
        params = params_of(request, settings, request.seed, self.engine.source.label, key, None)
        params["ad"] = {"subcopy": spec.subcopy, "text_style": spec.text_style, "text_position": spec.text_position,
                        "placement": dataclasses.asdict(spec.placement), "background": spec.background,
                        "photo": product is not None, "size": list(size),
                        "channel": spec.channel.id if spec.channel else None,
                        "packshot": shot if spec.background == "packshot" or spec.backdrop else None,
                        "brand": spec.brand.summary() if spec.brand else None,
                        # what was drawn, for the checker (rules.py) of a channel that allows no copy or logo
                        "copy_drawn": copy_layer is not None, "logo_drawn": logo_box is not None}
        data = cache.get(key) if cache else None
        cached["final"] = data is not None
        if data is not None:  # same pixels; the PNG carries this request's own parameters
            data = restamp(data, params)
        else:
            # a pure-white channel: the shadow fades out before the border the checker measures (rules.py)
            final = composite(background, layer, box, copy_layer, clear=2 * border_width(size) if spec.white else 0)
            if logo_box is not None:
                final = Image.alpha_composite(final.convert("RGBA"), paste_fit(layout.logo, size, logo_box))
            data = png_bytes(final.convert("RGB"), params)
            if cache:
                cache.put(key, data)
        return Picture(data, request.seed, key, cached.pop("final"), steps=files, step_keys=keys, step_cached=cached,
                       prompt=generated.prompt if generated else "",
                       variation=generated.variation if generated else None, warnings=warnings)

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


def too_small(photo: tuple[int, int], product: tuple[int, int], box: tuple, size: tuple[int, int],
              channel: Channel | None) -> tuple[str, ...]:
    """The warning when the product is enlarged more than MAX_ENLARGE times at the final size (else none)."""
    factor = (box[2] - box[0]) / max(product[0], 1)
    if factor <= MAX_ENLARGE:
        return ()
    need = [math.ceil(side * factor / MAX_ENLARGE) for side in photo]
    said = f"the product photo is {photo[0]}x{photo[1]} px and is enlarged {factor:.1f}x"
    keeps = f"at least {need[0]}x{need[1]} px keeps it sharp"
    if channel is None:
        return (f"{said} in {size[0]}x{size[1]}: {keeps}",)
    # the channel by its label (i18n puts the Korean one in a Korean message), never its file name
    return (f"{said} at {size[0]}x{size[1]} for {channel.label}: {keeps}",)


@dataclass(frozen=True)
class _Product:
    """The cut-out product and the cutout step's files (shared by every image of an ad)."""

    image: Image.Image
    files: dict
    keys: dict
    cached: dict
    photo_size: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class _Layout:
    """What every image of one ad shares: the canvas, its plan, the copy, its style and font, the logo."""

    size: tuple[int, int]
    frame: Frame | None
    copy: str
    subcopy: str
    style: TextStyle
    font: Path | None
    logo: Image.Image | None


def _png(image: Image.Image, params: dict) -> bytes:
    """PNG bytes; with `params` its `adgen` chunk carries the step and key the cache checks."""
    info = PngImagePlugin.PngInfo()
    if params:
        info.add_itxt("adgen", json.dumps({"adgen": 1, **params}, sort_keys=True))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, compress_level=1)  # a cached step: fast beats small
    return buffer.getvalue()
