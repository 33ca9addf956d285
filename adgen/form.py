"""One typed form: what a person (the page) or a program (the API, MCP) asks for, with the page's defaults.

Every entry point fills an `AdForm` and turns it into the one job it describes: a plain image
request, or a three-step ad when there is a product photo or copy. "Load from image" returns an
`AdForm` too. Pure: no torch, no gradio.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from .compose import Placement
from .errors import AdgenError, InputError
from .images import read_image_file
from .presets import StylePreset, get_preset
from .prompts import settings_for
from .request import AdRequest, Product, check_int

UI_MAX_COUNT = 4  # images per request from the page or the API (the CLI allows 8)


@dataclass(frozen=True)
class AdForm:
    """The form's fields by name, with the page's defaults (so a program may give only `name`)."""

    name: str = ""
    category: str = ""
    features: str = ""
    audience: str = ""
    scene: str = ""
    colors: str = ""
    copy: str = ""
    subcopy: str = ""
    photo: str | None = None  # path of the product photo
    mask: bytes | None = field(default=None, repr=False)  # the user's product mask (PNG, white = product)
    style: str = "photo"
    lora_scale: float | None = None  # None: the style's default
    product_focus: bool = True
    prompt: str = ""  # the prompt box; "" (or the built prompt unchanged) means "build it"
    auto_prompt: str = ""  # the built prompt the box last showed, so an unedited box is no override
    enhanced_prompt: str = ""  # the prompt the writer last put in the box ("Enhance prompt"): unedited, it is "written"
    different_scenes: bool = False  # the writer writes one scene per image/variant in place of the style's list
    variation: int = 0  # the style's scene of image 1 (image i: variation + i); "Load from image" restores it
    seed: int | None = None  # None: a random seed, chosen once and reported
    width: int = 1024
    height: int = 1024
    steps: int = 8
    count: int = 1
    text_style: str = "extrude_3d"
    text_position: str = "auto"
    background: str = "inpaint"
    place_x: float = 0.5
    place_y: float = 0.6
    place_scale: float = 0.45
    packshot: str = "gradient"  # with background="packshot": gradient, color or white
    same_scene: bool = False  # True: every image of the request uses one scene, only the seed varies
    brand: str = ""  # a brand kit's name in presets/brands ("" for none)
    logo: str | None = None  # path of an ad hoc logo (overrides the kit's)
    brand_colors: str = ""  # "#RRGGBB, #RRGGBB" (main first); "" keeps the kit's colours (or none)
    font: str | None = None  # path of a .ttf/.otf for the copy (overrides the kit's)

    @classmethod
    def of(cls, values: Mapping[str, object]) -> AdForm:
        """From values by field name (None means the default); an unknown name is refused."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise InputError("form", f"unknown field {unknown[0]!r}; fields are {', '.join(sorted(names))}")
        return cls(**{k: v for k, v in values.items() if v is not None})

    def fields(self) -> dict[str, object]:
        """The form as a plain dict (the page's widgets, "Load from image")."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @property
    def is_ad(self) -> bool:
        """A product photo, copy or a logo (uploaded or the kit's) make the three-step ad; else a plain image."""
        return (bool(self.photo) or bool(self.copy.strip()) or bool(self.subcopy.strip()) or bool(self.logo)
                or self._kit_has_logo())

    def _kit_has_logo(self) -> bool:
        if not self.brand:
            return False
        from .brand import brand_file

        try:
            return brand_file(self.brand)[1].logo is not None  # the logo named, not read (the preview asks too)
        except AdgenError:
            return True  # an ad, so that making it says what is wrong with the brand

    def brand_kit(self):
        """The `Brand` of this form: the named kit, with the uploaded logo, chosen colours and font over its own;
        None for no brand. Files and colours are checked here."""
        from .brand import brand_of

        return brand_of(self.brand or None, self.logo or None, self.brand_colors or None, self.font or None)

    def _brand_colors(self) -> tuple[str, ...]:
        """The brand's colours without reading its logo or font (the prompt preview runs on every keystroke)."""
        from .brand import brand_file, parse_colors

        if self.brand_colors:
            return parse_colors(self.brand_colors)
        return parse_colors(brand_file(self.brand)[1].colors) if self.brand else ()

    def product(self) -> Product:
        return Product(self.name or "", self.category or "", self.features or "", self.audience or "",
                       self.scene or "", self.colors or "", self.copy or "")

    def request(self, presets: Mapping[str, StylePreset], read_photo: bool = True) -> AdRequest:
        """The validated image request (the photo's bytes read and checked when `read_photo`).

        Brand colours become the prompt's colour words when the colours field is empty (as for an ad)."""
        style = presets.get(self.style)
        override = (self.prompt or "").strip() not in ("", (self.auto_prompt or "").strip())
        enhanced = override and (self.prompt or "").strip() == (self.enhanced_prompt or "").strip()
        product = self.product()
        if not product.colors and (self.brand or self.brand_colors):
            from .brand import Brand

            colors = self._brand_colors()
            if colors:
                product = dataclasses.replace(product, colors=Brand("", colors).color_words)
        return AdRequest(
            product=product, preset=self.style,
            lora_scale=self.lora_scale if style is not None and style.lora is not None else None,
            prompt=self.prompt if override else None, product_focus=bool(self.product_focus),
            seed=self.seed, width=self.width, height=self.height, steps=self.steps,
            count=check_int("image count", self.count, 1, UI_MAX_COUNT),
            image=read_image_file(self.photo, "product photo") if self.photo and read_photo else None,
            draw_copy=not self.is_ad,  # an ad draws its copy as its own layer
            same_scene=bool(self.same_scene) and not self.different_scenes, enhanced=enhanced,
            variation=self.variation or 0,
        )

    def job(self, presets: Mapping[str, StylePreset]):
        """The job this form describes: an `AdSpec` for an ad, else an `AdRequest` (its brand still checked)."""
        if self.is_ad:
            return self.ad_spec(presets)
        if self.background == "packshot":  # as the CLI, batch and campaign say: never a plain image instead
            raise InputError("background", "a packshot shows the product: it needs a product photo")
        self.brand_kit()  # a bad font or logo is said even where a plain image would not use it
        return self.request(presets)

    def ad_spec(self, presets: Mapping[str, StylePreset]):
        """This form as an ad (`AdSpec`), whatever it holds: what a campaign makes in every channel."""
        from .ad import AdSpec

        brand = self.brand_kit()
        return AdSpec(self.request(presets), subcopy=self.subcopy or "", text_style=self.text_style,
                      text_position=self.text_position, placement=Placement(self.place_x, self.place_y,
                                                                            self.place_scale),
                      background=self.background, mask=self.mask if self.photo else None, brand=brand,
                      packshot=self.packshot)

    def prompt_used(self, presets: Mapping[str, StylePreset]) -> str:
        """The prompt generation will use for this form (what the preview must show), photo not read."""
        request = self.request(presets, read_photo=False)
        return settings_for(request, get_preset(presets, request.preset)).prompt
