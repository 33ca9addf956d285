"""The writer's checks, pure: invented claims (Korean and English) and strict parsing of the model's answers."""

from __future__ import annotations

import json

import pytest

from adgen.answers import clean, language_of, parse_copy, parse_prompt, parse_variations, product_details
from adgen.claims import invented, numbers
from adgen.request import COPY_LIMITS, Product

DETAILS = product_details(Product("제주 감귤 탄산수", features="제로 슈거, 500ml, 무료 배송",
                                  copy="여름 한정 30% 할인"))


@pytest.mark.parametrize(("line", "details", "expected"), [
    ("50% 할인", "제주 감귤 탄산수", ["50%", "할인"]),  # the false-advertising case: both the rate and the offer
    ("여름 한정 30% 할인", DETAILS, []),  # every claim is in the details
    ("30 퍼센트 할인", DETAILS, []),  # said another way, same percentage
    ("40% 할인", DETAILS, ["40%"]),
    ("오십 퍼센트 더 상쾌", DETAILS, ["50%"]),  # a number in words
    ("fifty percent fresher", "sparkling water", ["50%"]),
    ("단돈 9,900원", "제주 감귤 탄산수", ["9900"]),
    ("단돈 9,900원", "가격: 9900원", []),  # 9,900 and 9900 are one price
    ("₩12,000", "가격 12,000원", []),
    ("단돈 만원", "가격 9,900원", ["10000"]),
    ("3만원의 행복", "3개입, 500ml", ["30000"]),  # the multiplier belongs to the price
    ("10원", "10만원", ["10"]),
    ("단돈 500원", "3개입, 500ml", ["500"]),  # a number is not a price
    ("Only $12", "zero sugar", ["12"]),
    ("Only ten dollars", "zero sugar", ["10"]),
    ("price tag reading USD 12", "zero sugar", ["12"]),
    ("24시간 촉촉", "수분 크림", ["24시간"]),
    ("3일 만에 완판", "3개입, 500ml", ["3일"]),  # 3일 is not 3개입
    ("500명이 선택", "3개입, 500ml", ["500명이"]),
    ("3배 더 상쾌", "3개입", ["3배"]),
    ("두 배 더 상쾌", "3개입", ["2배"]),
    ("twice the fizz", "sparkling water", ["twice"]),
    ("500ml 한 캔", DETAILS, []),
    ("1.5L big bottle", "1.5 l", []),
    ("2026 summer edition", "2026 신제품", []),  # a bare year backed by the same year
    ("1+1 이벤트", "1L 대용량", ["1+1", "이벤트"]),
    ("No. 1 soda", "1L bottle", ["no.1"]),
    ("#1 in Korea", "sparkling water", ["#1"]),
    ("식약처 인증 완료", "수분 크림", ["식약처", "인증"]),
    ("KC인증 제품", "KC인증 받은 충전기", []),  # a Korean word inside a longer one, backed
    ("인증샷 맛집 분위기", "탄산수", []),  # harmless words that contain a claim word
    ("최대한 시원하게", "탄산수", []),
    ("업계 최초 1위", "수분 크림", ["1위", "최초"]),
    ("무료 배송", DETAILS, []),
    ("첫 구매 사은품 증정", "탄산수", ["사은품", "증정", "첫 구매"]),
    ("반값 세일", "탄산수", ["반값", "세일"]),
    ("Certified organic lemons", "sparkling water", ["certified", "organic"]),
    ("FDA-approved citrus fizz", "sparkling water", ["approved", "fda"]),
    ("Clinically-proven, GMP-certified", "face cream", ["certified", "clinically", "gmp", "proven"]),
    ("FREE shipping today", "sparkling water", ["free"]),
    ("Sugar-free and fresh", "sparkling water, sugar free", []),  # case and hyphen aside, backed
    ("BOGO: buy one get one", "sparkling water", ["bogo", "buy one get one"]),
    ("The best summer drink", "sparkling water", ["best"]),
    ("Fresh Jeju citrus fizz", "sparkling water", []),
    ("３０％ 할인", DETAILS, []),  # full-width digits and sign are the same claim
    ("제주 감귤 할\u200b인", "탄산수", ["할인"]),  # an invisible character does not hide a word
    ("무\u200c료 배송", "탄산수", ["무료"]),
])
def test_invented_claims_are_found_in_korean_and_english(line, details, expected):
    assert sorted(invented(line, details)) == sorted(expected)


def test_numbers_tell_percentages_prices_offers_and_numbers_with_units_apart():
    assert numbers("30% off, ₩9,900, 1.5L, 3일, 1+1") == {("percent", "30", ""), ("price", "9900", ""),
                                                         ("number", "1.5", "l"), ("number", "3", "일"),
                                                         ("offer", "1+1", "")}


def test_scenes_may_say_numbers_superlatives_and_looks_but_not_prices_offers_or_certifications():
    assert invented("a 45-degree view in the best light, clutter-free, clinical white, organic shapes", "tea",
                    scene=True) == []
    assert invented("beside a 50% sale stand", "tea", scene=True) == ["50%", "sale"]
    assert invented("a certified FDA-approved jar", "tea", scene=True) == ["approved", "certified", "fda"]
    assert invented("a tray priced at 5 euros", "tea", scene=True) == ["5"]


def test_language_follows_the_details():
    assert language_of(Product("Citrus water", features="레몬")) == "ko"
    assert language_of(Product("Citrus water", colors="민트")) == "en"  # colour words alone do not decide it
    assert language_of(Product("Citrus water")) == "en"


def copy_answer(items) -> str:
    return "<think>\n\n</think>\n\n```json\n" + json.dumps(items, ensure_ascii=False) + "\n```<|im_end|>"


def test_copy_is_read_from_a_json_array_and_checked_line_by_line():
    answer = copy_answer([
        {"headline": "제주 햇살을 담은 한 모금", "subline": "제로 슈거 감귤 탄산수"},
        {"headline": "지금 50% 할인!", "subline": "오늘만"},  # invented rate and offer: dropped
        {"headline": "여름 한정 상쾌함", "subline": "식약처 인증 탄산수"},  # invented certification: sub-line removed
        {"headline": "Fresh Jeju fizz", "subline": "Zero sugar"},  # English for Korean details: dropped
        {"headline": "제주 햇살을 담은 한 모금", "subline": "again"},  # a repeat
        {"headline": "가" * (COPY_LIMITS["copy"] + 1)},  # over the copy field's limit
        {"headline": "柑橘气泡水"},  # Chinese drift
        "톡 쏘는 감귤",  # a plain string is a headline
    ])
    assert parse_copy(answer, DETAILS, "ko", 5) == [("제주 햇살을 담은 한 모금", "제로 슈거 감귤 탄산수"),
                                                 ("여름 한정 상쾌함", ""), ("톡 쏘는 감귤", "")]
    assert parse_copy(answer, DETAILS, "ko", 1) == [("제주 햇살을 담은 한 모금", "제로 슈거 감귤 탄산수")]


@pytest.mark.parametrize("junk", [
    "", "헤드라인: 여름", "[{\"headline\": ", "[1, 2, 3]", "{\"headline\": \"x\"}", "[" * 200,
    "<think>[{\"headline\": \"생각 속\"}]", "제품 광고 사진 스튜디오 조명 ] [ 할인 } {",
])
def test_junk_gives_nothing_never_part_of_an_answer(junk):
    assert parse_copy(junk, DETAILS, "ko", 3) == []
    assert parse_variations(junk, DETAILS, True, 3) == []
    assert parse_prompt(junk, DETAILS, True) is None


def test_a_prompt_is_one_english_paragraph_without_people_or_invented_offers():
    answer = ("Prompt: A frosted glass bottle of Jeju citrus sparkling water on wet black slate, surrounded by halved "
              "tangerines and mint leaves. A smiling woman holds the bottle. Cool blue rim light, droplets on the "
              "glass, shallow depth of field, 85mm lens. A sign reads 50% OFF.\n\nSecond paragraph is ignored.")
    prompt = parse_prompt(answer, DETAILS, product_focus=True)
    assert prompt == ("A frosted glass bottle of Jeju citrus sparkling water on wet black slate, surrounded by halved "
                      "tangerines and mint leaves. Cool blue rim light, droplets on the glass, shallow depth of field, "
                      "85mm lens.")
    assert "woman" in parse_prompt(answer, DETAILS, product_focus=False)  # people allowed when the policy is off
    assert parse_prompt("제주 감귤 탄산수가 검은 돌 위에 놓여 있고 시원한 조명이 비춥니다", DETAILS, True) is None
    assert parse_prompt("A bottle.", DETAILS, True) is None  # too short to be a prompt


def test_scenes_are_distinct_english_phrases_in_bounds():
    answer = json.dumps(["on polished white marble, soft morning light from the left, eye-level view",
                         "on polished WHITE marble, soft morning light from the left, eye-level view",  # repeat
                         "on a beach towel beside a smiling girl, bright noon sun",  # a person
                         "흰 대리석 위, 부드러운 아침 햇살",  # not English
                         "too short",
                         "on dark wet slate with droplets, cool blue rim light, low close-up angle.",
                         "in front of a 70% OFF banner, harsh flash"])  # an invented offer
    assert parse_variations(answer, DETAILS, True, 8) == [
        "on polished white marble, soft morning light from the left, eye-level view",
        "on dark wet slate with droplets, cool blue rim light, low close-up angle"]


def test_clean_drops_thinking_and_template_tokens():
    assert clean("<think>plan</think>答<|im_end|>") == "答"
    assert clean("<think>never closed") == ""
