"""The three-step ad on the demo pipeline: steps kept and redone alone, product pixels preserved."""

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

from adgen.ad import AdMaker, AdSpec
from adgen.compose import Placement, cutout, place
from adgen.errors import InputError
from adgen.metadata import read_params

from conftest import pixels, small
from test_compose import bottle


def photo_png() -> bytes:
    buffer = io.BytesIO()
    bottle().save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def maker(engine) -> AdMaker:
    return AdMaker(engine)


def spec(product, **changes) -> AdSpec:
    request = small(product, width=320, height=400, image=photo_png(), steps=2)
    layout = {k: changes.pop(k) for k in list(changes) if k in ("subcopy", "text_style", "text_position",
                                                                 "placement", "background", "mask")}
    return AdSpec(dataclasses.replace(request, **changes), **layout)


def test_all_three_steps_are_kept(maker, product):
    ad = maker.make(spec(product, subcopy="제주 감귤")).images[0]
    assert list(ad.files) == ["cutout", "mask", "background", "copy_layer", "final"]
    assert not ad.cached and not any(ad.step_cached.values())
    assert Image.open(io.BytesIO(ad.files["copy_layer"])).mode == "RGBA"
    assert pixels(ad.png).shape == (400, 320, 3)
    params = read_params(ad.png)
    assert params["product"]["copy"] == "여름 한정 30% 할인!" and params["ad"]["subcopy"] == "제주 감귤"
    assert "Leave calm, uncluttered space for a headline" in params["prompt"]  # the model draws no text


def test_the_kept_mask_is_the_photo_size_mask_the_cutout_used(maker, product):
    photo = bottle()
    user = Image.new("L", (100, 120), 0)  # a corrected mask at half size, grey strokes: resized, thresholded
    user.paste(200, (30, 45, 70, 100))
    user.paste(100, (30, 15, 70, 45))
    # auto: the bottle exactly; the user's: its 200 strokes doubled (row 89: bicubic against the 100 above)
    for the_mask, box in ((None, (60, 30, 140, 210)), (user, (60, 89, 140, 200))):
        data = None
        if the_mask is not None:
            buffer = io.BytesIO()
            the_mask.save(buffer, format="PNG")
            data = buffer.getvalue()
        ad = maker.make(spec(product, mask=data)).images[0]
        mask = Image.open(io.BytesIO(ad.files["mask"]))
        cut = Image.open(io.BytesIO(ad.files["cutout"]))
        assert mask.mode == "L" and mask.size == photo.size
        assert set(np.unique(np.asarray(mask))) == {0, 255}
        assert mask.getbbox() == box and cut.size == (box[2] - box[0], box[3] - box[1])
        assert np.array_equal(np.asarray(mask.crop(box)), np.asarray(cut.getchannel("A")))


def test_the_products_pixels_in_the_final_ad_equal_the_input(maker, product):
    the_spec = spec(product, text_position="top")
    ad = maker.make(the_spec).images[0]
    layer, box = place(cutout(bottle()), (320, 400), Placement())
    placed = np.asarray(layer)
    copy_alpha = np.asarray(Image.open(io.BytesIO(ad.files["copy_layer"])).getchannel("A"))
    keep = (placed[..., 3] == 255) & (copy_alpha == 0)
    assert keep.sum() > 5000
    assert np.array_equal(pixels(ad.png)[keep], placed[keep][:, :3].astype(np.int16))


def test_changing_only_the_copy_does_not_call_the_pipeline(maker, engine, product):
    maker.make(spec(product, text_position="bottom"))
    runs, encodes = engine.runs, engine.encodes
    other = dataclasses.replace(product, copy="새 카피로 다시! NEW")
    ad = maker.make(spec(other, text_position="bottom", text_style="neon", subcopy="오늘만")).images[0]
    assert (engine.runs, engine.encodes) == (runs, encodes)
    assert ad.step_cached == {"cutout": True, "background": True, "copy_layer": False} and not ad.cached


def test_a_new_background_reruns_step_one_only(maker, engine, product):
    first = maker.make(spec(product, text_position="top")).images[0]
    runs = engine.runs
    second = maker.make(spec(product, text_position="top", seed=7)).images[0]
    assert engine.runs == runs + 1
    assert second.step_cached == {"cutout": True, "background": False, "copy_layer": True} and not second.cached
    assert second.files["background"] != first.files["background"]
    assert second.files["copy_layer"] == first.files["copy_layer"]


def test_the_same_ad_again_is_all_cache(maker, engine, product):
    first = maker.make(spec(product)).images[0]
    runs = engine.runs
    again = maker.make(spec(product)).images[0]
    assert engine.runs == runs and again.cached and all(again.step_cached.values()) and again.png == first.png


def test_text_to_image_background_mode_and_copy_without_photo(maker, product):
    t2i = maker.make(spec(product, background="t2i")).images[0]
    assert "cutout" in t2i.files and pixels(t2i.png).shape == (400, 320, 3)
    no_photo = maker.make(AdSpec(small(product, steps=2))).images[0]
    assert list(no_photo.files) == ["background", "copy_layer", "final"]


def test_bad_layout_fails_before_any_work(maker, engine, product):
    with pytest.raises(InputError, match="text style: unknown 'sparkly'"):
        maker.make(spec(product, text_style="sparkly"))
    with pytest.raises(InputError, match="ad copy: the copy font has no glyph for '🍊'"):
        maker.make(spec(dataclasses.replace(product, copy="귤 🍊")))
    with pytest.raises(InputError, match="text position: must be one of"):
        spec(product, text_position="middle")
    assert engine.runs == 0
