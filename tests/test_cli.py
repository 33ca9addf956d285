"""The CLI: one JSON object out, and for bad input one `error:` line, exit 2, nothing written."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from diffusers import ZImagePipeline
from PIL import Image

from adgen.__main__ import main

from conftest import ROOT


def test_generate_prints_one_json_object_and_writes_pngs(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["generate", "--product", "제주 감귤 주스", "--features", "100% 착즙, no sugar", "--copy", "오늘만 ₩9,900",
            "--preset", "anime", "--seed", "5", "--size", "256x320", "--count", "2", "--out", str(out)]
    code = ("import sys, runpy; sys.argv = ['adgen'] + sys.argv[1:]; "
            "from adgen.__main__ import main; rc = main(sys.argv[1:]); "
            "assert 'gradio' not in sys.modules, 'the CLI imported gradio'; "
            "assert 'ray' not in sys.modules, 'the CLI imported Ray without --workers'; "
            "import app; assert 'ray' not in sys.modules, 'the app imported Ray'; sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ), timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == {"images", "seeds", "cached", "steps", "prompt", "model", "seconds"}  # --copy: an ad
    assert report["seeds"] == [5, 6] and report["cached"] == [False, False]
    for final, steps in zip(report["images"], report["steps"], strict=True):
        assert set(steps) == {"background", "copy_layer"}
        assert all(path.startswith(final.removesuffix(".png")) for path in steps.values())
    assert report["model"] == "demo model (random weights)"
    assert "제주 감귤 주스" in report["prompt"]
    for path in report["images"]:
        assert Image.open(path).size == (256, 320)
    assert main(args) == 0  # another process: the disk cache serves it
    again = json.loads(capsys.readouterr().out)
    assert again["cached"] == [True, True] and again["images"] == report["images"]


def test_random_seed_is_reported(tmp_path, capsys):
    assert main(["generate", "--product", "Lamp", "--size", "256x256", "--steps", "1", "--out", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"images", "seeds", "cached", "prompt", "model", "seconds"}  # no copy, no photo: plain
    assert 0 <= report["seeds"][0] <= 2**32 - 1
    assert f"adgen-{report['seeds'][0]}-" in report["images"][0]


BAD = [
    (["--product", ""], "error: --product: must not be empty"),
    (["--product", "   "], "error: --product: must not be empty"),
    (["--product", "x", "--size", "1000x1000"], "error: --size (width): must be a multiple of 16 (got 1000; try 992)"),
    (["--product", "x", "--size", "256x4096"], "error: --size (height): must be from 256 to 2048 (got 4096)"),
    (["--product", "x", "--size", "big"], "error: --size: must look like WIDTHxHEIGHT"),
    (["--product", "x", "--seed", "-1"], "error: --seed: must be from 0 to 4294967295 (got -1)"),
    (["--product", "x", "--seed", "4294967296"], "error: --seed: must be from 0 to 4294967295"),
    (["--product", "x", "--seed", "1.5"], "error: --seed: must be a whole number"),
    (["--product", "x", "--count", "0"], "error: --count: must be from 1 to 8 (got 0)"),
    (["--product", "x", "--count", "9"], "error: --count: must be from 1 to 8 (got 9)"),
    (["--product", "x", "--steps", "99"], "error: --steps: must be from 1 to 50"),
    (["--product", "x", "--preset", "nope"], "error: --preset: unknown style 'nope'; choose one of photo, anime"),
    (["--product", "x", "--aspect", "7:3"], "error: --aspect: must be one of 1:1, 4:5"),
    (["--product", "x", "--lora-scale", "9"], "error: --lora-scale: must be from 0.0 to 2.0"),
    (["--product", "x", "--image", "/no/such.png"], "error: --image: file not found: /no/such.png"),
    (["--product", "x", "--image", "{notimage}"],
     "error: --image: is not a readable image (AdGen reads PNG, JPEG, WebP, HEIC/HEIF, AVIF)"),
    (["--product", "x", "--image", "{dir}"], "error: --image: not a file"),
    (["--product", "x", "--size", "512x512", "--aspect", "1:1"], "error: argument --aspect: not allowed with"),
    (["--product", "bad\x07name"], "error: --product: must not contain control characters (found U+0007)"),
    (["--product", "x", "--copy", "y" * 501], "error: --copy: must be at most 500 characters (got 501)"),
    (["--product", "x", "--model", "no/such-repo"], "error: model: cannot download no/such-repo"),
    (["--product", "x", "--model", "/nonexistent/folder"], "error: model: /nonexistent/folder is not a diffusers"),
    (["--product", "x", "--out", "{file}"], "error: --out: {file} exists and is not a folder"),
    (["--product", "x", "--out", "/dev/null/sub"],
     "error: --out: cannot create /dev/null/sub: /dev/null is not a folder"),
    (["--product", "x", "--out", "{file}/a/b"], "error: --out: cannot create {file}/a/b: {file} is not a folder"),
    (["--bogus"], "error: the following arguments are required: --product"),
    (["--product", "x", "--copy", "a", "--text-style", "glitter"], "error: --text-style: unknown 'glitter'"),
    (["--product", "x", "--copy", "a", "--text-position", "left"], "error: --text-position: must be one of auto"),
    (["--product", "x", "--copy", "🍊"], "error: --copy: the copy font has no glyph"),
    (["--product", "x", "--copy", "가" * 500, "--subcopy", "나" * 400, "--size", "256x256"],
     "error: --copy: is too long to fit"),
    (["--product", "x", "--subcopy", "\x07"], "error: --subcopy: must not contain control characters"),
    # an unknown value is refused even where the flag would do nothing
    (["--product", "x", "--text-style", "glitter"],
     "error: --text-style: unknown 'glitter'; choose one of extrude_3d, gold, neon, outline\n"),
    (["--product", "x", "--text-position", "left"],
     "error: --text-position: must be one of auto, top, center, bottom (got 'left')\n"),
    (["--product", "x", "--background", "sky"],
     "error: --background: must be one of inpaint, t2i, packshot (got 'sky')\n"),
    (["--product", "x", "--copy", "a", "--background", "sky"],
     "error: --background: must be one of inpaint, t2i, packshot"),
    # --mask: the product photo's mask, some of it white
    (["--product", "x", "--mask", "{black}"], "error: --mask: needs --image: it is the mask of the product photo\n"),
    (["--product", "x", "--image", "{photo}", "--mask", "/no/such.png"], "error: --mask: file not found: /no/such.png"),
    (["--product", "x", "--image", "{photo}", "--mask", "{notimage}"],
     "error: --mask: is not a readable image (AdGen reads PNG, JPEG, WebP, HEIC/HEIF, AVIF)"),
    (["--product", "x", "--image", "{photo}", "--mask", "{black}"],
     "error: --mask: marks nothing as product, no usable mask: paint the product white on black\n"),
    (["--product", "x", "--image", "{photo}", "--mask", "{grey}"],  # 127: black once thresholded, as the cutout does
     "error: --mask: marks nothing as product, no usable mask: paint the product white on black\n"),
    (["--product", "x", "--image", "{photo}", "--mask", "{white}"],
     "error: --mask: marks the whole photo as product, no usable mask: paint the product white on black\n"),
    (["--product", "x", "--image", "{photo}", "--mask", "{wide}"],
     "error: --mask: is 240x200 but the --image photo is 200x240; the mask must have the photo's size (or be a "
     "scaled copy of it)\n"),
]


def exit_code(argv: list[str]) -> int:
    """`main`'s exit status, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as done:
        return done.code


@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, demo_cache, args, message):
    from test_compose import bottle

    names = {"notimage": tmp_path / "notes.png", "dir": tmp_path, "file": tmp_path / "taken"}
    names["notimage"].write_text("plain text")
    names["file"].write_text("x")
    names["photo"] = tmp_path / "bottle.png"
    bottle().save(names["photo"])  # 200x240
    for name, size, value in (("black", (200, 240), 0), ("grey", (200, 240), 127), ("white", (100, 120), 255),
                              ("wide", (240, 200), 255)):
        names[name] = tmp_path / f"{name}.png"
        Image.new("L", size, value).save(names[name])
    fill = {k: str(v) for k, v in names.items()}
    args, message = [a.format(**fill) for a in args], message.format(**fill)
    before = sorted(demo_cache.rglob("*"))
    out = tmp_path / "out"
    out_args = [] if "--out" in args else ["--out", str(out)]
    assert exit_code(["generate", *args, *out_args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(message), err
    assert "Traceback" not in err
    assert not out.exists() and sorted(demo_cache.rglob("*")) == before


def test_a_read_only_out_folder_is_refused_before_any_work(tmp_path, capsys, demo_cache):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    if os.access(locked, os.W_OK):
        pytest.skip("this user (root) writes to any folder, whatever its permissions")
    before = sorted(demo_cache.rglob("*"))
    refused = {locked: f"{locked} is not writable",
               locked / "new" / "sub": f"cannot create {locked}/new/sub: {locked} is not writable"}
    for out, says in refused.items():
        assert main(["generate", "--product", "x", "--out", str(out)]) == 2
        assert capsys.readouterr().err == f"error: --out: {says}\n"
    assert list(locked.iterdir()) == [] and sorted(demo_cache.rglob("*")) == before


PHOTO = "{photo}"


@pytest.mark.parametrize(
    ("args", "warning"),
    [
        (["--text-style", "gold"], "--text-style has no effect without --copy or --subcopy"),
        (["--text-position", "top"], "--text-position has no effect without --copy or --subcopy"),
        (["--image", PHOTO, "--text-style", "neon"], "--text-style has no effect without --copy or --subcopy"),
        (["--background", "t2i"], "--background has no effect without --image"),
        (["--copy", "a", "--background", "inpaint"], "--background has no effect without --image"),
        (["--copy", "a", "--text-style", "gold", "--text-position", "top"], None),
        (["--subcopy", "a", "--text-style", "gold"], None),
        (["--image", PHOTO, "--background", "t2i"], None),
        ([], None),
    ],
)
def test_a_flag_with_no_effect_is_a_one_line_warning(tmp_path, capsys, args, warning):
    from test_compose import bottle

    bottle().save(tmp_path / "bottle.png")
    args = [a.replace(PHOTO, str(tmp_path / "bottle.png")) for a in args]
    assert main(["generate", "--product", "x", "--size", "256x256", "--steps", "1", "--seed", "1",
                 "--out", str(tmp_path / "out"), *args]) == 0
    done = capsys.readouterr()
    assert done.err == (f"warning: {warning}\n" if warning else "")
    assert len(done.out.splitlines()) == 1 and json.loads(done.out)["seeds"] == [1]


def test_product_photo_and_korean_copy_make_the_three_step_ad(tmp_path, capsys):
    from test_compose import bottle

    bottle().save(tmp_path / "bottle.png")
    args = ["generate", "--product", "탄산수", "--image", str(tmp_path / "bottle.png"), "--copy", "여름 한정 30%",
            "--subcopy", "₩9,900", "--text-style", "gold", "--text-position", "top", "--size", "256x320",
            "--seed", "1", "--steps", "2", "--out", str(tmp_path / "out")]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["steps"][0]) == {"cutout", "mask", "background", "copy_layer"}
    assert Image.open(report["steps"][0]["cutout"]).size == (80, 180)
    assert Image.open(report["images"][0]).size == (256, 320)


def test_mask_replaces_the_automatic_cutout(tmp_path, capsys):
    from test_compose import bottle

    bottle().save(tmp_path / "bottle.png")  # the automatic mask is the whole bottle, (60, 30)-(140, 210)
    mask = Image.new("L", (200, 240), 0)
    mask.paste(200, (60, 30, 140, 120))  # the bottle's top half, light grey: product once thresholded
    mask.paste(100, (60, 120, 140, 210))  # its bottom half, darker than 128: backdrop
    mask.save(tmp_path / "mask.png")
    assert main(["generate", "--product", "x", "--image", str(tmp_path / "bottle.png"), "--mask",
                 str(tmp_path / "mask.png"), "--size", "256x256", "--steps", "1", "--seed", "1",
                 "--out", str(tmp_path / "out")]) == 0
    steps = json.loads(capsys.readouterr().out)["steps"][0]
    expected = mask.point(lambda a: 255 if a >= 128 else 0)
    assert np.array_equal(np.asarray(Image.open(steps["mask"])), np.asarray(expected))
    assert expected.getbbox() == (60, 30, 140, 120)
    assert Image.open(steps["cutout"]).size == (80, 90)


def test_preset_with_escaping_lora_path_exits_2(tmp_path, monkeypatch, capsys):
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "evil.yaml").write_text("label: E\nlabel_ko: 이\ndescription: d\ndescription_ko: 디\n"
                                       "prompt: '{subject}'\nlora: {file: ../../etc/evil.safetensors}\n")
    monkeypatch.setenv("ADGEN_PRESETS_DIR", str(presets))
    assert main(["generate", "--product", "x", "--preset", "evil", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {presets / 'evil.yaml'}: lora.file: must be a relative path inside the LoRA")
    assert not (tmp_path / "o").exists()


def test_presets_command_lists_styles(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["photo", "anime", "semi_realistic"]
    assert main(["presets", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["anime"]["lora"]["scale"] == 0.8


def test_demo_model_command_writes_a_loadable_pipeline(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo-model", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == str(out)
    pipe = ZImagePipeline.from_pretrained(out)
    assert pipe("x", height=256, width=256, num_inference_steps=1, guidance_scale=0.0).images[0].size == (256, 256)
    assert (out / "loras" / "anime.safetensors").is_file()
    assert main(["demo-model", "--out", str(out)]) == 2  # never over an existing model
    assert "must be a new or empty folder" in capsys.readouterr().err


def test_download_offline_says_how_to_get_the_weights(capsys):
    assert main(["download"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model: cannot download Tongyi-MAI/Z-Image-Turbo") and "--model PATH" in err


def test_a_broken_cache_folder_still_writes_the_ad_to_out(tmp_path, capsys, demo_cache, monkeypatch, caplog):
    """The GPU work is done: a cache the disk refuses is one warning line, and the ad and its steps reach --out."""
    from test_compose import bottle

    cache = tmp_path / "cache"
    cache.mkdir()
    for model in demo_cache.glob("demo-model-*"):
        (cache / model.name).symlink_to(model)
    (cache / "results").write_bytes(b"")  # a file where the result cache's folder should be
    monkeypatch.setenv("ADGEN_CACHE_DIR", str(cache))
    bottle().save(tmp_path / "bottle.png")
    assert main(["generate", "--product", "x", "--image", str(tmp_path / "bottle.png"), "--copy", "여름",
                 "--size", "256x256", "--steps", "1", "--seed", "1", "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert Image.open(report["images"][0]).size == (256, 256) and len(report["steps"][0]) == 4
    assert "Traceback" not in captured.err
    assert [r.getMessage() for r in caplog.records if r.name == "adgen.cache"] == [  # stderr, without pytest
        f"result cache: could not store an entry under {cache / 'results'} (Not a directory); results are served "
        "without caching"]
