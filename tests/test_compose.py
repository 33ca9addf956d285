"""Cutout, placement and composite: exact checks on small synthetic images."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from adgen.compose import Placement, auto_mask, composite, contact_shadow, cutout, inpaint_inputs, place
from adgen.errors import InputError


def bottle(backdrop=(255, 255, 255), size=(200, 240)) -> Image.Image:
    """A red 'bottle' (rectangle 60..140 x 30..210) with a white label inside, on a plain backdrop."""
    image = Image.new("RGB", size, backdrop)
    draw = ImageDraw.Draw(image)
    draw.rectangle((60, 30, 139, 209), fill=(190, 30, 40))
    draw.rectangle((80, 90, 119, 140), fill=(255, 255, 255))  # white label: must stay product
    return image


def truth() -> np.ndarray:
    expected = np.zeros((240, 200), bool)
    expected[30:210, 60:140] = True
    return expected


@pytest.mark.parametrize("backdrop", [(255, 255, 255), (240, 240, 236), (20, 90, 200)])
def test_cutout_of_a_product_on_a_plain_backdrop_is_exact_at_the_edge(backdrop):
    mask = np.asarray(auto_mask(bottle(backdrop))) > 127
    assert np.array_equal(mask, truth())  # exact here: hard edges; well within "a few pixels"


def test_cutout_tolerates_noise_and_a_soft_edge():
    rng = np.random.default_rng(0)
    image = np.asarray(bottle(), np.int16) + rng.integers(-8, 9, (240, 200, 3))
    image = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    mask = np.asarray(auto_mask(image)) > 127
    wrong = mask ^ truth()
    rows, cols = np.nonzero(wrong)
    distance = np.minimum.reduce([abs(rows - 30), abs(rows - 209), abs(cols - 60), abs(cols - 139)])
    assert wrong.sum() < 20 and (distance <= 2).all()  # only at the edge, within 2 px


def test_the_alpha_channel_is_used_when_present():
    image = Image.new("RGBA", (50, 40), (255, 255, 255, 0))
    ImageDraw.Draw(image).rectangle((10, 5, 29, 34), fill=(0, 0, 255, 255))
    product = cutout(image)
    assert product.size == (20, 30) and product.getpixel((0, 0)) == (0, 0, 255, 255)


def test_a_photo_with_no_plain_backdrop_is_refused_clearly():
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    with pytest.raises(InputError, match="product photo: the backdrop is not plain and no segmentation model"):
        auto_mask(noise)


def test_a_user_mask_overrides_and_an_empty_one_is_refused():
    user = Image.new("L", (200, 240), 0)
    ImageDraw.Draw(user).rectangle((0, 0, 99, 119), fill=255)
    assert cutout(bottle(), user).size == (100, 120)
    with pytest.raises(InputError, match="product mask: is empty"):
        cutout(bottle(), Image.new("L", (200, 240), 0))


def test_default_placement_centres_the_product_in_the_lower_middle():
    product = Image.new("RGBA", (80, 180), (10, 20, 30, 255))
    layer, box = place(product, (400, 600), Placement())
    assert box == (140, 225, 260, 495)  # 45% of 600 = 270 tall (x1.5 -> 120 wide), centred at (200, 360)
    layer2, box2 = place(product, (400, 600), Placement(x=0.25, y=0.5, scale=0.3))
    assert box2 == (60, 210, 140, 390)  # 180 tall (x1 -> 80 wide), centred at (100, 300)
    assert layer.getpixel((200, 300)) == (10, 20, 30, 255) and layer.getpixel((100, 300))[3] == 0


@pytest.mark.parametrize(("field", "value"), [("x", 1.5), ("y", -0.1), ("scale", 0.0)])
def test_bad_placement_is_named(field, value):
    with pytest.raises(InputError, match=f"placement {field}: must be from"):
        Placement(**{field: value})


def test_inpaint_inputs_keep_the_product_and_repaint_the_rest():
    product = Image.new("RGBA", (10, 10), (200, 0, 0, 255))
    layer, box = place(product, (40, 40), Placement(0.5, 0.5, 0.25))
    image, mask = inpaint_inputs(layer)
    assert image.getpixel((20, 20)) == (200, 0, 0) and image.getpixel((2, 2)) == (128, 128, 128)
    assert mask.getpixel((20, 20)) == 0 and mask.getpixel((2, 2)) == 255


def test_composite_preserves_the_products_pixels_and_adds_a_shadow():
    background = Image.new("RGB", (120, 160), (250, 250, 250))
    product = Image.fromarray(np.random.default_rng(2).integers(0, 255, (40, 30, 3), dtype=np.uint8)).convert("RGBA")
    layer, box = place(product, background.size, Placement())
    final = np.asarray(composite(background, layer, box, None))
    placed = np.asarray(layer)
    inside = placed[..., 3] == 255
    assert np.array_equal(final[inside], placed[inside][:, :3])
    under = final[box[3] - 1:box[3] + 3, (box[0] + box[2]) // 2]
    assert under[-1].sum() < 3 * 250  # darker just below the product: the contact shadow
    assert contact_shadow((50, 50), (10, 10, 40, 40)).getpixel((0, 0))[3] == 0
