"""Two languages as data: locale files in step, the browser's language, every error message in Korean."""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image, PngImagePlugin

from adgen.ad import AdSpec
from adgen.compose import Placement, auto_mask, product_mask
from adgen.engine import resolve_dtype
from adgen.errors import AdgenError, GenerationStopped, InputError, ModelError, OutOfMemory
from adgen.i18n import (
    LOCALE_DIR,
    STOP_REASONS,
    LocaleError,
    field_label,
    lang_of,
    load_locales,
    localize_error,
    placeholders,
    text,
    translate_message,
)
from adgen.images import MAX_IMAGE_BYTES, decode_image, read_image_file
from adgen.jobs import Job, Jobs
from adgen.memory import GB, Footprint, MemoryPlanner
from adgen.metadata import FORMAT_VERSION, read_params
from adgen.presets import PROJECT_DIR, LoraSpec, get_preset, load_presets, resolve_lora_file
from adgen.request import AdRequest, Product, aspect_size, check_int, parse_size
from adgen.typography import check_text_style, layout_copy, load_text_styles, render_copy

# Sources whose errors reach the page. The CLI (adgen/__main__.py) speaks English only: its messages name flags.
SOURCES = sorted(set((PROJECT_DIR / "adgen").glob("*.py")) - {PROJECT_DIR / "adgen" / "__main__.py"}) + [
    PROJECT_DIR / "app.py"]
RAISED = {"InputError": 1, "WontFit": 0, "OutOfMemory": 0, "FontError": 0}  # class -> index of the message argument


def raw(lang: str) -> dict:
    return yaml.safe_load((LOCALE_DIR / f"{lang}.yaml").read_text(encoding="utf-8"))


# -- the locale files ----------------------------------------------------------------------------
def test_both_languages_have_the_same_keys_no_empty_values_and_the_same_placeholders():
    en, ko = raw("en"), raw("ko")
    assert list(en) == list(ko)  # same keys, same order: the files read side by side
    for key in en:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", key), key
        assert isinstance(en[key], str) and en[key].strip(), key
        assert isinstance(ko[key], str) and ko[key].strip(), key
        assert placeholders(en[key]) == placeholders(ko[key]), key
    assert load_locales() == {"en": en, "ko": ko}


def test_korean_is_korean():
    en, ko = raw("en"), raw("ko")
    acronyms = {"device_cpu", "device_cuda", "memory_mode_cpu"}  # CPU, GPU
    assert {k for k in en if en[k] == ko[k]} == {"memory_gpu", "status_vram", *acronyms}  # read the same in both
    hangul = re.compile("[\uac00-\ud7a3]")
    assert {k for k in ko if not hangul.search(ko[k])} == {"memory_gpu", "status_vram", "field_lora",
                                                            "stopped_message", *acronyms}  # "{reason} ({where})"


def test_the_page_and_the_new_layout_have_their_strings():
    keys = set(raw("en"))
    page = {"app_intro", "demo_notice", "tab_product", "tab_style", "tab_seed_size", "tab_ad_layout",
            "tab_load_image", "product_name", "product_name_placeholder", "key_features_placeholder", "results",
            "generate", "stop", "advanced", "memory_details", "admin_controls", "char_count", "loaded_upload_photo",
            "status_loading", "status_ready", "status_model", "status_vram", "status_queue", "status_stopped",
            "status_demo", "error_needs_mask", "error_no_usable_mask", "progress_loading", "unexpected_error"}
    assert page <= keys, page - keys
    assert text("char_count", "ko", n=12, max=500) == "12/500자"
    assert text("loaded_upload_photo", "en", what=text("restored_settings_layout", "en")) == \
        "Load from image: restored the settings and the ad layout; upload the product photo again"
    assert text("loaded_upload_photo", "ko", what=text("restored_settings", "ko")) == \
        "이미지에서 불러오기: 설정 복원 완료. 제품 사진은 다시 올려 주세요"


def test_gradio_takes_the_locales_as_they_are():
    import gradio as gr

    i18n = gr.I18n(**load_locales())
    assert i18n.translations_dict["ko"]["generate"] == "생성"
    assert i18n.translations_dict["en"]["results"] == "Results (newest first)"
    # Gradio's own strings live under these names in the same dictionary: a key of ours must not shadow one.
    gradio_namespaces = {"_name", "annotated_image", "audio", "blocks", "chat_interface", "chatbot", "checkbox", "code",
                         "color_picker", "common", "dataframe", "dropdown", "errors", "file", "highlighted_text",
                         "image", "image_editor", "label", "login", "number", "plot", "radio", "slider", "status",
                         "upload_text", "video"}
    assert not gradio_namespaces & set(raw("en"))


def test_adgen_i18n_never_imports_gradio():
    code = "import sys, adgen.i18n as i; i.load_locales(); i.text('stop', 'ko'); assert 'gradio' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, check=True)


GOOD_EN, GOOD_KO = 'stop: "Stop"\ncount: "{n} images"\n', 'stop: "중지"\ncount: "이미지 {n}장"\n'


@pytest.mark.parametrize(
    ("en", "ko", "says"),
    [
        (GOOD_EN, GOOD_KO + 'extra: "더"\n', "ko.yaml: must have exactly en.yaml's keys (missing: -; not in en.yaml: "
                                             "extra)"),
        (GOOD_EN + 'go: "Go"\n', GOOD_KO, "ko.yaml: must have exactly en.yaml's keys (missing: go;"),
        (GOOD_EN, GOOD_KO.replace("{n}", "{count}"), "ko.yaml: count: placeholders ['count'] differ from en.yaml's "
                                                     "['n']"),
        (GOOD_EN, GOOD_KO.replace("{n}", "n"), "ko.yaml: count: placeholders [] differ"),
        (GOOD_EN, GOOD_KO.replace('"중지"', '"  "'), "ko.yaml: stop: must be non-empty text"),
        (GOOD_EN, GOOD_KO.replace('"중지"', "null"), "ko.yaml: stop: must be non-empty text (got None)"),
        (GOOD_EN + 'stop: "Halt"\n', GOOD_KO, "en.yaml: cannot be read as YAML"),  # a key twice
        (GOOD_EN + 'Bad-Key: "x"\n', GOOD_KO, "en.yaml: 'Bad-Key': keys are snake_case names"),
        (GOOD_EN.replace("{n}", "{n"), GOOD_KO, "en.yaml: count: unbalanced braces"),
        (GOOD_EN.replace("{n}", "{{n}}"), GOOD_KO, "en.yaml: count: literal braces are not allowed"),
        (GOOD_EN.replace("{n}", "{n:>3}"), GOOD_KO, "en.yaml: count: placeholders are plain names"),
        ("- a\n- b\n", GOOD_KO, "en.yaml: must be a mapping"),
    ],
)
def test_bad_locale_files_are_refused_naming_file_and_key(tmp_path, en, ko, says):
    (tmp_path / "en.yaml").write_text(en, encoding="utf-8")
    (tmp_path / "ko.yaml").write_text(ko, encoding="utf-8")
    with pytest.raises(LocaleError) as err:
        load_locales(tmp_path)
    assert says in str(err.value)


def test_a_missing_locale_file_is_named(tmp_path):
    (tmp_path / "en.yaml").write_text(GOOD_EN, encoding="utf-8")
    with pytest.raises(LocaleError, match=r"ko.yaml: cannot be read"):
        load_locales(tmp_path)


# -- the browser's language ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, "en"), ("", "en"), ("ko", "ko"), ("KO-kr", "ko"), ("ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7", "ko"),
        ("en-US,en;q=0.9,ko;q=0.8", "en"), ("en;q=0.5, ko;q=0.8", "ko"), ("fr-FR, ko;q=0.9", "en"),
        ("ko;q=0, en", "en"), ("ko;q=0.0,en;q=0.1", "en"), ("*", "en"), ("*;q=0.5, ko;q=0.6", "ko"),
        ("ko;q=abc, en;q=0.5", "en"), ("en;q=1.5, ko;q=0.9", "ko"), ("en;q=0.9, ko;q=0.9", "en"),
        ("ko ; q = 0.7 , en ; q=0.6", "ko"), (",,ko", "ko"), ("kok", "en"), ("ko_KR", "ko"),
    ],
)
def test_lang_of_reads_accept_language_by_q_value(header, lang):
    assert lang_of(header) == lang


def test_text_fills_placeholders_and_says_what_is_missing():
    assert text("gallery_caption", "ko", seed=7, size="1024x1024") == "시드 7 · 1024x1024"
    assert text("gallery_caption", "fr", seed=7, size="1x1") == "seed 7 · 1x1"  # any other language: English
    assert text("stop", "ko-KR") == "중지" and text("stop") == "Stop"
    with pytest.raises(KeyError, match="no UI string 'nope': add it to adgen/locales/en.yaml and ko.yaml"):
        text("nope", "ko")
    with pytest.raises(KeyError, match="UI string 'gallery_caption' needs size"):
        text("gallery_caption", "en", seed=1)


# -- errors in the UI's language -----------------------------------------------------------------
def raised(call) -> BaseException:
    with pytest.raises(Exception) as err:  # noqa: B017, PT011 - each case raises its own kind
        call()
    return err.value


def png(width: int, height: int, mode: str = "1", chunk: str | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    if chunk is not None:
        info.add_text("adgen", chunk)
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


P = Product("x")
WHITE = Image.new("RGB", (64, 64), "white")
CASES = [
    (lambda: Product(name=""), "제품명: 비워 둘 수 없습니다"),
    (lambda: Product(name=" \u200b "), "제품명: 비워 둘 수 없습니다"),
    (lambda: Product("x", category="a" * 501), "카테고리: 500자 이하로 입력하세요 (현재 501자)"),
    (lambda: Product("x", audience="a\x07"), "타깃 고객: 제어 문자는 쓸 수 없습니다 (발견: U+0007)"),
    (lambda: Product("x", copy="세일 \u202e50% 할인"),
     "광고 문구: 글자 순서를 뒤집는 양방향 제어 문자는 쓸 수 없습니다 (발견: U+202E)"),
    (lambda: AdRequest(P, prompt="a \u2067b"),
     "프롬프트: 글자 순서를 뒤집는 양방향 제어 문자는 쓸 수 없습니다 (발견: U+2067)"),
    (lambda: Product("x", scene=5), "장면/분위기: 텍스트여야 합니다 (입력: int)"),
    (lambda: Product("x", colors="a" * 600), "브랜드 색상: 500자 이하로 입력하세요 (현재 600자)"),
    (lambda: Product("x", copy="a" * 501), "광고 문구: 500자 이하로 입력하세요 (현재 501자)"),
    (lambda: Product("x", features=["a" * 300, "b" * 300]), "주요 특징: 모두 합쳐 500자 이하로 입력하세요"),
    (lambda: AdRequest("x"), "제품: Product 객체여야 합니다"),
    (lambda: AdRequest(P, width=1000), "너비: 16의 배수여야 합니다 (입력: 1000, 추천: 992)"),
    (lambda: AdRequest(P, height=4096), "높이: 256에서 2048 사이여야 합니다 (입력: 4096)"),
    (lambda: AdRequest(P, steps=0), "스텝 수: 1에서 50 사이여야 합니다 (입력: 0)"),
    (lambda: AdRequest(P, count=2.5), "이미지 수: 1에서 8 사이의 정수여야 합니다 (입력: 2.5)"),
    (lambda: AdRequest(P, seed="abc"), "시드: 0에서 4294967295 사이의 정수여야 합니다 (입력: 'abc')"),
    (lambda: AdRequest(P, lora_scale="x"), "LoRA 강도: 0.0에서 2.0 사이의 숫자여야 합니다 (입력: 'x')"),
    (lambda: AdRequest(P, strength=2), "변형 강도: 0.05에서 1.0 사이여야 합니다 (입력: 2)"),
    (lambda: AdRequest(P, preset="Bad Name"), "스타일: 'photo' 같은 스타일 이름이어야 합니다 (입력: 'Bad Name')"),
    (lambda: AdRequest(P, prompt="a" * 4001), "프롬프트: 4000자 이하로 입력하세요 (현재 4001자)"),
    (lambda: AdRequest(P, image="x"), "이미지: 이미지 파일의 바이트여야 합니다"),
    (lambda: AdRequest(P, mask=b"x"), "마스크: 인페인트할 이미지가 필요합니다"),
    (lambda: check_int("image count", 9, 1, 4), "이미지 수: 1에서 4 사이여야 합니다 (입력: 9)"),
    (lambda: parse_size("big"), "크기: 가로x세로 형식이어야 합니다. 예: 1024x1024 (입력: 'big')"),
    (lambda: aspect_size("7:5"),
     "화면 비율: 다음 중 하나여야 합니다: 1:1, 4:5, 3:4, 2:3, 9:16, 5:4, 4:3, 3:2, 16:9 (입력: '7:5')"),
    (lambda: get_preset(load_presets(), "nope"),
     "스타일: 알 수 없는 스타일입니다: 'nope'. 다음 중에서 고르세요: photo, anime, semi_realistic"),
    (lambda: resolve_lora_file(LoraSpec(file="gone.safetensors"), [Path("/nowhere")]),
     "LoRA: LoRA 폴더(/nowhere)에 'gone.safetensors' 파일이 없습니다. Z-Image-Turbo LoRA .safetensors 파일을 넣거나 "
     "ADGEN_LORA_DIR 환경 변수를 설정하세요"),
    (lambda: decode_image(b"junk", "product photo"),
     "제품 사진: 읽을 수 있는 이미지가 아닙니다 (읽을 수 있는 형식: PNG, JPEG, WebP, HEIC/HEIF, AVIF)"),
    (lambda: decode_image(b"\0" * (MAX_IMAGE_BYTES + 1)), "이미지: 20.0 MB입니다. 최대 20 MB까지 올릴 수 있습니다"),
    (lambda: decode_image(png(7000, 7000)), "이미지: 7000x7000 픽셀입니다. 최대 40메가픽셀까지 올릴 수 있습니다"),
    (lambda: read_image_file("/no/such.png", "product photo"), "제품 사진: 파일을 찾을 수 없습니다: /no/such.png"),
    (lambda: read_image_file("/", "product photo"), "제품 사진: 파일이 아닙니다: /"),
    (lambda: Placement(x=2), "제품 위치 x: 0.0에서 1.0 사이여야 합니다 (입력: 2)"),
    (lambda: Placement(y=-1), "제품 위치 y: 0.0에서 1.0 사이여야 합니다 (입력: -1)"),
    (lambda: Placement(scale=0), "제품 크기: 0.05에서 1.0 사이여야 합니다 (입력: 0)"),
    (lambda: auto_mask(WHITE), "제품 사진: 제품을 찾지 못했습니다. 마스크가 사진의 0.0%를 덮습니다 (1%~98%만 허용). "
                               "투명 배경 PNG를 올리거나, 마스크를 직접 칠하거나, "
                               "`python -m adgen download --segment`로 분할 모델을 받으세요"),
    (lambda: product_mask(WHITE, Image.new("L", (64, 64), 0)),
     "제품 마스크: 비어 있습니다. 제품 부분을 흰색으로 칠하세요"),
    (lambda: AdSpec(AdRequest(P), mask=b"x"), "제품 마스크: 제품 사진이 필요합니다"),
    (lambda: AdSpec(AdRequest(P), background="sky"),
     "배경: 다음 중 하나여야 합니다: inpaint, t2i, packshot (입력: 'sky')"),
    (lambda: AdSpec(AdRequest(P), text_position="left"),
     "문구 위치: 다음 중 하나여야 합니다: auto, top, center, bottom (입력: 'left')"),
    (lambda: AdSpec(AdRequest(P), subcopy="a" * 501), "보조 문구: 500자 이하로 입력하세요 (현재 501자)"),
    (lambda: check_text_style("x", load_text_styles()),
     "문구 스타일: 알 수 없는 값입니다: 'x'. 다음 중에서 고르세요: extrude_3d, gold, neon, outline"),
    (lambda: render_copy("A", "", (200, 300), load_text_styles()["neon"], "left"),
     "문구 위치: 다음 중 하나여야 합니다: auto, top, center, bottom (입력: 'left')"),
    (lambda: resolve_dtype("fp8", torch.device("cpu")),
     "데이터 타입(dtype): 다음 중 하나여야 합니다: auto, bfloat16, float32 (입력: 'fp8')"),
    (lambda: read_params(b"junk"), "이미지: 읽을 수 있는 PNG가 아닙니다"),
    (lambda: read_params(png(8, 8)), "이미지: AdGen 설정이 없습니다 (AdGen으로 저장한 PNG에만 있습니다)"),
    (lambda: read_params(png(8, 8, chunk="{oops")), "이미지: AdGen 설정이 손상되었습니다 (JSON이 아닙니다)"),
    (lambda: read_params(png(8, 8, chunk="[1]")),
     "이미지: AdGen 설정이 손상되었습니다: JSON 객체여야 합니다 (입력: [1])"),
    (lambda: read_params(png(8, 8, chunk='{"adgen": 99}')), "이미지: AdGen 설정의 버전을 알 수 없습니다 (99)"),
    (lambda: read_params(png(8, 8, chunk=f'{{"adgen": {FORMAT_VERSION}, "step": "cutout"}}')),
     "이미지: 광고의 cutout 단계 이미지입니다. 최종 광고 이미지를 불러오세요"),
    (lambda: read_params(png(8, 8, chunk=f'{{"adgen": {FORMAT_VERSION}}}')),
     "이미지: AdGen 설정이 손상되었습니다: product is missing"),  # the detail stays as the checker said it
    (lambda: MemoryPlanner("gpu", torch.device("cuda"), lambda: (2 * GB, 80 * GB),
                           lambda: Footprint(12 * GB, 8 * GB, GB // 2)).check_fits(1024, 1024),
     "크기: 1024x1024에는 gpu 모드에서 VRAM이 약 24.9 GB 필요하지만 2.0 GB만 남아 있습니다. 크기나 이미지 수를 "
     "줄이거나, 오프로드하는 메모리 모드(offload, lowvram)를 쓰세요"),
]


@pytest.mark.parametrize(("call", "korean"), CASES)
def test_real_errors_read_in_korean_and_stay_english_in_english(call, korean):
    exc = raised(call)
    assert isinstance(exc, AdgenError)
    assert localize_error(exc, "ko") == korean
    assert localize_error(exc, "en") == str(exc)  # English: exactly as raised


def test_long_copy_and_missing_glyphs_in_korean():
    style = load_text_styles()["neon"]
    exc = raised(lambda: layout_copy("가" * 3000, "", (256, 256), style))
    assert re.fullmatch(r"광고 문구: \d+px까지 줄여도 220x76 문구 영역에 들어가지 않습니다\. "
                        r"문구를 줄이거나 더 큰 이미지를 쓰세요", localize_error(exc, "ko"))
    exc = raised(lambda: layout_copy("맛있다 😀", "", (256, 256), style))
    assert localize_error(exc, "ko") == ("광고 문구: 문구 글꼴에 없는 글자가 있습니다: '😀'. "
                                         "해당 문자를 지우세요 (이모지는 지원하지 않습니다)")
    assert ".ttf" not in str(exc) and ".otf" not in str(exc)  # no file names in what users read
    # letters of a script the font has no glyphs for are not "emoji": the message names the script
    exc = raised(lambda: layout_copy("خصم 50%", "", (256, 256), style))
    assert str(exc) == ("ad copy: the copy font has no glyph for 'خصم': it has no letters of the Arabic script; "
                        "remove those characters or use a brand font that has them")
    assert localize_error(exc, "ko") == ("광고 문구: 문구 글꼴에 Arabic 문자가 없습니다: 'خصم'. "
                                         "해당 문자를 지우거나 그 문자가 있는 브랜드 글꼴을 쓰세요")


def test_stopped_generations_in_korean():
    job = Job("tab")
    job.stop()
    assert localize_error(raised(lambda: job.check(2, 8)), "ko") == \
        "사용자가 생성을 중지했습니다 (전체 8단계 중 2단계 후)"
    assert localize_error(raised(lambda: job.check()), "ko") == "사용자가 생성을 중지했습니다 (시작 전)"
    gone = Job("tab", gone=lambda: True)
    assert localize_error(raised(lambda: gone.check(1, 8)), "ko") == \
        "클라이언트 연결이 끊겨 생성을 중지했습니다 (전체 8단계 중 1단계 후)"
    jobs = Jobs()
    with jobs.open("tab") as job:
        jobs.stop("tab", "stopped because the page was closed")
        exc = raised(lambda: job.check(3, 16))
    assert str(exc) == "generation stopped because the page was closed after step 3 of 16"
    assert localize_error(exc, "ko") == "페이지가 닫혀 생성을 중지했습니다 (전체 16단계 중 3단계 후)"
    assert localize_error(GenerationStopped(1, 2, "stopped by a cat"), "ko") == \
        "stopped by a cat (전체 2단계 중 1단계 후)"  # an unknown reason stays English in the Korean frame


@pytest.mark.parametrize("reason", [text(key, "en") for key in STOP_REASONS])
def test_stop_reasons_in_english_match_what_errors_py_writes(reason):
    for step, total in ((2, 8), (0, 0)):
        where = text("stopped_after_step", "en", step=step, total=total) if total else text("stopped_before_start")
        assert text("stopped_message", "en", reason=reason, where=where) == str(GenerationStopped(step, total, reason))


def test_every_stop_reason_in_the_code_is_translated():
    reasons = {text(key, "en") for key in STOP_REASONS}
    used = {node.value for path in SOURCES for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and re.fullmatch(r"stopped (by|because) [^{}]+", node.value)}
    assert used and used <= reasons, used - reasons


@pytest.mark.parametrize(
    ("exc", "korean"),
    [
        (InputError("product name", "a rule added tomorrow"), "제품명: a rule added tomorrow"),  # field still Korean
        (InputError("mystery", "must not be empty"), "mystery: 비워 둘 수 없습니다"),  # message still Korean
        (ModelError("model: cannot load X: broken"), "모델: cannot load X: broken"),
        (OutOfMemory("the GPU ran out of memory; memory was freed. Try a smaller size, fewer images, or a memory "
                     "mode that offloads (--memory offload)"),
         "GPU 메모리가 부족해 메모리를 비웠습니다. 크기나 이미지 수를 줄이거나, "
         "오프로드하는 메모리 모드(--memory offload)를 쓰세요"),
        (ValueError("a bug: x"), "a bug: x"),
        (AdgenError(""), ""),
        (InputError("", ""), ": "),
    ],
)
def test_unknown_messages_keep_their_english_and_never_fail(exc, korean):
    assert localize_error(exc, "ko") == korean


def test_field_names_in_korean():
    assert field_label("scene/mood", "ko") == "장면/분위기"
    assert field_label("placement scale", "ko") == "제품 크기"
    assert field_label("scene/mood", "en") == "scene/mood"
    assert field_label("--device", "ko") == "--device"


def test_each_error_template_is_reachable():
    """No template is hidden behind a more literal one: its own English comes back as itself."""
    en = raw("en")
    for key, template in en.items():
        if key.startswith("error_"):
            sample = template.format(**{name: f"<{name}>" for name in placeholders(template)})
            assert translate_message(sample, "en") == sample, key
            assert translate_message(sample, "ko") == text(key, "ko", **{n: f"<{n}>" for n in placeholders(template)})


# -- every message the code can raise has a translation ------------------------------------------
def _samples(node: ast.expr) -> list[str]:
    """The texts a message can take: each {value} as "7", or each branch of {'a' if c else 'b'}; [] if not a string."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if not isinstance(node, ast.JoinedStr):
        return []
    texts = [""]
    for part in node.values:
        if isinstance(part, ast.Constant):
            options = [part.value]
        elif isinstance(part.value, ast.IfExp) and all(isinstance(b, ast.Constant) and isinstance(b.value, str)
                                                       for b in (part.value.body, part.value.orelse)):
            options = [part.value.body.value, part.value.orelse.value]
        else:
            options = ["7"]
        texts = [t + o for t in texts for o in options]
    return texts


def _raise_sites() -> list[tuple[str, str, ast.expr | None, ast.expr]]:
    """(where, class, field node or None, message node) for each error the page can show."""
    sites = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in RAISED:
                index = RAISED[node.func.id]
                if len(node.args) > index:
                    where = f"{path.relative_to(PROJECT_DIR)}:{node.lineno}"
                    sites.append((where, node.func.id, node.args[0] if index else None, node.args[index]))
    return sites


def test_the_scan_finds_the_raise_sites():
    names = {cls for _, cls, _, _ in _raise_sites()}
    assert {"InputError", "WontFit", "OutOfMemory", "FontError"} <= names
    assert len(_raise_sites()) > 40


@pytest.mark.parametrize(("where", "cls", "field", "message"), _raise_sites(), ids=lambda v: v if isinstance(v, str)
                         and ":" in v else "")
def test_every_error_message_in_the_code_has_a_korean_template(where, cls, field, message):
    samples = _samples(message)
    assert samples, f"{where}: write the message as a literal or f-string so it can be translated"
    for sample in samples:
        if cls != "InputError":  # "field: message" or a whole sentence
            head, sep, rest = sample.partition(": ")
            translated = translate_message(sample, "ko") or (sep and translate_message(rest, "ko"))
        else:
            translated = translate_message(sample, "ko")
        assert translated, f"{where}: {sample!r} has no error_* template in adgen/locales (add it to en.yaml, ko.yaml)"
    if isinstance(field, ast.Constant):
        assert field_label(field.value, "ko") != field.value, f"{where}: field {field.value!r} has no field_* name"


def test_every_field_name_passed_to_the_checks_is_translated():
    """Fields handed to the checkers (check_text, check_int, decode_image, ...) as literals: each has a Korean name."""
    checkers = {"check_text": 0, "check_int": 0, "check_side": 0, "_check_float": 0, "read_image_file": 1,
                "decode_image": 1}
    found = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in checkers:
                index = checkers[getattr(node.func, "id", None) or node.func.attr]
                args = node.args[index:index + 1] + [k.value for k in node.keywords if k.arg in ("name", "field")]
                found |= {a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    assert {"product name", "key features", "image count", "product photo"} <= found
    untranslated = {f for f in found if field_label(f, "ko") == f}
    assert untranslated == {"ADGEN_CACHE_MAX_MB"}  # environment variables read the same in both languages


def test_the_english_strings_hold_no_korean():
    """An English page reads English only (a placeholder once showed a Korean product name there)."""
    hangul = re.compile("[\uac00-\ud7a3\u3131-\u318e]")
    assert [key for key, value in raw("en").items() if hangul.search(str(value))] == []


def test_an_errors_field_is_named_as_the_page_labels_its_box():
    # the font box read "문구 글꼴" while its errors said "브랜드 글꼴": a user looked for a box that was not there
    locales = load_locales()
    for lang, strings in locales.items():
        for box, field in (("product_name", "field_product_name"), ("product_photo_optional", "field_product_photo"),
                           ("brand_logo", "field_logo"), ("brand_font", "field_brand_font")):
            assert strings[box].lower().startswith(strings[field].lower()), (lang, strings[box], strings[field])
