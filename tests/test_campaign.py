"""Campaigns: every channel at its exact size, layout inside the safe zone and off the product, brand kits,
packshots, variants that differ, manifest + ZIP, and a copy change that re-runs no background."""

import dataclasses
import hashlib
import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from adgen.ad import AdMaker, AdSpec
from adgen.brand import Brand, brand_of, brand_style, color_name, load_brand, parse_colors
from adgen.campaign import make_campaign, manifest_of, write_campaign
from adgen.channels import Channel, load_channels
from adgen.errors import InputError, PresetError
from adgen.i18n import localize_error
from adgen.layout import cover, plan, to_generation
from adgen.metadata import read_params
from adgen.request import AdRequest
from adgen.typography import load_text_styles, pillow_font

from conftest import pixels

DRAFT = 256 * 256  # backgrounds of about 256x256 on the demo model: the same code, a sixteenth of the work

CHANNELS = load_channels()
RED, BLUE = (255, 0, 0), (0, 0, 255)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def red_product(w: int = 60, h: int = 100) -> bytes:
    """A pure red product on a transparent photo: its pixels are easy to find in the final ad."""
    photo = Image.new("RGBA", (w + 20, h + 20), (0, 0, 0, 0))
    photo.paste(Image.new("RGBA", (w, h), RED + (255,)), (10, 10))
    return png(photo)


def blue_logo() -> bytes:
    return png(Image.new("RGB", (90, 30), BLUE))


def channel(width: int, height: int, **fields) -> Channel:
    return Channel(id=f"test_{width}x{height}", label="test", label_ko="시험", width=width, height=height,
                   source="a test", **fields)


@pytest.fixture
def maker(engine) -> AdMaker:
    return AdMaker(engine)


def ad_spec(product, **changes) -> AdSpec:
    request = AdRequest(product=product, seed=7, steps=1, image=changes.pop("image", red_product()))
    return AdSpec(request, **changes)


def near(rgb: np.ndarray, color: tuple, tolerance: int = 8) -> np.ndarray:
    return (np.abs(rgb.astype(int) - np.array(color)).max(axis=2) <= tolerance)


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def inside(box, outer) -> bool:
    return box[0] >= outer[0] and box[1] >= outer[1] and box[2] <= outer[2] and box[3] <= outer[3]


# -- channels at their exact size ------------------------------------------------------------------
def test_every_channel_comes_out_at_its_exact_pixel_size(maker, product):
    """Packshot backgrounds (no model) for all eleven; the copy is laid out at each final size."""
    spec = ad_spec(product, background="packshot", subcopy="제주 감귤 100%")
    result = make_campaign(maker, spec, list(CHANNELS.values()))
    assert len(result.images) == len(CHANNELS) >= 11
    for picture in result.images:
        with Image.open(io.BytesIO(picture.png)) as image:
            assert image.size == CHANNELS[picture.channel].size, picture.channel
    assert maker.engine.runs == 0  # a packshot needs no model


def test_generated_backgrounds_are_cropped_to_the_channel_and_shared_by_equal_generation_sizes(maker, product):
    square, big_square = CHANNELS["instagram_square"], channel(512, 512)
    assert square.generation_size == big_square.generation_size
    spec = ad_spec(product, background="t2i")
    result = make_campaign(maker, spec, [channel(300, 250), square, big_square], area=DRAFT)
    assert [Image.open(io.BytesIO(p.png)).size for p in result.images] == [(300, 250), (1080, 1080), (512, 512)]
    assert maker.engine.runs == 2  # the two squares share one background
    assert result.images[2].step_cached["background"]


def test_progress_moves_forward_to_its_total_when_a_file_runs_no_steps(maker, product):
    """A file whose background comes from the cache moves the bar by its steps; the total never changes."""
    square, big_square = CHANNELS["instagram_square"], channel(512, 512)
    seen = []
    make_campaign(maker, ad_spec(product, background="t2i"), [square, big_square, channel(300, 250)], area=DRAFT,
                  progress=lambda done, total: seen.append((done, total)))
    assert {total for _, total in seen} == {3}  # three files of one step each
    assert [done for done, _ in seen] == sorted(done for done, _ in seen) and seen[-1] == (3, 3)


# -- layout: safe zone, product, logo --------------------------------------------------------------
@pytest.mark.parametrize("size", [(240, 420), (400, 300), (480, 60)])
def test_copy_and_logo_stay_in_the_safe_zone_and_off_the_product(maker, product, size):
    safe = {"top": 0.14, "bottom": 0.14, "left": 0.05, "right": 0.05}
    target = channel(*size, safe_zone=safe)
    brand = Brand("test", ("#FFFFFF",), blue_logo())
    spec = ad_spec(dataclasses.replace(product, copy="SALE"), background="packshot", packshot="white",
                   subcopy="today", brand=brand)
    picture = make_campaign(maker, spec, [target]).images[0]
    final = pixels(picture.png)
    box = target.safe_box()
    product_px, logo_px = near(final, RED), near(final, BLUE)
    copy_alpha = np.asarray(Image.open(io.BytesIO(picture.steps["copy_layer"])).getchannel("A")) > 0
    assert product_px.sum() > 100 and logo_px.sum() > 20 and copy_alpha.sum() > 20
    assert inside(bbox(copy_alpha), box) and inside(bbox(logo_px), box)
    assert not (copy_alpha & product_px).any() and not (logo_px & product_px).any()
    assert not (copy_alpha & logo_px).any()
    if target.horizontal:  # a wide banner: product | copy | logo, side by side
        assert bbox(product_px)[2] <= bbox(copy_alpha)[0] and bbox(copy_alpha)[2] <= bbox(logo_px)[0]


def test_the_logo_in_a_plain_ad_takes_a_free_corner_never_the_product(maker, product):
    spec = ad_spec(dataclasses.replace(product, copy="SALE"), background="packshot", packshot="white",
                   brand=Brand("test", (), blue_logo()), text_position="top")
    spec = dataclasses.replace(spec, request=dataclasses.replace(spec.request, width=320, height=320))
    final = pixels(maker.make(spec).images[0].png)
    product_px, logo_px = near(final, RED), near(final, BLUE)
    assert logo_px.sum() > 20 and not (logo_px & product_px).any()
    assert bbox(logo_px)[3] < 160 or bbox(logo_px)[1] > 160  # in a corner row


def test_marketplace_white_is_pure_white_except_the_product_and_its_shadow(maker, product):
    spec = ad_spec(dataclasses.replace(product, copy="SALE"), background="t2i",
                   brand=Brand("test", ("#FF6600",), blue_logo()))
    picture = make_campaign(maker, spec, [CHANNELS["marketplace_white"]]).images[0]
    final = pixels(picture.png)
    assert final.shape[:2] == (2000, 2000)
    for corner in (final[:200, :200], final[:200, -200:], final[-200:, :200], final[-200:, -200:]):
        assert (corner == 255).all()
    product_box = bbox(near(final, RED))
    assert (product_box[2] - product_box[0]) * 1.0 >= 0.8 * 1700 or (product_box[3] - product_box[1]) >= 0.8 * 1700
    not_white = np.argwhere((final != 255).any(axis=2))
    top, left = not_white.min(axis=0)
    bottom, right = not_white.max(axis=0)
    w, h = product_box[2] - product_box[0], product_box[3] - product_box[1]  # the soft shadow under the base:
    assert left >= product_box[0] - 0.25 * w and right < product_box[2] + 0.25 * w  # a little wider,
    assert top >= product_box[3] - 0.3 * h or top >= product_box[1]  # never above the product,
    assert bottom < product_box[3] + 0.15 * h  # a little below it
    assert not near(final, BLUE).any()  # no logo, no copy on a marketplace main image
    assert "copy_layer" not in picture.steps and maker.engine.runs == 0


def test_plan_and_cover_map_the_canvas_onto_the_generation_size():
    frame = plan((1080, 1920), (0, 269, 1080, 1651), (60, 100), True, (90, 30), False)
    assert frame.logo[1] >= 269 and frame.copy[1] > frame.logo[3] and frame.product[1] > frame.copy[3]
    wide = plan((728, 90), (0, 0, 728, 90), (60, 100), True, (90, 30), True)
    assert wide.product[2] < wide.copy[0] and wide.copy[2] < wide.logo[0]
    source = Image.new("RGB", (2048, 256))
    source.paste((255, 0, 0), to_generation((100, 20, 200, 70), (2048, 256), (728, 90)))
    red = near(np.asarray(cover(source, (728, 90))), RED, 60)
    assert abs(bbox(red)[0] - 100) <= 2 and abs(bbox(red)[2] - 200) <= 2 and abs(bbox(red)[1] - 20) <= 2


# -- variants, manifest, ZIP, copy change ----------------------------------------------------------
def test_variants_have_different_scenes_and_the_manifest_matches_the_files_and_the_zip(maker, product, tmp_path):
    spec = ad_spec(product, background="t2i")
    channels = [channel(256, 256), channel(320, 50)]
    result = make_campaign(maker, spec, channels, variants=3, area=DRAFT)
    report = write_campaign(result, spec, channels, tmp_path / "out", zip_=True)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [f["file"] for f in manifest["files"]] == [f"{c}-v{v}.png" for v in (1, 2, 3)
                                                      for c in ("test_256x256", "test_320x50")]
    prompts = {f["variant"]: f["prompt"] for f in manifest["files"]}
    assert len(set(prompts.values())) == 3 and [f["variation"] for f in manifest["files"][::2]] == [0, 1, 2]
    assert len({f["seed"] for f in manifest["files"]}) == 3
    for entry in manifest["files"]:
        data = (tmp_path / "out" / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert read_params(data)["prompt"] == entry["prompt"] and entry["size"] == [
            int(n) for n in entry["channel"].removeprefix("test_").split("x")]
    with zipfile.ZipFile(report["zip"]) as archive:
        assert sorted(archive.namelist()) == sorted([f["file"] for f in manifest["files"]] + ["manifest.json"])
        for entry in manifest["files"]:
            assert hashlib.sha256(archive.read(entry["file"])).hexdigest() == entry["sha256"]
    assert report["files"] == [str(tmp_path / "out" / f["file"]) for f in manifest["files"]]
    assert manifest["product"]["name"] == product.name


def test_a_copy_change_runs_no_background(maker, product):
    channels = [channel(256, 256), channel(320, 50)]
    for background in ("t2i", "inpaint"):
        first = make_campaign(maker, ad_spec(product, background=background), channels, variants=2, area=DRAFT)
        runs = maker.engine.runs
        changed = make_campaign(maker, ad_spec(dataclasses.replace(product, copy="새 문구"), background=background),
                                channels, variants=2, area=DRAFT)
        assert maker.engine.runs == runs, background  # every background from the cache
        assert all(p.step_cached["background"] for p in changed.images)
        assert [p.png for p in first.images] != [p.png for p in changed.images]


def test_same_scene_variants_vary_by_seed_only(maker, product):
    spec = ad_spec(dataclasses.replace(product), background="t2i")
    spec = dataclasses.replace(spec, request=dataclasses.replace(spec.request, same_scene=True))
    channels = [channel(256, 256)]
    manifest = manifest_of(make_campaign(maker, spec, channels, variants=2, area=DRAFT), spec, channels)
    assert len({f["prompt"] for f in manifest["files"]}) == 1 and len({f["seed"] for f in manifest["files"]}) == 2


# -- brand kit -------------------------------------------------------------------------------------
def test_brand_colours_flow_into_prompt_copy_style_and_packshot(maker, product):
    brand = Brand("Citrus", ("#FF6600", "#1A1A1A"))
    assert brand.color_words == "orange and black"
    style = brand_style(load_text_styles()["gold"], brand)
    assert style.fill[-1] == "#FF6600" and style.stroke.color == "#1A1A1A"
    plain = dataclasses.replace(product, colors="")
    spec = ad_spec(plain, background="t2i", brand=brand)
    picture = make_campaign(maker, spec, [channel(256, 256)], area=DRAFT).images[0]
    assert "Brand colours: orange and black." in picture.prompt
    shot = make_campaign(maker, ad_spec(plain, background="packshot", packshot="color", brand=brand),
                         [channel(256, 256)]).images[0]
    assert tuple(pixels(shot.png)[2, 2]) == (255, 102, 0)


def test_a_font_without_the_copys_glyphs_is_refused_naming_them_before_any_work(maker, product, tmp_path):
    brand = Brand("latin only", (), None, pillow_font())  # Pillow's own font draws no Hangul
    spec = ad_spec(dataclasses.replace(product, copy="여름 SALE"), background="t2i", brand=brand)
    with pytest.raises(InputError, match="brand font has no glyph for '여름'"):
        make_campaign(maker, spec, [channel(256, 256)])
    assert maker.engine.runs == 0
    with pytest.raises(InputError, match="brand font: must be a .ttf or .otf"):
        Brand("x", font="logo.png")
    bogus = tmp_path / "bogus.ttf"
    bogus.write_bytes(b"not a font")
    with pytest.raises(InputError, match="bogus.ttf is not a readable font: save it again as a .ttf or .otf font file"):
        Brand("x", font=bogus)


def test_brand_files_and_ad_hoc_kits(tmp_path, monkeypatch):
    citrus = load_brand("citrus")
    assert citrus.colors == ("#FF8A00", "#1F3A2E") and citrus.logo and citrus.text_style == "extrude_3d"
    assert parse_colors("#ff6600, #1A1A1A") == ("#FF6600", "#1A1A1A") and color_name("#1F3A2E") == "charcoal"
    with pytest.raises(InputError, match="brand hex colours: must be hex colours like #FF6600 .got 'orange'"):
        parse_colors("orange")
    with pytest.raises(InputError, match="brand: unknown 'nope'; choose one of citrus"):
        load_brand("nope")
    ad_hoc = brand_of(None, None, "#00FF00")
    assert ad_hoc.colors == ("#00FF00",) and ad_hoc.logo is None and brand_of() is None
    (tmp_path / "bad.yaml").write_text("name: Bad\ncolors: ['#FF0000']\nslogan: hi\n")
    (tmp_path / "escape.yaml").write_text("name: Esc\ncolors: ['#FF0000']\nlogo: ../../etc/passwd\n")
    with pytest.raises(PresetError, match=r"bad.yaml: slogan: unknown field; allowed: name, colors, logo, font"):
        load_brand("bad", tmp_path)
    with pytest.raises(PresetError, match="escape.yaml: logo: must be a file inside"):
        load_brand("escape", tmp_path)
    with pytest.raises(InputError, match=r"logo: is not a readable image \(AdGen reads PNG, JPEG, WebP"):
        Brand("x", logo=b"GIF89a not really")


def test_packshot_needs_a_photo(product):
    with pytest.raises(InputError, match="background: a packshot shows the product: it needs a product photo"):
        AdSpec(AdRequest(product=product), background="packshot")
    with pytest.raises(InputError, match="packshot: must be one of"):
        ad_spec(product, background="packshot", packshot="shiny")


def test_a_white_channel_without_a_photo_is_refused_by_name_before_any_model_work(maker, product):
    spec = AdSpec(AdRequest(product=product, seed=7, steps=1), background="t2i")
    with pytest.raises(InputError) as refused:
        make_campaign(maker, spec, [CHANNELS["display_320x50"], CHANNELS["marketplace_white"]], area=DRAFT)
    white = "Marketplace main image (white)"
    assert str(refused.value) == (f"channels: {white} has a pure white background around the product: it needs a "
                                  f"product photo; add one or leave {white} out")
    assert localize_error(refused.value, "ko") == (  # the channel as the Korean page names it, never its file name
        "채널: 마켓플레이스 대표 이미지 (흰 배경) 채널은 제품 둘레가 순백색 배경이라 제품 사진이 필요합니다. "
        "사진을 올리거나 마켓플레이스 대표 이미지 (흰 배경) 채널을 빼 주세요")
    assert maker.engine.runs == 0  # the other channel's background was never made


def test_packshot_variants_differ_by_layout_and_backdrop(maker, product):
    """A packshot has no seed or scene to vary, so its variants must not come out identical."""
    spec = ad_spec(product, background="packshot", brand=Brand("test", ("#FF6600",)))
    result = make_campaign(maker, spec, [channel(256, 320)], variants=3)
    assert len({p.png for p in result.images}) == 3
    assert len({pixels(p.png).tobytes() for p in result.images}) == 3  # the pixels, not only the parameters
    assert [read_params(p.png)["ad"]["packshot"] for p in result.images] == ["gradient", "white", "color"]


SHOP = {"label": "Test shop main image", "label_ko": "시험 쇼핑 대표 이미지", "width": 256, "height": 256,
        "source": "a test", "rules": {"background": "white", "copy": False, "logo": False}}
BANNER = {"label": "Test banner", "label_ko": "시험 배너", "width": 320, "height": 64, "source": "a test"}


@pytest.fixture
def small_channels(tmp_path, monkeypatch):
    """$ADGEN_CHANNELS_DIR with two small channels: a shop's main image (no copy, no logo) and a banner."""
    folder = tmp_path / "channels"
    folder.mkdir()
    for name, fields in (("shop_main", SHOP), ("test_banner", BANNER)):
        (folder / f"{name}.json").write_text(json.dumps(fields, ensure_ascii=False))
    monkeypatch.setenv("ADGEN_CHANNELS_DIR", str(folder))
    return folder


NO_COPY = "no copy or logo on Test shop main image: the platform's rules allow no text or logo on a main image"


def test_a_cli_campaign_checks_its_channels_once_and_says_once_why_the_shop_file_has_no_copy(
        small_channels, tmp_path, monkeypatch, capsys):
    from adgen import campaign
    from adgen.__main__ import main
    from adgen.cli_text import line

    calls, real = [], campaign.check_channels
    monkeypatch.setattr(campaign, "check_channels", lambda *args: calls.append(args) or real(*args))
    (tmp_path / "product.png").write_bytes(red_product())
    code = main(["campaign", "--product", "Citrus water", "--copy", "Fresh", "--image", str(tmp_path / "product.png"),
                 "--channels", "shop_main,test_banner", "--variants", "2", "--background", "packshot",
                 "--model", "demo", "--out", str(tmp_path / "out"), "--quiet"])
    said = capsys.readouterr()
    assert code == 0, said.err
    assert len(calls) == 1  # before any work, and not again when the files are made
    # the shop's files have no copy: said once (not per file or variant), in the manifest and on stderr
    assert said.err.count("note: ") == 1 and f"note: {NO_COPY}\n" in said.err
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["notes"] == [NO_COPY]
    assert line("note", NO_COPY, "ko") == ("참고: 시험 쇼핑 대표 이미지에는 문구와 로고를 넣지 않았습니다. "
                                           "플랫폼 규칙상 대표 이미지에는 글자나 로고를 넣을 수 없습니다")


def test_the_page_says_why_a_shop_file_has_no_copy_in_both_languages(small_channels, maker, product):
    from adgen.campaign import no_copy_note
    from adgen.page import warnings_note

    channels = list(load_channels().values())
    spec = ad_spec(product, background="packshot")
    result = make_campaign(maker, spec, channels)
    assert result.notes == (NO_COPY,)  # once, for two channels' files
    en, ko = (warnings_note(result, lang).split("  \n") for lang in ("en", "ko"))
    assert en[0] == "ℹ " + NO_COPY and ko[0].startswith("ℹ 시험 쇼핑 대표 이미지에는 문구와 로고를 넣지 않았습니다.")
    # (and a small photo's warning names the channel by its label too, in each language)
    assert " for Test shop main image: " in en[1] and "px라서 시험 쇼핑 대표 이미지(256x256)에서 " in ko[1]
    # nothing to say without such a channel, or without copy or logo to leave out
    assert no_copy_note(spec, [c for c in channels if c.copy]) == ()
    bare = dataclasses.replace(spec, request=dataclasses.replace(
        spec.request, product=dataclasses.replace(product, copy="")))
    assert no_copy_note(bare, channels) == ()
