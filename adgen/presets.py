"""Style presets: data files in `presets/` checked by one schema (unknown keys rejected).

A user adds a style by dropping one `.yaml`/`.yml`/`.json` file into `presets/`; its file name
(without extension) is the preset's name.
"""

from __future__ import annotations

import json
import os
import re
import string
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import InputError, PresetError
from .request import MAX_LORA_SCALE, MAX_SIDE, MAX_STEPS, MAX_VARIATIONS, MIN_SIDE, SIDE_MULTIPLE

PROJECT_DIR = Path(__file__).resolve().parent.parent
PRESET_SUFFIXES = (".yaml", ".yml", ".json")
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_REPO = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def lora_dirs() -> list[Path]:
    """Folders a preset's local LoRA file may live in: `loras/` and `$ADGEN_LORA_DIR` (os.pathsep-separated)."""
    dirs = [PROJECT_DIR / "loras"]
    dirs += [Path(p).expanduser() for p in os.environ.get("ADGEN_LORA_DIR", "").split(os.pathsep) if p]
    return dirs


class LoraSpec(BaseModel):
    """A LoRA: a local `file` (inside the allowed folders) or a hub `repo` + `weight_name`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str | None = None
    repo: str | None = None
    weight_name: str | None = None
    scale: Annotated[float, Field(ge=0.0, le=MAX_LORA_SCALE)] = 1.0

    @field_validator("file", "weight_name")
    @classmethod
    def _safetensors_only(cls, value: str | None) -> str | None:
        if value is None:
            return value
        path = Path(value)
        if path.is_absolute() or ".." in path.parts or "\\" in value:
            raise ValueError(f"must be a relative path inside the LoRA folders, without '..' (got {value!r})")
        if path.suffix != ".safetensors":
            raise ValueError(f"must be a .safetensors file; pickled weights are never loaded (got {value!r})")
        return value

    @field_validator("repo")
    @classmethod
    def _repo_id(cls, value: str | None) -> str | None:
        if value is not None and not _REPO.fullmatch(value):
            raise ValueError(f"must be a Hugging Face repo id like 'owner/name' (got {value!r})")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> LoraSpec:
        if (self.file is None) == (self.repo is None):
            raise ValueError("give exactly one of 'file' (local) or 'repo' (+ 'weight_name', hub)")
        if self.repo and not self.weight_name:
            raise ValueError("a hub LoRA needs 'weight_name', the .safetensors file inside the repo")
        return self


class StylePreset(BaseModel):
    """One image style: labels and descriptions (English, Korean), prompt template, optional LoRA and defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    label: str = Field(min_length=1, max_length=60)
    label_ko: str = Field(min_length=1, max_length=60)  # shown when the page is in Korean (adgen.i18n.label)
    description: str = Field(min_length=1, max_length=300)
    description_ko: str = Field(min_length=1, max_length=300)
    prompt: str = Field(min_length=1, max_length=2000)
    lora: LoraSpec | None = None
    steps: Annotated[int, Field(ge=1, le=MAX_STEPS)] | None = None
    width: Annotated[int, Field(ge=MIN_SIDE, le=MAX_SIDE, multiple_of=SIDE_MULTIPLE)] | None = None
    height: Annotated[int, Field(ge=MIN_SIDE, le=MAX_SIDE, multiple_of=SIDE_MULTIPLE)] | None = None
    # Scene variations (surface, setting, light, camera angle): image i of a request uses variation i.
    variations: Annotated[list[Annotated[str, Field(min_length=1, max_length=300)]],
                          Field(max_length=MAX_VARIATIONS)] = []
    order: int = 100  # position in lists; lower first
    kind: Literal["style"] = "style"

    @field_validator("prompt")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
        except ValueError as exc:
            raise ValueError(f"is not a valid template ({exc}); write literal braces as {{{{ }}}}") from None
        if fields != ["subject"]:
            raise ValueError(f"must contain {{subject}} exactly once and no other {{field}} (found {fields})")
        return value

    def render(self, subject: str) -> str:
        return self.prompt.format(subject=subject)


def load_preset(path: Path) -> StylePreset:
    """Read and check one preset file; errors name the file and the field."""
    name = path.stem
    if not _NAME.fullmatch(name):
        raise PresetError(f"{path}: the file name must be lowercase letters, digits, '_' or '-' (got {name!r})")
    data = read_fields(path, "label, description, prompt, ...")
    if "name" in data:
        raise PresetError(f"{path}: name: not a field; the file name ({name!r}) is the preset's name")
    try:
        return StylePreset(name=name, **data)
    except ValidationError as exc:
        raise schema_error(path, exc, _allowed_fields) from None


def read_fields(path: Path, fields: str) -> dict:
    """A data file's mapping of fields (YAML, or JSON by its suffix); a PresetError naming the file otherwise.
    `fields` names a few of them for the message."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise PresetError(f"{path}: cannot be read as {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise PresetError(f"{path}: must be a mapping of fields ({fields})")
    return data


def schema_error(path: Path, exc: ValidationError, allowed) -> PresetError:
    """The first schema error of a data file as one line naming the file and the field; `allowed(loc)` lists the
    fields allowed where an unknown one was found."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(file)"
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = f"unknown field; allowed: {', '.join(allowed(err['loc']))}"
    return PresetError(f"{path}: {where}: {message}{missing_hint(err)}")


def missing_hint(err: dict) -> str:
    """What a missing Korean field is for, added to pydantic's "Field required" (empty for other errors)."""
    if err["type"] != "missing" or not err["loc"]:
        return ""
    return _KOREAN_FIELDS.get(str(err["loc"][-1]), "")


_KOREAN_FIELDS = {
    "label_ko": " (the Korean label, shown when the page is in Korean; e.g. label_ko: 네온)",
    "description_ko": " (the Korean description, shown when the page is in Korean)",
    "source": " (the URL of the spec the size comes from, and what it says)",  # a channel's
}


def _allowed_fields(loc: tuple) -> list[str]:
    model = LoraSpec if loc and loc[0] == "lora" else StylePreset
    return [f for f in model.model_fields if f not in ("name", "kind")]


def preset_dir() -> Path:
    """$ADGEN_PRESETS_DIR, else the project's `presets/`."""
    return Path(os.environ.get("ADGEN_PRESETS_DIR") or PROJECT_DIR / "presets").expanduser()


def load_presets(directory: Path | str | None = None) -> dict[str, StylePreset]:
    """All presets in `directory` (default `preset_dir()`), ordered by (`order`, name); PresetError on a bad file."""
    return load_folder(directory if directory is not None else preset_dir(), load_preset, "preset", "name")


def load_folder(directory: Path | str, load, kind: str, key: str) -> dict:
    """Every data file in `directory` read by `load`, by its `key` field, ordered by (`order`, key): the one loader
    of presets and channels. Refuses a missing folder, an empty one and two files with the same `key`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PresetError(f"{directory}: {kind}s folder not found")
    items = [load(p) for p in sorted(directory.iterdir()) if p.suffix in PRESET_SUFFIXES]
    names = [getattr(item, key) for item in items]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise PresetError(f"{directory}: two files define the {kind} {duplicate!r}; keep one")
    if not items:
        raise PresetError(f"{directory}: no {kind} files (.yaml, .yml or .json)")
    return {getattr(i, key): i for i in sorted(items, key=lambda i: (i.order, getattr(i, key)))}


def get_preset(presets: dict[str, StylePreset], name: str) -> StylePreset:
    if name not in presets:
        raise InputError("preset", f"unknown style {name!r}; choose one of {', '.join(presets)}")
    return presets[name]


def resolve_lora_file(spec: LoraSpec, dirs: list[Path] | None = None, must_exist: bool = True) -> Path | None:
    """The local file of a `file:` LoRA, refused if it resolves (symlinks too) outside the allowed folders.

    With `must_exist=False` only the containment is checked (None when the file is absent).
    """
    assert spec.file is not None
    dirs = lora_dirs() if dirs is None else dirs
    for base in dirs:
        candidate = (base / spec.file).resolve()
        if not candidate.is_relative_to(base.resolve()):
            raise InputError("lora", f"{spec.file!r} points outside the allowed LoRA folders ({_names(dirs)})")
        if candidate.is_file():
            return candidate
    if not must_exist:
        return None
    raise InputError("lora", f"file {spec.file!r} not found in the LoRA folders ({_names(dirs)}); "
                     "put a Z-Image-Turbo LoRA .safetensors there or set ADGEN_LORA_DIR")


def _names(dirs: list[Path]) -> str:
    return ", ".join(str(d) for d in dirs)
