"""Product + style preset -> the positive prompt (pure; no model)."""

from __future__ import annotations

from dataclasses import dataclass

from .presets import StylePreset
from .request import DEFAULT_SIZE, DEFAULT_STEPS, AdRequest, Product

# ZIT has no negative prompt (no CFG), so the product-focus policy is said in the positive prompt.
PRODUCT_FOCUS = (
    "The product is the hero of the image: centred, fully visible and in sharp focus. "
    "No people, no faces, no hands, no human figures."
)
COPY_SPACE = "Leave calm, uncluttered space for a headline."


def describe_product(product: Product) -> str:
    """'NAME (CATEGORY), featuring A, B' — the {subject} of a preset's template."""
    subject = product.name
    if product.category:
        subject += f" ({product.category})"
    if product.features:
        subject += ", featuring " + ", ".join(product.features)
    return subject


def build_prompt(product: Product, preset: StylePreset, product_focus: bool = True, include_copy: bool = True,
                 variation: str | None = None) -> str:
    """The full prompt for one product in one style.

    `include_copy=False` is for the composed ad, whose copy is drawn as its own text layer:
    the model is then asked for space for it instead of the text itself. `variation` is one of the
    preset's scene variations (surface, setting, light, camera angle).
    """
    parts = [preset.render(describe_product(product))]
    if product.scene:
        parts.append(f"Scene and mood: {product.scene}.")
    if variation:
        parts.append(f"Setting: {variation.rstrip('.')}.")
    if product.colors:
        parts.append(f"Brand colours: {product.colors}.")
    if product.audience:
        parts.append(f"Made to appeal to {product.audience}.")
    return finish_prompt(" ".join(p.strip() for p in parts), product, product_focus, include_copy)


def finish_prompt(prompt: str, product: Product, product_focus: bool = True, include_copy: bool = True) -> str:
    """`prompt` (the template's, or one the writer wrote) with the clauses every prompt ends with: the headline (or,
    when the copy is drawn as its own layer, calm space for it) and the product-focus policy."""
    parts = [prompt.strip()]
    if product.copy:
        parts.append(f'The advertising headline reads "{product.copy}".' if include_copy else COPY_SPACE)
    if product_focus:
        parts.append(PRODUCT_FOCUS)
    return " ".join(parts)


def writes_scenes(request: AdRequest, background: str | None = None) -> bool:
    """Whether what the writer writes for `request` (a prompt, scenes) would be used: a model paints the background
    (not a packshot) from a prompt that takes scenes (not the user's own)."""
    return background != "packshot" and not own_prompt(request)


def own_prompt(request: AdRequest) -> bool:
    """The user typed the prompt (not the template's, not one the writer wrote): it is used exactly as given."""
    return request.prompt is not None and not request.enhanced


@dataclass(frozen=True)
class Settings:
    """What a request runs with once the preset's defaults are applied."""

    prompt: str
    width: int
    height: int
    steps: int
    lora_scale: float | None  # None: the style has no LoRA
    variation: int | None = None  # the index of the preset's scene variation in the prompt (None: none)


def scene_variation(request: AdRequest, preset: StylePreset, index: int = 0) -> int | None:
    """The scene variation image `index` of `request` uses: variation + index, cycling through the preset's list.

    ZIT varies little across seeds, so the images of one request differ by scene (surface, setting,
    light, camera angle), not only by seed; scenes the writer wrote for the product replace the preset's list.
    A prompt the writer wrote ("Enhance prompt") takes the scene too. None when the preset has none, the prompt
    is the user's own,
    or `same_scene` asks for seed-only variation.
    """
    scenes = request.scenes or preset.variations
    if not scenes or own_prompt(request) or request.same_scene:
        return None
    return (request.variation + index) % len(scenes)


def settings_for(request: AdRequest, preset: StylePreset, index: int = 0) -> Settings:
    """Image `index` of the request: request values first, then the preset's defaults, then ZIT's (1024x1024,
    8 steps)."""
    variation = scene_variation(request, preset, index)
    scene = (request.scenes or preset.variations)[variation] if variation is not None else None
    prompt = request.prompt or build_prompt(request.product, preset, request.product_focus, request.draw_copy, scene)
    if request.prompt and scene:  # a written prompt: its scene, as the template prompt would say it
        prompt = f"{request.prompt} Setting: {scene.rstrip('.')}."
    scale = None
    if preset.lora is not None:
        scale = request.lora_scale if request.lora_scale is not None else preset.lora.scale
    return Settings(
        prompt=prompt,
        width=request.width or preset.width or DEFAULT_SIZE[0],
        height=request.height or preset.height or DEFAULT_SIZE[1],
        steps=request.steps or preset.steps or DEFAULT_STEPS,
        lora_scale=scale,
        variation=variation,
    )
