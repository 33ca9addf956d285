"""Reading the writer's answers: strict, bounded parsing of what the language model wrote (pure; no model).

A model may answer badly (the demo model's random weights always do): every parser returns only what
passes every check, possibly nothing, never a part of a broken answer. Checks: the expected shape (a
JSON array for copy and scenes, one paragraph for a prompt), the language (copy in the details'
language; prompts and scenes in English, which ZIT reads best), the length limits, no claim the details
do not back (`claims.invented`), and with the product-focus policy no people in a scene.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator

from .claims import invented
from .request import COPY_LIMITS, Product

HANGUL = re.compile("[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
# Scripts a Qwen model drifts into: CJK ideographs, kana, full-width forms (Korean copy uses Hangul only).
FOREIGN = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
PEOPLE = re.compile(r"\b(?:people|person|persons|man|men|woman|women|girl|girls|boy|boys|child|children|kids?|"
                    r"faces?|hands?|fingers?|humans?|human figures?|crowd|couple|family|lady|ladies|guy|guys|"
                    r"someone|he|she|his|her|model posing)\b", re.IGNORECASE)
THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL)
SPECIAL = re.compile(r"<\|[a-z_]+\|>")
# Words that make ZIT paint text: a sentence or scene with one is dropped (a written "SALE" sign is a claim too).
TEXT_CUES = re.compile(r"\b(?:signs?|signage|labels?|tags?|text|texts|reads|reading|says|saying|written|lettering|"
                       r"letters|captions?|banners?|stickers?|badges?|headlines?|slogans?|typography|words?|logos?)\b",
                       re.IGNORECASE)
PROMPT_WORDS = (8, 200)  # an enhanced prompt: enough to describe a scene, within ZIT's 512 tokens
PROMPT_CHARS = 1500  # and well inside a request's prompt limit with the policy and copy-space clauses added
SCENE_WORDS = (3, 60)
SCENE_CHARS = 300  # as a preset's variation


def product_details(product: Product) -> str:
    """Every detail the user gave, one per line: what the model reads and what claims are checked against."""
    lines = [f"name: {product.name}"]
    for label, value in (("category", product.category), ("features", ", ".join(product.features)),
                         ("audience", product.audience), ("scene", product.scene), ("colours", product.colors),
                         ("current copy", product.copy)):
        if value:
            lines.append(f"{label}: {value}")
    return "\n".join(lines)


def language_of(product: Product) -> str:
    """'ko' when the details are written in Korean (any Hangul outside the colour words), else 'en'."""
    text = " ".join((product.name, product.category, *product.features, product.audience, product.scene,
                     product.copy))
    return "ko" if HANGUL.search(text) else "en"


def clean(raw: str) -> str:
    """The answer without thinking blocks, chat-template tokens and code fences, NFC-normalized."""
    text = THINK.sub("", unicodedata.normalize("NFC", raw))
    text = SPECIAL.sub("", text)
    return re.sub(r"```[a-zA-Z]*", "", text).strip()


def json_arrays(text: str) -> Iterator[list]:
    """Each JSON array in `text`, in order (a bounded scan: at most 64 starts are tried)."""
    decoder = json.JSONDecoder()
    starts = [m.start() for m in re.finditer(r"\[", text)][:64]
    for start in starts:
        try:
            value, _ = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than Python recurses
            continue
        if isinstance(value, list):
            yield value


def one_line(value: object, limit: int) -> str | None:
    """`value` as one stripped line of at most `limit` characters, or None."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.split()).strip(" \"'“”‘’")
    if not text or len(text) > limit or any(unicodedata.category(c) in ("Cc", "Cf") for c in text):
        return None  # control and invisible format characters (zero-width, bidi overrides) never reach an ad
    return text


def _fits_language(text: str, lang: str, details: str) -> bool:
    if FOREIGN.search(text) and not all(ch in details for ch in FOREIGN.findall(text)):
        return False
    return bool(HANGUL.search(text)) if lang == "ko" else not HANGUL.search(text)


def _english(text: str) -> bool:
    """Mostly Latin letters, no Hangul or CJK (what ZIT's prompts are written in)."""
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and not HANGUL.search(text) and not FOREIGN.search(text) and \
        sum(c.isascii() for c in letters) >= 0.9 * len(letters)


def parse_copy(raw: str, details: str, lang: str, n: int) -> list[tuple[str, str]]:
    """Up to `n` (headline, sub-line) pairs from a JSON array of {"headline", "subline"} objects.

    A headline with an invented claim drops its suggestion; a sub-line with one is removed (the headline
    stays). Headlines must be in `lang`, distinct, within the copy fields' limits.
    """
    for items in json_arrays(clean(raw)):
        found: list[tuple[str, str]] = []
        for item in items:
            if isinstance(item, str):
                item = {"headline": item}
            if not isinstance(item, dict):
                continue
            headline = one_line(item.get("headline"), COPY_LIMITS["copy"])
            if headline is None or not _fits_language(headline, lang, details) or invented(headline, details):
                continue
            sub = one_line(item.get("subline", item.get("sub", "")), COPY_LIMITS["subcopy"]) or ""
            if sub and (not _fits_language(sub, lang, details) or invented(sub, details)):
                sub = ""
            if headline.casefold() not in {h.casefold() for h, _ in found}:
                found.append((headline, sub))
        if found:
            return found[:n]
    return []


def _scene_ok(text: str, details: str, product_focus: bool) -> bool:
    return _english(text) and not TEXT_CUES.search(text) and not invented(text, details, scene=True) and \
        not (product_focus and PEOPLE.search(text))


def parse_prompt(raw: str, details: str, product_focus: bool) -> str | None:
    """One English paragraph of PROMPT_WORDS words, its sentences with claims (or people) dropped, or None."""
    text = clean(raw)
    paragraph = next((p for p in re.split(r"\n\s*\n", text) if p.strip()), "")
    paragraph = re.sub(r"^\s*(?:\*\*)?(?:prompt|english prompt|프롬프트)\s*:?\s*(?:\*\*)?\s*", "", paragraph,
                       flags=re.IGNORECASE)
    paragraph = " ".join(paragraph.split()).strip(" \"'“”")
    if not _english(paragraph) or any(unicodedata.category(c) in ("Cc", "Cf") for c in paragraph):
        return None
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", paragraph) if s.strip()]
    kept = [s for s in sentences if _scene_ok(s, details, product_focus)]
    words, chars, out = 0, 0, []
    for sentence in kept:
        words += len(sentence.split())
        chars += len(sentence) + 1
        if words > PROMPT_WORDS[1] or chars > PROMPT_CHARS:
            break
        out.append(sentence)
    prompt = " ".join(out)
    letters = sum(c.isalpha() for c in prompt)
    return prompt if len(prompt.split()) >= PROMPT_WORDS[0] and letters >= 0.6 * len(prompt) else None


def parse_variations(raw: str, details: str, product_focus: bool, n: int) -> list[str]:
    """Up to `n` distinct English scene phrases from a JSON array of strings (each checked alone)."""
    for items in json_arrays(clean(raw)):
        found: list[str] = []
        for item in items:
            scene = one_line(item, SCENE_CHARS)
            if scene is None or not SCENE_WORDS[0] <= len(scene.split()) <= SCENE_WORDS[1]:
                continue
            scene = scene.rstrip(".")
            if _scene_ok(scene, details, product_focus) and scene.casefold() not in {s.casefold() for s in found}:
                found.append(scene)
        if found:
            return found[:n]
    return []
