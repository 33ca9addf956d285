"""Korean platforms' rules (issue 21): the channel files, the checker, files fitted to a byte limit, `adgen check`,
a Coupang campaign that passes, and a file that cannot fit said and exit 1."""

import io
import json

import numpy as np
from PIL import Image, PngImagePlugin

from adgen.__main__ import main
from adgen.channels import load_channels
from adgen.deliver import JPEG_QUALITY, deliver
from adgen.layout import fill_of, plan
from adgen.metadata import read_params
from adgen.rules import Rules, check_image

from conftest import ROOT

PHOTO = str(ROOT / "docs" / "example-product.png")
KOREAN = {  # id: (size, platform, max bytes)
    "coupang_main": ((1000, 1000), "Coupang", 5_000_000),
    "naver_smartstore": ((1000, 1000), "Naver", 20_000_000),
    "11st_main": ((1000, 1000), "11st", 3_000_000),
    "gmarket_auction": ((1000, 1000), "Gmarket / Auction", 2_000_000),
    "kakaotalk_store_square": ((750, 750), "Kakao", 10_000_000),
    "kakaotalk_store_portrait": ((750, 1000), "Kakao", 10_000_000),
    "kakao_bizboard": ((1029, 258), "Kakao", None),
    "kakao_bizboard_motion": ((1290, 258), "Kakao", None),
    "kakao_moment_native": ((800, 1000), "Kakao", 500_000),
}


def encode(image: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def on_white(size=(200, 200), box=(40, 40, 160, 160), color=(200, 30, 30)) -> Image.Image:
    image = Image.new("RGB", size, (255, 255, 255))
    image.paste(Image.new("RGB", (box[2] - box[0], box[3] - box[1]), color), box[:2])
    return image


def by_rule(checks) -> dict:
    return {c.rule: c for c in checks}


def test_the_korean_channels_carry_their_rules_labels_and_sources():
    channels = load_channels()
    for cid, (size, platform, limit) in KOREAN.items():
        c = channels[cid]
        assert (c.size, c.platform, c.rules.max_bytes) == (size, platform, limit)
        assert c.source.startswith("https://") and c.label_ko != c.label and c.platform_ko != c.platform
        assert c.rules.formats == ("png", "jpeg")
    coupang = channels["coupang_main"].rules
    assert (coupang.background, coupang.copy_allowed, coupang.logo, coupang.min_fill) == ("white", False, False, 0.85)
    assert (coupang.min_pixels, coupang.max_pixels) == ((100, 100), (5000, 5000))
    assert channels["naver_smartstore"].rules.copy_allowed is False
    moment = channels["kakao_moment_native"].rules
    assert moment.aspect and moment.min_pixels == (800, 1000)
    motion = channels["kakao_bizboard_motion"].safe_box()
    assert motion[2] - motion[0] <= 937 and motion[3] - motion[1] <= 222  # inside the 937x222 safe area


def test_the_checker_measures_size_format_bytes_white_and_fill():
    rules = Rules(background="white", copy=False, logo=False, min_fill=0.85, formats=("png", "jpeg"),
                  max_bytes=10_000, min_pixels=(100, 100), max_pixels=(5000, 5000))
    small = by_rule(check_image(encode(on_white()), rules, (1000, 1000)))  # a seller's photo: product 60%
    assert small["pixels"].passed and small["format"].passed and small["background"].passed
    assert (small["fill"].measured, small["fill"].passed) == ("60.0%", False)
    assert small["copy"].passed is None and "not measured" in small["copy"].measured  # no OCR: said, not guessed
    full = by_rule(check_image(encode(on_white(box=(5, 5, 195, 195))), rules, (1000, 1000)))
    assert full["fill"].passed and full["fill"].measured == "95.0%"
    grey = on_white()
    grey.paste((250, 240, 240), (0, 0, 200, 30))  # a tinted band along the top: not pure white
    bad = by_rule(check_image(encode(grey, "JPEG", quality=90), rules, (1000, 1000)))
    assert bad["format"].measured == "JPEG" and bad["background"].passed is False
    tiny = by_rule(check_image(encode(Image.new("RGB", (64, 64), "white")), rules, (1000, 1000)))
    assert tiny["pixels"].passed is False and tiny["pixels"].allowed == "at least 100x100, at most 5000x5000"
    exact = check_image(encode(Image.new("RGB", (750, 740))), Rules(), (750, 750))[0]  # no min/max: exact size
    assert (exact.measured, exact.allowed, exact.passed) == ("750x740", "750x750", False)
    noisy = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    over = by_rule(check_image(encode(Image.fromarray(noisy)), Rules(max_bytes=10_000), (300, 300)))
    assert over["bytes"].passed is False and over["bytes"].allowed == "at most 10 KB"


def adgen_png(pixels: np.ndarray, params: dict) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("adgen", json.dumps(params, ensure_ascii=False, sort_keys=True))
    return encode(Image.fromarray(pixels), pnginfo=info)


def test_a_file_over_the_limit_becomes_a_jpeg_that_fits_and_keeps_its_parameters():
    rng = np.random.default_rng(1)
    x = np.linspace(0, 255, 256)
    smooth = np.stack([np.add.outer(x, x) / 2, np.add.outer(x, 255 - x) / 2, np.full((256, 256), 128)], -1)
    photo = np.clip(smooth + rng.normal(0, 3, smooth.shape), 0, 255).astype(np.uint8)  # a photo's grain: PNG is big
    params = {"adgen": 1, "seed": 7, "product": {"name": "탄산수"}, "ad": {"copy_drawn": False, "logo_drawn": False}}
    png = adgen_png(photo, params)
    rules = Rules(formats=("png", "jpeg"), max_bytes=12_000)
    assert len(png) > 12_000
    made = deliver(png, rules, (256, 256))
    assert made.format == "jpeg" and len(made.data) <= 0.95 * 12_000 and made.note is None
    assert JPEG_QUALITY[0] < made.quality < JPEG_QUALITY[1]  # the search found the highest quality that fits
    from adgen.metadata import jpeg_bytes

    assert len(jpeg_bytes(Image.fromarray(photo), params, made.quality + 1)) > 0.95 * 12_000
    assert deliver(png, rules, (256, 256)).data == made.data  # deterministic
    assert json.loads(Image.open(io.BytesIO(made.data)).info["comment"]) == params  # AdGen's parameters travel
    assert all(c.passed for c in made.checks)
    kept = deliver(png, Rules(formats=("png", "jpeg"), max_bytes=10_000_000), (256, 256))
    assert (kept.format, kept.data) == ("png", png)  # PNG where it fits
    noise = adgen_png(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8), params)
    never = deliver(noise, Rules(formats=("jpeg",), max_bytes=10_000), (256, 256))  # not even at quality 40
    assert never.quality == JPEG_QUALITY[0] and "even at JPEG quality 40" in never.note
    assert by_rule(never.checks)["bytes"].passed is False
    png_only = deliver(png, Rules(max_bytes=10_000), (256, 256))
    assert png_only.format == "png" and "JPEG is not allowed" in png_only.note


def test_deliver_decodes_the_png_once_whatever_it_ships(monkeypatch):
    """The PNG's pixels are decoded once per file: for the JPEG search and for the checks alike (a JPEG that ships
    is decoded once more, to be checked as the platform will see it)."""
    from PIL import ImageFile

    decoded, load = [], ImageFile.ImageFile.load

    def counted(image):
        if image.tile:  # pixels still to decode
            decoded.append(image.format)
        return load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counted)
    rng = np.random.default_rng(2)
    png = adgen_png(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8), {"adgen": 1, "seed": 1})
    for rules, ships in ((Rules(formats=("png", "jpeg")), "png"), (Rules(formats=("png", "jpeg"), max_bytes=40_000),
                                                                   "jpeg"), (Rules(formats=("jpeg",)), "jpeg")):
        decoded.clear()
        assert deliver(png, rules, (128, 128)).format == ships
        assert decoded == (["PNG"] if ships == "png" else ["PNG", "JPEG"]), rules


def test_read_params_reads_a_jpeg_adgen_wrote(tmp_path):
    from adgen.metadata import jpeg_bytes

    params = {"adgen": 1, "product": {"name": "녹차", "category": "", "features": [], "audience": "", "scene": "",
                                      "colors": "", "copy": ""}, "preset": "photo", "lora_scale": None,
              "prompt_override": None, "product_focus": True, "seed": 3, "width": 64, "height": 64, "steps": 8,
              "prompt": "tea"}
    path = tmp_path / "ad.jpg"
    path.write_bytes(jpeg_bytes(Image.new("RGB", (64, 64), "white"), params, 80))
    assert read_params(path) == params


def test_the_layout_places_the_product_to_the_fill_rule():
    frame = plan((1000, 1000), (0, 0, 1000, 1000), (300, 800), False, None, False, min_fill=0.85)
    assert frame.copy is None and frame.logo is None
    assert 0.85 <= fill_of(frame.product, (1000, 1000)) <= 0.9
    assert abs((frame.product[0] + frame.product[2]) / 2 - 500) <= 1  # centred


def test_a_coupang_campaign_is_pure_white_without_copy_or_logo_and_passes_its_checks(tmp_path, capsys):
    out = tmp_path / "c"
    code = main(["campaign", "--product", "탄산수", "--copy", "여름 한정 30% 할인", "--image", PHOTO,
                 "--brand", "citrus", "--channels", "coupang_main", "--background", "packshot", "--out", str(out),
                 "--quiet"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    checks = {c["rule"]: c for c in report["checks"]["coupang_main-v1.png"]}
    assert all(c["passed"] for c in checks.values()) and set(checks) == {"pixels", "format", "bytes", "background",
                                                                        "copy", "logo", "fill"}
    assert (checks["copy"]["measured"], checks["logo"]["measured"]) == ("none", "none")
    assert float(checks["fill"]["measured"].rstrip("%")) >= 85
    image = np.asarray(Image.open(out / "coupang_main-v1.png").convert("RGB"))
    assert (image[:20] == 255).all() and (image[-20:] == 255).all() and (image[:, :20] == 255).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"][0]["checks"] == report["checks"]["coupang_main-v1.png"]
    assert manifest["files"][0]["params"]["ad"]["copy_drawn"] is False
    # `adgen check` judges the same file alike, and a seller's own photo (product small, a grey backdrop) fails
    photo = tmp_path / "seller.jpg"
    photo.write_bytes(encode(on_white(size=(800, 800), box=(300, 300, 500, 500)), "JPEG", quality=90))
    code = main(["check", str(out / "coupang_main-v1.png"), str(photo), "--channel", "coupang_main"])
    captured = capsys.readouterr()
    judged = json.loads(captured.out)
    assert code == 1 and [f["passed"] for f in judged["files"]] == [True, False]
    assert "warning: seller.jpg: fill 25.0% (allowed: at least 85%)" in captured.err


def test_a_file_that_cannot_fit_is_a_warning_and_exit_1(tmp_path, capsys, monkeypatch):
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "strict.yaml").write_text(
        "label: Strict\nlabel_ko: 엄격\nwidth: 320\nheight: 320\nsource: a test\n"
        "rules: {formats: [png], max_bytes: 10000}\n", encoding="utf-8")
    monkeypatch.setenv("ADGEN_CHANNELS_DIR", str(tmp_path / "channels"))
    code = main(["campaign", "--product", "x", "--image", PHOTO, "--channels", "strict", "--background", "packshot",
                 "--out", str(tmp_path / "o"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 1 and json.loads(captured.out)["checks"]["strict-v1.png"][2]["passed"] is False
    assert "warning: strict-v1.png: a PNG of" in captured.err and "JPEG is not allowed" in captured.err
    assert (tmp_path / "o" / "strict-v1.png").exists()  # written, and said: never silently shipped
    sheet = tmp_path / "rows.csv"
    sheet.write_bytes(f"이름,이미지\r\nA,{PHOTO}\r\n".encode("cp949"))
    code = main(["batch", str(sheet), "--channels", "strict", "--background", "packshot", "--out", str(tmp_path / "b"),
                 "--quiet"])
    captured = capsys.readouterr()
    assert code == 1 and json.loads(captured.out)["failed"] == []  # the row ran; its file fails a rule
    assert "warning: row 2: strict-v1.png: a PNG of" in captured.err


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((200, 200), 60).convert("RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_check_refuses_an_unreadable_file_and_an_unknown_channel(tmp_path, capsys):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    assert main(["check", str(text), "--channel", "coupang_main"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: file: ") and "is not a readable image" in err
    truncated = tmp_path / "half.jpg"  # Pillow's verify() passes it; only a full decode fails
    truncated.write_bytes(jpeg_bytes()[:400])
    assert main(["check", str(truncated), "--channel", "coupang_main"]) == 2
    assert "is not a readable image" in capsys.readouterr().err
    assert main(["check", PHOTO, "--channel", "tiktok"]) == 2
    assert "unknown 'tiktok'" in capsys.readouterr().err
