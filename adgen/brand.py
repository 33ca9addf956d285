"""Brand kits: name, colours, logo, font and copy style, from `presets/brands/NAME.yaml` or given ad hoc.

A brand's colours become the prompt's colour words, the copy style's colours and the packshot
backdrop; its logo is read as safely as a product photo; its font must be a TTF/OTF that FreeType
opens. Pure: no torch, no gradio.
"""

from __future__ import annotations

import colorsys
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from PIL import ImageFont
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import InputError, PresetError
from .images import decode_image, read_image_file
from .presets import PROJECT_DIR, read_fields, schema_error
from .typography import Stroke, TextStyle

_HEX = re.compile(r"#[0-9a-fA-F]{6}")
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_COLORS = 5
FONT_SUFFIXES = (".ttf", ".otf")
MAX_FONT_BYTES = 30 * 1024 * 1024


class BrandFile(BaseModel):
    """The schema of one `presets/brands/NAME.yaml`; paths are relative to the file's folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=60)  # shown and written to the manifest
    colors: list[str] = Field(min_length=1, max_length=MAX_COLORS)  # hex, the main colour first
    logo: str | None = None
    font: str | None = None
    text_style: str | None = None  # the default copy style (a name in presets/text)


@dataclass(frozen=True)
class Brand:
    """A checked brand kit: colours as #RRGGBB, the logo's bytes, the font's path, the default copy style."""

    name: str
    colors: tuple[str, ...] = ()
    logo: bytes | None = field(default=None, repr=False)
    font: Path | None = None
    text_style: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "colors", parse_colors(self.colors))
        if self.logo is not None:
            decode_image(self.logo, "logo")
        if self.font is not None:
            object.__setattr__(self, "font", check_font(self.font))

    @property
    def color_words(self) -> str:
        """The colours as words for the prompt: "orange and charcoal"."""
        words = list(dict.fromkeys(color_name(c) for c in self.colors))
        return " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)

    def summary(self) -> dict:
        """What the manifest records of the brand (the logo by hash, not bytes)."""
        return {"name": self.name, "colors": list(self.colors), "font": self.font.name if self.font else None,
                "logo": hashlib.sha256(self.logo).hexdigest() if self.logo else None, "text_style": self.text_style}


def parse_colors(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """'#FF6600, #1A1A1A' (or a list) -> ('#FF6600', '#1A1A1A'); each must be #RRGGBB."""
    parts = value if isinstance(value, (list, tuple)) else re.split(r"[,\s]+", str(value or ""))
    colors = tuple(str(p).strip() for p in parts if str(p).strip())
    for color in colors:
        if not _HEX.fullmatch(color):
            raise InputError("brand hex colours", f"must be hex colours like #FF6600 (got {color!r})")
    colors = tuple(c.upper() for c in colors)
    if len(colors) > MAX_COLORS:
        raise InputError("brand hex colours", f"must be at most {MAX_COLORS} colours (got {len(colors)})")
    return colors


def check_font(path: str | Path) -> Path:
    """`path` if it is a TTF/OTF file FreeType opens; else a clear error naming it."""
    path = Path(path)
    if path.suffix.lower() not in FONT_SUFFIXES:
        raise InputError("brand font", f"must be a .ttf or .otf font file (got {path.name!r})")
    if not path.is_file():
        raise InputError("brand font", f"file not found: {path}")
    if path.stat().st_size > MAX_FONT_BYTES:
        raise InputError("brand font", f"file is larger than {MAX_FONT_BYTES // 2**20} MB")
    try:
        ImageFont.truetype(str(path), 24)
    except OSError:
        raise InputError("brand font", f"{path.name} is not a readable font: save it again as a .ttf or .otf font "
                                       "file") from None
    return path


# Named colours for the prompt (ZIT reads words better than hex codes).
_NAMES = {
    "white": (255, 255, 255), "black": (0, 0, 0), "charcoal": (54, 54, 54), "grey": (128, 128, 128),
    "silver": (192, 192, 192), "red": (220, 30, 40), "crimson": (160, 20, 50), "orange": (255, 120, 0),
    "gold": (212, 175, 55), "yellow": (250, 215, 30), "lime green": (150, 210, 40), "green": (40, 150, 60),
    "forest green": (30, 90, 45), "mint": (160, 230, 200), "teal": (0, 128, 128), "sky blue": (110, 190, 240),
    "blue": (30, 90, 220), "navy": (20, 30, 90), "purple": (120, 50, 170), "lavender": (190, 170, 230),
    "pink": (245, 150, 190), "magenta": (220, 40, 150), "brown": (120, 75, 40), "beige": (230, 215, 180),
    "cream": (255, 248, 225), "coral": (250, 120, 100),
}


def color_name(hex_color: str) -> str:
    """The nearest of a few dozen colour names to `hex_color` (in a perceptual-ish weighted RGB distance)."""
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))

    def distance(rgb: tuple[int, int, int]) -> float:
        mean_r = (r + rgb[0]) / 2  # the "redmean" approximation of perceived difference
        dr, dg, db = r - rgb[0], g - rgb[1], b - rgb[2]
        return (2 + mean_r / 256) * dr * dr + 4 * dg * dg + (2 + (255 - mean_r) / 256) * db * db

    return min(_NAMES, key=lambda name: distance(_NAMES[name]))


def brand_style(style: TextStyle, brand: Brand | None) -> TextStyle:
    """The copy style in the brand's colours: fill in the main colour (a lighter top for a gradient), stroke and
    extrusion in the second; effects the style has keep their shape. Unchanged without brand colours."""
    if brand is None or not brand.colors:
        return style
    main, second = brand.colors[0], brand.colors[1] if len(brand.colors) > 1 else _shade(brand.colors[0], 0.45)
    update: dict = {"fill": [_tint(main, 0.35), main] if len(style.fill) > 1 else [main]}
    if style.stroke is not None:
        update["stroke"] = style.stroke.model_copy(update={"color": second})
    elif _luminance(main) > 0.75:  # a pale brand colour needs an edge to read on a light backdrop
        update["stroke"] = Stroke(width=0.04, color=second)
    if style.extrude is not None:
        update["extrude"] = style.extrude.model_copy(update={"color": second})
    if style.glow is not None:
        update["glow"] = style.glow.model_copy(update={"color": main})
    return style.model_copy(update=update)


def _rgb(color: str) -> tuple[float, float, float]:
    return tuple(int(color[i:i + 2], 16) / 255 for i in (1, 3, 5))  # type: ignore[return-value]


def _hex(rgb) -> str:
    return "#" + "".join(f"{round(min(max(c, 0.0), 1.0) * 255):02X}" for c in rgb)


def _tint(color: str, amount: float) -> str:
    return _hex(c + (1 - c) * amount for c in _rgb(color))


def _shade(color: str, factor: float) -> str:
    h, light, s = colorsys.rgb_to_hls(*_rgb(color))
    return _hex(colorsys.hls_to_rgb(h, light * factor, s))


def _luminance(color: str) -> float:
    r, g, b = _rgb(color)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


# -- brand files -------------------------------------------------------------------------------------
def brand_dir() -> Path:
    return Path(os.environ.get("ADGEN_BRANDS_DIR") or PROJECT_DIR / "presets" / "brands").expanduser()


def brand_names(directory: Path | None = None) -> list[str]:
    directory = directory or brand_dir()
    return sorted(p.stem for p in directory.glob("*.y*ml")) if directory.is_dir() else []


def brand_file(name: str, directory: Path | None = None) -> tuple[Path, BrandFile]:
    """(path, checked data) of the brand file `name`, its logo and font not read: what the prompt preview needs
    (it runs on every keystroke; a kit's 40-megapixel logo must not be decoded for it)."""
    directory = directory or brand_dir()
    names = brand_names(directory)
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name not in names:
        raise InputError("brand", f"unknown {name!r}; choose one of {', '.join(names) or '(none)'}")
    path = next(p for p in (directory / f"{name}.yaml", directory / f"{name}.yml") if p.is_file())
    data = read_fields(path, ", ".join(BrandFile.model_fields))
    try:
        return path, BrandFile(**data)
    except ValidationError as exc:
        raise schema_error(path, exc, lambda loc: list(BrandFile.model_fields)) from None


def load_brand(name: str, directory: Path | None = None) -> Brand:
    """The brand `name` from its data file; errors name the file and the field."""
    path, spec = brand_file(name, directory)
    try:
        logo = read_image_file(_inside(path, spec.logo, "logo"), "logo") if spec.logo else None
        font = _inside(path, spec.font, "font") if spec.font else None
        return Brand(spec.name, tuple(spec.colors), logo, font, spec.text_style)
    except InputError as exc:
        raise PresetError(f"{path}: {exc}") from None


def _inside(path: Path, relative: str, name: str) -> Path:
    """A file named in a brand file, refused if it resolves outside the brand file's folder."""
    target = (path.parent / relative).resolve()
    if not target.is_relative_to(path.parent.resolve()):
        raise PresetError(f"{path}: {name}: must be a file inside {path.parent} (got {relative!r})")
    return target


def brand_of(name: str | None = None, logo: str | Path | bytes | None = None, colors: str | list | None = None,
             font: str | Path | None = None, text_style: str | None = None) -> Brand | None:
    """The brand of a request: a named brand file, or an ad hoc kit (logo, colours, font); None for neither.

    Ad hoc parts given with a name override the file's."""
    if name:
        brand = load_brand(name)
        if logo is None and not colors and font is None:
            return brand
        base = brand
    elif logo is None and not colors and font is None:
        return None
    else:
        base = Brand("ad hoc")
    if isinstance(logo, (str, Path)):
        logo = read_image_file(logo, "logo")
    return Brand(base.name, parse_colors(colors) if colors else base.colors, logo if logo is not None else base.logo,
                 Path(font) if font is not None else base.font, text_style or base.text_style)
