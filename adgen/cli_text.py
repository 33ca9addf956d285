"""The CLI's words in the user's language: Korean under a Korean locale (LC_ALL, LC_MESSAGES or LANG `ko_*`, or
ADGEN_LANG=ko), read from the same locale files as the page (adgen/locales/); English otherwise.

Messages are raised in English (errors.py); `line` renders one as "오류: ..." / "경고: ...", translating it by the
locale files' templates part by part ("--channels: unknown ..." keeps the flag, translates the rest); a message no
template fits stays English rather than being guessed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .i18n import Lang, lang_code, text, translate_message

if TYPE_CHECKING:
    from .channels import Channel

_LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")  # POSIX order: the first one set decides
_ROW = re.compile(r'row (?P<row>\d+)(?:, column "(?P<column>[^"]*)")?: (?P<rest>.*)', re.DOTALL)  # a batch row's


def cli_lang(environ: Mapping[str, str] | None = None) -> Lang:
    """"ko" when ADGEN_LANG, else the first of LC_ALL, LC_MESSAGES, LANG that is set, is Korean ("ko_KR.UTF-8")."""
    environ = os.environ if environ is None else environ
    if environ.get("ADGEN_LANG"):
        return lang_code(environ["ADGEN_LANG"])
    for name in _LOCALE_VARIABLES:
        value = environ.get(name)
        if value:
            return lang_code(value.split(".")[0])
    return "en"


def line(kind: str, message: str, lang: str | None = None) -> str:
    """"error: message" or "warning: message" (`kind`), in the CLI's language."""
    lang = lang or cli_lang()
    if lang == "en":
        return f"{kind}: {message}"
    return f"{text('cli_' + kind, lang)}: {translate(message, lang)}"


def translate(message: str, lang: str | None = None) -> str:
    """`message` in `lang`: by a whole template, else its "PREFIX: rest" parts, each by a template or as given."""
    lang = lang or cli_lang()
    if lang == "en":
        return message
    row = _ROW.fullmatch(message)
    if row:
        where = (text("cli_row_column", lang, row=row["row"], column=row["column"]) if row["column"] is not None
                 else text("cli_row_prefix", lang, row=row["row"]))
        return f"{where}: {translate(row['rest'], lang)}"
    whole = translate_message(message, lang)
    if whole is not None:
        return whole
    head, sep, rest = message.partition(": ")
    if not sep:
        return message
    return f"{translate_message(head, lang) or head}: {translate(rest, lang)}"


def label(key: str) -> str:
    """A progress label (a locale key) in the CLI's language."""
    return text(key, cli_lang())


def check_line(file: str, check: dict, lang: str | None = None) -> str:
    """A failed check as a warning's text: "coupang_main-v1.png: fill 80.0% (allowed: at least 85%)"."""
    lang = lang or cli_lang()
    if lang == "en":
        return f"{file}: {check['rule']} {check['measured']} (allowed: {check['allowed']})"
    pieces = lambda value: ", ".join(translate(part, lang) for part in value.split(", "))  # noqa: E731
    return text("cli_check_failed", lang, file=file, rule=text(f"rule_{check['rule']}", lang),
                measured=pieces(check["measured"]), allowed=pieces(check["allowed"]))


def rule_warnings(checks: dict[str, list[dict]], notes: dict[str, str] | None = None,
                  lang: str | None = None) -> list[str]:
    """The warning texts of a campaign's files: why a file could not fit, then each rule it fails."""
    lines = [f"{file}: {translate(note, lang)}" for file, note in (notes or {}).items()]
    return lines + [check_line(file, c, lang) for file, cs in checks.items() for c in cs if c["passed"] is False]


def rules_summary(channel: Channel, lang: str | None = None) -> str:
    """A channel's rules in a few words for `channels`: "white background, no text, no logo, product ≥ 85%, ..."."""
    lang = lang or cli_lang()
    rules = channel.rules
    parts = []
    if rules.background != "any":
        parts.append(text(f"rules_{rules.background}", lang))
    if not rules.copy_allowed:
        parts.append(text("rules_no_copy", lang))
    if not rules.logo:
        parts.append(text("rules_no_logo", lang))
    if rules.min_fill is not None:
        parts.append(text("rules_fill", lang, fill=f"{rules.min_fill:.0%}"))
    if rules.max_bytes is not None:
        parts.append("/".join(f.upper() for f in rules.formats) + " ≤ " + f"{rules.max_bytes / 1_000_000:g} MB")
    return ", ".join(parts)
