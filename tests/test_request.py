"""AdRequest / Product validation: each bad value names its field and what is allowed."""

import re

import pytest

from adgen.errors import InputError
from adgen.request import ASPECTS, AdRequest, Product, aspect_size, parse_features, parse_size

P = Product("Sneaker")


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"width": 1000}, "width", "multiple of 16"),
        ({"height": 240}, "height", "from 256 to 2048"),
        ({"width": 2064}, "width", "from 256 to 2048"),
        ({"width": "wide"}, "width", "whole number"),
        ({"width": 512.5}, "width", "whole number"),
        ({"seed": -1}, "seed", "from 0 to 4294967295"),
        ({"seed": 2**32}, "seed", "from 0 to 4294967295"),
        ({"count": 0}, "count", "from 1 to 8"),
        ({"count": 9}, "count", "from 1 to 8"),
        ({"steps": 51}, "steps", "from 1 to 50"),
        ({"lora_scale": 2.5}, "LoRA scale", "from 0.0 to 2.0"),
        ({"lora_scale": float("nan")}, "LoRA scale", "from 0.0 to 2.0"),
        ({"strength": 0}, "strength", "from 0.05 to 1.0"),
        ({"preset": "../etc"}, "preset", "preset name"),
        ({"prompt": "x" * 4001}, "prompt", "at most 4000"),
        ({"prompt": "bell\x07"}, "prompt", "control characters"),
        ({"image": "path.png"}, "image", "bytes"),
        ({"seed": True}, "seed", "whole number"),
    ],
)
def test_bad_request_fields_are_named(changes, field, says):
    with pytest.raises(InputError) as err:
        AdRequest(product=P, **changes)
    assert err.value.field == field
    assert says in str(err.value)


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"name": ""}, "product name", "must not be empty"),
        ({"name": "   "}, "product name", "must not be empty"),
        ({"name": "x" * 501}, "product name", "at most 500"),
        ({"name": "a\x00b"}, "product name", "U+0000"),
        ({"name": "ok", "copy": "\x1b[31m"}, "ad copy", "control characters"),
        ({"name": "ok", "features": ["fine", "x" * 501]}, "key features", "at most 500"),
        ({"name": 5}, "product name", "must be text"),
    ],
)
def test_bad_product_fields_are_named(fields, field, says):
    with pytest.raises(InputError) as err:
        Product(**fields)
    assert err.value.field == field
    assert says in str(err.value)


BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


@pytest.mark.parametrize("char", BIDI)
def test_bidirectional_controls_are_refused_in_every_text_field(char):
    """"세일 \u202e50% 할인" is drawn "세일 인할 %05": each field that reaches the image or prompt refuses them."""
    found = f"U+{ord(char):04X}"
    for fields, field in (({"name": f"세일 {char}50%"}, "product name"), ({"name": "x", "copy": f"세일 {char}50% 할인"},
                                                                          "ad copy"),
                          ({"name": "x", "features": [f"a{char}b"]}, "key features"),
                          ({"name": "x", "scene": f"a{char}"}, "scene/mood")):
        with pytest.raises(InputError) as err:
            Product(**fields)
        assert err.value.field == field and "bidirectional control characters" in str(err.value), fields
        assert found in str(err.value)
    with pytest.raises(InputError, match=f"prompt: must not contain bidirectional .*{re.escape(found)}"):
        AdRequest(product=P, prompt=f"a photo {char}of x")


def test_text_is_kept_as_given_korean_included():
    product = Product(" 여름 한정 탄산수 ", copy="첫 구매 30% 할인 ₩9,900!")
    assert product.name == "여름 한정 탄산수"
    assert product.copy == "첫 구매 30% 할인 ₩9,900!"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a, b; c", ("a", "b", "c")), ("레몬、무설탕，탄산", ("레몬", "무설탕", "탄산")), ("", ()), (["x", " "], ("x",))],
)
def test_features_split(text, expected):
    assert parse_features(text) == expected


def test_sizes_and_aspects():
    assert parse_size("1024x768") == (1024, 768)
    assert parse_size(" 512 X 2048 ") == (512, 2048)
    for ratio, (w, h) in ASPECTS.items():
        assert w % 16 == 0 and h % 16 == 0
        assert 0.85e6 <= w * h <= 1.1e6, ratio  # about one megapixel
        a, b = map(int, ratio.split(":"))
        assert abs(w / h - a / b) < 0.02, ratio
    assert aspect_size("16:9") == (1280, 720)
    with pytest.raises(InputError, match="WIDTHxHEIGHT"):
        parse_size("big")


def test_seeds_are_consecutive_and_random_seed_is_reported():
    request = AdRequest(product=P, seed=4294967295, count=3)
    assert request.seeds() == [4294967295, 0, 1]
    resolved = AdRequest(product=P).resolved()
    assert 0 <= resolved.seed <= 2**32 - 1
    assert resolved.resolved() is resolved


def test_blank_prompt_override_means_no_override():
    assert AdRequest(product=P, prompt="  ").prompt is None
