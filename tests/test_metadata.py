"""PNG parameters: written like A1111's 'parameters', read back into the same request."""

import io
import json
import re

import pytest
from PIL import Image, PngImagePlugin

from adgen.errors import InputError
from adgen.metadata import a1111_text, read_params, request_from_params

from conftest import small


def raw_png(adgen: object) -> bytes:
    """A PNG whose 'adgen' chunk holds `adgen` (JSON-encoded unless already text)."""
    info = PngImagePlugin.PngInfo()
    info.add_itxt("adgen", adgen if isinstance(adgen, str) else json.dumps(adgen))
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def test_generated_png_round_trips_to_the_same_request_and_image(engine, product):
    request = small(product, preset="anime", lora_scale=0.5, count=2, steps=4)
    result = engine.generate(request)
    second = result.images[1]
    params = read_params(second.png)
    assert params["seed"] == 43 and params["key"] == second.key
    assert params["prompt"] == second.prompt != result.prompt  # image 1 has its own scene variation
    assert params["variation"] == 1 and params["lora"] == "anime" and params["lora_scale"] == 0.5
    again = request_from_params(params)
    assert (again.seed, again.count, again.preset, again.steps, again.width) == (43, 1, "anime", 4, 256)
    assert (again.variation, again.same_scene) == (1, False)
    assert again.product == product
    regenerated = engine.generate(again, use_cache=False).images[0]
    assert regenerated.png == second.png


def test_a1111_parameters_chunk_is_readable_by_other_tools(engine, product):
    png = engine.generate(small(product)).images[0].png
    text = Image.open(io.BytesIO(png)).text["parameters"]
    prompt, fields = text.rsplit("\n", 1)
    assert prompt.startswith("Professional commercial product photograph of 탄산수")
    assert "Steps: 8, Sampler: FlowMatchEuler, CFG scale: 0, Seed: 42, Size: 256x256" in fields
    assert "Model: demo model (random weights)" in fields


def test_a1111_text_lists_lora_and_strength():
    params = {"prompt": "p", "steps": 8, "seed": 1, "width": 512, "height": 768, "model": "m", "preset": "anime",
              "lora": "anime", "lora_scale": 0.8, "strength": 0.6}
    assert a1111_text(params) == ("p\nSteps: 8, Sampler: FlowMatchEuler, CFG scale: 0, Seed: 1, Size: 512x768, "
                                  "Model: m, Style: anime, LoRA: anime, LoRA scale: 0.8, Denoising strength: 0.6")


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"not an image", "not a readable PNG"),
        (raw_png({"adgen": 99}), "unknown version"),
        (raw_png("{not json"), "damaged"),
    ],
)
def test_foreign_or_damaged_files_are_refused(data, says):
    with pytest.raises(InputError, match=says):
        read_params(data)


def test_png_without_parameters_is_refused():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    with pytest.raises(InputError, match="has no AdGen parameters"):
        read_params(buffer.getvalue())


GOOD = {"adgen": 1, "product": {"name": "Cola", "category": "", "features": ["zero sugar"], "audience": "",
                                "scene": "", "colors": "", "copy": ""},
        "preset": "photo", "lora": None, "lora_scale": None, "prompt_override": None, "product_focus": True,
        "seed": 7, "width": 256, "height": 256, "steps": 8, "strength": None, "draw_copy": True, "prompt": "p",
        "model": "m", "key": "k"}
AD = {"subcopy": "", "text_style": "gold", "text_position": "top", "background": "inpaint",
      "placement": {"x": 0.5, "y": 0.6, "scale": 0.45}}


def changed(path: str, value: object = ..., params: dict | None = None) -> dict:
    """GOOD (or `params`) with the field at dotted `path` set to `value`, or removed when no value is given."""
    params = json.loads(json.dumps(params or GOOD))
    *parents, name = path.split(".")
    node = params
    for parent in parents:
        node = node[parent]
    if value is ...:
        del node[name]
    else:
        node[name] = value
    return params


def test_well_formed_parameters_are_read_back():
    assert read_params(raw_png(GOOD)) == GOOD
    with_ad = {**GOOD, "ad": AD}
    assert read_params(raw_png(with_ad)) == with_ad
    assert request_from_params(read_params(raw_png(GOOD))).seed == 7


@pytest.mark.parametrize(
    ("chunk", "says"),
    [
        ("[]", "damaged: must be a JSON object (got [])"),
        ('"x"', "damaged: must be a JSON object (got 'x')"),
        ("null", "damaged: must be a JSON object (got None)"),
        ({**GOOD, "adgen": True}, "of an unknown version (True)"),
        ({"adgen": 1}, "damaged: product is missing"),
        ({"adgen": 1, "step": "mask", "key": "k"}, "is the mask step of an ad, not an image: load the final ad"),
        (changed("seed", "abc"), "damaged: seed must be a whole number (got 'abc')"),
        (changed("seed", True), "damaged: seed must be a whole number (got True)"),
        (changed("seed", 1.5), "damaged: seed must be a whole number (got 1.5)"),
        (changed("width", None), "damaged: width must be a whole number (got None)"),
        (changed("steps"), "damaged: steps is missing"),
        (changed("product", 5), "damaged: product must be an object (got 5)"),
        (changed("product.name", 5), "damaged: product.name must be text (got 5)"),
        (changed("product.copy"), "damaged: product.copy is missing"),
        (changed("product.price", "9"), "damaged: product has an unknown field 'price'"),
        (changed("product.features", "a, b"), "damaged: product.features must be a list of text (got 'a, b')"),
        (changed("product.features", [1]), "damaged: product.features must be a list of text (got [1])"),
        (changed("lora_scale", "big"), "damaged: lora_scale must be a number or null (got 'big')"),
        (changed("lora_scale", float("nan")), "damaged: lora_scale must be a number or null (got nan)"),
        (changed("prompt_override", 3), "damaged: prompt_override must be text or null (got 3)"),
        (changed("product_focus", "yes"), "damaged: product_focus must be true or false (got 'yes')"),
        (changed("draw_copy", 1), "damaged: draw_copy must be true or false (got 1)"),
        ({**GOOD, "ad": "x"}, "damaged: ad must be an object (got 'x')"),
        ({**GOOD, "ad": changed("text_style", params=AD)}, "damaged: ad.text_style is missing"),
        ({**GOOD, "ad": changed("placement.x", "left", params=AD)},
         "damaged: ad.placement.x must be a number (got 'left')"),
    ],
)
def test_malformed_parameters_are_refused_naming_the_field(chunk, says):
    with pytest.raises(InputError, match="^image: (its AdGen parameters are )?" + re.escape(says)):
        read_params(raw_png(chunk))
