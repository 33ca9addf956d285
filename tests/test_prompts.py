"""Prompt building is pure: product + preset -> text, policy in the positive prompt."""

import pytest

from adgen.presets import load_presets
from adgen.prompts import COPY_SPACE, PRODUCT_FOCUS, build_prompt, describe_product, settings_for
from adgen.request import AdRequest, Product

PRESETS = load_presets()


@pytest.mark.parametrize(
    ("product", "subject"),
    [
        (Product("Lamp"), "Lamp"),
        (Product("Lamp", category="lighting"), "Lamp (lighting)"),
        (Product("램프", features="무선, 충전식"), "램프, featuring 무선, 충전식"),
    ],
)
def test_subject(product, subject):
    assert describe_product(product) == subject


def test_full_prompt_for_photo():
    product = Product("Cola", scene="beach at noon", colors="red", audience="teens", copy="Stay cool")
    assert build_prompt(product, PRESETS["photo"]) == (
        "Professional commercial product photograph of Cola. Studio lighting with soft shadows, sharp focus, "
        "high detail, photorealistic, advertising quality. Scene and mood: beach at noon. Brand colours: red. "
        'Made to appeal to teens. The advertising headline reads "Stay cool". ' + PRODUCT_FOCUS
    )


def test_product_focus_is_on_by_default_and_switchable():
    product = Product("Cola")
    assert "No people, no faces" in build_prompt(product, PRESETS["anime"])
    assert "No people" not in build_prompt(product, PRESETS["anime"], product_focus=False)


def test_copy_becomes_space_when_drawn_as_its_own_layer():
    prompt = build_prompt(Product("Cola", copy="세일"), PRESETS["photo"], include_copy=False)
    assert "세일" not in prompt and COPY_SPACE in prompt


def test_korean_passes_through_unchanged():
    prompt = build_prompt(Product("제주 감귤 주스", features="100% 착즙"), PRESETS["photo"])
    assert "제주 감귤 주스, featuring 100% 착즙" in prompt


def test_settings_request_then_preset_then_zit_defaults(tmp_path):
    (tmp_path / "tall.yaml").write_text("label: T\nlabel_ko: 티\ndescription: d\ndescription_ko: 디\n"
                                        "prompt: '{subject}'\nsteps: 6\nwidth: 768\n"
                                        "height: 1344\nlora: {file: t.safetensors, scale: 0.5}\n")
    tall = load_presets(tmp_path)["tall"]
    product = Product("Cola")
    s = settings_for(AdRequest(product, preset="tall"), tall)
    assert (s.width, s.height, s.steps, s.lora_scale) == (768, 1344, 6, 0.5)
    s = settings_for(AdRequest(product, preset="tall", width=512, steps=8, lora_scale=0.0), tall)
    assert (s.width, s.height, s.steps, s.lora_scale) == (512, 1344, 8, 0.0)
    s = settings_for(AdRequest(product, prompt="my own words"), PRESETS["photo"])
    assert (s.prompt, s.width, s.height, s.steps, s.lora_scale) == ("my own words", 1024, 1024, 8, None)
