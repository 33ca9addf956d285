"""Channel files: one schema, sizes cited from the specs, generation sizes ZIT can run, errors naming file and field."""

import json
import math
import subprocess
import sys

import pytest

from adgen.channels import Channel, generation_size, get_channels, load_channels
from adgen.errors import InputError, PresetError
from adgen.i18n import localize_error
from adgen.presets import PROJECT_DIR
from adgen.request import ASPECTS, MAX_SIDE, MIN_SIDE, SIDE_MULTIPLE

SIZES = {
    "instagram_square": (1080, 1080),
    "instagram_portrait": (1080, 1350),
    "instagram_story": (1080, 1920),
    "facebook_link": (1200, 628),
    "youtube_thumbnail": (1280, 720),
    "display_300x250": (300, 250),
    "display_728x90": (728, 90),
    "display_300x600": (300, 600),
    "display_320x50": (320, 50),
    "display_970x250": (970, 250),
    "marketplace_white": (2000, 2000),
    "coupang_main": (1000, 1000),
    "naver_smartstore": (1000, 1000),
    "11st_main": (1000, 1000),
    "gmarket_auction": (1000, 1000),
    "kakaotalk_store_square": (750, 750),
    "kakaotalk_store_portrait": (750, 1000),
    "kakao_bizboard": (1029, 258),
    "kakao_bizboard_motion": (1290, 258),
    "kakao_moment_native": (800, 1000),
}
GOOD = "label: Test\nlabel_ko: 테스트\nwidth: 1080\nheight: 1080\nsource: https://example.com/spec\n"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_channels_load_with_their_sizes_and_sources():
    channels = load_channels()
    assert {c: ch.size for c, ch in channels.items()} == SIZES
    assert list(channels)[:3] == ["instagram_square", "instagram_portrait", "instagram_story"]
    for channel in channels.values():
        assert channel.source.startswith("https://") and channel.label_ko != channel.label


def test_the_story_keeps_top_and_bottom_free_and_the_marketplace_is_product_only_on_white():
    channels = load_channels()
    story = channels["instagram_story"]
    assert (story.safe_zone.top, story.safe_zone.bottom) == (0.14, 0.14)
    assert story.safe_box() == (0, 269, 1080, 1651)  # 1920 * 0.14 = 268.8, rounded inward
    white = channels["marketplace_white"]
    assert (white.background, white.copy, white.logo, white.min_fill) == ("white", False, False, 0.85)
    product_only = {"marketplace_white", "coupang_main", "naver_smartstore"}
    assert all(c.copy and c.background == "any" for c in channels.values() if c.id not in product_only)


@pytest.mark.parametrize("channel", load_channels().values(), ids=lambda c: c.id)
def test_generation_sizes_are_what_zit_runs_at(channel):
    w, h = channel.generation_size
    assert w % SIDE_MULTIPLE == 0 and h % SIDE_MULTIPLE == 0
    assert MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE
    reachable = MIN_SIDE / MAX_SIDE <= channel.aspect <= MAX_SIDE / MIN_SIDE
    if reachable:
        assert abs(w / h / channel.aspect - 1) < 0.01
    else:  # 728x90 is wider than 8:1: the widest strip ZIT can run
        assert (w, h) == (MAX_SIDE, MIN_SIDE)
    if 1 / 3 <= channel.aspect <= 3:  # ordinary aspects: about one megapixel
        assert 0.85 < w * h / 1024**2 < 1.15


def test_generation_size_examples_and_the_aspect_table():
    assert generation_size(1080, 1080) == (1024, 1024)
    assert generation_size(1080, 1350) == (896, 1120)
    assert generation_size(1080, 1920) == (720, 1280)
    assert generation_size(728, 90) == (2048, 256)
    assert generation_size(320, 50) == (2048, 320)
    w, h = generation_size(300, 250)
    assert abs(w / h - 1.2) < 0.012 and 0.85 < w * h / 1024**2 < 1.15
    for ratio, size in ASPECTS.items():  # the app's aspect presets come out of the same rule
        a, b = map(int, ratio.split(":"))
        assert generation_size(a * 100, b * 100) == size, ratio


def test_safe_box_is_inside_the_canvas_and_rounds_inward():
    for channel in load_channels().values():
        left, top, right, bottom = channel.safe_box()
        assert 0 <= left < right <= channel.width and 0 <= top < bottom <= channel.height
    odd = Channel(id="x", label="X", label_ko="엑스", width=101, height=100, source="s",
                  safe_zone={"left": 0.07, "right": 0.1, "top": 0.07})
    assert odd.safe_box() == (8, 7, 101 - 11, 100)


def test_horizontal_means_a_banner_strip():
    horizontal = {c.id for c in load_channels().values() if c.horizontal}
    assert horizontal == {"display_728x90", "display_320x50", "display_970x250", "kakao_bizboard",
                          "kakao_bizboard_motion"}


def test_a_user_adds_a_channel_by_dropping_one_file(tmp_path):
    write(tmp_path, "square.yaml", GOOD + "order: 5\n")
    write(tmp_path, "wide.json", json.dumps({"label": "W", "label_ko": "와이드", "width": 1600, "height": 400,
                                             "source": "x", "safe_zone": {"left": 0.1}}))
    channels = load_channels(tmp_path)
    assert list(channels) == ["square", "wide"]
    assert channels["wide"].horizontal and channels["wide"].aspect == 4.0
    assert channels["wide"].safe_box() == (160, 0, 1600, 400)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (GOOD + "colour: red\n", "colour: unknown field; allowed: label, label_ko, platform, platform_ko, width, "
                                  "height, safe_zone, rules, product_scale, source, order"),
        (GOOD + "safe_zone: {top: 0.1, middle: 0.2}\n", "safe_zone.middle: unknown field; allowed: top, right, "
                                                         "bottom, left"),
        (GOOD.replace("width: 1080", "width: 8000"), "width: Input should be less than or equal to 4096"),
        (GOOD.replace("height: 1080", "height: 8"), "height: Input should be greater than or equal to 16"),
        (GOOD.replace("width: 1080", "width: wide"), "width: Input should be a valid integer"),
        (GOOD + "safe_zone: {top: 0.5}\n", "safe_zone.top: Input should be less than or equal to 0.45"),
        (GOOD + "background: black\n", "rules.background: Input should be 'any', 'plain' or 'white'"),
        # the platform rules (rules.py): an unknown rule and impossible ones are refused at load
        (GOOD + "rules: {no_emoji: true}\n", "rules.no_emoji: unknown field; allowed: background, copy, logo, "
                                              "min_fill, formats, max_bytes, min_pixels, max_pixels, aspect"),
        (GOOD + "rules: {min_fill: 1.2}\n", "rules.min_fill: Input should be less than or equal to 1"),
        (GOOD + "rules: {formats: [gif]}\n", "rules.formats.0: Input should be 'png' or 'jpeg'"),
        (GOOD + "rules: {formats: []}\n", "rules.formats: Tuple should have at least 1 item"),
        (GOOD + "rules: {max_bytes: 10}\n", "rules.max_bytes: Input should be greater than or equal to 10000"),
        (GOOD + "rules: {min_pixels: [2000, 2000]}\n", "the channel's own size can never pass: 1080x1080 is "
                                                         "below min_pixels [2000, 2000]"),
        (GOOD + "rules: {min_pixels: [900, 900], max_pixels: [800, 800]}\n", "rules: min_pixels [900, 900] "
                                                                              "exceeds max_pixels [800, 800]"),
        (GOOD + "product_scale: 0.05\n", "product_scale: Input should be greater than 0.05"),
        (GOOD.replace("source: https://example.com/spec\n", ""), "source: Field required (the URL of the spec"),
        (GOOD.replace("source: https://example.com/spec", "source: ''"), "source: String should have at least 1"),
        (GOOD.replace("label_ko: 테스트\n", ""), "label_ko: Field required"),
        (GOOD + "id: other\n", "id: not a field; the file name ('chan') is the channel's id"),
        (GOOD + "name: other\n", "name: not a field"),
        ("- a list\n", "must be a mapping of fields"),
        (GOOD + "width: [\n", "cannot be read as YAML"),
    ],
)
def test_a_bad_file_is_refused_naming_file_and_field(tmp_path, text, says):
    path = write(tmp_path, "chan.yaml", text)
    with pytest.raises(PresetError) as err:
        load_channels(tmp_path)
    assert str(err.value).startswith(f"{path}: ") and says in str(err.value)


@pytest.mark.parametrize("name", ["Bad.yaml", "has space.yaml", "-dash.yaml"])
def test_the_file_name_must_be_an_id(tmp_path, name):
    write(tmp_path, name, GOOD)
    with pytest.raises(PresetError, match="the file name must be lowercase"):
        load_channels(tmp_path)


def test_an_empty_or_missing_folder_is_refused(tmp_path):
    with pytest.raises(PresetError, match="no channel files"):
        load_channels(tmp_path)
    with pytest.raises(PresetError, match="channels folder not found"):
        load_channels(tmp_path / "nowhere")
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "a.json", json.dumps({"label": "A", "label_ko": "에이", "width": 64, "height": 64, "source": "s"}))
    with pytest.raises(PresetError, match="two files define the channel 'a'"):
        load_channels(tmp_path)


def test_the_folder_comes_from_the_environment(tmp_path, monkeypatch):
    write(tmp_path, "only.yml", GOOD)
    monkeypatch.setenv("ADGEN_CHANNELS_DIR", str(tmp_path))
    assert list(load_channels()) == ["only"]


def test_get_channels_takes_a_list_or_commas_in_order_each_once():
    channels = load_channels()
    picked = get_channels("instagram_story, display_728x90,instagram_story", channels)
    assert [c.id for c in picked] == ["instagram_story", "display_728x90"]
    assert [c.id for c in get_channels(["marketplace_white", "marketplace_white"], channels)] == ["marketplace_white"]


@pytest.mark.parametrize("ids", ["", " , ", []])
def test_get_channels_refuses_an_empty_choice(ids):
    with pytest.raises(InputError, match="choose at least one of instagram_square, ") as err:
        get_channels(ids, load_channels())
    assert err.value.field == "channels"


def test_get_channels_refuses_an_unknown_id():
    with pytest.raises(InputError, match=r"channels: unknown 'tiktok'; choose one of instagram_square, ") as err:
        get_channels("instagram_square,tiktok", load_channels())
    assert err.value.field == "channels"


def test_channel_errors_read_in_korean():
    with pytest.raises(InputError) as unknown:
        get_channels("tiktok", load_channels())
    assert localize_error(unknown.value, "ko").startswith("채널: 알 수 없는 값입니다: 'tiktok'. 다음 중에서 고르세요: ")
    with pytest.raises(InputError) as empty:
        get_channels("", load_channels())
    assert localize_error(empty.value, "ko").startswith("채널: 하나 이상 고르세요: instagram_square")


def test_channels_import_neither_torch_nor_gradio():
    code = ("import sys, adgen.channels as c; c.load_channels(); "
            "assert 'torch' not in sys.modules and 'gradio' not in sys.modules")
    subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", code], cwd=PROJECT_DIR, check=True)


def test_aspect_and_size_properties():
    channel = load_channels()["facebook_link"]
    assert channel.size == (1200, 628) and math.isclose(channel.aspect, 1200 / 628)
