"""Two languages as data: the page's strings (`adgen/locales/*.yaml`), the browser's choice, errors in Korean.

No gradio here. `gr.I18n(**load_locales())` translates the page's fixed labels in the browser;
`text` and `localize_error` make what the server sends (status lines, confirmations, errors) in the
UI's language. The locale files are read on first use, never at import.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache
from pathlib import Path
from typing import Literal, Protocol

import yaml

from .errors import AdgenError, GenerationStopped, InputError

Lang = Literal["en", "ko"]
LANGS: tuple[Lang, ...] = ("en", "ko")
LOCALE_DIR = Path(__file__).resolve().parent / "locales"
STOP_REASONS = ("stopped_by_user", "stopped_client_left", "stopped_page_closed", "stopped_by_operator",
                "stopped_other_file_failed")
_KEY = re.compile(r"[a-z][a-z0-9_]*")


class LocaleError(AdgenError):
    """A locale file that can't be read or is out of step with en.yaml (the message names file and key)."""


class Labelled(Protocol):
    """Data with an English and a Korean label and description (StylePreset, TextStyle)."""

    label: str
    label_ko: str
    description: str
    description_ko: str


class _UniqueKeys(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice (PyYAML would keep the last one silently)."""


def _mapping(loader: _UniqueKeys, node: yaml.MappingNode) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} appears twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeys.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def placeholders(template: str) -> set[str]:
    """The `{name}` placeholders of a locale string."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def _read(path: Path) -> dict[str, str]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeys)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise LocaleError(f"{path}: cannot be read as YAML: {exc}") from None
    if not isinstance(data, dict):
        raise LocaleError(f"{path}: must be a mapping of key: text")
    for key, value in data.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise LocaleError(f"{path}: {key!r}: keys are snake_case names like 'product_name'")
        if not isinstance(value, str) or not value.strip():
            raise LocaleError(f"{path}: {key}: must be non-empty text (got {value!r})")
        try:
            parts = list(string.Formatter().parse(value))
        except ValueError as exc:
            raise LocaleError(f"{path}: {key}: unbalanced braces ({exc}); placeholders look like {{name}}") from None
        for literal, name, spec, conversion in parts:
            if "{" in literal or "}" in literal:
                raise LocaleError(f"{path}: {key}: literal braces are not allowed (the browser shows them as written)")
            if name is not None and (not name.isidentifier() or spec or conversion):
                raise LocaleError(f"{path}: {key}: placeholders are plain names like {{count}} (got {{{name}}})")
    return data


def load_locales(directory: Path | str | None = None) -> dict[str, dict[str, str]]:
    """{"en": {key: text}, "ko": {...}} read from `directory` (default adgen/locales) and checked; `gr.I18n(**it)`."""
    directory = Path(directory) if directory is not None else LOCALE_DIR
    locales = {lang: _read(directory / f"{lang}.yaml") for lang in LANGS}
    english = locales["en"]
    for lang in LANGS[1:]:
        path, strings = directory / f"{lang}.yaml", locales[lang]
        missing, extra = sorted(english.keys() - strings.keys()), sorted(strings.keys() - english.keys())
        if missing or extra:
            raise LocaleError(f"{path}: must have exactly en.yaml's keys (missing: {', '.join(missing) or '-'}; "
                              f"not in en.yaml: {', '.join(extra) or '-'})")
        for key, value in strings.items():
            if placeholders(value) != placeholders(english[key]):
                raise LocaleError(f"{path}: {key}: placeholders {sorted(placeholders(value))} differ from "
                                  f"en.yaml's {sorted(placeholders(english[key]))}")
    return locales


@lru_cache(maxsize=1)
def _locales() -> dict[str, dict[str, str]]:
    return load_locales()


def lang_code(tag: str | None) -> Lang:
    """"ko" for a Korean language tag (ko, ko-KR, ko_KR), else "en"."""
    return "ko" if (tag or "").strip().lower().replace("_", "-").split("-")[0] == "ko" else "en"


def lang_of(accept_language: str | None) -> Lang:
    """"ko" when the browser's first preference in an Accept-Language header is Korean, else "en"."""
    best, best_q = None, 0.0
    for part in (accept_language or "").split(","):
        tag, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0  # a malformed weight: skip the entry rather than guess
        if tag and 0.0 < q <= 1.0 and q > best_q:  # q=0 means "not this one"; ties keep the earlier tag
            best, best_q = tag, q
    return lang_code(best)


def text(key: str, lang: str = "en", **values: object) -> str:
    """The UI string `key` in `lang` (any tag; non-Korean is English) with its {placeholders} filled from `values`."""
    strings = _locales()[lang_code(lang)]
    if key not in strings:
        raise KeyError(f"no UI string {key!r}: add it to adgen/locales/en.yaml and ko.yaml")
    template = strings[key]
    missing = placeholders(template) - values.keys()
    if missing:
        raise KeyError(f"UI string {key!r} needs {', '.join(sorted(missing))}")
    return template.format(**values)


def label(item: Labelled, lang: str) -> str:
    """A preset's or text style's label in `lang`."""
    return item.label_ko if lang_code(lang) == "ko" else item.label


def description(item: Labelled, lang: str) -> str:
    """A preset's or text style's description in `lang`."""
    return item.description_ko if lang_code(lang) == "ko" else item.description


@lru_cache(maxsize=1)
def _fields() -> dict[str, str]:
    """English field name (as errors give it) -> its locale key."""
    return {value: key for key, value in _locales()["en"].items() if key.startswith("field_")}


def field_label(field: str, lang: str) -> str:
    """An error's field name in `lang`; a field without a translation stays as given."""
    key = _fields().get(field)
    return text(key, lang) if key else field


@lru_cache(maxsize=1)
def _patterns() -> list[tuple[str, re.Pattern]]:
    """(key, regex) for each error_*, warning_* and check_* template of en.yaml, the most literal text first (the most
    specific wins)."""
    patterns = []
    for key, template in _locales()["en"].items():
        if not key.startswith(("error_", "warning_", "check_", "note_")):  # messages the CLI and the page translate
            continue
        regex, seen, literal_chars = "", set(), 0
        for literal, name, _, _ in string.Formatter().parse(template):
            regex += re.escape(literal)
            literal_chars += len(literal)
            if name is not None:
                regex += f"(?P={name})" if name in seen else f"(?P<{name}>.+?)"
                seen.add(name)
        patterns.append((literal_chars, key, re.compile(regex, re.DOTALL)))
    return [(key, regex) for _, key, regex in sorted(patterns, key=lambda p: -p[0])]


def translate_message(message: str, lang: str) -> str | None:
    """An English error message (without its field) in `lang`, by en.yaml's error_* templates; None if none fits."""
    for key, regex in _patterns():
        match = regex.fullmatch(message)
        if match:
            return text(key, lang, **_named(match.groupdict(), lang))
    return None


def _named(values: dict[str, str], lang: str) -> dict[str, str]:
    """A message's values in `lang` where they are labels: `channel` (or `channels`, comma-separated) holds channels'
    English labels, each given its label in `lang` (a label no channel file has stays as written)."""
    names = [n for n in ("channel", "channels") if n in values]
    if not names or lang_code(lang) == "en":
        return values
    from .channels import load_channels

    try:
        labels = {c.label: label(c, lang) for c in load_channels().values()}
    except AdgenError:  # a broken channel file is said where channels are chosen; here the English label stays
        labels = {}
    return {**values, **{n: ", ".join(labels.get(v, v) for v in values[n].split(", ")) for n in names}}


def localize_error(exc: BaseException, lang: str) -> str:
    """`exc` in `lang`: English as raised; Korean field and message (a message no template fits stays English)."""
    message = str(exc)
    if lang_code(lang) == "en":
        return message
    if isinstance(exc, GenerationStopped):
        return _stopped(exc, lang)
    if isinstance(exc, InputError):
        field, rest = exc.field, message.removeprefix(f"{exc.field}: ")
    else:  # WontFit, OutOfMemory, FontError, ModelError: "field: message" or a whole sentence
        field, sep, rest = message.partition(": ")
        if not sep or field not in _fields():
            return translate_message(message, lang) or message
    return f"{field_label(field, lang)}: {translate_message(rest, lang) or rest}"


def _stopped(exc: GenerationStopped, lang: str) -> str:
    reasons = {text(key, "en"): key for key in STOP_REASONS}
    reason = text(reasons[exc.reason], lang) if exc.reason in reasons else exc.reason
    where = (text("stopped_after_step", lang, step=exc.step, total=exc.total) if exc.total
             else text("stopped_before_start", lang))
    if exc.files:
        where += text("stopped_files_done", lang, done=exc.files[0], total=exc.files[1])
    return text("stopped_message", lang, reason=reason, where=where)
