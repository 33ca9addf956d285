"""The Gradio shell: build_demo without launching, handlers called directly, and the API over HTTP."""

import socket
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client
from PIL import Image

from adgen.engine import Engine
from adgen.metadata import read_params

import app
from test_metadata import GOOD, changed, raw_png

FORM = dict(name="탄산수", category="drink", features="lemon, zero sugar", audience="", scene="", colors="",
            copy="", photo=None, style="photo", lora_scale=1.0, focus=True, prompt="", seed=11,
            random_seed=False, width=256, height=256, steps=2, count=2, subcopy="", text_style="extrude_3d",
            text_position="auto", background="inpaint", place_x=0.5, place_y=0.6, place_scale=0.45, mask=None,
            auto_prompt="", history=[])


class FakeProgress:
    def __init__(self):
        self.calls = []

    def __call__(self, value, desc=None):
        self.calls.append(value)


@pytest.fixture
def handlers(engine, tmp_path):
    demo = app.build_demo(engine, outputs=tmp_path / "outputs")
    assert isinstance(demo, gr.Blocks)
    return demo.handlers


def generate(handlers, **changes):
    form = {**FORM, **changes}
    return handlers.generate(**form, progress=FakeProgress())


def test_build_demo_does_not_load_the_model(engine, tmp_path):
    app.build_demo(engine, outputs=tmp_path)
    assert engine.loads == 0 and engine.state == "unloaded"


def test_generate_returns_png_gallery_newest_request_first(handlers):
    gallery, history, info, last_seed, download, *steps = generate(handlers)
    assert steps == [None, None, None]  # no photo, no copy: a plain image, no ad steps
    assert [caption for _, caption in gallery] == ["seed 11 · 256x256", "seed 12 · 256x256"]
    assert last_seed == 11 and "**seed** 11" in info and "demo model (random weights)" in info
    assert Image.open(download).format == "PNG" and read_params(Path(download).read_bytes())["seed"] == 11
    gallery, history, *_ = generate(handlers, seed=20, count=1, history=history)
    assert [caption for _, caption in gallery] == ["seed 20 · 256x256", "seed 11 · 256x256", "seed 12 · 256x256"]
    gallery, history, info, *_ = generate(handlers, seed=20, count=1, history=history)
    assert "from the cache" in info and gallery[0][1].endswith("· cache")


def test_progress_moves_per_step(handlers):
    progress = FakeProgress()
    handlers.generate(**{**FORM, "count": 1, "steps": 3}, progress=progress)
    assert progress.calls[-3:] == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"name": ""}, "product name: must not be empty"),
        ({"width": 1000}, "width: must be a multiple of 16"),
        ({"count": 5}, "image count: must be from 1 to 4"),
        ({"style": "nope"}, "preset: unknown style 'nope'"),
        ({"seed": -5}, "seed: must be from 0 to 4294967295"),
        ({"photo": "/no/such/file.png"}, "product photo: file not found"),
    ],
)
def test_bad_input_is_a_clear_gradio_error(handlers, engine, changes, says):
    with pytest.raises(gr.Error) as err:
        generate(handlers, **changes)
    assert says in str(err.value)
    assert generate(handlers)[0]  # and the app keeps serving


def test_a_corrupt_upload_is_refused(handlers, tmp_path):
    bad = tmp_path / "photo.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(gr.Error, match="product photo: is not a readable PNG"):
        generate(handlers, photo=str(bad))


def test_the_outputs_folder_is_capped_oldest_first(handlers, monkeypatch, tmp_path):
    monkeypatch.setenv("ADGEN_CACHE_MAX_MB", "1")
    outputs, cap, written = tmp_path / "outputs", 1024 * 1024, 0
    for seed in range(4):  # a 384x384 noise PNG is ~0.4 MB: four overflow the cap
        download = generate(handlers, seed=seed, count=1, width=384, height=384)[4]
        written += Path(download).stat().st_size
        assert Path(download).exists()  # the image just made is never the one evicted
    assert written > cap
    assert sum(p.stat().st_size for p in outputs.iterdir()) <= cap
    assert not any(outputs.glob("adgen-0-*"))  # the least recently used went first
    again = generate(handlers, seed=3, count=1, width=384, height=384)  # a cache hit refreshes its file
    assert "from the cache" in again[2] and Path(again[4]).exists()


def test_prompt_preview_follows_the_form_but_keeps_a_users_edit(handlers):
    args = ["Cola", "", "", "", "", "", "", "photo", True]
    text, auto = handlers.preview("", "", *args)
    assert text == auto and text.startswith("Professional commercial product photograph of Cola")
    text2, auto2 = handlers.preview(text, auto, "Cola", "", "", "", "", "", "", "anime", True)
    assert text2 == auto2 and text2.startswith("Anime style")
    mine = "my own prompt"
    assert handlers.preview(mine, auto2, "Cola", "", "", "", "", "", "", "photo", False)[0] == mine


def test_an_edited_prompt_overrides_and_an_unedited_one_does_not(handlers):
    _, _, info, *_ = generate(handlers, prompt="a custom prompt", auto_prompt="the built one", count=1)
    assert "**prompt:** a custom prompt" in info
    _, _, info, *_ = generate(handlers, prompt="the built one", auto_prompt="the built one", count=1)
    assert "**prompt:** Professional commercial product photograph of 탄산수" in info


def test_load_from_image_restores_every_setting(handlers):
    download = generate(handlers, style="anime", lora_scale=0.6, focus=False, width=512, height=640, count=1,
                        steps=3, copy="여름 한정!", subcopy="₩9,900", text_style="neon", text_position="bottom",
                        background="t2i", place_x=0.4, place_y=0.7, place_scale=0.3)[4]
    values = handlers.load_from_image(download)
    assert values[:7] == ["탄산수", "drink", "lemon, zero sugar", "", "", "", "여름 한정!"]
    style, scale, focus, prompt, auto, seed, random_seed, aspect, width, height, steps = values[7:18]
    assert (style, scale, focus, seed, random_seed, aspect, width, height, steps) == (
        "anime", 0.6, False, 11, False, "custom", 512, 640, 3)
    assert prompt == auto and prompt.startswith("Anime style")
    assert values[18:] == ["₩9,900", "neon", "bottom", "t2i", 0.4, 0.7, 0.3]
    plain = generate(handlers, count=1, seed=12)[4]
    assert len(handlers.load_from_image(plain)) == 25


def test_load_from_a_foreign_png_is_a_clear_error(handlers, tmp_path):
    path = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(path)
    with pytest.raises(gr.Error, match="has no AdGen parameters"):
        handlers.load_from_image(str(path))


@pytest.mark.parametrize(
    ("chunk", "says"),
    [
        ("[]", "image: its AdGen parameters are damaged: must be a JSON object (got [])"),
        ({"adgen": 1}, "image: its AdGen parameters are damaged: product is missing"),
        (changed("seed", "abc"), "image: its AdGen parameters are damaged: seed must be a whole number (got 'abc')"),
        (changed("product", 5), "image: its AdGen parameters are damaged: product must be an object (got 5)"),
        ({**GOOD, "ad": {"subcopy": ""}}, "image: its AdGen parameters are damaged: ad.text_style is missing"),
    ],
)
def test_load_from_a_png_with_malformed_parameters_is_a_clear_error(handlers, tmp_path, chunk, says):
    path = tmp_path / "odd.png"
    path.write_bytes(raw_png(chunk))
    with pytest.raises(gr.Error) as err:
        handlers.load_from_image(str(path))
    assert err.value.message == says


def test_style_info_shows_the_lora_slider_only_for_lora_styles(handlers):
    text, slider = handlers.style_info("anime")
    assert "LoRA default scale 0.8" in text and slider["visible"] is True and slider["value"] == 0.8
    assert handlers.style_info("photo")[1]["visible"] is False


def test_vram_panel_in_cpu_mode_and_unload(handlers):
    generate(handlers, count=1)
    text = handlers.vram()
    assert "CPU mode" in text and "process RSS" in text and "system RAM" in text
    assert "model: **ready** · demo model (random weights) · cpu · float32" in text
    assert "model: **unloaded**" in handlers.unload()
    assert "CPU mode" in handlers.free_memory()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(demo_source, cache, tmp_path):
    """The app launched on a free port (in this process), its URL, then closed."""
    engine = Engine(demo_source, cache=cache, device="cpu")
    demo = app.build_demo(engine, outputs=tmp_path / "outputs")
    port = free_port()
    demo.queue(default_concurrency_limit=1).launch(server_name="127.0.0.1", server_port=port,
                                                   prevent_thread_lock=True, quiet=True,
                                                   allowed_paths=[str(tmp_path / "outputs")])
    yield f"http://127.0.0.1:{port}/", engine
    demo.close()


def test_gradio_client_gets_an_image_from_generate(served):
    url, engine = served
    client = Client(url, verbose=False)
    form = {k: v for k, v in FORM.items() if k not in ("auto_prompt", "history")}
    gallery, info, download, cutout, background, copy = client.predict(
        **{**form, "name": "Aurora earbuds", "style": "anime", "lora_scale": 0.8, "seed": 3, "count": 1},
        api_name="/generate")
    assert Image.open(gallery[0]["image"]).size == (256, 256) and cutout is None
    assert read_params(Path(download).read_bytes())["seed"] == 3 and engine.runs == 1
    with pytest.raises(Exception, match="product name: must not be empty"):
        client.predict(**{**form, "name": ""}, api_name="/generate")


def test_stop_in_one_tab_never_ends_another_tabs_job(handlers, engine):
    """Two sessions on one page: B presses Stop while A's job runs; A's job finishes, B's next one works."""
    tab_a, tab_b = gr.Request(session_hash="tab-a"), gr.Request(session_hash="tab-b")
    pressed = []

    class StopFromOtherTab(FakeProgress):
        def __call__(self, value, desc=None):
            super().__call__(value, desc)
            if value == (2, 8) and not pressed:
                pressed.append(handlers.stop(request=tab_b))  # another tab's Stop, mid-run

    done = handlers.generate(**{**FORM, "steps": 8, "count": 1, "seed": 11}, request=tab_a,
                             progress=StopFromOtherTab())
    assert pressed and done[3] == 11 and engine.runs == 1
    assert handlers.generate(**{**FORM, "steps": 2, "count": 1, "seed": 12}, request=tab_b,
                             progress=FakeProgress())[3] == 12


def test_closing_a_tab_ends_its_job(handlers, engine):
    tab = gr.Request(session_hash="tab-c")

    class CloseAtStepTwo(FakeProgress):
        def __call__(self, value, desc=None):
            super().__call__(value, desc)
            if value == (2, 8):
                handlers.session_closed(request=tab)

    with pytest.raises(gr.Error, match="stopped because the page was closed after step 2 of 8"):
        handlers.generate(**{**FORM, "steps": 8, "count": 1}, request=tab, progress=CloseAtStepTwo())


def test_stop_ends_the_run_within_a_step_and_the_next_generate_works(handlers, engine):
    class StopAtFirstStep(FakeProgress):
        def __call__(self, value, desc=None):
            super().__call__(value, desc)
            if value == (1, 8):
                handlers.stop()

    progress = StopAtFirstStep()
    with pytest.raises(gr.Error, match="generation stopped by the user after step 1 of 8"):
        handlers.generate(**{**FORM, "steps": 8, "count": 1}, progress=progress)
    assert progress.calls[-1] == (1, 8)
    assert generate(handlers, seed=99, count=1)[3] == 99


def test_a_photo_and_korean_copy_make_the_ad_with_its_steps_shown(handlers, engine, tmp_path):
    from test_compose import bottle

    bottle().save(tmp_path / "bottle.png")
    out = generate(handlers, photo=str(tmp_path / "bottle.png"), copy="여름 한정 30%", subcopy="₩9,900", count=1,
                   text_style="gold", text_position="top", width=320, height=400)
    gallery, history, info, seed, download, cutout, background, copy = out
    assert Image.open(cutout).size == (80, 180) and Image.open(background).size == (320, 400)
    assert Image.open(copy).mode == "RGBA" and "steps: cutout (new), background (new), copy layer (new)" in info
    runs = engine.runs
    again = generate(handlers, photo=str(tmp_path / "bottle.png"), copy="새 카피", subcopy="", count=1,
                     text_style="neon", text_position="top", width=320, height=400, history=history)
    assert engine.runs == runs and "background (kept)" in again[2] and "copy layer (new)" in again[2]
    preview, mask = handlers.photo_changed(str(tmp_path / "bottle.png"))
    assert preview.size == mask["composite"].size == (200, 240)
    edited = mask["composite"].copy()
    edited.paste((0, 0, 0), (0, 0, 200, 120))  # the user paints the top half out
    third = generate(handlers, photo=str(tmp_path / "bottle.png"), copy="새 카피", count=1, text_style="neon",
                     text_position="top", width=320, height=400, mask={"composite": edited})
    assert Image.open(third[5]).size == (80, 90)


def test_a_photo_without_a_plain_backdrop_asks_for_a_painted_mask(handlers, tmp_path):
    import numpy as np

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "n.png")
    assert handlers.photo_changed(str(tmp_path / "n.png"))[1] is None
    (tmp_path / "fake.png").write_text("not an image")
    with pytest.raises(gr.Error, match="product photo: is not a readable PNG"):
        handlers.photo_changed(str(tmp_path / "fake.png"))
    with pytest.raises(gr.Error, match="product photo: no plain backdrop to remove"):
        generate(handlers, photo=str(tmp_path / "n.png"))
