"""Invented claims: numbers, percentages, prices, certifications and offers a writer added on its own.

Pure: no model. An ad that says "50% 할인" or "식약처 인증" when the product details say neither is false
advertising (Korea's Act on Fair Labelling and Advertising; the FTC Act in the US), so the writer's text
is checked against the product details: every claim in a line must appear there too. A claim is

- a price ("₩9,900", "9,900원", "3만 원", "$12", "USD 12", "ten dollars", "삼만원"): backed only by the same
  price in the details;
- a percentage ("30%", "30 퍼센트", "오십 프로", "fifty percent"): backed only by the same percentage;
- another number, with the unit that follows it ("24시간", "3일", "2배", "두 배", "500ml", "3 days"): backed by
  the same number with the same unit (or, for a number without a unit, the same number anywhere);
- an offer ("1+1", "할인", "무료", "사은품", "free", "sale", "BOGO"), a certification or approval ("인증", "특허",
  "식약처", "FDA", "certified", "clinically") or, in copy, a superlative ("최고", "1위", "best", "No. 1").

Words match case-insensitively, on words split at hyphens ("FDA-approved" is "fda approved"), Korean ones
inside longer words ("KC인증") except a few harmless words that contain them ("인증샷", "최대한"); invisible
format characters are removed first. `invented(line, details)` lists what is not backed.
"""

from __future__ import annotations

import re
import unicodedata

# Certification and approval words. In copy every one is checked; in a scene (`scene=True`) the ones that
# also describe a look ("clinical white", "organic shapes") are not.
CERTIFICATION_KO = ("인증", "특허", "임상", "입증", "검증", "공인", "식약처", "허가", "유기농", "무농약", "친환경",
                    "무첨가", "비건", "수상")
CERTIFICATION_EN = ("certified", "certification", "certificate", "patent", "patented", "approved", "fda", "haccp",
                    "gmp", "iso", "award", "awarded", "winning", "dermatologist", "dermatologically")
DESCRIPTIVE_EN = ("clinical", "clinically", "proven", "organic", "vegan", "natural", "hypoallergenic", "eco",
                  "tested", "guaranteed", "guarantee")  # claims in copy, looks in a scene
OFFER_KO = ("할인", "세일", "특가", "무료", "공짜", "증정", "사은품", "쿠폰", "적립", "혜택", "이벤트", "한정", "단독",
            "첫 구매", "반값", "보장", "1+1", "2+1")
OFFER_EN = ("sale", "discount", "discounted", "free", "coupon", "bogo", "buy one get one", "half price", "half off",
            "clearance", "deal", "limited")
SUPERLATIVE_KO = ("최초", "최고", "최저", "최대", "유일", "1위", "넘버원")
SUPERLATIVE_EN = ("best", "bestseller", "cheapest", "lowest", "no.1", "#1", "number one", "twice", "double", "triple")
# Harmless words that contain a claim word: removed before matching.
HARMLESS_KO = ("인증샷", "수상한", "수상스키", "최대한", "세일러", "이벤트성")
HARMLESS_SCENE_EN = ("free", "limited", "deal")  # "clutter-free", "a limited palette"

_FORMAT = re.compile(r"[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_NUM = r"\d+(?:[.,]\d+)*"
_KO_DIGITS = {"일": 1, "이": 2, "삼": 3, "사": 4, "오": 5, "육": 6, "칠": 7, "팔": 8, "구": 9}
_KO_SMALL = {"십": 10, "백": 100, "천": 1000}
_KO_NATIVE = {"한": 1, "두": 2, "세": 3, "네": 4, "다섯": 5, "여섯": 6, "일곱": 7, "여덟": 8, "아홉": 9, "열": 10}
_EN_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())} | {
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_PERCENT_WORD = r"(?:%|퍼센트|프로|percent\b|per\s*cent\b)"
_CURRENCY_AFTER = r"(?:원|won\b|달러|dollars?\b|bucks\b|usd\b|krw\b|euros?\b|eur\b|pounds?\b|gbp\b|yen\b|jpy\b)"
_CURRENCY_BEFORE = r"(?:[₩$€£¥]|usd|krw|eur|gbp|jpy)"
_UNIT_EN = (r"(?:ml|l|kg|g|mg|oz|lbs?|cm|mm|m|days?|hours?|hrs?|h|minutes?|mins?|weeks?|months?|years?|yrs?|times|x|"
            r"pcs|pieces?|packs?|cups?|people|customers|reviews?|stars?|calories|kcal)")


def normalize(text: str) -> str:
    """NFKC (full-width digits and signs to ASCII), case-folded, invisible format characters removed."""
    return _FORMAT.sub("", unicodedata.normalize("NFKC", text)).casefold()


def _korean_number(word: str) -> int | None:
    """'오십' -> 50, '삼만' -> 30000, '만' -> 10000, '오천' -> 5000 (sino-Korean numerals); None if not one."""
    if not word or any(c not in _KO_DIGITS and c not in _KO_SMALL and c not in "만억" for c in word):
        return None
    total, group, digit = 0, 0, 0
    for char in word:
        if char in _KO_DIGITS:
            digit = _KO_DIGITS[char]
        elif char in _KO_SMALL:
            group += (digit or 1) * _KO_SMALL[char]
            digit = 0
        else:  # 만, 억: everything so far is multiplied
            total += ((group + digit) or 1) * (10000 if char == "만" else 10**8)
            group = digit = 0
    return total + group + digit


def _spell_numbers(text: str) -> str:
    """Numbers written in words before a unit, as digits: '오십 퍼센트' -> '50 퍼센트', '두 배' -> '2 배',
    'fifty percent' -> '50 percent', '만원' -> '10000원'."""
    def korean(match: re.Match) -> str:
        value = _korean_number(match.group(1))
        return match.group(0) if value is None else f"{value}{match.group(3)}"

    text = re.sub(r"(\d+(?:\.\d+)?)\s*만\s*(원)",  # 3만 원, 1.5만원: the multiplier belongs to the price
                  lambda m: f"{round(float(m.group(1)) * 10000)}{m.group(2)}", text)
    text = re.sub(rf"(?<![가-힣\d])([일이삼사오육칠팔구십백천만억]+)(\s*)({_PERCENT_WORD}|원|배)", korean, text)
    native = "|".join(sorted(_KO_NATIVE, key=len, reverse=True))
    text = re.sub(rf"(?<![가-힣])({native})\s*(배)", lambda m: f"{_KO_NATIVE[m.group(1)]}{m.group(2)}", text)
    english = "|".join(sorted(_EN_WORDS, key=len, reverse=True))

    def spelled(match: re.Match) -> str:  # "twenty-five" -> 25
        value = sum(_EN_WORDS[w] for w in re.split(r"[-\s]", match.group(1)))
        return f"{value} {match.group(2)}"

    return re.sub(rf"\b((?:{english})(?:[\s-](?:{english}))?)\s+({_PERCENT_WORD}|{_CURRENCY_AFTER}|times\b)",
                  spelled, text)


def _value(number: str) -> str:
    """'1,000' and '1000' are one number; '1.5' stays 1.5 (a group of 3 digits after the mark is thousands)."""
    parts = re.split(r"[.,]", number)
    if len(parts) > 1 and len(parts[-1]) != 3:
        return "".join(parts[:-1]) + "." + parts[-1]
    return "".join(parts)


def numbers(text: str) -> set[tuple[str, str, str]]:
    """The numeric claims of `text` as (kind, value, unit): kind percent, price, offer (1+1) or number."""
    text = re.sub(r"#\d+|no\.\s*\d+", " ", _spell_numbers(normalize(text)))  # ranks are claim words ("#1")
    found: set[tuple[str, str, str]] = set()
    taken: list[tuple[int, int]] = []
    patterns = (("offer", re.compile(r"(\d+\s*\+\s*\d+)")), ("percent", re.compile(rf"({_NUM})\s*{_PERCENT_WORD}")),
                ("price", re.compile(rf"{_CURRENCY_BEFORE}\s*({_NUM})|({_NUM})\s*{_CURRENCY_AFTER}")))
    for kind, pattern in patterns:
        for match in pattern.finditer(text):
            if any(lo <= match.start() < hi for lo, hi in taken):
                continue
            value = next(g for g in match.groups() if g)
            found.add((kind, re.sub(r"\s", "", value) if kind == "offer" else _value(value), ""))
            taken.append(match.span())
    # A unit is the Hangul or letters right after the number, or a known unit one space after ("3 days"; not
    # "2026 summer", which is a bare year).
    for match in re.finditer(rf"({_NUM})(?:([가-힣]+)|\s?({_UNIT_EN})\b|([a-z]+))?", text):
        if not any(lo <= match.start() < hi for lo, hi in taken):
            found.add(("number", _value(match.group(1)), next((g for g in match.groups()[1:] if g), "")))
    return found


def _backed(claim: tuple[str, str, str], details: set[tuple[str, str, str]]) -> bool:
    kind, value, unit = claim
    if kind != "number":
        return (kind, value, "") in details
    same = [u for k, v, u in details if k == "number" and v == value]
    if not unit:  # a bare number: the same number anywhere in the details
        return bool(same) or any(v == value for _, v, _ in details)
    return any(u and (u.startswith(unit) or unit.startswith(u)) for u in same)  # 3일 ~ 3일간, 3일 !~ 3개입


def _words(text: str, scene: bool) -> set[str]:
    """The claim words of `text` (normalized)."""
    text = normalize(text)
    for harmless in HARMLESS_KO:
        text = text.replace(harmless, " ")
    korean = CERTIFICATION_KO + OFFER_KO + (() if scene else SUPERLATIVE_KO)
    found = {word for word in korean if word in text}
    spaced = " " + re.sub(r"no\.\s*1\b", "no.1", re.sub(r"[^\w#.+가-힣]+|(?<!no)\.", " ", text)) + " "
    english = CERTIFICATION_EN + OFFER_EN
    if not scene:
        english += DESCRIPTIVE_EN + SUPERLATIVE_EN
    else:
        english = tuple(w for w in english if w not in HARMLESS_SCENE_EN)
    found |= {word for word in english if f" {word} " in spaced}
    return found


def invented(line: str, details: str, scene: bool = False) -> list[str]:
    """The claims in `line` the product `details` do not back, as they read (empty: the line is clean).

    `scene=True` (a scene prompt) lets plain numbers ("a 45-degree view"), superlatives ("the best light") and
    descriptive words ("organic shapes") through; prices, percentages, offers and certifications are checked.
    """
    backed = numbers(details)
    missing = []
    for claim in sorted(numbers(line)):
        kind, value, unit = claim
        if scene and kind == "number":
            continue
        if not _backed(claim, backed):
            missing.append(f"{value}%" if kind == "percent" else value + unit)
    detail_words = _words(details, False)
    missing += sorted(word for word in _words(line, scene) if word not in detail_words)
    return list(dict.fromkeys(missing))  # "1위" is a number and a word: said once
