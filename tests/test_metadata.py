"""PNG parameters: written like A1111's 'parameters', read back into the same request."""

import io
import json

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
    assert params["prompt"] == result.prompt and params["lora"] == "anime" and params["lora_scale"] == 0.5
    again = request_from_params(params)
    assert (again.seed, again.count, again.preset, again.steps, again.width) == (43, 1, "anime", 4, 256)
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
