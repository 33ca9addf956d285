"""Typed, validated requests (`Product`, `AdRequest`), sizes and the result-cache key.

Pure: no torch, no gradio. Every check raises `InputError(field, what is allowed)`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import secrets
import unicodedata
from dataclasses import dataclass, field

from .errors import InputError

# ZIT's defaults (Tongyi-MAI/Z-Image-Turbo model card): 8 steps, no CFG, 1024x1024.
DEFAULT_STEPS = 8
DEFAULT_SIZE = (1024, 1024)
MIN_SIDE, MAX_SIDE, SIDE_MULTIPLE = 256, 2048, 16
MAX_SEED = 2**32 - 1
MAX_COUNT = 8
MAX_VARIATIONS = 16  # scene variations per preset
MAX_SCENE_CHARS = 300  # one scene variation
MAX_STEPS = 50
MAX_LORA_SCALE = 2.0
MAX_FIELD_CHARS = 500  # one product field
MAX_PROMPT_CHARS = 4000  # a full prompt; ZIT's encoder reads 512 tokens, the rest is cut
COPY_LIMITS = {"copy": 80, "subcopy": 120}  # characters: a headline and a sub-line that fit an ad

# Aspect presets: each side a multiple of 16, about one megapixel.
ASPECTS: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "4:5": (896, 1120),
    "3:4": (864, 1152),
    "2:3": (832, 1248),
    "9:16": (720, 1280),
    "5:4": (1120, 896),
    "4:3": (1152, 864),
    "3:2": (1248, 832),
    "16:9": (1280, 720),
}

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Unicode's bidirectional controls (embeddings, overrides, isolates, marks): "세일 \u202e50% 할인" is drawn
# "세일 인할 %05", price reversed. Refused like other control characters, never removed silently.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def check_text(name: str, value: str, limit: int = MAX_FIELD_CHARS, required: bool = False) -> str:
    """Return `value` stripped; refuse non-text, control characters and overlong text."""
    if not isinstance(value, str):
        raise InputError(name, f"must be text (got {type(value).__name__})")
    value = unicodedata.normalize("NFC", value).strip()
    if required and not any(unicodedata.category(c)[0] not in "CZ" for c in value):  # only blanks or invisibles
        raise InputError(name, "must not be empty")
    if len(value) > limit:
        raise InputError(name, f"must be at most {limit} characters (got {len(value)})")
    bad = _CONTROL.search(value)
    if bad:
        raise InputError(name, f"must not contain control characters (found U+{ord(bad.group()):04X})")
    bad = _BIDI.search(value)
    if bad:
        raise InputError(name, f"must not contain bidirectional control characters: they reorder the text "
                               f"(found U+{ord(bad.group()):04X})")
    return value


def check_int(name: str, value: object, lo: int, hi: int, multiple: int = 1) -> int:
    """Return `value` as int if it is a whole number in [lo, hi] and a multiple of `multiple`."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(name, f"must be a whole number from {lo} to {hi} (got {value!r})")
    try:
        number = int(str(value).strip()) if isinstance(value, str) else int(value)
    except ValueError:
        raise InputError(name, f"must be a whole number from {lo} to {hi} (got {value!r})") from None
    if isinstance(value, float) and value != number:
        raise InputError(name, f"must be a whole number from {lo} to {hi} (got {value!r})")
    if not lo <= number <= hi:
        raise InputError(name, f"must be from {lo} to {hi} (got {number})")
    if number % multiple:
        nearest = round(number / multiple) * multiple
        raise InputError(name, f"must be a multiple of {multiple} (got {number}; try {nearest})")
    return number


def parse_size(text: str) -> tuple[int, int]:
    """'1024x768' -> (1024, 768), checked."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX×*]\s*(\d+)\s*", str(text))
    if not match:
        raise InputError("size", f"must look like WIDTHxHEIGHT, e.g. 1024x1024 (got {text!r})")
    return check_side("width", int(match[1])), check_side("height", int(match[2]))


def aspect_size(ratio: str) -> tuple[int, int]:
    """'16:9' -> (1280, 720)."""
    if ratio not in ASPECTS:
        raise InputError("aspect", f"must be one of {', '.join(ASPECTS)} (got {ratio!r})")
    return ASPECTS[ratio]


def check_side(name: str, value: object) -> int:
    return check_int(name, value, MIN_SIDE, MAX_SIDE, SIDE_MULTIPLE)


def parse_features(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """'a, b; c' (or a list) -> ('a', 'b', 'c'); Korean and Latin commas both split."""
    parts = text if isinstance(text, (list, tuple)) else re.split(r"[,;\n、，]", str(text or ""))
    return tuple(p.strip() for p in parts if str(p).strip())


def random_seed() -> int:
    return secrets.randbelow(MAX_SEED + 1)


@dataclass(frozen=True)
class Product:
    """What is advertised. Korean or English text is passed through as given."""

    name: str
    category: str = ""
    features: tuple[str, ...] = ()
    audience: str = ""
    scene: str = ""
    colors: str = ""
    copy: str = ""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "name", check_text("product name", self.name, required=True))
        for name, label in (("category", "category"), ("audience", "target audience"), ("scene", "scene/mood"),
                            ("colors", "brand colours"), ("copy", "ad copy")):
            set_(self, name, check_text(label, getattr(self, name)))
        features = tuple(check_text("key features", f) for f in parse_features(self.features))
        if len(", ".join(features)) > MAX_FIELD_CHARS:
            raise InputError("key features", f"must be at most {MAX_FIELD_CHARS} characters in all")
        set_(self, "features", features)


@dataclass(frozen=True)
class AdRequest:
    """Everything that decides the pixels of one generation (and how many images)."""

    product: Product
    preset: str = "photo"
    lora_scale: float | None = None  # None: the preset's default
    prompt: str | None = None  # a full override of the built prompt
    product_focus: bool = True
    seed: int | None = None  # None: a random seed, chosen once and reported
    width: int | None = None  # None: the preset's default, else 1024
    height: int | None = None
    steps: int | None = None  # None: the preset's default, else ZIT's 8
    count: int = 1
    image: bytes | None = field(default=None, repr=False)  # start image for img2img / inpaint
    strength: float = 0.6  # img2img / inpaint: how much is repainted
    mask: bytes | None = field(default=None, repr=False)  # inpaint: white = repaint, black = keep
    draw_copy: bool = True  # False when the copy is drawn as its own layer (the composed ad)
    variation: int = 0  # the preset's scene variation of image 0; image i uses variation + i (see prompts)
    same_scene: bool = False  # True: every image uses the same scene, only the seed varies
    scenes: tuple[str, ...] = ()  # scene variations written for this product (the writer), in place of the preset's
    enhanced: bool = False  # the prompt override was written by the writer ("Enhance prompt", --enhance)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.product, Product):
            raise InputError("product", "must be a Product")
        if not isinstance(self.preset, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", self.preset):
            raise InputError("preset", f"must be a preset name like 'photo' (got {self.preset!r})")
        if self.prompt is not None:
            text = check_text("prompt", self.prompt, MAX_PROMPT_CHARS)
            set_(self, "prompt", text or None)  # an emptied prompt box means "use the built one"
        if self.lora_scale is not None:
            set_(self, "lora_scale", _check_float("LoRA scale", self.lora_scale, 0.0, MAX_LORA_SCALE))
        if self.seed is not None:
            set_(self, "seed", check_int("seed", self.seed, 0, MAX_SEED))
        for name in ("width", "height"):
            if getattr(self, name) is not None:
                set_(self, name, check_side(name, getattr(self, name)))
        if self.steps is not None:
            set_(self, "steps", check_int("steps", self.steps, 1, MAX_STEPS))
        set_(self, "count", check_int("count", self.count, 1, MAX_COUNT))
        set_(self, "variation", check_int("variation", self.variation, 0, MAX_VARIATIONS - 1))
        set_(self, "strength", _check_float("strength", self.strength, 0.05, 1.0))
        for name in ("image", "mask"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), bytes):
                raise InputError(name, "must be the bytes of an image file")
        if self.mask is not None and self.image is None:
            raise InputError("mask", "needs an image to inpaint")
        if isinstance(self.scenes, str) or len(self.scenes) > MAX_VARIATIONS:
            raise InputError("scenes", f"must be a list of at most {MAX_VARIATIONS} scene descriptions")
        set_(self, "scenes", tuple(check_text("scenes", s, MAX_SCENE_CHARS, required=True) for s in self.scenes))
        if self.enhanced and self.prompt is None:
            raise InputError("prompt", "an enhanced request needs the written prompt")

    def resolved(self) -> AdRequest:
        """This request with a concrete seed (a random one when none was given)."""
        return self if self.seed is not None else dataclasses.replace(self, seed=random_seed())

    def seeds(self) -> list[int]:
        """Image i uses seed + i, so image i of a request equals image 0 of seed + i."""
        if self.seed is None:
            raise ValueError("resolve the seed first (request.resolved())")
        return [(self.seed + i) % (MAX_SEED + 1) for i in range(self.count)]


def _check_float(name: str, value: object, lo: float, hi: float) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(name, f"must be a number from {lo} to {hi} (got {value!r})") from None
    if not lo <= number <= hi:  # also refuses NaN
        raise InputError(name, f"must be from {lo} to {hi} (got {value!r})")
    return number


def image_key(**fields: object) -> str:
    """Content address of one image: sha256 of the canonical JSON of what changes its pixels."""
    blob = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()
