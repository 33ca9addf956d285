"""Channel formats (Instagram story, display banner, marketplace main image, ...): data files in
`presets/channels/` checked by one schema (unknown keys rejected).

Pure: no torch, no gradio. A user adds a channel by dropping one `.yaml`/`.yml`/`.json` file into the
folder; its file name (without extension) is the channel's id. Each file cites the spec its size comes from.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import InputError, PresetError
from .presets import PROJECT_DIR, load_folder, read_fields, schema_error
from .request import MAX_SIDE, MIN_SIDE, SIDE_MULTIPLE
from .rules import Rules

HORIZONTAL_ASPECT = 3.0  # width/height from which a channel is a banner strip (728x90, 320x50, 970x250)
_ONE_MEGAPIXEL = 1024 * 1024
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_ASPECT_WEIGHT = 100  # 1% off in aspect costs as much as a factor e off in area

Side = Annotated[int, Field(ge=16, le=4096)]
Margin = Annotated[float, Field(ge=0.0, le=0.45)]


def generation_size(width: int, height: int, area: int | None = None) -> tuple[int, int]:
    """The size Z-Image-Turbo is run at for a `width` x `height` channel; the image is then resized to fit.

    ZIT works at about one megapixel with sides that are multiples of 16 (request.py's limits), so a
    channel is not generated at its own size: a 320x50 banner would be far too small, a 2000x2000 image
    needlessly slow. The aspect matters most (the resize to the channel must not crop the product), then
    the area: each width w is tried with the height nearest w/aspect, scored as 100 x |log aspect error|
    + |log(area / 1 MP)|, lowest wins. An exact ratio so beats a near one that is a little closer to 1 MP
    (4:5 -> 896x1120, 9:16 -> 720x1280, the same as request.ASPECTS), and a strip too long for 2048x256
    (728x90) gets the nearest reachable aspect. `area` replaces the one megapixel (a smaller one for
    quick drafts and the tests' demo model).
    """
    aspect = width / height
    best = None
    for w in range(MIN_SIDE, MAX_SIDE + 1, SIDE_MULTIPLE):
        h = round(w / aspect / SIDE_MULTIPLE) * SIDE_MULTIPLE
        h = min(MAX_SIDE, max(MIN_SIDE, h))
        score = _ASPECT_WEIGHT * abs(math.log(w / h / aspect)) + abs(math.log(w * h / (area or _ONE_MEGAPIXEL)))
        if best is None or score < best[0]:
            best = (score, w, h)
    return best[1], best[2]


class SafeZone(BaseModel):
    """Fractions of each edge kept free of copy and logo (platform UI covers them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    top: Margin = 0.0
    right: Margin = 0.0
    bottom: Margin = 0.0
    left: Margin = 0.0


class Channel(BaseModel):
    """One output format: size, safe zone, the platform's rules (rules.py), and the spec they come from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    label: str = Field(min_length=1, max_length=60)
    label_ko: str = Field(min_length=1, max_length=60)  # shown when the page is in Korean
    platform: str = Field("Other", min_length=1, max_length=40)  # channels are listed grouped by platform
    platform_ko: str = Field("기타", min_length=1, max_length=40)
    width: Side
    height: Side
    safe_zone: SafeZone = SafeZone()
    rules: Rules = Rules()
    product_scale: Annotated[float, Field(gt=0.05, le=1.0)] | None = None  # of the safe area; None: the ad's
    source: str = Field(min_length=1, max_length=600)  # URL / citation of the spec and of each rule
    order: int = 100  # position in lists; lower first

    @model_validator(mode="before")
    @classmethod
    def _old_rule_keys(cls, data: object) -> object:
        """Channel files written before `rules:` gave `background` and `copy` at the top: they still load."""
        if isinstance(data, dict) and ("background" in data or "copy" in data):
            data = dict(data)
            rules = dict(data.get("rules") or {})
            for key in ("background", "copy"):
                if key in data:
                    rules.setdefault(key, data.pop(key))
            data["rules"] = rules
        return data

    @model_validator(mode="after")
    def _reachable(self) -> Channel:
        problem = self.rules.fits(self.width, self.height)
        if problem:
            raise ValueError(f"rules: the channel's own size can never pass: {problem}")
        return self

    @property
    def background(self) -> str:
        """"white": pure RGB 255,255,255 except product and shadow; "plain": one flat colour; "any"."""
        return self.rules.background

    @property
    def copy(self) -> bool:  # noqa: D401 - shadows BaseModel's deprecated copy() on purpose (read as a rule)
        """False: product only, no copy (a marketplace main image)."""
        return self.rules.copy_allowed

    @property
    def logo(self) -> bool:
        return self.rules.logo

    @property
    def min_fill(self) -> float | None:
        return self.rules.min_fill

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def aspect(self) -> float:
        return self.width / self.height

    @property
    def horizontal(self) -> bool:
        return self.aspect >= HORIZONTAL_ASPECT

    @property
    def generation_size(self) -> tuple[int, int]:
        return generation_size(self.width, self.height)

    def safe_box(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) in pixels of the area copy and logo may use, rounded inward."""
        zone, w, h = self.safe_zone, self.width, self.height
        return (_inward(w * zone.left), _inward(h * zone.top),
                w - _inward(w * zone.right), h - _inward(h * zone.bottom))


def _inward(pixels: float) -> int:
    return math.ceil(round(pixels, 6))  # round() first: 0.07 * 100 is 7.000000000000001


def load_channel(path: Path) -> Channel:
    """Read and check one channel file; errors name the file and the field."""
    channel_id = path.stem
    if not _ID.fullmatch(channel_id):
        raise PresetError(f"{path}: the file name must be lowercase letters, digits, '_' or '-' "
                          f"(got {channel_id!r})")
    data = read_fields(path, "label, width, height, source, ...")
    for key in ("id", "name"):
        if key in data:
            raise PresetError(f"{path}: {key}: not a field; the file name ({channel_id!r}) is the channel's id")
    try:
        return Channel(id=channel_id, **data)
    except ValidationError as exc:
        def allowed(loc: tuple) -> list[str]:
            model = {"safe_zone": SafeZone, "rules": Rules}.get(str(loc[0]), Channel)
            return [f.alias or name for name, f in model.model_fields.items() if name != "id"]

        raise schema_error(path, exc, allowed) from None


def channel_dir() -> Path:
    """$ADGEN_CHANNELS_DIR, else the project's `presets/channels/`."""
    return Path(os.environ.get("ADGEN_CHANNELS_DIR") or PROJECT_DIR / "presets" / "channels").expanduser()


def load_channels(directory: Path | str | None = None) -> dict[str, Channel]:
    """All channels in `directory` (default `channel_dir()`), ordered by (`order`, id); PresetError on a bad file."""
    return load_folder(directory if directory is not None else channel_dir(), load_channel, "channel", "id")


def get_channels(ids: str | list[str], channels: dict[str, Channel]) -> list[Channel]:
    """The channels named by `ids` ("a,b" or ["a", "b"]), in the given order, each once."""
    names = ids.split(",") if isinstance(ids, str) else list(ids)
    names = list(dict.fromkeys(str(n).strip() for n in names if str(n).strip()))
    if not names:
        raise InputError("channels", f"choose at least one of {', '.join(channels)}")
    for name in names:
        if name not in channels:
            raise InputError("channels", f"unknown {name!r}; choose one of {', '.join(channels)}")
    return [channels[n] for n in names]


def by_platform(channels: dict[str, Channel]) -> dict[str, list[Channel]]:
    """The channels grouped by platform (English name), platforms in the order their first channel comes."""
    groups: dict[str, list[Channel]] = {}
    for channel in channels.values():
        groups.setdefault(channel.platform, []).append(channel)
    return groups


def choice_label(channel: Channel, lang: str) -> str:
    """"Coupang · Coupang main image" (or "쿠팡 · 쿠팡 대표 이미지"): a channel in a list grouped by platform."""
    from .i18n import lang_code

    if lang_code(lang) == "ko":
        return f"{channel.platform_ko} · {channel.label_ko}"
    return f"{channel.platform} · {channel.label}"
