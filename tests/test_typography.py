"""Ad copy: Hangul renders (never tofu), long copy wraps and shrinks to fit, auto position avoids the product."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adgen.errors import InputError, PresetError
from adgen.typography import (
    _font,
    find_font,
    fit,
    layout_copy,
    load_text_styles,
    missing_glyphs,
    render_copy,
    wrap,
)

STYLES = load_text_styles()


def test_shipped_text_styles():
    assert list(STYLES) == ["extrude_3d", "gold", "neon", "outline"]
    assert STYLES["extrude_3d"].extrude and STYLES["neon"].glow and STYLES["gold"].fill[1] == "#B8860B"


def test_a_hangul_font_is_found_and_draws_every_character_of_korean_copy():
    font = find_font()
    assert missing_glyphs(font, "여름 한정 30% 할인! ₩9,900 NEW") == []
    assert missing_glyphs(font, "a😀b") == ["😀"]


def test_hangul_renders_glyphs_not_the_missing_glyph_box():
    font = _font(str(find_font()), 48)
    tofu = np.asarray(font.getmask("\U0010fffd"))
    for char in "한글광고₩%!":
        glyph = np.asarray(font.getmask(char))
        assert glyph.shape != tofu.shape or not np.array_equal(glyph, tofu), char
    assert len({np.asarray(font.getmask(c)).tobytes() for c in "한글광고"}) == 4  # four different shapes


@pytest.fixture
def no_hangul_font(monkeypatch, tmp_path):
    """A machine with no Hangul font: no Nanum/Noto folders, no koreanize-matplotlib, no fc-list."""
    monkeypatch.setattr("adgen.typography.FONT_DIRS", [str(tmp_path)])
    monkeypatch.setattr("adgen.typography._package_font_dirs", lambda: [])
    monkeypatch.setenv("PATH", str(tmp_path))  # no fc-list
    find_font.cache_clear()
    yield
    find_font.cache_clear()


def test_no_hangul_font_is_a_clear_error(no_hangul_font, monkeypatch):
    monkeypatch.setenv("ADGEN_FONT", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    with pytest.raises(Exception, match="no Hangul-capable font found: install Debian's fonts-nanum.*koreanize"):
        find_font()
    with pytest.raises(Exception, match="no Hangul-capable font found"):
        layout_copy("여름 세일", "", (512, 512), STYLES["gold"])


def test_latin_copy_renders_without_any_hangul_font(no_hangul_font, monkeypatch):
    """English copy needs only a Latin font: DejaVu where installed, else the one Pillow ships."""
    monkeypatch.setattr("adgen.typography.LATIN_FONTS", [])  # not even DejaVu: Pillow's own font
    font, layout = layout_copy("Summer sale", "Only this week", (512, 512), STYLES["gold"])
    assert font.is_file() and font.name.startswith("pillow-") and layout.lines == ("Summer sale",)
    layer, box = render_copy("Summer sale", "Only this week", (512, 512), STYLES["gold"], "top")
    assert layer.getchannel("A").getbbox() is not None


def test_the_pip_font_package_is_found_without_importing_it(monkeypatch, tmp_path):
    from adgen.typography import _package_font_dirs

    dirs = _package_font_dirs()
    if not dirs:
        pytest.skip("koreanize-matplotlib is not installed")
    assert (Path(dirs[0]) / "NanumGothicExtraBold.ttf").is_file()
    monkeypatch.setattr("adgen.typography.FONT_DIRS", [str(tmp_path)])
    monkeypatch.setenv("PATH", str(tmp_path))
    find_font.cache_clear()
    try:
        assert find_font().parent == Path(dirs[0])
    finally:
        find_font.cache_clear()


@pytest.mark.parametrize(
    ("text", "width", "lines"),
    [
        ("summer sale today", 10_000, ["summer sale today"]),
        ("summer sale today", 0, list("summersaletoday")),  # nothing fits: one character a line
        ("여름 한정\n특가", 10_000, ["여름 한정", "특가"]),
    ],
)
def test_wrap(text, width, lines):
    assert wrap(text, _font(str(find_font()), 20), width) == lines


def test_long_copy_wraps_and_shrinks_to_fit():
    font = find_font()
    short = fit("여름 세일", "", font, 400, 150, 60, 10)
    copy = "여름 한정 특가! 지금 주문하면 두 병 더, 무료 배송에 사은품까지 드립니다 " * 3
    long = fit(copy, "제주 감귤 100%", font, 400, 150, 60, 10)
    assert short.size == 60 and len(short.lines) == 1
    assert long.size < 30 and len(long.lines) > 2 and long.width <= 400 and long.height <= 150


@pytest.mark.parametrize("style", list(STYLES))
def test_long_korean_copy_stays_inside_the_canvas(style):
    copy = "첫 구매 고객 한정 전 품목 30% 할인과 무료 배송, 오늘 자정까지! " * 4
    layer, box = render_copy(copy, "제주 감귤 탄산수 ₩9,900", (320, 400), STYLES[style], "bottom")
    left, top, right, bottom = box
    assert 0 <= left < right <= 320 and 0 <= top < bottom <= 400
    alpha = np.asarray(layer.getchannel("A"))
    assert alpha[top:bottom, left:right].any()  # glyphs were drawn where the box says


def test_copy_too_long_for_the_canvas_is_refused():
    with pytest.raises(InputError, match="ad copy: is too long to fit"):
        layout_copy("가" * 500, "나" * 400, (256, 256), STYLES["outline"])


@pytest.mark.parametrize(("avoid", "expected"), [((0, 0, 320, 150), "bottom"), ((0, 250, 320, 400), "top")])
def test_auto_position_avoids_the_product(avoid, expected):
    layer, box = render_copy("NEW 신제품", "", (320, 400), STYLES["outline"], "auto", avoid=avoid)
    assert box[3] <= avoid[1] or box[1] >= avoid[3]
    assert (box[1] < 200) == (expected == "top")


def test_auto_position_prefers_the_calmest_band():
    noisy = np.random.default_rng(3).integers(0, 255, (400, 320, 3), dtype=np.uint8)
    noisy[300:] = 128  # a calm bottom band
    layer, box = render_copy("Calm", "", (320, 400), STYLES["gold"], "auto", background=Image.fromarray(noisy))
    assert box[1] > 300


def test_fixed_positions_and_a_bad_one():
    top = render_copy("A", "", (200, 300), STYLES["neon"], "top")[1]
    center = render_copy("A", "", (200, 300), STYLES["neon"], "center")[1]
    assert top[1] == 15 and abs((center[1] + center[3]) / 2 - 150) <= 1
    with pytest.raises(InputError, match="text position: must be one of auto, top, center, bottom"):
        render_copy("A", "", (200, 300), STYLES["neon"], "left")


def test_bad_text_style_file_names_file_and_field(tmp_path):
    labels = "label: B\nlabel_ko: 비\ndescription: d\ndescription_ko: 디\n"
    (tmp_path / "bad.yaml").write_text(labels + "fill: ['#FFF']\n")
    with pytest.raises(PresetError, match=r"bad.yaml: fill.0: String should match pattern"):
        load_text_styles(tmp_path)
    (tmp_path / "bad.yaml").write_text(labels + "fill: ['#FFFFFF']\nsparkle: true\n")
    with pytest.raises(PresetError, match="bad.yaml: sparkle: unknown field"):
        load_text_styles(tmp_path)
