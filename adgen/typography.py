"""Stylized ad copy as a transparent RGBA layer: Hangul-capable fonts, wrap-and-shrink layout, effects.

Text styles are data (`presets/text/*.yaml`, one schema, unknown keys refused) like image styles.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import AdgenError, InputError, PresetError
from .presets import PROJECT_DIR, read_fields, schema_error

POSITIONS = ("auto", "top", "center", "bottom")
FONT_DIRS = ["/usr/share/fonts/truetype/nanum", "/usr/share/fonts/opentype/noto", "/usr/share/fonts/truetype/noto"]
FONT_FILES = {  # best first
    "extrabold": ["NanumGothicExtraBold.ttf", "NanumSquareEB.ttf", "NanumSquareB.ttf", "NanumGothicBold.ttf",
                  "NotoSansCJK-Black.ttc", "NotoSansCJK-Bold.ttc"],
    "bold": ["NanumGothicBold.ttf", "NanumSquareB.ttf", "NanumBarunGothicBold.ttf", "NotoSansCJK-Bold.ttc"],
}
MISSING = "\U0010fffd"  # a private-use code point no font draws: its bitmap is the missing-glyph box
_COLOR = r"^#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?$"
Color = Annotated[str, Field(pattern=_COLOR)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]  # of the font size


class FontError(AdgenError):
    """No font that can draw Hangul."""


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Stroke(_Part):
    width: Fraction = 0.05
    color: Color = "#000000"


class Shadow(_Part):
    dx: Fraction = 0.04
    dy: Fraction = 0.06
    blur: Fraction = 0.05
    color: Color = "#00000099"


class Extrude(_Part):
    depth: Fraction = 0.1
    color: Color = "#555555"


class Glow(_Part):
    radius: Fraction = 0.25
    color: Color = "#00E5FF"


class TextStyle(_Part):
    """One ad-copy look: fill (flat or top-to-bottom gradient) and optional stroke, shadow, extrusion, glow."""

    name: str
    label: str = Field(min_length=1, max_length=60)
    label_ko: str = Field(min_length=1, max_length=60)  # shown when the page is in Korean (adgen.i18n.label)
    description: str = Field(min_length=1, max_length=300)
    description_ko: str = Field(min_length=1, max_length=300)
    fill: Annotated[list[Color], Field(min_length=1, max_length=2)]
    stroke: Stroke | None = None
    shadow: Shadow | None = None
    extrude: Extrude | None = None
    glow: Glow | None = None
    weight: Literal["bold", "extrabold"] = "extrabold"
    order: int = 100


def text_style_dir() -> Path:
    return Path(os.environ.get("ADGEN_TEXT_STYLES_DIR") or PROJECT_DIR / "presets" / "text")


def load_text_styles(directory: Path | None = None) -> dict[str, TextStyle]:
    """All text styles, ordered; errors name file and field."""
    directory = directory or text_style_dir()
    styles = []
    for path in sorted(directory.glob("*.y*ml")):
        data = read_fields(path, "label, weight, fill, ...")
        try:
            styles.append(TextStyle(name=path.stem, **data))
        except ValidationError as exc:
            raise schema_error(path, exc, _allowed_fields) from None
    if not styles:
        raise PresetError(f"{directory}: no text style files (.yaml)")
    return {s.name: s for s in sorted(styles, key=lambda s: (s.order, s.name))}


def _allowed_fields(loc: tuple) -> list[str]:
    parts = {"stroke": Stroke, "shadow": Shadow, "extrude": Extrude, "glow": Glow}
    model = parts.get(str(loc[0]), TextStyle) if len(loc) > 1 else TextStyle
    return [f for f in model.model_fields if f != "name"]


def check_text_style(name: str, styles: dict[str, TextStyle]) -> TextStyle:
    """The style called `name`; an unknown name is refused with the names of the known ones."""
    if name not in styles:
        raise InputError("text style", f"unknown {name!r}; choose one of {', '.join(styles)}")
    return styles[name]


# -- fonts ---------------------------------------------------------------------------------------
HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff]")
LATIN_FONTS = ["/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
               "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf"]


def needs_hangul(text: str) -> bool:
    return bool(HANGUL.search(text))


@lru_cache(maxsize=8)
def find_font(weight: str = "extrabold", hangul: bool = True) -> Path:
    """A font file for ad copy: one that draws Hangul ($ADGEN_FONT, else Nanum/Noto in the usual places, the
    NanumGothic of pip's koreanize-matplotlib, else fontconfig's), so Korean and Latin copy look alike.

    With `hangul=False` (Latin-only copy) any Latin font will do when no Hangul font is installed:
    DejaVu or Liberation, else the font Pillow itself ships.
    """
    explicit = os.environ.get("ADGEN_FONT")
    candidates = [Path(explicit)] if explicit else []
    candidates += [Path(d) / f for f in FONT_FILES[weight] for d in FONT_DIRS + _package_font_dirs()]
    if shutil.which("fc-list"):
        listed = subprocess.run(["fc-list", ":lang=ko", "file"], capture_output=True, text=True).stdout
        candidates += sorted(Path(line.split(":")[0]) for line in listed.splitlines() if line.strip())
    for path in candidates:
        if path.is_file() and not missing_glyphs(path, "한글"):
            return path
    if hangul:
        raise FontError("no Hangul-capable font found: install Debian's fonts-nanum (apt-get install fonts-nanum; on "
                        "Spaces it is in packages.txt) or the pip package koreanize-matplotlib (NanumGothic), or set "
                        "ADGEN_FONT=/path/to/font.ttf")
    for path in candidates[:1] + [Path(p) for p in LATIN_FONTS]:
        if path.is_file() and not missing_glyphs(path, "Aa"):
            return path
    return pillow_font()


def _package_font_dirs() -> list[str]:
    """The fonts folder of pip's koreanize-matplotlib (NanumGothic, SIL OFL), located without importing it."""
    spec = importlib.util.find_spec("koreanize_matplotlib")
    return [str(Path(p) / "fonts") for p in (spec.submodule_search_locations or [])] if spec else []


def pillow_font() -> Path:
    """The Latin font Pillow ships (Aileron), as a file: fonts are keyed and opened by path."""
    data = ImageFont.load_default(12).path.getvalue()  # type: ignore[union-attr]
    path = Path(tempfile.gettempdir()) / "adgen-fonts" / f"pillow-{hashlib.sha256(data).hexdigest()[:12]}.otf"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(data)
        os.replace(partial, path)
    return path


def copy_font(style: TextStyle, text: str, font: Path | None = None) -> Path:
    """The font the copy `text` is drawn with: the brand's `font` when given, else `find_font`."""
    return font if font is not None else find_font(style.weight, needs_hangul(text))


def missing_glyphs(font_path: Path, text: str) -> list[str]:
    """The characters of `text` that `font_path` would draw as its missing-glyph box (tofu)."""
    font = _font(str(font_path), 32)
    tofu = np.asarray(font.getmask(MISSING))
    missing = []
    for char in dict.fromkeys(c for c in text if not c.isspace()):
        glyph = np.asarray(font.getmask(char))
        if glyph.shape == tofu.shape and np.array_equal(glyph, tofu):
            missing.append(char)
    return missing


def scripts_of(chars: list[str]) -> list[str]:
    """The scripts `chars` belong to, by their Unicode names ("Arabic", "Thai"; "emoji" for symbols), in order."""
    scripts = []
    for char in chars:
        if unicodedata.category(char) in ("So", "Sk", "Cs", "Co") or ord(char) >= 0x1F000:
            scripts.append("emoji")
        else:
            scripts.append(unicodedata.name(char, "UNKNOWN").split()[0].title())
    return list(dict.fromkeys(scripts))


@lru_cache(maxsize=8)
def font_id(path: Path) -> str:
    """sha256 of a font file (part of the copy layer's cache key), computed once per file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@lru_cache(maxsize=64)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


# -- layout --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    lines: tuple[str, ...]
    sub_lines: tuple[str, ...]
    size: int
    sub_size: int
    width: int
    height: int


def wrap(text: str, font: ImageFont.FreeTypeFont, max_width: int) -> list[str]:
    """Greedy word wrap; a word wider than the line is broken between characters (Korean included)."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in re.findall(r"\S+", paragraph):
            trial = f"{line} {word}".strip()
            if font.getlength(trial) <= max_width:
                line = trial
                continue
            if line:
                lines.append(line)
            line = ""
            for char in word:
                if font.getlength(line + char) > max_width and line:
                    lines.append(line)
                    line = ""
                line += char
        lines.append(line)
    return [line for line in lines if line]


def fit(copy: str, subcopy: str, font_path: Path, max_width: int, max_height: int, start: int, minimum: int) -> Layout:
    """The largest font size (shrinking by 10%) at which the wrapped copy fits max_width x max_height."""
    size = start
    while True:
        sub_size = max(8, round(size * 0.45))
        font, sub_font = _font(str(font_path), size), _font(str(font_path), sub_size)
        lines, sub_lines = wrap(copy, font, max_width), wrap(subcopy, sub_font, max_width)
        spacing = round(size * 0.18)
        height = len(lines) * (size + spacing) + (len(sub_lines) * (sub_size + spacing) + spacing if sub_lines else 0)
        width = max([font.getlength(line) for line in lines] + [sub_font.getlength(line) for line in sub_lines])
        if height <= max_height and width <= max_width:
            return Layout(tuple(lines), tuple(sub_lines), size, sub_size, int(np.ceil(width)), height)
        if size <= minimum:
            raise InputError("ad copy", f"is too long to fit a {max_width}x{max_height} text area even at "
                             f"{minimum}px; shorten it or use a larger image")
        size = max(minimum, int(size * 0.9))


# -- rendering -----------------------------------------------------------------------------------
def render_copy(copy: str, subcopy: str, size: tuple[int, int], style: TextStyle, position: str = "auto",
                avoid: tuple | None = None, background: Image.Image | None = None,
                font: Path | None = None) -> tuple[Image.Image, tuple]:
    """The copy as a transparent layer of `size`, and the box it occupies."""
    if position not in POSITIONS:
        raise InputError("text position", f"must be one of {', '.join(POSITIONS)} (got {position!r})")
    font_path, layout = layout_copy(copy, subcopy, size, style, font)
    width, height = size
    x = (width - layout.width) // 2
    y = _choose_y(position, layout.height, size, avoid, background)
    return _layer(layout, font_path, style, size, (x, y)), (x, y, x + layout.width, y + layout.height)


def render_copy_in(copy: str, subcopy: str, size: tuple[int, int], area: tuple[int, int, int, int],
                   style: TextStyle, font: Path | None = None) -> tuple[Image.Image, tuple]:
    """The copy laid out at the canvas's own pixel size inside `area` (left, top, right, bottom), centred there:
    the layer of `size` and the box the text occupies (effects may reach a little past it)."""
    font_path, layout = layout_copy(copy, subcopy, size, style, font, area)
    left, top, right, bottom = area
    x, y = left + (right - left - layout.width) // 2, top + (bottom - top - layout.height) // 2
    return _layer(layout, font_path, style, size, (x, y)), (x, y, x + layout.width, y + layout.height)


def _layer(layout: Layout, font_path: Path, style: TextStyle, size: tuple[int, int], at: tuple[int, int]):
    block = _draw_block(layout, font_path, style)
    pad = (block.width - layout.width) // 2, (block.height - layout.height) // 2
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    layer.paste(block, (at[0] - pad[0], at[1] - pad[1]))  # a plain copy onto empty pixels; effects past the edge clip
    return layer


def layout_copy(copy: str, subcopy: str, size: tuple[int, int], style: TextStyle, font: Path | None = None,
                area: tuple[int, int, int, int] | None = None) -> tuple[Path, Layout]:
    """The font and wrapped layout of the copy on a canvas of `size` (inside `area` when given; else a band
    86% wide and 30% high); refuses glyphs the font lacks and copy too long to fit. Cheap: callers check
    with it before any GPU work. `font` is a brand's font (default: `find_font`)."""
    font_path = copy_font(style, copy + subcopy, font)
    missing = missing_glyphs(font_path, copy + subcopy)
    if missing:
        if font is not None:
            raise InputError("ad copy", f"the brand font has no glyph for {''.join(missing)!r}; use another font "
                             "or remove those characters")
        scripts = [s for s in scripts_of(missing) if s != "emoji"]
        if scripts:  # letters of a script the font lacks (Arabic, Thai, ...): say so, not "emoji"
            raise InputError("ad copy", f"the copy font has no glyph for {''.join(missing)!r}: it has no letters "
                             f"of the {', '.join(scripts)} script; remove those characters or use a brand font "
                             "that has them")
        raise InputError("ad copy", f"the copy font has no glyph for {''.join(missing)!r}; "
                         "remove those characters (emoji are not supported)")
    width, height = size
    if area is None:
        box_w, box_h = int(width * 0.86), int(height * 0.3)
    else:
        box_w, box_h = area[2] - area[0], area[3] - area[1]
    layout = fit(copy, subcopy, font_path, box_w, box_h, max(12, round(box_h * 0.37)), max(10, round(box_h * 0.083)))
    return font_path, layout


def _choose_y(position: str, block_h: int, size: tuple[int, int], avoid, background) -> int:
    width, height = size
    margin = round(height * 0.05)
    spots = {"top": margin, "center": (height - block_h) // 2, "bottom": height - block_h - margin}
    if position != "auto":
        return spots[position]
    grey = np.asarray(background.convert("L"), dtype=np.float32) if background is not None else None

    def cost(name: str) -> tuple[float, float]:
        top, bottom = spots[name], spots[name] + block_h
        overlap = max(0, min(bottom, avoid[3]) - max(top, avoid[1])) if avoid else 0
        busy = float(grey[top:bottom].std()) if grey is not None else 0.0
        return overlap, busy  # never over the product if avoidable; then the calmest band

    return spots[min(("top", "bottom", "center"), key=cost)]


def _draw_block(layout: Layout, font_path: Path, style: TextStyle) -> Image.Image:
    size = layout.size
    pad = round(size * 0.5)
    w, h = layout.width + 2 * pad, layout.height + 2 * pad
    stroke = round(style.stroke.width * size) if style.stroke else 0
    glyphs, outline = Image.new("L", (w, h), 0), Image.new("L", (w, h), 0)
    y = pad
    spacing = round(size * 0.18)
    for lines, font_size in ((layout.lines, layout.size), (layout.sub_lines, layout.sub_size)):
        font = _font(str(font_path), font_size)
        if lines is layout.sub_lines and lines:
            y += spacing
        for line in lines:
            x = pad + (layout.width - font.getlength(line)) / 2
            ImageDraw.Draw(glyphs).text((x, y), line, font=font, fill=255)
            ImageDraw.Draw(outline).text((x, y), line, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
            y += font_size + spacing
    out = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    if style.shadow:
        s = style.shadow
        blurred = outline.filter(ImageFilter.GaussianBlur(max(0.5, s.blur * size)))
        out.alpha_composite(_solid(blurred, s.color), (round(s.dx * size), round(s.dy * size)))
    if style.glow:
        for radius in (style.glow.radius * size, style.glow.radius * size / 3):
            out.alpha_composite(_solid(outline.filter(ImageFilter.GaussianBlur(radius)), style.glow.color))
    if style.extrude:
        depth = max(1, round(style.extrude.depth * size))
        for step in range(depth, 0, -1):
            out.alpha_composite(_solid(outline, _shade(style.extrude.color, 1 - 0.4 * step / depth)), (step, step))
    if style.stroke:
        out.alpha_composite(_solid(outline, style.stroke.color))
    out.alpha_composite(_gradient(glyphs, style.fill))
    return out


def _rgba(color: str) -> tuple[int, int, int, int]:
    value = color.lstrip("#")
    return tuple(int(value[i:i + 2], 16) for i in (0, 2, 4)) + ((int(value[6:8], 16),) if len(value) == 8 else (255,))


def _shade(color: str, factor: float) -> str:
    r, g, b, a = _rgba(color)
    return "#" + "".join(f"{round(c * factor):02x}" for c in (r, g, b)) + f"{a:02x}"


def _solid(mask: Image.Image, color: str) -> Image.Image:
    r, g, b, a = _rgba(color)
    layer = Image.new("RGBA", mask.size, (r, g, b, 0))
    layer.putalpha(ImageChops.multiply(mask, Image.new("L", mask.size, a)))
    return layer


def _gradient(mask: Image.Image, colors: list[str]) -> Image.Image:
    top, bottom = _rgba(colors[0]), _rgba(colors[-1])
    ramp = np.linspace(0.0, 1.0, mask.height, dtype=np.float32)[:, None, None]
    rgb = np.asarray(top[:3], np.float32) * (1 - ramp) + np.asarray(bottom[:3], np.float32) * ramp
    rgb = np.broadcast_to(rgb, (mask.height, mask.width, 3)).round().astype(np.uint8)
    layer = Image.fromarray(rgb, "RGB").convert("RGBA")
    layer.putalpha(mask)
    return layer
