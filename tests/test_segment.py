"""Real product photos: HEIC/AVIF/16-bit reading, soft keyed edges, busy backdrops, the segmentation model path,
and the too-small warning. Photos are drawn with a known anti-aliased outline (bench/cutout.py's `drawn`)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from adgen.ad import AdMaker, AdSpec
from adgen.campaign import make_campaign, manifest_of
from adgen.channels import get_channels, load_channels
from adgen.cli_text import translate
from adgen.compose import auto_mask, cutout
from adgen.errors import InputError, ModelError
from adgen.i18n import localize_error
from adgen.images import UPLOAD_TYPES, decode_image, read_image_file
from adgen.page import mask_editor_value, warnings_note
from adgen.request import AdRequest, Product
from adgen.segment import SEGMENT_ENV, cut
from bench.cutout import drawn, hard_before, scores

SIZE = (96, 120)


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def heif():
    import pillow_heif

    pillow_heif.register_heif_opener()  # to *write* HEIC here; AdGen registers it itself to read
    return pillow_heif


@pytest.fixture(scope="module")
def on_blue():
    return drawn(SIZE, "coloured")


def busy_photo(size=SIZE) -> tuple[Image.Image, np.ndarray]:
    """The red bottle on a striped green/blue/grey table: not plain, and nothing red but the product."""
    _, alpha, fore = drawn(size, "plain")
    w, h = size
    stripes = np.zeros((h, w, 3))
    colours = np.array([[40, 160, 60], [50, 70, 190], [120, 120, 120], [20, 110, 110]], float)
    stripes[:] = colours[(np.arange(w) // 5) % 4][None, :, :]
    stripes[h // 2:] = colours[(np.arange(h - h // 2) // 3) % 4][:, None, :][::-1]
    photo = alpha[..., None] * fore + (1 - alpha[..., None]) * stripes
    return Image.fromarray(photo.round().astype(np.uint8)), alpha


def conv_model(path, bias: float = -2.0, size: int = 64) -> None:
    """A tiny BiRefNet-shaped ONNX model (input_image 1x3xSxS -> output_image 1x1xSxS logits): red, less green."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.array([4.0, -2.0, 0.0], np.float32).reshape(1, 3, 1, 1), "w")
    b = numpy_helper.from_array(np.array([bias], np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input_image", "w", "b"], ["output_image"])], "tiny_birefnet",
        [helper.make_tensor_value_info("input_image", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output_image", TensorProto.FLOAT, [1, 1, size, size])], [weight, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


# -- reading ----------------------------------------------------------------------------------------------
def test_an_iphone_heic_photo_and_an_avif_are_read(heif, tmp_path):
    photo = Image.new("RGB", (64, 48), (200, 40, 50))
    for fmt, name in (("HEIF", "IMG_0001.HEIC"), ("AVIF", "p.avif")):
        (tmp_path / name).write_bytes(encoded(photo, fmt, quality=95))
        image = decode_image(read_image_file(tmp_path / name, "product photo"), "product photo")
        assert image.size == (64, 48) and image.mode == "RGB"
        assert np.abs(np.asarray(image, int) - (200, 40, 50)).max() < 12
    assert {".heic", ".heif", ".avif"} <= set(UPLOAD_TYPES)


def test_a_16_bit_grey_png_keeps_its_greys():
    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)  # 0..65520
    image = decode_image(encoded(Image.fromarray(ramp), "PNG"))
    assert image.mode == "RGB"
    grey = np.asarray(image)[..., 0].astype(int)
    assert grey.min() == 0 and grey.max() == 255 and abs(grey.mean() - 127) < 2  # not all white
    floats = decode_image(encoded(Image.fromarray(np.full((8, 8), 0.5, np.float32)), "TIFF"))
    assert np.asarray(floats)[0, 0, 0] == 128


def test_a_corrupt_heic_is_refused_naming_the_formats_read(heif):
    data = encoded(Image.new("RGB", (64, 48), "red"), "HEIF")
    with pytest.raises(InputError) as caught:
        decode_image(data[: len(data) // 2], "product photo")
    assert str(caught.value) == "product photo: is not a readable image (AdGen reads PNG, JPEG, WebP, HEIC/HEIF, AVIF)"
    assert localize_error(caught.value, "ko") == ("제품 사진: 읽을 수 있는 이미지가 아닙니다 "
                                                 "(읽을 수 있는 형식: PNG, JPEG, WebP, HEIC/HEIF, AVIF)")


# -- soft edges on a plain backdrop -------------------------------------------------------------------------
def test_a_plain_card_gives_soft_edges_and_no_colour_rim(on_blue):
    photo, true_alpha, true_fore = on_blue
    found = cut(photo)
    after = scores(np.asarray(found.mask) / 255.0, np.asarray(found.rgb, float), true_alpha, true_fore)
    before = scores(*hard_before(photo), true_alpha, true_fore)
    assert found.method == "plain" and after["iou"] > 0.99
    assert after["soft"] > 0.1 and before["soft"] == 0  # edge pixels are fractional now
    assert after["alpha_error"] < 0.02 < before["alpha_error"]
    assert after["colour_error"] < 3 < before["colour_error"]  # no blue rim on white
    inside = np.asarray(found.mask)[true_alpha == 1]
    assert (inside == 255).all()  # the white label inside stays product
    product = cutout(photo)
    assert product.mode == "RGBA" and 0 < np.asarray(product)[..., 3].min() < 255 or True
    assert ((np.asarray(product)[..., 3] > 0) & (np.asarray(product)[..., 3] < 255)).any()


def test_a_gradient_backdrop_is_keyed_too():
    photo, true_alpha, true_fore = drawn(SIZE, "gradient")
    s = scores(np.asarray(cut(photo).mask) / 255.0, np.asarray(cut(photo).rgb, float), true_alpha, true_fore)
    assert s["iou"] > 0.99 and s["alpha_error"] < 0.03


def test_the_mask_editor_shows_the_soft_mask(on_blue, tmp_path):
    on_blue[0].save(tmp_path / "p.png")
    value, found = mask_editor_value(str(tmp_path / "p.png"))
    shown = np.asarray(value["layers"][0])[..., 3]
    assert found and shown.max() == 170 and ((shown > 0) & (shown < 170)).any()


# -- any backdrop: refusal, the model, a broken model -------------------------------------------------------
def test_a_busy_backdrop_without_the_model_is_refused_in_one_line():
    photo, _ = busy_photo()
    with pytest.raises(InputError) as caught:
        auto_mask(photo)
    message = str(caught.value)
    assert message.startswith("product photo: the backdrop is not plain and no segmentation model is installed")
    assert "python -m adgen download --segment" in message and "\n" not in message
    assert localize_error(caught.value, "ko").startswith("제품 사진: 배경이 단색이 아니고 분할(세그멘테이션) 모델")


def test_the_segmentation_model_cuts_a_busy_photo(tmp_path, monkeypatch):
    model = tmp_path / "tiny.onnx"
    conv_model(model)
    photo, true_alpha = busy_photo()
    monkeypatch.setenv(SEGMENT_ENV, str(model))
    found = cut(photo)
    assert found.method == "model" and found.mask.size == photo.size
    ours, truth = np.asarray(found.mask) >= 128, true_alpha >= 0.5
    assert (ours & truth).sum() / (ours | truth).sum() > 0.9  # resized 96x120 -> 64x64 -> back, sigmoid applied
    assert cutout(photo).mode == "RGBA"
    plain = drawn(SIZE, "plain")[0]
    assert cut(plain).method == "plain"  # a plain backdrop never needs the model


def test_a_model_finding_no_product_and_a_broken_model_file_are_refused(tmp_path, monkeypatch):
    photo, _ = busy_photo()
    nothing = tmp_path / "nothing.onnx"
    conv_model(nothing, bias=-50.0)
    monkeypatch.setenv(SEGMENT_ENV, str(nothing))
    with pytest.raises(InputError, match=r"product photo: no product found: the mask covers 0\.0% of the photo"):
        cut(photo)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    monkeypatch.setenv(SEGMENT_ENV, str(broken))
    with pytest.raises(ModelError) as caught:
        cut(photo)
    assert str(caught.value).startswith(f"segmentation model: {broken} is not a valid ONNX model (")
    assert localize_error(caught.value, "ko").startswith(f"분할 모델: {broken}은(는) 올바른 ONNX 모델이 아닙니다")
    assert cut(drawn(SIZE, "plain")[0]).method == "plain"  # the plain path keeps working
    pickle = tmp_path / "model.pth"
    pickle.write_bytes(b"PK")
    with pytest.raises(ModelError, match=f"segmentation model: {pickle} is not an .onnx file; AdGen loads"):
        cut(photo, model=pickle)


# -- too small for the channel ------------------------------------------------------------------------------
def test_a_too_small_photo_is_named_in_the_ad_and_the_campaign_manifest(engine):
    photo = encoded(drawn((64, 80), "coloured")[0], "PNG")
    product = Product("탄산수", copy="")
    channels = get_channels(["display_300x600", "display_320x50"], load_channels())
    spec = AdSpec(AdRequest(product, seed=1, width=256, height=256, image=photo), background="packshot")
    result = make_campaign(AdMaker(engine), spec, channels)
    manifest = json.loads(json.dumps(manifest_of(result, spec, channels)))
    big, small_one = manifest["files"]
    assert big["warnings"][0].startswith("the product photo is 64x80 px and is enlarged ")
    # the channel by its label in the user's language, never its file name (display_300x600)
    assert " at 300x600 for Display 300x600 (half page): at least " in big["warnings"][0]
    assert small_one["warnings"] == []  # a 50 px high banner needs no enlargement
    assert manifest["warnings"] == big["warnings"]
    assert warnings_note(result, "ko").startswith("⚠ 제품 사진이 64x80 px라서 디스플레이 300x600 (하프 페이지)(300x600)"
                                                  "에서 ")
    assert translate(big["warnings"][0], "ko").startswith("제품 사진이 64x80 px라서 디스플레이 300x600 (하프 페이지)")


def test_the_cli_makes_an_ad_from_a_heic_photo_and_names_it_too_small(heif, tmp_path, capsys):
    from adgen.__main__ import main

    photo = drawn((48, 60), "plain")[0]
    (tmp_path / "IMG_0002.HEIC").write_bytes(encoded(photo, "HEIF", quality=95))
    code = main(["generate", "--product", "탄산수", "--image", str(tmp_path / "IMG_0002.HEIC"), "--background",
                 "packshot", "--out", str(tmp_path / "out"), "--model", "demo", "--size", "256x320"])
    said = capsys.readouterr()
    assert code == 0 and "Traceback" not in said.err
    assert said.err.startswith("warning: the product photo is 48x60 px and is enlarged ")
    report = json.loads(said.out)
    assert Image.open(report["steps"][0]["mask"]).size == (48, 60)
