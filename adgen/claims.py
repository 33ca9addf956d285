"""Invented claims: numbers, percentages, prices and certification words a writer added on its own.

Pure: no model. An ad that says "50% 할인" or "식약처 인증" when the product details say neither is false
advertising (Korea's Act on Fair Labelling and Advertising; the FTC Act in the US), so the writer's text
is checked against the product details: every claim in a line must appear there too. A claim is

- a number (digits, full-width too), with its unit: a percentage ("30%", "30 퍼센트"), a price ("₩9,900",
  "9,900원", "$12"), or a plain number ("24시간", "3 days");
- a certification or approval word ("인증", "특허", "FDA", "organic", "clinically");
- in copy only, an offer or superlative word ("할인", "무료", "최고", "free", "sale", "best").

A percentage must be in the details as a percentage and a price as a price or a bare number; a plain
number may appear there in any form. Words match case-insensitively, Korean ones inside longer words too
("KC인증"). `invented(line, details)` lists what is not backed.
"""

from __future__ import annotations

import re
import unicodedata

# Certification, approval and regulated-origin words: checked in every text the writer makes (a scene
# prompt can make ZIT paint a label that reads "certified organic").
CERTIFICATION_KO = ("인증", "특허", "임상", "입증", "검증", "공인", "식약처", "허가", "유기농", "무농약", "친환경",
                    "무첨가", "비건", "수상")
CERTIFICATION_EN = ("certified", "certification", "certificate", "patent", "patented", "clinical", "clinically",
                    "proven", "approved", "fda", "haccp", "gmp", "iso", "organic", "vegan", "award",
                    "award-winning", "dermatologist", "hypoallergenic", "eco-friendly")
# Offers and superlatives: checked in ad copy (a scene may well be "the best light of the day").
OFFER_KO = ("할인", "세일", "특가", "무료", "공짜", "증정", "쿠폰", "적립", "최초", "최고", "최저", "최대", "유일",
            "보장", "1위")
OFFER_EN = ("sale", "discount", "free", "coupon", "cheapest", "lowest", "best", "best-selling", "bestseller",
            "guaranteed", "guarantee", "no.1", "#1", "number one")

_NUMBER = r"\d+(?:[.,]\d+)*"
_PERCENT = re.compile(rf"({_NUMBER})\s*(?:%|퍼센트|프로|percent\b)", re.IGNORECASE)
_PRICE = re.compile(rf"(?:[₩$€£¥]\s*({_NUMBER}))|(?:({_NUMBER})\s*(?:만\s*)?(?:원|won\b|달러|dollars?\b|usd\b|krw\b))",
                    re.IGNORECASE)
_DIGITS = re.compile(_NUMBER)


def normalize(text: str) -> str:
    """NFKC (full-width digits and signs to ASCII) and case-folded."""
    return unicodedata.normalize("NFKC", text).casefold()


def _value(number: str) -> str:
    """'1,000' and '1000' are one number; '1.5' stays 1.5 (a decimal point is followed by 1-2 digits)."""
    parts = re.split(r"[.,]", number)
    if len(parts) > 1 and len(parts[-1]) != 3:  # 1.5, 2,5 (decimal comma): a fraction, not a thousands group
        return "".join(parts[:-1]) + "." + parts[-1]
    return "".join(parts)


def numbers(text: str) -> set[tuple[str, str]]:
    """The numeric claims of `text` as (kind, value): kind is percent, price or number."""
    text = normalize(text)
    found: set[tuple[str, str]] = set()
    taken: list[tuple[int, int]] = []
    for kind, pattern in (("percent", _PERCENT), ("price", _PRICE)):
        for match in pattern.finditer(text):
            value = next(g for g in match.groups() if g)
            found.add((kind, _value(value)))
            taken.append(match.span())
    for match in _DIGITS.finditer(text):
        if not any(lo <= match.start() < hi for lo, hi in taken):
            found.add(("number", _value(match.group())))
    return found


def _words(text: str, offers: bool) -> set[str]:
    text = normalize(text)
    korean = CERTIFICATION_KO + (OFFER_KO if offers else ())
    english = CERTIFICATION_EN + (OFFER_EN if offers else ())
    found = {word for word in korean if word in text}
    for word in english:
        if re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text):
            found.add(word)
    return found


def invented(line: str, details: str, offers: bool = True, plain_numbers: bool = True) -> list[str]:
    """The claims in `line` the product `details` do not back, as they read (empty: the line is clean).

    `offers=False` skips offer and superlative words (scene prompts); `plain_numbers=False` skips bare numbers
    ("a 45-degree view"), keeping percentages and prices.
    """
    backed = numbers(details)
    backed_values = {value for _, value in backed}
    missing = []
    for kind, value in sorted(numbers(line)):
        if kind == "number" and not plain_numbers:
            continue
        ok = (kind, value) in backed or (kind == "number" and value in backed_values) or \
             (kind == "price" and ("number", value) in backed)
        if not ok:
            missing.append(f"{value}%" if kind == "percent" else value)
    detail_words = _words(details, offers)
    missing += sorted(word for word in _words(line, offers) if word not in detail_words)
    return missing
