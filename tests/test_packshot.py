"""Packshot backdrops and the floor reflection: no model, exact and fast checks on synthetic images."""

import time

import numpy as np
import pytest
from PIL import Image

from adgen.compose import Placement, composite, place
from adgen.errors import InputError
from adgen.packshot import STYLES, backdrop, packshot, reflection

BRAND = ("#1A1A1A", "#FF6600")


def luminance(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), np.float64) @ [0.299, 0.587, 0.114]


def product_layer(size=(200, 300), box=(60, 80, 140, 200), color=(190, 30, 40)) -> tuple[Image.Image, tuple]:
    """A canvas-sized RGBA layer with an opaque rectangle 'product' at `box`."""
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    left, top, right, bottom = box
    layer.paste(Image.new("RGBA", (right - left, bottom - top), (*color, 255)), (left, top))
    return layer, box


# -- backdrops -----------------------------------------------------------------------------------
def test_white_is_pure_white_everywhere():
    image = backdrop((123, 77), "white", BRAND)
    assert image.mode == "RGB" and image.size == (123, 77)
    assert (np.asarray(image) == 255).all()


def test_color_is_exactly_the_first_colour_else_light_grey():
    assert (np.asarray(backdrop((40, 30), "color", ("#FF6600", "#000000"))) == (255, 102, 0)).all()
    assert (np.asarray(backdrop((40, 30), "color", ("#2255aa",))) == (0x22, 0x55, 0xAA)).all()
    assert (np.asarray(backdrop((40, 30), "color")) == (0xED, 0xED, 0xED)).all()


@pytest.mark.parametrize("colors", [(), ("#2255AA",), BRAND])
def test_gradient_is_deterministic_soft_and_lighter_at_the_top(colors):
    first, second = backdrop((320, 512), "gradient", colors), backdrop((320, 512), "gradient", colors)
    assert first.mode == "RGB" and first.size == (320, 512)
    assert first.tobytes() == second.tobytes()
    lum = luminance(first)
    rows = lum.mean(axis=1)
    assert np.abs(np.diff(rows)).max() < 2.0  # no hard line: the wall/floor join is blended
    horizon = round(0.62 * 512)
    assert rows[:8].mean() > rows[horizon - 12:horizon - 4].mean()  # the wall deepens toward the horizon
    assert rows[-8:].mean() > rows[horizon + 12:horizon + 20].mean()  # the floor lightens toward the viewer
    centre, corner = lum[200:240, 140:180].mean(), lum[:20, :20].mean()
    assert corner < centre  # light falloff toward the edges


def test_gradient_tints_stay_light_even_for_a_dark_brand_colour():
    image = backdrop((256, 256), "gradient", BRAND)
    assert luminance(image).mean() > 170
    assert luminance(image).min() > 150  # dark copy reads anywhere on it
    floor = np.asarray(image, np.int16)[-20:, 100:156].mean(axis=(0, 1))
    assert floor[0] > floor[2]  # the floor carries the second colour (orange), the wall the first


def test_gradient_without_colours_is_a_warm_light_grey():
    r, g, b = np.asarray(backdrop((128, 128), "gradient"), np.float64).mean(axis=(0, 1))
    assert r >= g >= b and r - b < 20 and b > 200


def test_a_single_colour_string_and_lower_case_hex_are_accepted():
    assert backdrop((16, 16), "gradient", "#ff6600").tobytes() == backdrop((16, 16), "gradient", ("#FF6600",)).tobytes()


def test_tiny_canvases_work():
    for style in STYLES:
        assert backdrop((1, 1), style).size == (1, 1)


@pytest.mark.parametrize(
    ("call", "field", "says"),
    [
        (lambda: backdrop((10, 10), "marble"), "background", "must be one of white, color, gradient (got 'marble')"),
        (lambda: backdrop((10, 10), "color", ("FF6600",)), "brand hex colours",
         "must be hex colours like #FF6600 (got 'FF6600')"),
        (lambda: backdrop((10, 10), "gradient", ("#FF6600", "#12345")), "brand hex colours",
         "must be hex colours like #FF6600 (got '#12345')"),
        (lambda: backdrop((10, 10), "white", ("red",)), "brand hex colours", "(got 'red')"),
        (lambda: backdrop((0, 10)), "size", "must be from 1 to 8192 (got 0)"),
        (lambda: backdrop((10, 9000)), "size", "must be from 1 to 8192 (got 9000)"),
        (lambda: backdrop((10.5, 10)), "size", "must be a whole number from 1 to 8192 (got 10.5)"),
        (lambda: backdrop((True, 10)), "size", "must be a whole number"),
        (lambda: backdrop((10,)), "size", "must look like WIDTHxHEIGHT"),
        (lambda: packshot((10, 10), None, None, "glossy"), "background", "(got 'glossy')"),
    ],
)
def test_bad_input_names_the_field(call, field, says):
    with pytest.raises(InputError) as err:
        call()
    assert err.value.field == field
    assert says in str(err.value)


def test_all_styles_at_2000_take_well_under_a_second():
    for style in STYLES:
        start = time.perf_counter()
        image = backdrop((2000, 2000), style, BRAND)
        elapsed = time.perf_counter() - start
        assert image.size == (2000, 2000)
        assert elapsed < 1.0, f"{style}: {elapsed:.2f}s"


# -- the reflection ------------------------------------------------------------------------------
def test_reflection_lies_below_the_box_and_fades_to_zero():
    layer, box = product_layer()
    mirror = reflection(layer, box, strength=0.3, fade=0.5)
    assert mirror.mode == "RGBA" and mirror.size == layer.size
    alpha = np.asarray(mirror)[:, :, 3].astype(int)
    left, top, right, bottom = box
    assert not alpha[:bottom].any()  # nothing above the box's bottom edge
    assert not alpha[:, :left].any() and not alpha[:, right:].any()
    assert abs(alpha[bottom, left:right] - 0.3 * 255).max() <= 0.5  # starts at `strength`
    column = alpha[bottom:, 100]
    assert (np.diff(column) <= 0).all()  # fades...
    reach = 0.5 * (bottom - top)  # 60 rows
    assert column[int(reach) - 2] <= 3 and not column[int(reach):].any()  # ...to 0 over fade x height
    assert (np.asarray(mirror)[bottom, left:right, :3] == (190, 30, 40)).all()  # the product's own pixels


def test_reflection_is_the_product_flipped():
    layer = Image.new("RGBA", (50, 100), (0, 0, 0, 0))
    layer.paste(Image.new("RGBA", (20, 10), (255, 0, 0, 255)), (10, 30))  # top of the product: red
    layer.paste(Image.new("RGBA", (20, 10), (0, 0, 255, 255)), (10, 40))  # its base: blue
    mirror = np.asarray(reflection(layer, (10, 30, 30, 50), strength=1.0, fade=1.0))
    assert (mirror[50:60, 10:30, :3] == (0, 0, 255)).all()  # the base comes first below the edge
    assert (mirror[60:70, 10:30, :3] == (255, 0, 0)).all()
    assert not mirror[70:, :, 3].any()


def test_reflection_follows_the_products_own_alpha():
    layer = Image.new("RGBA", (40, 60), (0, 0, 0, 0))
    layer.paste(Image.new("RGBA", (10, 20), (9, 9, 9, 255)), (10, 10))  # a product narrower than its box
    alpha = np.asarray(reflection(layer, (5, 10, 30, 30)))[:, :, 3]
    assert alpha[30, 10:20].min() > 0 and not alpha[:, :10].any() and not alpha[:, 20:].any()


@pytest.mark.parametrize("bottom", [300, 295])
def test_reflection_stays_inside_the_canvas_when_the_product_touches_the_bottom(bottom):
    layer, box = product_layer(box=(60, bottom - 120, 140, bottom))
    mirror = reflection(layer, box)
    assert mirror.size == (200, 300)
    alpha = np.asarray(mirror)[:, :, 3]
    assert not alpha[:bottom].any()
    assert alpha[bottom:].any() == (bottom < 300)


def test_reflection_refuses_nonsense_settings():
    layer, box = product_layer()
    with pytest.raises(ValueError, match="strength"):
        reflection(layer, box, strength=2)
    with pytest.raises(ValueError, match="fade"):
        reflection(layer, box, fade=0)


# -- the packshot --------------------------------------------------------------------------------
def test_white_packshot_has_no_reflection_even_when_asked():
    layer, box = product_layer()
    for reflect in (None, True):
        assert (np.asarray(packshot((200, 300), layer, box, "white", BRAND, reflect=reflect)) == 255).all()


@pytest.mark.parametrize("style", ["color", "gradient"])
def test_color_and_gradient_packshots_reflect_by_default(style):
    layer, box = product_layer()
    plain = np.asarray(backdrop((200, 300), style, BRAND), np.int16)
    shot = np.asarray(packshot((200, 300), layer, box, style, BRAND), np.int16)
    bottom = box[3]
    assert np.array_equal(shot[:bottom], plain[:bottom])  # the background itself is untouched above the edge
    assert np.abs(shot[bottom:bottom + 10, 60:140] - plain[bottom:bottom + 10, 60:140]).max() > 10
    off = np.asarray(packshot((200, 300), layer, box, style, BRAND, reflect=False), np.int16)
    assert np.array_equal(off, plain)


def test_packshot_without_a_product_is_the_backdrop():
    assert packshot((64, 64), None, None).tobytes() == backdrop((64, 64)).tobytes()


def test_packshot_feeds_the_usual_composite():
    product = Image.new("RGBA", (80, 160), (190, 30, 40, 255))
    layer, box = place(product, (256, 256), Placement())
    final = composite(packshot((256, 256), layer, box, "gradient", BRAND), layer, box, None)
    pixels = np.asarray(final)
    assert final.mode == "RGB" and final.size == (256, 256)
    left, top, right, bottom = box
    assert (pixels[top + 2:bottom - 2, left + 2:right - 2] == (190, 30, 40)).all()  # the product, untouched
