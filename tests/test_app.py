"""The Gradio shell: build_demo without launching, handlers called with one typed form, the API over HTTP."""

import dataclasses
import datetime
import io
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from adgen.engine import Engine
from adgen.errors import InputError
from adgen.form import AdForm
from adgen.i18n import load_locales
from adgen.metadata import read_params
from adgen.page import admin_allowed, mask_png

import app
from conftest import ROOT
from test_metadata import GOOD, changed, raw_png

FORM = AdForm(name="탄산수", category="drink", features="lemon, zero sugar", seed=11, width=256, height=256, steps=2,
              count=2)
KOREAN = gr.Request(headers={"accept-language": "ko-KR,ko;q=0.9,en;q=0.8"}, session_hash="ko-tab")


class FakeProgress:
    def __init__(self):
        self.calls, self.descs = [], []

    def __call__(self, value, desc=None):
        self.calls.append(value)
        self.descs.append(desc)


class StopFrom(FakeProgress):
    """Progress that presses `tab`'s Stop once, when `when(value)` first holds; each press's count goes in `pressed`."""

    def __init__(self, handlers, tab, when, pressed: list):
        super().__init__()
        self.handlers, self.tab, self.when, self.pressed = handlers, tab, when, pressed

    def __call__(self, value, desc=None):
        super().__call__(value, desc)
        if self.when(value) and not self.pressed:
            self.pressed.append(self.handlers.stop(request=self.tab))


@pytest.fixture
def handlers(engine, tmp_path):
    demo = app.build_demo(engine, outputs=tmp_path / "outputs")
    assert isinstance(demo, gr.Blocks)
    return demo.handlers


def generate(handlers, history=None, request=None, progress=None, **changes) -> dict:
    return handlers.generate(dataclasses.replace(FORM, **changes), history, request, progress or FakeProgress())


def test_build_demo_does_not_load_the_model(engine, tmp_path):
    app.build_demo(engine, outputs=tmp_path)
    assert engine.loads == 0 and engine.state == "unloaded"


def test_generate_shows_the_image_whole_and_keeps_the_history_newest_first(handlers):
    shown = generate(handlers)
    assert shown["cutout"] is None and shown["message"] == ""  # no photo, no copy: a plain image
    assert [caption for _, caption in shown["gallery"]] == ["seed 11 · 256x256", "seed 12 · 256x256"]
    assert shown["seed"] == 11 and "**seed** 11" in shown["info"] and "demo model (random weights)" in shown["info"]
    assert read_params(Path(shown["image"]).read_bytes())["seed"] == 11
    # the download is named after the product and the date (like the campaign ZIP), not adgen-<seed>-<hash>.png
    download = Path(shown["download"])
    assert download.name == f"탄산수-{datetime.date.today().isoformat()}-11.png"
    assert download.read_bytes() == Path(shown["image"]).read_bytes()
    assert Path(handlers.select(shown["history"], 1)["download"]).name.endswith("-12.png")  # read from the PNG
    assert shown["redo"] == [False, False, False]  # a plain image: no step to redo
    again = generate(handlers, history=shown["history"], seed=20, count=1)
    assert [c for _, c in again["gallery"]] == ["seed 20 · 256x256", "seed 11 · 256x256", "seed 12 · 256x256"]
    cached = generate(handlers, history=again["history"], seed=20, count=1)
    assert "from the cache" in cached["info"] and cached["gallery"][0][1].endswith("· cache")
    json.dumps(cached["history"])  # the browser keeps it


def test_progress_moves_per_step(handlers):
    progress = FakeProgress()
    generate(handlers, progress=progress, count=2, steps=3, request=KOREAN)
    assert progress.calls[-6:] == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1.0])
    assert progress.descs[-3:] == ["이미지 2/2 · 단계 1/3", "이미지 2/2 · 단계 2/3", "이미지 2/2 · 단계 3/3"]


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
def test_bad_input_is_a_clear_message_and_earlier_results_stay(handlers, engine, changes, says):
    shown = generate(handlers, **changes)
    assert set(shown) == {"message"} and says in shown["message"]  # nothing else is replaced or hidden
    assert generate(handlers)["image"]  # and the app keeps serving


def test_errors_speak_the_browsers_language(handlers):
    shown = generate(handlers, request=KOREAN, name="")
    assert "제품명" in shown["message"] and "product name" not in shown["message"]


def test_the_measured_speed_comes_from_the_model_work_alone(handlers):
    # a waiting tab's estimate uses seconds per image measured on earlier jobs: the first job waited for the model's
    # load, and a cache hit took no model time
    generate(handlers, count=1, seed=5)
    assert handlers.seconds_per_image is None  # the model loaded during this job
    generate(handlers, count=1)
    measured = handlers.seconds_per_image
    assert measured is not None and measured > 0
    again = generate(handlers, count=1)
    assert "from the cache" in again["info"] and handlers.seconds_per_image == measured


def test_two_images_with_one_download_name_keep_their_own_files(handlers):
    # another style, same product, seed and day: one name, two images; one tab's download must stay its image even
    # after another tab makes the other (Gradio copies the file only after the event returns)
    first = generate(handlers, count=1)
    second = generate(handlers, count=1, style="anime")
    assert Path(first["download"]).name == Path(second["download"]).name
    assert Path(first["image"]).read_bytes() != Path(second["image"]).read_bytes()
    assert Path(first["download"]).read_bytes() == Path(first["image"]).read_bytes()
    assert Path(second["download"]).read_bytes() == Path(second["image"]).read_bytes()
    assert generate(handlers, count=1)["download"] == first["download"]  # the same image again: the same link


def test_a_corrupt_upload_is_refused(handlers, tmp_path):
    bad = tmp_path / "photo.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    message = generate(handlers, photo=str(bad))["message"]
    assert message == ("⚠ product photo: is not a readable image "  # no class or file names
                       "(AdGen reads PNG, JPEG, WebP, HEIC/HEIF, AVIF)")


def test_the_outputs_folder_is_capped_oldest_first(handlers, monkeypatch, tmp_path):
    monkeypatch.setenv("ADGEN_CACHE_MAX_MB", "1")
    outputs, cap, written = tmp_path / "outputs", 1024 * 1024, 0
    for seed in range(4):  # a 384x384 noise PNG is ~0.4 MB: four overflow the cap
        download = generate(handlers, seed=seed, count=1, width=384, height=384)["download"]
        written += Path(download).stat().st_size
        assert Path(download).exists()  # the image just made is never the one evicted
    assert written > cap
    assert sum(p.stat().st_size for p in outputs.iterdir()) <= cap
    assert not any(outputs.glob("adgen-0-*"))  # the least recently used went first
    again = generate(handlers, seed=3, count=1, width=384, height=384)  # a cache hit refreshes its file
    assert "from the cache" in again["info"] and Path(again["download"]).exists()


def test_prompt_preview_is_the_prompt_used_and_keeps_a_users_edit(handlers):
    text, auto = handlers.preview(AdForm(name="Cola"), "", "")
    assert text == auto and text.startswith("Professional commercial product photograph of Cola")
    text2, auto2 = handlers.preview(AdForm(name="Cola", style="anime"), text, auto)
    assert text2 == auto2 and text2.startswith("Anime style")
    assert handlers.preview(AdForm(name="Cola"), "my own prompt", auto2)[0] == "my own prompt"
    ad, _ = handlers.preview(AdForm(name="Cola", copy="Taste the summer"), "", "")
    assert "Leave calm, uncluttered space for a headline." in ad and "headline reads" not in ad
    shown = generate(handlers, copy="Taste the summer", count=1)
    assert f"as you typed them): {handlers.preview(dataclasses.replace(FORM, copy='Taste the summer'), '', '')[0]}" \
        in shown["info"]  # what the preview showed is what ran
    first, _ = handlers.preview(AdForm(), "", "")
    assert first  # never empty on a first visit


def test_an_edited_prompt_overrides_and_an_unedited_one_does_not(handlers):
    info = generate(handlers, prompt="a custom prompt", auto_prompt="the built one", count=1)["info"]
    assert ("**model prompt** (as the model was given it: AdGen writes it in English, with your own words as you "
            "typed them): a custom prompt") in info
    info = generate(handlers, prompt="the built one", auto_prompt="the built one", count=1)["info"]
    assert "as you typed them): Professional commercial product photograph of 탄산수" in info


def test_load_from_image_restores_every_setting_and_says_what(handlers):
    download = generate(handlers, style="anime", lora_scale=0.6, product_focus=False, width=512, height=640,
                        count=1, steps=3, copy="여름 한정!", subcopy="₩9,900", text_style="neon",
                        text_position="bottom", background="t2i", place_x=0.4, place_y=0.7,
                        place_scale=0.3)["download"]
    values = handlers.load_from_image(download)
    assert {k: values[k] for k in ("name", "category", "features", "copy", "style", "lora_scale", "product_focus",
                                   "seed", "random_seed", "aspect", "width", "height", "steps")} == {
        "name": "탄산수", "category": "drink", "features": "lemon, zero sugar", "copy": "여름 한정!",
        "style": "anime", "lora_scale": 0.6, "product_focus": False, "seed": 11, "random_seed": False,
        "aspect": "custom", "width": 512, "height": 640, "steps": 3}
    assert values["prompt"] == values["auto_prompt"] and values["prompt"].startswith("Anime style")
    assert (values["subcopy"], values["text_style"], values["text_position"], values["background"],
            values["place_x"], values["place_y"], values["place_scale"]) == ("₩9,900", "neon", "bottom", "t2i", 0.4,
                                                                             0.7, 0.3)
    assert "탄산수" in values["message"] and "seed 11" in values["message"]
    assert "upload the product photo again" not in values["message"]


def test_load_from_an_ad_with_a_photo_asks_for_the_photo_again(handlers, tmp_path):
    from test_compose import bottle

    bottle().save(tmp_path / "bottle.png")
    download = generate(handlers, photo=str(tmp_path / "bottle.png"), copy="여름", count=1)["download"]
    assert "upload the product photo again" in handlers.load_from_image(download)["message"]
    assert "제품 사진" in handlers.load_from_image(download, KOREAN)["message"]


def test_load_from_a_foreign_png_is_a_clear_message(handlers, tmp_path):
    path = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(path)
    assert "has no AdGen parameters" in handlers.load_from_image(str(path))["message"]


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
def test_load_from_a_png_with_malformed_parameters_is_a_clear_message(handlers, tmp_path, chunk, says):
    path = tmp_path / "odd.png"
    path.write_bytes(raw_png(chunk))
    assert handlers.load_from_image(str(path)) == {"message": "⚠ " + says}


def test_style_info_shows_the_lora_slider_only_for_lora_styles(handlers):
    text, slider = handlers.style_info("anime")
    assert "Anime" in text and slider["visible"] is True and slider["value"] == 0.8
    assert handlers.style_info("photo")[1]["visible"] is False


def test_the_status_line_is_one_line_and_the_details_fold(engine, tmp_path):
    handlers = app.build_demo(engine, outputs=tmp_path / "outputs", admin=True).handlers  # a local launch
    generate(handlers, count=1)
    line, details = handlers.status()
    assert line.splitlines()[0].startswith("● ready · demo model (random weights) · CPU · float32 · RAM")
    assert "images are noise. For real ads: `python -m adgen download` and a CUDA GPU" in line
    assert "CPU mode" in details and "process RSS" in details and "system RAM" in details
    assert "model: **not loaded**" in handlers.unload() and engine.state == "unloaded"
    assert handlers.status(request=KOREAN)[0].startswith("○ 불러오지 않음 · ")
    assert "이미지는 노이즈입니다" in handlers.status(request=KOREAN)[0]
    korean = handlers.status(request=KOREAN)[1]  # the folded details speak Korean too
    assert "CPU 모드" in korean and "시스템 RAM" in korean and "모델: **불러오지 않음**" in korean


def test_a_public_page_has_no_admin_controls_or_endpoints(engine, tmp_path):
    public = app.build_demo(engine, outputs=tmp_path, admin=False)
    names = {dep.get("api_name") for dep in public.config["dependencies"]}
    assert not {"unload", "memory_mode"} & names
    public_names = {dep.get("api_name") for dep in public.config["dependencies"]
                    if dep.get("api_visibility") == "public"}
    assert public_names == {"generate", "write"}  # the typed endpoints; the UI's own events are private
    public.handlers.unload()
    assert public.handlers.set_memory_mode("gpu") == "admin controls are available on a local launch only"


@pytest.mark.parametrize(("server", "share", "env", "admin"), [
    ("127.0.0.1", False, {}, True), ("localhost", False, {}, True), ("::1", False, {}, True),
    ("0.0.0.0", False, {}, False), ("127.0.0.1", True, {}, False), ("127.0.0.1", False, {"SPACE_ID": "a/b"}, False),
    ("0.0.0.0", False, {"ADGEN_ADMIN": "1"}, True), ("127.0.0.1", False, {"ADGEN_ADMIN": "0"}, False),
])
def test_admin_only_on_a_local_launch(server, share, env, admin):
    assert admin_allowed(server, share, env) is admin


def test_redo_buttons_never_switch_random_seed_off(engine, tmp_path):
    """Redo copy / New background / Redo cutout pass their seed for one run; "Random seed" stays as set."""
    demo = app.build_demo(engine, outputs=tmp_path)
    ids = {c.elem_id: c._id for c in demo.blocks.values() if getattr(c, "elem_id", None)}
    redo = {ids["redo-copy"], ids["redo-cutout"], ids["new-background"], ids["generate"]}
    writers = [dep for dep in demo.config["dependencies"] if ids["random-seed"] in dep["outputs"]]
    assert writers and not any(target[0] in redo for dep in writers for target in dep["targets"])


def test_history_from_the_browser_never_names_a_file_outside_outputs(handlers, tmp_path):
    real = generate(handlers, count=1)["history"]
    tampered = [
        {**real[0], "path": "/etc/passwd"},
        {**real[0], "path": str(tmp_path / "outputs" / ".." / "secret.png")},
        {**real[0], "path": str(tmp_path / "outputs" / "adgen-1-000000000000.png")},  # well named, not ours
        {**real[0], "steps": {"cutout": "/etc/hostname"}},
        "junk", 5, None,
        real[0],
    ]
    restored = handlers.restore_history(tampered)
    assert [e["path"] for e in restored["history"]] == [real[0]["path"], real[0]["path"]]
    assert restored["history"][0]["steps"] == {}
    assert all(Path(p).parent == tmp_path / "outputs" for p, _ in restored["gallery"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclasses.dataclass
class Served:
    url: str
    engine: Engine
    demo: gr.Blocks
    gradio: Path  # Gradio's folder: its copies of what the page shows, and the uploads


@pytest.fixture(scope="module")
def served(demo_cache, tmp_path_factory):
    """The app launched once for this module on a free port (in this process), with its own Gradio folder and a
    small session capacity (8), then closed."""
    from adgen.cache import ResultCache
    from adgen.models import resolve_model

    folder = tmp_path_factory.mktemp("served")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ADGEN_CACHE_DIR", str(demo_cache))
        env.setenv("HF_HUB_OFFLINE", "1")
        env.setenv("GRADIO_TEMP_DIR", str(folder / "gradio"))  # read when components are made: before build_demo
        env.setenv("ADGEN_MAX_SESSIONS", "8")
        engine = Engine(resolve_model("demo", cache=demo_cache), cache=ResultCache(folder / "results"), device="cpu")
        demo = app.build_demo(engine, outputs=folder / "outputs", admin=False)
        port = free_port()
        app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                   allowed_paths=[str(folder / "outputs")])
        yield Served(f"http://127.0.0.1:{port}/", engine, demo, folder / "gradio")
        demo.close()


def test_the_api_needs_only_a_name(served, tmp_path, short_writer):
    url, engine, runs = served.url, served.engine, served.engine.runs
    client = Client(url, verbose=False)
    summary = client.predict(name="Aurora earbuds", api_name="/generate")
    assert len(summary["images"]) == 1 and summary["demo"] is True and engine.runs == runs + 1
    assert Image.open(summary["images"][0]).size == (1024, 1024)
    info = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert set(info) == {"/generate", "/write"}  # no admin or UI-internal endpoints on a public page
    params = {p["parameter_name"]: p for p in info["/generate"]["parameters"]}
    assert [n for n, p in params.items() if not p["parameter_has_default"]] == ["name"]
    assert all("integer" in json.dumps(params[n]["type"]) for n in ("seed", "width", "height", "steps", "count"))
    # plain HTTP, as curl sends it (docs/rest.md): a short array takes the defaults for the values left out
    said = call_raw(url, ["Aurora earbuds"])
    assert said.startswith("event: complete") or "\nevent: complete" in said, said
    done = json.loads(said.split("event: complete\ndata: ", 1)[1].splitlines()[0])[0]
    assert done["prompt"] == summary["prompt"] and Image.open(done["images"][0]).size == (1024, 1024)
    assert engine.runs == runs + 2
    for headers, says in (({}, "product name: must not be empty"),
                          ({"Accept-Language": "ko"}, "제품명: 비워 둘 수 없습니다")):
        said = call_raw(url, [], headers)  # a required value left out: named, in the caller's language
        assert said.startswith("event: error") and json.loads(said.split("data: ", 1)[1].splitlines()[0])["error"] \
            == says, said
    from test_compose import bottle

    bottle().save(tmp_path / "bottle.png")
    bottle().resize((50, 60)).save(tmp_path / "small.png")  # a 20x45 product enlarged ~4x: the summary says so
    ad = client.predict(name="Aurora earbuds", photo=handle_file(str(tmp_path / "small.png")), copy="Hear more",
                        width=320, height=400, steps=2, seed=3, api_name="/generate")
    assert set(ad["steps"][0]) == {"cutout", "mask", "background", "copy_layer"} and ad["seeds"] == [3]
    assert summary["warnings"] == [] and ad["warnings"][0].startswith("the product photo is 50x60 px and is enlarged")
    with pytest.raises(Exception, match="product name: must not be empty"):
        client.predict(name="", api_name="/generate")
    for photo in ("/etc/hostname", {"path": str(tmp_path / "bottle.png"), "meta": {"_type": "gradio.FileData"}}):
        # posted by hand, as any HTTP client can: a path on the server is never read as the product photo
        said = call_raw(url, ["x", "", "", "", "", "", "ad copy", "", photo])
        assert said.startswith("event: error") and "images" not in said, said
    assert engine.runs == runs + 3
    written = client.predict(name="제주 감귤 탄산수", features="무설탕", kind="copy", n=2, seed=5, api_name="/write")
    assert (written["job"], written["texts"], written["usable"], written["demo"], written["seed"]) == (
        "copy", [], False, True, 5) and written["reason"].startswith("could not write usable text")  # demo: random
    with pytest.raises(Exception, match="작성 작업: "):  # errors in the caller's language, as for /generate
        Client(url, verbose=False, headers={"Accept-Language": "ko"}).predict(name="x", kind="poem", api_name="/write")
    for photo in ("/etc/hostname", {"path": "/etc/passwd"}, str(tmp_path / "bottle.png")):  # what the check says
        with pytest.raises(InputError, match="product photo: must be a file uploaded with the request"):
            app._path_of(photo)


def call_raw(url: str, data: list, headers: dict | None = None) -> str:
    """POST /gradio_api/call/generate and read its event stream to the end."""
    import urllib.request

    post = urllib.request.Request(f"{url}gradio_api/call/generate", data=json.dumps({"data": data}).encode(),
                                  headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(post, timeout=30) as response:
        event = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/generate/{event}", timeout=60) as response:
        return response.read().decode()


def test_stop_in_one_tab_never_ends_another_tabs_job(handlers, engine):
    """Two tabs, each with a job: B's runs (mid-denoise) while A's waits for the GPU. A's Stop ends A's job only;
    B's finishes, with its own seed. A Stop from a tab with no job ends nothing."""
    import threading

    tab_a, tab_b, tab_c = (gr.Request(session_hash=f"tab-{t}") for t in "abc")
    pressed, shown, a_open = [], {}, threading.Event()

    def a_waits():  # A's job opens, then waits behind B's on the one GPU
        shown["a"] = generate(handlers, steps=2, count=1, seed=21, request=tab_a)

    class AStopsMidB(FakeProgress):
        def __call__(self, value, desc=None):
            super().__call__(value, desc)
            if value == 2 / 4 and not pressed:
                pressed.append(handlers.stop(request=tab_c))  # no job in tab C: nothing stops
                threading.Thread(target=a_waits).start()
                while not engine.jobs.running("tab-a"):  # until A's job is open (it waits for B's lock)
                    a_open.wait(0.005)
                assert {j.session for j in engine.jobs.running()} == {"tab-a", "tab-b"}
                pressed.append(handlers.stop(request=tab_a))

    b_done = generate(handlers, steps=4, count=1, seed=11, request=tab_b, progress=AStopsMidB())
    while "a" not in shown:
        a_open.wait(0.005)
    assert pressed == [0, 1]  # tab C's Stop found no job; tab A's found its own one, not B's
    assert b_done["seed"] == 11 and "image" in b_done and engine.runs == 1  # B's job ran to its end
    assert shown["a"] == {"message": "stopped (generation stopped by the user after step 0 "
                                     "of 2)"}  # A's own job, before its first step (A shows no results: none "kept")


def test_closing_a_tab_ends_its_job(handlers, engine):
    tab = gr.Request(session_hash="tab-c")

    class CloseAtStepTwo(FakeProgress):
        def __call__(self, value, desc=None):
            super().__call__(value, desc)
            if value == 2 / 8:
                handlers.session_closed(request=tab)

    shown = generate(handlers, steps=8, count=1, request=tab, progress=CloseAtStepTwo())
    assert "stopped because the page was closed after step 2 of 8" in shown["message"]


def test_the_stop_button_says_so_beside_generate(handlers):
    said = handlers.stop_ui("generate", KOREAN)  # Gradio drops the cancelled event's own reply
    go, stop = said["buttons"][0], said["buttons"][-2]
    assert "중지" in said["message"] and go["visible"] is True and stop["visible"] is False
    assert handlers.stop_ui("write_copy", KOREAN)["message"] == "문구 쓰기를 중지했습니다. 문구 칸은 그대로입니다"
    assert handlers.stop_ui("enhance")["message"] == "prompt enhancing stopped: the prompt box is unchanged"


def test_stop_keeps_earlier_results_and_the_next_generate_works(handlers, engine):
    shown = generate(handlers, steps=8, count=1, progress=StopFrom(handlers, None, lambda value: value == 1 / 8, []))
    assert set(shown) == {"message"} and shown["message"].startswith("stopped (")  # no results yet: none "kept"
    assert "generation stopped by the user after step 1 of 8" in shown["message"]
    assert generate(handlers, seed=99, count=1)["seed"] == 99


def test_a_photo_and_korean_copy_make_the_ad_with_its_steps_shown(handlers, engine, tmp_path):
    from test_compose import bottle

    bottle().save(tmp_path / "bottle.png")
    photo = str(tmp_path / "bottle.png")
    out = generate(handlers, photo=photo, copy="여름 한정 30%", subcopy="₩9,900", count=1, text_style="gold",
                   text_position="top", width=320, height=400)
    assert Image.open(out["cutout"]).size == (80, 180) and Image.open(out["background"]).size == (320, 400)
    assert Image.open(out["copy_layer"]).mode == "RGBA"
    assert "steps: cutout (new), background (new), copy layer (new)" in out["info"]
    assert out["redo"] == [True, True, True]  # an inpainted background: New background can act
    packshot = generate(handlers, photo=photo, copy="여름 한정 30%", count=1, background="packshot", width=320,
                        height=400)  # the same backdrop for every seed: New background stays off (and the idle step)
    assert packshot["redo"] == app.redo_ready(packshot["cutout"], packshot["background"], None)[:2] + [True]
    assert packshot["redo"] == [True, False, True]
    runs = engine.runs
    again = generate(handlers, photo=photo, copy="새 카피", subcopy="", count=1, text_style="neon",
                     text_position="top", width=320, height=400, history=out["history"])
    assert engine.runs == runs and "background (kept)" in again["info"] and "copy layer (new)" in again["info"]
    editor, note, _ = handlers.photo_changed(photo, chosen=True)
    assert note == "" and editor["background"].size == editor["layers"][0].size == (200, 240)
    photo_rgb = np.asarray(Image.open(photo).convert("RGB"), dtype=np.int16)
    shown = np.asarray(editor["background"], dtype=np.int16)
    assert 0 < np.abs(shown - photo_rgb).mean() and np.corrcoef(shown.ravel(), photo_rgb.ravel())[0, 1] > 0.9
    edited = editor["layers"][0].copy()
    edited.paste((255, 255, 255, 0), (0, 0, 200, 120))  # the user erases the top half of the mask
    third = generate(handlers, photo=photo, copy="새 카피", count=1, text_style="neon", text_position="top",
                     width=320, height=400, mask=mask_png({"layers": [edited]}))
    assert Image.open(third["cutout"]).size == (80, 90)


@pytest.mark.parametrize("fill", [0, 255])
def test_a_blank_or_full_mask_is_no_usable_mask(fill):
    layer = Image.new("RGBA", (64, 64), (255, 255, 255, fill))
    with pytest.raises(Exception, match="product mask: no usable mask"):
        mask_png({"layers": [layer]})


def test_a_photo_without_a_plain_backdrop_asks_for_a_painted_mask(handlers, tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "n.png")
    editor, note, _ = handlers.photo_changed(str(tmp_path / "n.png"))
    assert "paint the product white" in note.splitlines()[0]
    assert editor["background"].size == (64, 64)  # the photo is there to trace
    (tmp_path / "fake.png").write_text("not an image")
    assert "product photo: is not a readable image" in handlers.photo_changed(str(tmp_path / "fake.png"))[1]
    assert "the backdrop is not plain" in generate(handlers, photo=str(tmp_path / "n.png"))["message"]


def test_a_mask_painted_for_another_photo_is_refused(tmp_path):
    from adgen.page import check_mask_fits

    from test_compose import bottle

    bottle().save(tmp_path / "bottle.png")  # 200x240
    other = io.BytesIO()
    Image.new("L", (64, 64), 255).save(other, format="PNG")
    with pytest.raises(InputError, match="product mask: is for another photo"):
        check_mask_fits(str(tmp_path / "bottle.png"), other.getvalue())
    same = io.BytesIO()
    Image.new("L", (200, 240), 255).save(same, format="PNG")
    check_mask_fits(str(tmp_path / "bottle.png"), same.getvalue())


def test_the_admin_choices_are_words_in_the_pages_language(engine, tmp_path):
    # the memory mode and quantization showed their values (auto, gpu, lowvram, none) on the Korean page
    demo = app.build_demo(engine, outputs=tmp_path / "outputs", admin=True)
    radios = [b for b in demo.blocks.values()
              if isinstance(b, gr.Radio) and {"lowvram", "none"} & {value for _, value in b.choices}]
    assert len(radios) == 2
    ko = load_locales()["ko"]
    for radio in radios:
        for shown, value in radio.choices:
            if value not in ("fp8", "int8"):  # the schemes' own names
                assert getattr(shown, "key", None) in ko, (shown, value)


def test_the_copy_counters_and_the_memory_mode_on_a_cpu_give_feedback(engine, tmp_path):
    handlers = app.build_demo(engine, outputs=tmp_path, admin=True).handlers
    assert app.Handlers.counter("copy", "여름 한정", KOREAN)["info"] == "5/80자"
    assert app.Handlers.counter("subcopy", "x" * 120)["info"] == "120/120 characters"
    assert handlers.set_memory_mode("gpu") == "⚠ CPU: memory modes apply to GPUs only"
    assert "memory: must be one of" in handlers.set_memory_mode("turbo")
    # issue 23: quantization switches in Memory details (the model reloads on the next request) and shows
    assert handlers.set_quantize("int8", KOREAN) == "양자화: int8-weight (다음 요청 때 모델을 다시 불러옵니다)"
    assert " · CPU · float32 · int8-weight · RAM" in handlers.status()[0]
    assert "양자화: int8-weight" in handlers.status(request=KOREAN)[1]
    assert handlers.set_quantize("fp4", KOREAN).startswith("⚠ 양자화: ")
    assert app.build_demo(engine, outputs=tmp_path, admin=False).handlers.set_quantize("fp8") == \
        "admin controls are available on a local launch only"


# -- packshot, brand kit, same scene, campaign (issue 10) ----------------------------------------
def bottle_photo(tmp_path) -> str:
    from test_compose import bottle

    bottle().save(tmp_path / "bottle.png")
    return str(tmp_path / "bottle.png")


AD = dict(copy="Taste the summer", count=1, width=320, height=400, background="packshot")


def test_on_the_demo_model_a_photo_preselects_a_packshot_and_says_why(handlers, tmp_path):
    photo = bottle_photo(tmp_path)
    editor, note, background = handlers.photo_changed(photo)
    assert background == "packshot" and editor["background"].size == (200, 240)
    assert note.startswith("demo model: its backgrounds are noise") and "\n" not in note  # one line
    assert "데모 모델" in handlers.photo_changed(photo, request=KOREAN)[1]
    _, note, background = handlers.photo_changed(photo, chosen=True)  # the user picked a background: theirs
    assert note == "" and background == gr.skip()
    handlers.demo_model = lambda: False  # the real model: its own backgrounds
    assert handlers.photo_changed(photo)[1:] == ("", gr.skip())


def test_a_packshot_without_a_photo_is_refused_everywhere_in_the_ui_language(handlers, engine):
    """The page, the API (and MCP) refuse it as the CLI, batch and campaign do: never a plain image instead."""
    says = "background: a packshot shows the product: it needs a product photo"
    assert generate(handlers, background="packshot") == {"message": "⚠ " + says}
    assert generate(handlers, background="packshot", request=KOREAN)["message"] == \
        "⚠ 배경: 팩샷은 제품을 보여 주는 배경이라 제품 사진이 필요합니다"
    api_generate = app.api_functions(handlers)[0]
    with pytest.raises(gr.Error, match=says):
        api_generate(name="Aurora earbuds", background="packshot", width=256, height=256, steps=2)
    with pytest.raises(gr.Error, match="배경: 팩샷은"):
        api_generate(name="Aurora earbuds", background="packshot", request=KOREAN)
    assert engine.runs == 0
    # a packshot AdGen preselected for a photo goes back to the one before when the photo is removed (one path:
    # app.background_after_photo, checked below); photo_changed leaves the background alone then
    assert handlers.photo_changed(None)[2] == gr.skip() and handlers.photo_changed(None, chosen=True)[2] == gr.skip()


def test_a_packshot_needs_no_model_and_load_from_image_restores_it(handlers, engine, tmp_path):
    shown = generate(handlers, photo=bottle_photo(tmp_path), packshot="color", same_scene=True, **AD)
    assert shown["message"] == "" and engine.runs == 0
    values = handlers.load_from_image(shown["download"])
    assert (values["background"], values["packshot"], values["same_scene"]) == ("packshot", "color", True)


def test_same_scene_reaches_the_request():
    presets = app.load_presets()
    assert AdForm(name="x").request(presets).same_scene is False  # images vary by scene unless asked
    assert AdForm(name="x", same_scene=True).request(presets).same_scene is True


def test_a_brand_from_the_list_and_an_ad_hoc_logo(handlers, tmp_path):
    from adgen.brand import brand_names

    assert "citrus" in brand_names()
    assert AdForm(name="x", brand="citrus").is_ad  # the kit has a logo: an ad even without photo or copy
    text, _ = handlers.preview(AdForm(name="Cola", brand="citrus"), "", "")
    assert "orange" in text  # the kit's colours become the prompt's colour words
    photo = bottle_photo(tmp_path)
    shown = generate(handlers, photo=photo, brand="citrus", **AD)
    brand = read_params(Path(shown["download"]).read_bytes())["ad"]["brand"]
    assert brand["name"] == "Citrus Co." and brand["colors"] == ["#FF8A00", "#1F3A2E"] and brand["logo"]
    logo = tmp_path / "logo.png"
    Image.new("RGB", (90, 30), (0, 0, 255)).save(logo)
    shown = generate(handlers, photo=photo, logo=str(logo), brand_colors="#FF0000, #00AA00", **AD)
    brand = read_params(Path(shown["download"]).read_bytes())["ad"]["brand"]
    assert brand["name"] == "ad hoc" and brand["colors"] == ["#FF0000", "#00AA00"]
    assert brand["logo"] == __import__("hashlib").sha256(logo.read_bytes()).hexdigest()
    said = generate(handlers, photo=photo, brand="nope", **AD)["message"]
    assert said.startswith("⚠ brand: unknown 'nope'; choose one of citrus")


def test_the_mask_editor_canvas_is_the_photos_size(engine, tmp_path):
    # Gradio centres the mask layer in a canvas of the editor's `canvas_size` (800x800 by default): a 480x480 photo's
    # automatic mask showed 160 px right of and below the product, and a stroke landed off it too
    demo = app.build_demo(engine, outputs=tmp_path / "outputs")
    Image.new("RGB", (480, 360), (150, 110, 70)).save(tmp_path / "photo.png")
    editor = next(b for b in demo.blocks.values() if isinstance(b, gr.ImageEditor))
    change = next(f for f in demo.fns.values() if editor in f.outputs and f.name == "photo_changed")
    update = change.fn(str(tmp_path / "photo.png"), False, "inpaint", None, None)[0]
    assert update["canvas_size"] == (480, 360) == update["value"]["background"].size


def test_a_bad_logo_or_font_is_said_when_it_arrives(handlers, engine, tmp_path):
    # a broken product photo was flagged at upload, a broken logo or font only at Generate
    bad_logo, bad_font = tmp_path / "logo.png", tmp_path / "brand.ttf"
    bad_logo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    bad_font.write_bytes(b"not a font" * 10)
    assert handlers.brand_file_changed("logo", str(bad_logo), KOREAN).startswith("⚠ 로고: ")
    assert handlers.brand_file_changed("font", str(bad_font), KOREAN).startswith("⚠ 브랜드 글꼴: brand.ttf 파일은")
    Image.new("RGBA", (40, 20), (255, 0, 0, 255)).save(bad_logo)
    assert handlers.brand_file_changed("logo", str(bad_logo), KOREAN) == ""
    assert handlers.brand_file_changed("font", None, KOREAN) == ""  # removed
    demo = app.build_demo(engine, outputs=tmp_path / "outputs")
    config = demo.get_config_file()
    ids = {c["props"].get("elem_id"): c["id"] for c in config["components"]}
    uploads = {tuple(target) for d in config["dependencies"] if ids["message"] in d["outputs"]
               for target in d["targets"]}
    assert {(ids["logo"], "upload"), (ids["font"], "upload")} <= uploads
    # a usable logo leaves the line beside Generate as it was (the photo's note), a broken one replaces it
    logo_of = next(f for f in demo.fns.values() if f.name == "logo_changed")
    assert logo_of.fn(str(bad_logo), KOREAN) == gr.skip()
    # the status line and a waiting tab's place come from one request per tick, the place worked out once
    ticks = [d for d in config["dependencies"] if any(target[1] == "tick" for target in d["targets"])]
    assert len(ticks) == 1 and {ids["status"], ids["place"], ids["campaign-place"]} <= set(ticks[0]["outputs"])


def test_a_bad_font_upload_is_one_localized_line(handlers, tmp_path):
    bad = tmp_path / "brand.ttf"
    bad.write_bytes(b"not a font" * 10)
    said = generate(handlers, font=str(bad), **{**AD, "background": "t2i"})
    assert said == {"message": "⚠ brand font: brand.ttf is not a readable font: save it again as a .ttf or .otf font "
                               "file"}
    korean = generate(handlers, font=str(bad), request=KOREAN, **AD)["message"]
    assert korean == ("⚠ 브랜드 글꼴: brand.ttf 파일은 읽을 수 있는 글꼴이 아닙니다. "
                      ".ttf 또는 .otf 글꼴 파일로 다시 저장하세요")
    (tmp_path / "brand.woff").write_bytes(b"x")
    assert "must be a .ttf or .otf font file" in generate(handlers, font=str(tmp_path / "brand.woff"))["message"]


def test_page_files_come_from_the_upload_folder_only_and_colours_apply_only_when_ticked(tmp_path):
    from adgen.i18n import localize_error
    from adgen.page import brand_colors_of, hex_color, uploaded

    folder = tmp_path / "uploads"
    (folder / "abc").mkdir(parents=True)
    mine = folder / "abc" / "logo.png"
    mine.write_bytes(b"x")
    assert uploaded(str(mine), "logo", folder) == str(mine) and uploaded(None, "logo", folder) is None
    (folder / "link.png").symlink_to("/etc/hostname")
    for path in ("/etc/hostname", str(folder / ".." / "elsewhere.png"), str(folder / "link.png"), {"path": "/etc"}):
        with pytest.raises(InputError, match="brand font: must be a file uploaded on this page"):
            uploaded(path, "brand font", folder)
    with pytest.raises(InputError) as gone:  # an upload the disk cap removed while the page still names it
        uploaded(str(folder / "abc" / "photo.png"), "product photo", folder)
    assert localize_error(gone.value, "ko") == ("제품 사진: 서버 디스크 한도를 지키려고 지운 파일입니다. "
                                                "다시 올려 주세요")
    assert [hex_color(c) for c in ("#ff8a00", "#f80", "rgba(255, 138, 0, 1)", "rgb(31,58,46)", "#FF8A00FF")] == [
        "#FF8A00", "#FF8800", "#FF8A00", "#1F3A2E", "#FF8A00"]
    assert brand_colors_of(False, "#000000", "#ffffff") == ""  # the pickers' default black never applies unasked
    assert brand_colors_of(True, "#ff8a00", "rgb(31, 58, 46)") == "#FF8A00, #1F3A2E"


CAMPAIGN = dataclasses.replace(FORM, copy="여름 한정", count=1, background="packshot")


def test_the_korean_default_channels_make_a_campaign_without_a_photo(handlers):
    # Coupang's main image is white around the product photo, and it is ticked by default: a first campaign from a
    # name and copy alone made nothing ("쿠팡 ... 제품 사진이 필요합니다"); the others are made, a note says why not it
    from adgen.page import CAMPAIGN_DEFAULTS

    form = dataclasses.replace(FORM, copy="여름 한정", count=1)
    handlers.studio.campaign_area = 256 * 256  # small backgrounds: a cheap campaign
    shown = handlers.campaign(form, list(CAMPAIGN_DEFAULTS["ko"]), 1, request=KOREAN)
    made = [caption.split(" · ")[0] for _, caption in shown["gallery"]]
    assert len(made) == len(CAMPAIGN_DEFAULTS["ko"]) - 1 and "쿠팡 대표 이미지" not in made, shown.get("message")
    assert "ℹ 쿠팡 대표 이미지 채널은 빼고 만들었습니다" in shown["message"]
    # only white channels chosen: nothing can be made, and the campaign says so, naming them in Korean
    refused = handlers.campaign(form, ["coupang_main"], 1, request=KOREAN)["message"]
    assert "제품 사진이 필요합니다" in refused and "coupang_main" not in refused
    # none chosen: one line without the ids the CLI lists
    assert handlers.campaign(form, [], 1, request=KOREAN)["message"] == "⚠ 채널: 채널을 하나 이상 고르세요"


def test_a_campaign_is_grouped_by_channel_with_a_zip_of_its_files_and_manifest(handlers, engine, tmp_path):
    import zipfile

    class Running(FakeProgress):  # also how many jobs a waiting tab's estimate counts as running
        running = []

        def __call__(self, value, desc=None):
            super().__call__(value, desc)
            self.running.append(len(handlers._running))

    form = dataclasses.replace(CAMPAIGN, photo=bottle_photo(tmp_path))
    progress = Running()
    handlers.seconds_per_image = 10.0  # measured on earlier jobs
    shown = handlers.campaign(form, ["instagram_story", "display_300x250"], 2, progress=progress)
    assert engine.runs == 0 and progress.calls[-1] == 1.0  # packshots: no model work
    assert progress.running[-1] == 1 and not handlers._running  # timed while it ran, for tabs waiting behind it
    assert handlers.seconds_per_image == 10.0  # ... but no model work: the model's measured speed is unchanged
    assert [caption for _, caption in shown["gallery"]] == [
        "Instagram story · 1080x1920 · v1 · ✓ Meta rules", "Instagram story · 1080x1920 · v2 · ✓ Meta rules",
        "Display 300x250 (medium rectangle) · 300x250 · v1 · ✓ Google / IAB rules",
        "Display 300x250 (medium rectangle) · 300x250 · v2 · ✓ Google / IAB rules"]
    assert [Image.open(p).size for p, _ in shown["gallery"]] == [(1080, 1920)] * 2 + [(300, 250)] * 2
    folder = Path(shown["zip"]).parent
    assert folder.parent == tmp_path / "outputs" / "campaigns" and shown["message"].startswith("4 files in")
    manifest = json.loads((folder / "manifest.json").read_text())
    with zipfile.ZipFile(shown["zip"]) as archive:
        assert sorted(archive.namelist()) == sorted([f["file"] for f in manifest["files"]] + ["manifest.json"])
    assert {f["channel"] for f in manifest["files"]} == {"instagram_story", "display_300x250"}
    korean = handlers.campaign(form, ["instagram_story"], 1, request=KOREAN)
    assert [c for _, c in korean["gallery"]] == ["인스타그램 스토리 · 1080x1920 · 버전 1 · ✓ 메타 규칙"]


@pytest.mark.parametrize(("channels", "variants", "says"), [
    ([], 1, "⚠ channels: choose at least one channel"),  # the page lists no ids (the CLI does)
    (["tiktok"], 1, "⚠ channels: unknown 'tiktok'; choose one of"),
    (["instagram_square"], 5, "⚠ variants: must be from 1 to 4 (got 5)"),
])
def test_a_campaign_with_bad_choices_says_so_in_one_line(handlers, tmp_path, channels, variants, says):
    shown = handlers.campaign(dataclasses.replace(CAMPAIGN, photo=bottle_photo(tmp_path)), channels, variants)
    assert set(shown) == {"message"} and shown["message"].startswith(says)
    no_photo = handlers.campaign(CAMPAIGN, ["instagram_square"], 1, request=KOREAN)["message"]
    assert no_photo == "⚠ 배경: 팩샷은 제품을 보여 주는 배경이라 제품 사진이 필요합니다"


def test_stop_in_one_tab_never_ends_another_tabs_campaign(handlers, engine, tmp_path):
    tab_a, tab_b = gr.Request(session_hash="tab-a"), gr.Request(session_hash="tab-b")
    form = dataclasses.replace(CAMPAIGN, photo=bottle_photo(tmp_path))
    pressed = []

    half = lambda value: value == 0.5  # noqa: E731 - half the files made
    done = handlers.campaign(form, ["display_300x250", "display_320x50"], 1, tab_a,
                             StopFrom(handlers, tab_b, half, pressed))
    assert pressed == [0] and len(done["gallery"]) == 2
    pressed.clear()
    stopped = handlers.campaign(form, ["display_300x250", "display_320x50"], 1, tab_b,
                                StopFrom(handlers, tab_b, half, pressed))
    assert pressed == [1] and set(stopped) == {"message"}
    assert stopped["message"] == ("stopped (generation stopped by the user after step 2 of 4, "
                                  "1 of 2 files done)")


def test_only_the_newest_campaigns_are_kept(handlers, tmp_path, monkeypatch):
    import os

    import adgen.studio

    monkeypatch.setattr(adgen.studio, "MAX_CAMPAIGNS", 1)
    form = dataclasses.replace(CAMPAIGN, photo=bottle_photo(tmp_path))
    first = handlers.campaign(form, ["display_320x50"], 1)["zip"]
    os.utime(Path(first).parent, (1000, 1000))  # long done (one made in the last minutes may be another tab's)
    second = handlers.campaign(dataclasses.replace(form, copy="새 카피"), ["display_320x50"], 1)["zip"]
    assert Path(second).exists() and not Path(first).exists()
    assert list((tmp_path / "outputs" / "campaigns").iterdir()) == [Path(second).parent]


def test_campaign_folders_are_kept_within_the_disk_cap_newest_first(tmp_path):
    """At most MAX_CAMPAIGNS folders, and within $ADGEN_CACHE_MAX_MB together: the oldest go, the new one stays."""
    import os

    from adgen.studio import _keep_newest

    root = tmp_path / "campaigns"
    for age, (name, size) in enumerate([("new", 600), ("b", 300), ("c", 300), ("d", 100)]):
        (root / name).mkdir(parents=True)
        (root / name / "campaign.zip").write_bytes(b"z" * size)
        os.utime(root / name, (1000 - age, 1000 - age))  # "new" is the most recent, "d" the oldest
    _keep_newest(root, 16, 1000, spare=root / "new")
    assert sorted(p.name for p in root.iterdir()) == ["b", "new"]  # 600 + 300 fit; c would not, so c and d go
    _keep_newest(root, 16, 100, spare=root / "new")
    assert [p.name for p in root.iterdir()] == ["new"]  # the one just made stays, even over the cap
    (root / "other-tab").mkdir()  # another tab's campaign, made a moment ago: it may still be written or fetched
    (root / "other-tab" / "campaign.zip").write_bytes(b"z" * 600)
    _keep_newest(root, 16, 100, spare=root / "new")
    assert sorted(p.name for p in root.iterdir()) == ["new", "other-tab"]
    os.utime(root / "other-tab", (1000, 1000))  # long done: it goes
    _keep_newest(root, 16, 100, spare=root / "new")
    assert [p.name for p in root.iterdir()] == ["new"]


def test_the_page_has_the_campaign_tab_packshot_and_brand_kit(engine, tmp_path):
    demo = app.build_demo(engine, outputs=tmp_path)
    by_id = {c.elem_id: c for c in demo.blocks.values() if getattr(c, "elem_id", None)}
    assert {"campaign-generate", "campaign-stop", "campaign-gallery", "campaign-zip", "campaign-channels",
            "brand", "logo", "font", "packshot", "same-scene", "tab-campaign"} <= set(by_id)
    assert by_id["campaign-channels"].value == ["instagram_square", "instagram_story", "display_300x250"]
    assert by_id["packshot"].visible is False and by_id["same-scene"].value is False
    ids = {k: c._id for k, c in by_id.items()}
    run = next(dep for dep in demo.config["dependencies"] if ids["campaign-gallery"] in dep["outputs"])
    generate_run = next(dep for dep in demo.config["dependencies"] if ids["result"] in dep["outputs"]
                        and dep["queue"] is not False)
    assert demo.fns[run["id"]].concurrency_id == demo.fns[generate_run["id"]].concurrency_id == "gpu"  # one queue
    assert run["api_visibility"] == "private"
    styles, _, _, _, channels, brands = demo.handlers.choices(KOREAN)
    assert ("메타 · 인스타그램 스토리", "instagram_story") in channels["choices"]  # grouped by platform
    assert ("쿠팡 · 쿠팡 대표 이미지", "coupang_main") in channels["choices"]
    assert brands["choices"][0] == ("없음", "") and ("Citrus Co.", "citrus") in brands["choices"]


# -- the writer (issue 11): Write copy, Enhance prompt, Different scenes --------------------------
DEMO_EN = "(demo model, random weights: the writer's text is random)"


def written(job: str, *texts: str, demo: bool = False):
    from adgen.writer import Written

    return Written(job, texts, bool(texts), "a real model", demo, 1, 0.1)


def test_write_copy_on_the_demo_model_says_nothing_usable_came_back_in_the_uis_language(handlers, engine,
                                                                                          short_writer):
    progress = FakeProgress()
    shown = handlers.write_copy(FORM, progress=progress)
    assert shown == {"message": f"⚠ no usable copy was written; the copy box is unchanged {DEMO_EN}"}
    assert engine.writes == 1 and progress.calls[-1] > 0  # a job on the engine, its progress a share of its budget
    assert progress.descs[-1] == "Writing"  # never "53/960 steps": Gradio's bar adds the share done
    korean = handlers.write_copy(dataclasses.replace(FORM, seed=12), KOREAN)
    assert korean == {"message": "⚠ 쓸 만한 문구를 쓰지 못했습니다. 문구 칸은 그대로입니다 "
                                 "(데모 모델, 무작위 가중치: 작성기의 글은 무작위입니다)"}
    assert "제품명" in handlers.write_copy(AdForm(), KOREAN)["message"]  # bad input: one localized line


def test_a_clicked_suggestion_fills_the_copy_and_sub_copy_boxes(handlers, monkeypatch):
    monkeypatch.setattr(handlers.studio, "write", lambda form, kind, n, job, report: written(
        kind, "여름 한정\n제주 감귤 탄산수", "Hello summer"))  # UI wiring: a usable answer, as a real model gives
    shown = handlers.write_copy(FORM)
    assert shown["suggestions"] == [("여름 한정 · 제주 감귤 탄산수", "여름 한정\n제주 감귤 탄산수"),
                                    ("Hello summer", "Hello summer\n")]
    assert shown["message"] == "2 suggestions written: click one to put it in the copy boxes"
    assert [handlers.use_copy(value) for _, value in shown["suggestions"]] == [("여름 한정", "제주 감귤 탄산수"),
                                                                               ("Hello summer", "")]
    assert handlers.use_copy(None) == (gr.skip(), gr.skip())


def test_enhance_keeps_the_template_prompt_unless_usable_and_the_form_carries_the_written_one(handlers, monkeypatch,
                                                                                              short_writer):
    assert handlers.enhance(FORM) == {
        "message": f"⚠ no usable prompt was written; the template prompt stays in use {DEMO_EN}"}
    assert "템플릿 프롬프트를 그대로 씁니다" in handlers.enhance(FORM, KOREAN)["message"]
    monkeypatch.setattr(handlers.studio, "enhance", lambda form, job, report: (
        "A bottle on wet basalt at dawn", written("prompt", "A bottle on wet basalt at dawn")))
    shown = handlers.enhance(FORM)
    assert shown["prompt"] == shown["enhanced_prompt"] == "A bottle on wet basalt at dawn"
    assert not shown["message"].startswith("⚠") and "edit it freely" in shown["message"]
    # Unedited, the box's prompt is recorded as written; edited, it is the user's own
    download = generate(handlers, count=1, prompt=shown["prompt"], enhanced_prompt=shown["prompt"],
                        auto_prompt="the built one")["download"]
    params = read_params(Path(download).read_bytes())
    assert params["prompt_written"] is True and params["prompt_override"] == "A bottle on wet basalt at dawn"
    assert params["prompt"].startswith("A bottle on wet basalt at dawn Setting: ")  # and the style's scene
    values = handlers.load_from_image(download)  # Load from image: still written while unedited
    assert values["prompt"] == values["enhanced_prompt"] and values["prompt_edited"] is True
    edited = AdForm(name="x", prompt="my own", enhanced_prompt="A bottle", auto_prompt="built")
    assert edited.request(app.load_presets()).enhanced is False


def test_different_scenes_reach_the_request_and_say_when_the_styles_own_were_used(handlers, engine, short_writer):
    presets = app.load_presets()
    assert AdForm(name="x", same_scene=True, different_scenes=True).request(presets).same_scene is False
    shown = generate(handlers, count=1, different_scenes=True)
    assert shown["image"] and engine.writes == 1  # the writer ran first, in the same job
    assert shown["message"] == f"⚠ no usable scenes were written; the style's own scenes were used {DEMO_EN}"
    assert "스타일의 기본 장면을 썼습니다" in generate(handlers, count=1, seed=3, different_scenes=True,
                                                    request=KOREAN)["message"]
    assert generate(handlers, count=1)["message"] == ""  # off: no note
    handlers.studio.campaign_area = 256 * 256  # small backgrounds: a cheap campaign
    done = handlers.campaign(dataclasses.replace(FORM, copy="여름", steps=1, background="t2i",
                                                 different_scenes=True), ["display_320x50"], 2)
    assert len(done["gallery"]) == 2 and done["message"].startswith("2 files in")
    assert done["message"].endswith(f"the style's own scenes were used {DEMO_EN}")


def test_stop_in_one_tab_never_ends_another_tabs_writer_job(handlers, engine, short_writer):
    tab_a, tab_b = gr.Request(session_hash="tab-a"), gr.Request(session_hash="tab-b")
    pressed = []

    third = lambda value: value > 0  # noqa: E731 - once a token is written (progress is the share written)
    done = handlers.write_copy(FORM, tab_a, StopFrom(handlers, tab_b, third, pressed))  # tab B's Stop, tab A writes
    assert pressed == [0] and "no usable copy was written" in done["message"]
    pressed.clear()
    stopped = handlers.enhance(dataclasses.replace(FORM, seed=99), tab_b, StopFrom(handlers, tab_b, third, pressed))
    assert pressed == [1] and set(stopped) == {"message"}
    assert stopped["message"] == "prompt enhancing stopped: the prompt box is unchanged"  # one line, no steps
    pressed.clear()
    korean_b = gr.Request(headers=KOREAN.headers, session_hash="tab-b")
    korean = handlers.write_copy(dataclasses.replace(FORM, seed=98), korean_b,
                               StopFrom(handlers, tab_b, third, pressed))
    assert korean["message"] == "문구 쓰기를 중지했습니다. 문구 칸은 그대로입니다"


def test_a_tab_runs_one_job_at_a_time_and_stop_shows_while_any_runs(engine, tmp_path):
    """Any job (Generate, a redo, Write copy, Enhance prompt, the campaign) queued or running: Generate gives way
    to Stop and every other job button is not clickable; its end (or either Stop) brings all back."""
    demo = app.build_demo(engine, outputs=tmp_path)
    by_id = {c.elem_id: c for c in demo.blocks.values() if getattr(c, "elem_id", None)}
    ids = {k: c._id for k, c in by_id.items()}
    starts = ["generate", "redo-cutout", "new-background", "redo-copy", "write-copy", "enhance-prompt",
              "campaign-generate"]
    buttons = [ids[k] for k in [*starts, "stop", "campaign-stop"]]
    deps = demo.config["dependencies"]

    def fired_by(name):
        return [d for d in deps if any(t[0] == ids[name] for t in d["targets"]) and d["trigger_mode"] != "never"]

    for name in starts:
        clicked = [d for d in fired_by(name) if d["queue"] is False and not d["cancels"] and d["backend_fn"]]
        assert len(clicked) == 1 and set(buttons) <= set(clicked[0]["outputs"]), name  # all buttons change at once
        busy = demo.fns[clicked[0]["id"]].fn()
        assert [u.get("visible") for u in busy[:len(buttons)]] == [False, None, None, None, None, None, False,
                                                                    True, True], name
        assert [u.get("interactive") for u in busy[1:6]] == [False] * 5
        run = next(d for d in deps if d["trigger_after"] == clicked[0]["id"])
        assert demo.fns[run["id"]].concurrency_id == "gpu"
        ended = next(d for d in deps if d["trigger_after"] == run["id"])
        assert ended["trigger_only_on_success"] is False and set(buttons) <= set(ended["outputs"])  # however it ends
        idle = demo.fns[ended["id"]].fn(*["step.png"] * 3)  # a result with every step shown: each redo can act
        assert [u.get("visible") for u in idle[:len(buttons)]] == [True, None, None, None, None, None, True,
                                                                    False, False], name
        assert [u.get("interactive") for u in idle[:7]] == [True] * 7
        for stop in ("stop", "campaign-stop"):  # either Stop ends it and brings every button back
            assert any(run["id"] in d["cancels"] for d in fired_by(stop))
            assert any(set(buttons) <= set(d["outputs"]) for d in fired_by(stop))


def test_the_writer_buttons_share_the_gpu_queue_and_the_stop(engine, tmp_path):
    demo = app.build_demo(engine, outputs=tmp_path)
    by_id = {c.elem_id: c for c in demo.blocks.values() if getattr(c, "elem_id", None)}
    assert {"write-copy", "copy-suggestions", "writer-message", "enhance-prompt", "prompt-note",
            "different-scenes"} <= set(by_id)
    assert by_id["copy-suggestions"].visible is False and by_id["different-scenes"].value is False
    deps = demo.config["dependencies"]
    runs = [dep for dep in deps if by_id["writer-message"]._id in dep["outputs"] and dep["queue"] is not False]
    runs += [dep for dep in deps if by_id["prompt-note"]._id in dep["outputs"] and dep["queue"] is not False]
    assert len(runs) == 2 and all(demo.fns[d["id"]].concurrency_id == "gpu" for d in runs)
    assert all(d["api_visibility"] == "private" for d in runs)
    cancels = {i for dep in deps if any(t[0] == by_id["stop"]._id for t in dep["targets"]) for i in dep["cancels"]}
    assert {d["id"] for d in runs} <= cancels  # the Stop beside Generate ends a writer job too


def test_every_cancellable_job_shows_its_progress_only_on_its_own_outputs(engine, tmp_path):
    """Stop cancels a queued job; Gradio then marks its progress components that are not its outputs as failed
    (a red "Error" on the copy box after a queued Write copy was stopped). Each job's progress box is an output."""
    demo = app.build_demo(engine, outputs=tmp_path)
    deps = demo.config["dependencies"]
    cancellable = {run for d in deps for run in d["cancels"]}
    shown = [d for d in deps if d["id"] in cancellable]
    assert len(shown) == 7  # generate, three redos, write copy, enhance prompt, campaign
    for dep in shown:
        assert dep["show_progress_on"] and set(dep["show_progress_on"]) <= set(dep["outputs"]), dep["id"]


def test_a_broken_result_cache_still_shows_the_image_and_a_failure_names_no_server_path(demo_source, tmp_path):
    from adgen.cache import ResultCache

    (tmp_path / "results").write_bytes(b"")  # a file where the cache folder should be
    engine = Engine(demo_source, cache=ResultCache(tmp_path / "results"), device="cpu")
    handlers = app.build_demo(engine, outputs=tmp_path / "outputs").handlers
    shown = generate(handlers, count=1, steps=1)
    assert shown["message"] == "" and Path(shown["download"]).is_file()
    said = app.failure(NotADirectoryError(20, "Not a directory", str(tmp_path / "results" / "ab")), "en")
    assert said == "⚠ unexpected error (NotADirectoryError): Not a directory" and str(tmp_path) not in said
    said = app.failure(ImportError("cannot import name 'x' from 'adgen.rules' (/work/main/adgen/rules.py)"), "ko")
    assert said == "⚠ 예상하지 못한 오류입니다 (ImportError): cannot import name 'x' from 'adgen.rules' (…)"  # any bug


def test_the_prompt_preview_reads_no_logo_or_font_file(handlers, monkeypatch, tmp_path):
    """The preview runs on every keystroke: a kit's logo (up to 40 megapixels) is never decoded for it."""
    import adgen.brand

    read = []
    for name in ("read_image_file", "decode_image", "check_font"):
        real = getattr(adgen.brand, name)
        monkeypatch.setattr(adgen.brand, name, lambda *a, real=real, name=name, **k: read.append(name) or real(*a, **k))
    logo = tmp_path / "logo.png"
    Image.new("RGB", (90, 30), (0, 0, 255)).save(logo)
    for form in (AdForm(name="Cola", brand="citrus"), AdForm(name="Cola", brand="citrus", logo=str(logo)),
                 AdForm(name="Cola", brand="citrus", brand_colors="#FF0000")):
        text, auto = handlers.preview(form, "", "")
        assert text == auto and (" orange" in text or " red" in text)  # the kit's (or chosen) colours, as words
    assert read == []
    assert AdForm(name="x", brand="citrus").is_ad and read == []  # the kit names a logo: an ad, nothing read


PROXIED = [gr.Request(headers={"X-Forwarded-For": "203.0.113.7"}, client={"host": "127.0.0.1"}),
           gr.Request(headers={"forwarded": "for=203.0.113.7"}, client={"host": "127.0.0.1"}),
           gr.Request(headers={"X-Real-IP": "203.0.113.7"}, client={"host": "::1"}),
           gr.Request(headers={}, client={"host": "192.168.0.20"})]


def test_admin_controls_refuse_a_proxied_or_remote_request_on_a_loopback_launch(engine, tmp_path):
    """nginx or a tunnel in front of 127.0.0.1: every visitor's request arrives from loopback, with proxy headers."""
    from adgen.page import request_is_local

    demo = app.build_demo(engine, outputs=tmp_path / "outputs", admin=True)  # launched on 127.0.0.1
    handlers = demo.handlers
    generate(handlers, count=1, steps=1)
    for request in PROXIED:
        assert not request_is_local(request)
        assert handlers.set_memory_mode("offload", request) == "admin controls are available on a local launch only"
        handlers.unload(request)
        assert engine.state == "ready" and engine.memory.requested == "auto"
        shown = [dep for dep in demo.fns.values() if dep.name == "admin_shown"][0].fn(request)
        assert [u["visible"] for u in shown] == [False] * 5
    local = gr.Request(headers={"accept-language": "en"}, client={"host": "127.0.0.1"})
    assert request_is_local(local) and request_is_local(None)
    assert [u["visible"] for u in [d for d in demo.fns.values() if d.name == "admin_shown"][0].fn(local)] == [True] * 5
    handlers.unload(local)
    assert engine.state == "unloaded"


def test_load_from_image_n_reproduces_image_n_with_its_scene(handlers):
    """Image 2 of a request has scene 2 (and a written prompt its "Setting: …" once): loading it and generating
    gives the same bytes, never scene 1 or the setting twice."""
    from adgen.page import FORM_FIELDS

    enhanced = dict(prompt="A written prompt about the drink.", enhanced_prompt="A written prompt about the drink.")
    for written in (False, True):
        made = generate(handlers, count=2, steps=1, **(enhanced if written else {}))
        second = made["history"][1]
        assert second["seed"] == 12 and read_params(Path(second["path"]).read_bytes())["variation"] == 1
        values = handlers.load_from_image(second["path"])
        assert values["variation"] == 1 and values["prompt"].count("Setting:") == (0 if written else 1)
        form = AdForm.of({**{k: v for k, v in values.items() if k in FORM_FIELDS}, "count": 1})
        again = handlers.generate(form, None, None, FakeProgress())
        assert Path(again["download"]).read_bytes() == Path(second["path"]).read_bytes()
        assert again["history"][0]["prompt"] == second["prompt"] != made["history"][0]["prompt"]  # its own scene


def test_importing_the_app_loads_neither_torch_nor_diffusers(tmp_path):
    """The page comes up before torch: `import app` (and building the page) must not pull it in."""
    code = ("import sys, pathlib, app; app.build_demo(lambda: None, outputs=pathlib.Path(sys.argv[1])); "
            "heavy = sorted({'torch', 'diffusers', 'transformers'} & set(sys.modules)); "
            "assert not heavy, f'import app loaded {heavy}'")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_korean_page_reads_only_korean(handlers):
    """Status line, memory details and Load from image's line: labels, not internal ids or English words."""
    import re

    line, details = handlers.status(request=KOREAN)
    for shown in (line, details.split("  \n")[-2]):  # the status line; the details' model line
        words = set(re.findall(r"[A-Za-z]{3,}", shown.replace("python -m adgen download", "")))
        assert not words - {"VRAM", "RAM", "CPU", "GPU", "CUDA"}, shown
    from adgen.page import restored_fields

    params = {"product": {"name": "감귤", "category": "", "features": [], "audience": "", "scene": "", "colors": "",
                          "copy": "여름"}, "preset": "photo", "product_focus": True, "lora_scale": None, "prompt": "p",
              "prompt_override": False, "seed": 7, "width": 1024, "height": 1024, "steps": 8,
              "ad": {"subcopy": "", "text_style": "extrude_3d", "text_position": "auto", "background": "packshot",
                     "placement": {"x": 0.5, "y": 0.6, "scale": 0.45}}}
    what = restored_fields(params, "ko")[1]
    assert "extrude_3d" not in what and "steps" not in what and "seed" not in what and "시드 7" in what, what


def test_progress_says_which_image_and_step_and_the_wait_never_runs_past_itself():
    from adgen.page import place_text, progress_text

    assert progress_text(11, 32, 4, "en") == "image 2 of 4 · step 3/8"
    assert progress_text(11, 32, 4, "ko") == "이미지 2/4 · 단계 3/8"
    assert progress_text(32, 32, 4, "en") == "image 4 of 4 · step 8/8"
    assert progress_text(3, 8, 1, "en") == "step 3/8"
    # one job running (expected to end in 10 s), one waiting before us, 4 s per image measured
    assert place_text(3, [110.0], [1], 4.0, 100.0, "en") == "you are 3rd in line · about 14 s"
    assert place_text(2, [110.0], [], 4.0, 100.0, "ko") == "대기 2번째 · 약 10초"
    assert place_text(2, [110.0], [], 4.0, 130.0, "en") == "you are 2nd in line · any moment now"  # late: no past


def test_the_form_has_no_traps(tmp_path):
    example = list(app.EXAMPLES["en"][1])  # Aurora wireless earbuds, its copy, its features
    assert app.forget_example("Citrus water", example[1], example[2], example) == ("", "", None)
    kept = app.forget_example("Citrus water", "My own copy", example[2], example)
    assert kept[0] == gr.skip() and kept[1] == ""  # a copy the user wrote stays
    assert app.forget_example("Aurora wireless earbuds", "x", "y", list(app.EXAMPLES["en"][1]))[2] == gr.skip()
    # a photo switched the background to a packshot; removing the photo puts the user's one back
    assert app.background_after_photo(True, False, "t2i", None, "packshot") == ("packshot", "t2i")
    assert app.background_after_photo(False, False, "packshot", "t2i", gr.skip()) == ("t2i", None)
    assert app.background_after_photo(False, True, "packshot", "t2i", gr.skip()) == (gr.skip(), None)
    # a typed size: aspect custom, rounded to 16 with a note; an aspect's own size keeps the aspect
    aspect, width, height, note = app.size_changed(1000, 1024, "1:1", "ko")
    assert (aspect, width, height) == ("custom", 1008, 1024) and "16의 배수" in note
    assert app.size_changed(896, 1120, "4:5", "en") == (gr.skip(),) * 4
    zip_path = tmp_path / "campaign.zip"
    zip_path.write_bytes(b"PK")
    named = Path(app.named_zip(str(zip_path), "제주 감귤 탄산수"))
    assert named.name.startswith("제주-감귤-탄산수-20") and named.read_bytes() == b"PK"


def test_the_history_secret_is_the_installations(tmp_path, monkeypatch):
    from adgen.secret import installation_secret

    first = installation_secret(tmp_path)
    assert installation_secret(tmp_path) == first and len(first) >= 32
    assert (tmp_path / "secret").stat().st_mode & 0o077 == 0  # the owner's only
    assert installation_secret(tmp_path, {"ADGEN_SECRET": "team"}) == "team"


def test_the_korean_phone_walk_through(handlers, tmp_path):
    """Redo buttons only when they can act; "earlier results kept" only when there are some; the writer's progress
    in the UI's words; the Korean page's examples and channels; Gradio's own status strings in both languages."""
    from adgen.page import CAMPAIGN_DEFAULTS, EXAMPLES, page_locales, writing_text

    # 1. redo buttons: none clickable before a result, each only when the result shown has its step
    idle = app.button_updates(False)
    assert [u["interactive"] for u in idle[1:4]] == [False, False, False] and idle[0]["interactive"]
    assert [u["interactive"] for u in app.button_updates(False, app.redo_ready(None, "b.png", "c.png"))[1:4]] == \
        [False, True, True]
    assert all(u["interactive"] is False for u in app.button_updates(True, [True] * 3)[1:4])  # busy: none
    # 2. a stop says earlier results stay only when the tab has some
    from adgen.errors import GenerationStopped

    stopped = GenerationStopped(2, 8, "stopped by the user")
    assert app.failure(stopped, "ko", kept=False).startswith("중지됨 (") and "이전 결과" not in \
        app.failure(stopped, "ko", kept=False)
    assert "이전 결과는 그대로" in app.failure(stopped, "ko", kept=True)
    assert handlers.stop_ui("generate", KOREAN, kept=False)["message"] == "중지됨"
    assert "earlier results kept" in handlers.stop_ui("campaign", None, kept=True)["message"]
    # 8. the writer's progress: words, never "53/960 steps" (Gradio's bar shows the share: once, not twice)
    assert writing_text("ko") == "글 쓰는 중" and writing_text("en") == "Writing"
    # 9. Korean examples and Korean marketplaces on the Korean page
    names = [row[0] for row in EXAMPLES["ko"]]
    assert all(re.search("[\uac00-\ud7a3]", "".join(row)) for row in EXAMPLES["ko"]), names
    assert app.example_values(1, "ko")[0] == "오로라 무선 이어폰" and app.example_values(1, "en")[0] == \
        "Aurora wireless earbuds"
    channels = handlers.choices(KOREAN)[4]["value"]
    assert {"coupang_main", "naver_smartstore"} <= set(channels) and channels == [
        c for c in CAMPAIGN_DEFAULTS["ko"] if c in handlers.channels]
    assert handlers.choices(None)[4]["value"] == list(CAMPAIGN_DEFAULTS["en"])
    ko = load_locales()["ko"]
    assert "manifest" not in ko["campaign_intro"] and ko["status_demo"].endswith("만드세요.")
    # 4. Ray workers' lines in Korean: device and dtype as labels, the cluster's notice translated
    from adgen.i18n import translate_message
    from adgen.monitor import worker_lines

    worker = {"index": 0, "state": "ready", "device": "cpu", "dtype": "float32", "used": 1e8, "busy": False,
              "host": "h", "pid": 3}
    assert worker_lines([worker], "ko") == ["워커 1: **준비됨** · CPU · 32비트 정밀도 · RAM 95 MB · 호스트 h · pid 3"]
    notice = "the Ray cluster at auto has no GPU: the 2 workers run on CPUs (start AdGen after the GPU nodes joined)"
    assert translate_message(notice, "ko").startswith("auto의 Ray 클러스터에 GPU가 없습니다")
    # 6. Gradio's status announcer finds its strings (it showed "common.complete" as is)
    locales = page_locales()
    assert locales["ko"]["common"]["complete"] == "완료" and locales["en"]["common"]["complete"] == "done"
    assert locales["ko"]["status"]["queue_position"] == "대기 {position}/{size}"


def test_every_ui_string_the_code_asks_for_is_in_both_locales():
    """A key the code looks up but the locales lack shows as the raw key (or fails): scan app.py and adgen/ for
    text("key") and i18n("key") and the f-string families (f"position_{p}")."""
    locales = load_locales()
    keys, families = set(), set()
    for path in [ROOT / "app.py", *sorted((ROOT / "adgen").glob("*.py"))]:
        source = path.read_text(encoding="utf-8")
        # (not a key: studio's local text(name, limit), and 'cli_' + kind, a family)
        keys |= set(re.findall(r"\b(?:text|i18n)\(\s*[\"']([a-z][a-z0-9_]*[a-z0-9])[\"'](?!\s*,\s*\d)(?!\s*\+)",
                               source))
        families |= set(re.findall(r"\b(?:text|i18n)\(\s*f?[\"']([a-z][a-z0-9_]*)(?:\{|[\"']\s*\+)", source))
    keys |= set(re.findall(r'"((?:writer|status)_[a-z_]+)"', (ROOT / "app.py").read_text()))  # keys kept in tables
    assert len(keys) > 100 and {"step_name_", "position_", "rule_", "cli_"} <= families, (len(keys), families)
    from adgen.page import GRADIO_KEYS

    keys |= set(GRADIO_KEYS.values())
    for lang, strings in locales.items():
        missing = sorted(k for k in keys if k not in strings)
        assert not missing, f"{lang}.yaml lacks {missing}"
        for family in families:
            assert any(k.startswith(family) for k in strings), f"{lang}.yaml has no {family}* key"


def test_a_waiting_tabs_estimate_counts_each_waiting_jobs_images():
    from types import SimpleNamespace

    from adgen.page import place_text

    # one job running (ends in 10 s); before us a 4-image job and a 1-image one, at 4 s per image measured
    assert place_text(4, [110.0], [4, 1], 4.0, 100.0, "en") == "you are 4th in line · about 30 s"
    assert place_text(4, [90.0], [4, 1], 4.0, 100.0, "ko") == "대기 4번째 · 약 20초"  # a late job never adds
    # two Ray workers run two jobs at once: the 4-image job takes the slot free in 6 s, the 1-image one the other
    # (free in 10 s, busy 4 s more); ours starts when the first of them ends
    assert place_text(4, [110.0, 106.0], [4, 1], 4.0, 100.0, "en", slots=2) == "you are 4th in line · about 14 s"
    assert place_text(2, [200.0], [1], 4.0, 100.0, "en", slots=2) == "you are 2nd in line · about 4 s"  # one idle
    count, channels, variants = object(), object(), object()
    event = lambda inputs, data: SimpleNamespace(fn=SimpleNamespace(inputs=inputs),  # noqa: E731
                                                data=SimpleNamespace(data=data))
    assert app.images_in(event([variants, count], [2, 3]), count, channels, variants) == 3  # a generation
    assert app.images_in(event([count, variants, channels], [1, 2, list("abc")]), count, channels, variants) == 6
    assert app.images_in(SimpleNamespace(), count, channels, variants) == 1  # a writer's job, or no data yet
    width, height, steps = object(), object(), object()  # a job's time grows with its pixels and steps
    small = event([count, width, height, steps], [2, 512, 512, 4])
    assert app.images_in(small, count, channels, variants, width, height, steps) == 2 * 0.25 * 0.5
    assert app.work_of(1, 2048, 2048, 8) == 4 and app.work_of(3) == 3
    queue = SimpleNamespace(event_queue_per_concurrency_id={"gpu": SimpleNamespace(queue=[
        SimpleNamespace(session_hash="a"), SimpleNamespace(session_hash="b"), SimpleNamespace(session_hash="c")])})
    assert [e.session_hash for e in app.queue_ahead(queue, "c")] == ["a", "b"] and app.queue_ahead(queue, "z") is None


def test_results_are_read_only_and_offer_no_share(engine, tmp_path):
    # the campaign's gallery took uploads (an event reads it back, so Gradio made it editable), and the step views'
    # share icon said "Must be on Spaces to share." in English
    demo = app.build_demo(engine, outputs=tmp_path / "outputs")
    shown = [b for b in demo.blocks.values() if isinstance(b, gr.Image | gr.Gallery)]
    assert {b.elem_id for b in shown} >= {"result", "step-cutout", "gallery", "campaign-gallery"}
    for block in shown:
        assert block.interactive is False and block.buttons is not None and "share" not in block.buttons, block


def test_every_page_job_gives_the_buttons_back_also_when_gradio_refuses_its_inputs(engine, tmp_path):
    # Gradio 6.31's page runs a job's `.then` only when the job ran; a job whose inputs Gradio refused (a number out
    # of its range) ends as a failure, and without a `.failure` step the tab stayed busy (Stop shown, no Generate)
    demo = app.build_demo(engine, outputs=tmp_path / "outputs")
    fns = list(demo.fns.values())
    jobs = [f for f in fns if f.concurrency_id == "gpu" and f.api_visibility == "private"]
    assert len(jobs) >= 7  # Generate, the three redos, Write copy, Enhance prompt, the campaign
    for job in jobs:
        after = [f for f in fns if f.trigger_after == job._id]
        assert any(f.trigger_only_on_failure for f in after), job.name
        assert any(not f.trigger_only_on_failure and not f.trigger_only_on_success for f in after), job.name


def test_the_page_keeps_messages_stop_and_gradios_lines_where_a_phone_user_looks(engine, tmp_path):
    """On a phone Generate brings the result up, and an error (no new result) then its message; Stop floats while
    a job runs; Gradio's English queue line and its announcer are never drawn; images are shown whole."""
    demo = app.build_demo(engine, outputs=tmp_path / "outputs")
    go = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "generate")
    scrolls = [fn.js for fn in demo.fns.values() if fn.js and go._id in [t[0] for t in fn.targets]]
    assert any("#result'" in js for js in scrolls), scrolls
    assert sum(fn.js == app.SHOW_MESSAGE for fn in demo.fns.values()) == 4  # after Generate and each redo
    css = re.sub(r"\s+", " ", app.CSS)
    assert "#stop, #campaign-stop { position: fixed;" in css and ".meta-text, .meta-text-center { display: none" in css
    assert ".sr-only { position: absolute" in css and '[id^="step-"] img' in css
    ids = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    assert isinstance(ids["load-png"], gr.UploadButton)  # one tap, not folded in Advanced › a tab
    assert {"place", "campaign-place", "photo-thumb"} <= set(ids)
    names = [getattr(b, "elem_id", None) for b in demo.blocks.values()]
    assert names.index("campaign-zip") < names.index("campaign-gallery")  # the ZIP with the campaign's result


class PageEvents:
    """One browser tab on the launched page, sending the page's own events as its front end does: a dependency by
    the button that triggers it, then each `.then` after it, over HTTP. Like the page, the tab holds its components'
    values: the defaults at first, then what each job returned (so a `.then` step gets what the page shows)."""

    def __init__(self, served: Served, session: str, lang: str = "en"):
        self.url, self.session, self.demo = served.url, session, served.demo
        self.headers = {"Content-Type": "application/json", "Accept-Language": lang}
        config = served.demo.get_config_file()
        self.deps = {d["id"]: d for d in config["dependencies"]}
        self.values = {c["id"]: c.get("props", {}).get("value") for c in config["components"]}  # this tab's
        self.props: dict[int, dict] = {}  # the other properties events set (interactive, visible, ...)
        self.ids = {c["props"]["elem_id"]: c["id"] for c in config["components"] if c.get("props", {}).get("elem_id")}

    def data(self, dep: dict, values: dict) -> list:
        given = {self.ids[k]: v for k, v in values.items()}
        return [given.get(i, self.values.get(i)) for i in dep["inputs"]]

    def post(self, path: str, body: dict) -> dict:
        import urllib.request

        request = urllib.request.Request(self.url + path, json.dumps({**body, "session_hash": self.session}).encode(),
                                         headers=self.headers)
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def queued(self, button: str, **values):
        """Join the GPU job the button starts; (its event id, the open stream of this tab's messages)."""
        import urllib.request

        first = next(d for d in self.deps.values() if (self.ids[button], "click") in map(tuple, d["targets"])
                     and d["backend_fn"])
        dep = next(d for d in self.deps.values() if d.get("trigger_after") == first["id"])
        event = self.post("gradio_api/queue/join", {"data": self.data(dep, values), "fn_index": dep["id"]})["event_id"]
        return event, urllib.request.urlopen(f"{self.url}gradio_api/queue/data?session_hash={self.session}",
                                             timeout=120)

    @staticmethod
    def until(stream, event: str, msg: str) -> dict:
        for line in stream:
            if line.startswith(b"data: "):
                said = json.loads(line[6:])
                if said.get("event_id") == event and said.get("msg") == msg:
                    return said
        raise AssertionError(f"the stream ended before {msg}")

    def click(self, button: str, **values) -> dict:
        """The button's chain as the page runs it (busy, the GPU job, idle); the GPU job's output."""
        first = next(d for d in self.deps.values() if (self.ids[button], "click") in map(tuple, d["targets"])
                     and d["backend_fn"])
        self.post("gradio_api/run/predict", {"data": self.data(first, values), "fn_index": first["id"]})
        event, stream = self.queued(button, **values)
        with stream:
            output = self.until(stream, event, "process_completed")["output"]
        job = next(d for d in self.deps.values() if d.get("trigger_after") == first["id"])
        self.shown(job, output)
        for then in (d for d in self.deps.values() if d.get("trigger_after") == job["id"] and d["backend_fn"]
                     and not d.get("trigger_only_on_failure")):  # the job ran: its `.failure` steps do not
            self.shown(then, self.post("gradio_api/run/predict", {"data": self.data(then, values),
                                                                  "fn_index": then["id"]}))
        return output

    def shown(self, dep: dict, output: dict) -> None:
        """What an event returned is what the tab's components now hold (an update's `value`, where it has one)."""
        for i, value in zip(dep["outputs"], output.get("data", []), strict=False):
            if isinstance(value, dict) and value.get("__type__") == "update":
                if "value" in value:
                    self.values[i] = value["value"]
                self.props.setdefault(i, {}).update({k: v for k, v in value.items() if k not in ("__type__", "value")})
            else:
                self.values[i] = value


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_what_the_page_shows_stays_within_the_disk_cap(served, monkeypatch):
    """Gradio copies every image the page shows into its own folder: those copies are kept within
    $ADGEN_CACHE_MAX_MB like AdGen's folders, least recently used first, the one on screen kept."""
    monkeypatch.setenv("ADGEN_CACHE_MAX_MB", "1")
    tab, cap, made = PageEvents(served, "disk-tab"), 1024 * 1024, 0
    for _ in range(2):  # a 512x512 noise PNG is ~0.67 MB: two overflow the cap
        output = tab.click("generate", name="탄산수", width=512, height=512, steps=1)
        shown = Path(output["data"][0]["path"])  # the result image, as the page fetches it: Gradio's copy
        made += shown.stat().st_size
        assert shown.is_relative_to(served.gradio) and shown.exists()
        assert folder_bytes(served.gradio) <= cap
    assert made > cap and served.demo.delete_cache == app.DELETE_CACHE  # and Gradio's own age-based clean-up


def test_after_an_ad_with_steps_the_tab_gets_its_buttons_back_with_the_redos_it_can_use(served):
    """The job's end step reads the step views the page shows (images, as Gradio hands them over): every button
    comes back, and each redo can act on the step it redoes (an ad without a photo has no cutout)."""
    tab = PageEvents(served, "steps-tab")
    output = tab.click("generate", name="탄산수", copy="여름 한정", width=256, height=256, steps=1)
    assert output["data"][0] is not None and tab.values[tab.ids["step-background"]] is not None
    state = {name: tab.props[tab.ids[name]] for name in ("generate", "stop", "redo-cutout", "new-background",
                                                          "redo-copy")}
    assert state["generate"]["visible"] is True and state["stop"]["visible"] is False
    assert [state[n]["interactive"] for n in ("redo-cutout", "new-background", "redo-copy")] == [False, True, True]


def test_a_redo_that_would_make_the_same_ad_again_says_why_instead(served):
    """Redo cutout with no mask painted, or New background for a packshot (its backdrop is the same for every
    seed), made the shown ad again from the cache and added a copy to the history; now one line says what to do."""
    tab = PageEvents(served, "same-redo-tab", lang="ko")
    tab.click("redo-cutout", name="탄산수", width=256, height=256, steps=1)
    assert tab.values[tab.ids["message"]].startswith("⚠ 마스크: 마스크가 필요합니다")
    tab.click("new-background", name="탄산수", background="packshot", width=256, height=256, steps=1)
    assert tab.values[tab.ids["message"]].startswith("⚠ 배경: 팩샷 배경은 시드와 상관없이 같습니다")
    assert tab.props[tab.ids["generate"]]["visible"] is True  # and the tab is free again
    # Redo copy with the form's copy already made: that ad is shown again, the history keeps one copy of it (here the
    # older of two ads, while the newer one is shown), and the line says what to change
    job = {"name": "탄산수", "copy": "여름 한정", "width": 256, "height": 256, "steps": 1, "random-seed": False,
           "seed": 7}
    tab.click("generate", **job)
    tab.click("generate", **{**job, "copy": "가을 한정"})
    history = tab.values[tab.ids["gallery"]]
    tab.click("redo-copy", **job)
    assert tab.values[tab.ids["message"]].startswith("ℹ 이미 결과에 있는 광고입니다")
    assert tab.values[tab.ids["gallery"]] == history
    shown = Path(tab.values[tab.ids["result"]]["path"]).read_bytes()
    assert shown == Path(history[1]["image"]["path"]).read_bytes() != Path(history[0]["image"]["path"]).read_bytes()
    tab.click("redo-copy", **{**job, "copy": "겨울 한정"})  # a new copy: a new image, first in the history
    assert tab.values[tab.ids["message"]] == "" and len(tab.values[tab.ids["gallery"]]) == len(history) + 1


def test_a_flood_of_jobs_is_refused_in_the_callers_language(served, monkeypatch):
    """A tab or client has at most $ADGEN_SESSION_JOBS jobs queued or running, and at most $ADGEN_QUEUE_MAX wait:
    one more is refused before it queues, with one line in its language; the others run."""
    import urllib.error

    monkeypatch.setenv("ADGEN_SESSION_JOBS", "1")
    monkeypatch.setenv("ADGEN_QUEUE_MAX", "1")
    job = dict(name="탄산수", width=256, height=256, steps=50)

    def refusal(tab: PageEvents):
        try:
            event, stream = tab.queued("generate", **job)
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())["detail"]
        streams.append(stream)
        return None

    a, streams = PageEvents(served, "flood-a", "ko"), []
    first, a_stream = a.queued("generate", **job)
    streams.append(a_stream)
    try:
        a.until(a_stream, first, "process_starts")  # A's job runs
        mcp = PageEvents(served, "flood-a")  # Gradio's MCP server: every MCP user's call on its one client session
        mcp.headers["x-gradio-user"] = "mcp"
        said = [refusal(tab) for tab in (a, PageEvents(served, "flood-b"), PageEvents(served, "flood-c", "ko"),
                                         PageEvents(served, "flood-d"), mcp)]
    finally:
        for stream in streams:  # the tabs leave: their jobs end at their next step
            stream.close()
    assert said == [
        (400, "이 탭(또는 클라이언트)의 작업이 너무 많습니다(대기·실행 1건, 최대 1건). 하나가 끝난 뒤 다시 시도하세요"),
        None,  # B's job queues behind A's: one waits, so C and D find the queue full
        (400, "대기열이 가득 찼습니다(대기 1건, 최대 1건). 잠시 후 다시 시도하세요"),
        (400, "the queue is full (1 waiting, at most 1): try again in a minute"),
        (400, "the queue is full (1 waiting, at most 1): try again in a minute")]  # MCP: no per-session share
    assert served.demo._queue.max_size == 64  # Gradio's own limit (every event): a backstop above the GPU's 32


def test_each_new_session_leaves_nothing_behind_beyond_the_cap(served, monkeypatch):
    """Gradio keeps a copy of the page's configuration per session (10,000 by default): on a public page every
    visitor is a new session, so the server keeps at most $ADGEN_MAX_SESSIONS (8 here), least recently used
    dropped first; AdGen's own per-job records are empty once the jobs end."""
    holder = served.demo.server_app.state_holder
    status = next(d for d in served.demo.get_config_file()["dependencies"]
                  if any(t[1] == "load" for t in d["targets"]) and d["backend_fn"] and not d["inputs"])
    for n in range(12):
        PageEvents(served, f"visitor-{n}").post("gradio_api/run/predict", {"data": [], "fn_index": status["id"]})
    assert holder.capacity == 8 and len(holder.session_data) <= 8 and "visitor-11" in holder.session_data
    assert not served.demo.handlers._running and not served.engine.jobs.running()
    monkeypatch.delenv("ADGEN_MAX_SESSIONS")
    assert app.max_sessions() == 256  # the default


def test_a_public_status_names_no_host_process_or_server_path(engine, tmp_path):
    """On a public launch (a Space, a share link, a bind beyond loopback) the status line and its details show no
    server path, address, host name or process id; a local launch still shows them to its operator."""
    from adgen.errors import ModelError
    from adgen.monitor import public_view, worker_lines
    from adgen.page import is_public

    def broken():
        raise ModelError("model: cannot read /srv/models/zit/model.safetensors (Permission denied)")

    from adgen.studio import Studio

    failed = app.Handlers(Studio(broken, tmp_path), admin=False)
    with pytest.raises(ModelError):
        failed.studio.slot.get()
    assert failed.status()[0] == "⚠ AdGen could not start: model: cannot read … (Permission denied)"
    engine.source = dataclasses.replace(engine.source, label="/srv/models/zit")  # a local model folder
    engine.error = "loading /srv/models/zit failed: 10.0.0.7:6379 refused (pid 4242)"
    public, local = app.Handlers(Studio(engine, tmp_path), admin=False), app.Handlers(Studio(engine, tmp_path), True)
    said = {"public": "".join(public.status()), "local": "".join(local.status())}
    assert "last error: loading … failed: … refused (…)" in said["public"]
    assert all(private not in said["public"] and private in said["local"] for private in ("/srv", "10.0.0.7", "4242"))
    for request in PROXIED:  # a local launch behind nginx or a tunnel: its visitors see the public status
        assert not any(private in "".join(local.status(request=request)) for private in ("/srv", "10.0.0.7", "4242"))
    assert public_view({"model": "/srv/models/zit"})["model"] == "zit"  # a local model folder: its name only
    worker = {"index": 0, "state": "ready", "device": "cuda", "gpu": "NVIDIA L4", "dtype": "bfloat16", "used": 2**30,
              "total": 2**34, "host": "gpu-node-7", "pid": 4242}
    assert worker_lines(public_view({"workers": [worker]})["workers"], "ko") == [
        "워커 1: **준비됨** · NVIDIA L4 · bf16 정밀도 · VRAM 1.0/16 GB"]  # the dtype as its label
    assert "gpu-node-7" in worker_lines([worker])[0]  # the operator's own page
    assert [is_public(*launch, environ=env) for launch, env in (
        (("127.0.0.1", False), {}), (("0.0.0.0", False), {}), (("127.0.0.1", True), {}),
        (("127.0.0.1", False), {"SPACE_ID": "team/adgen"}), (("localhost", False), {}))] == [
        False, True, True, True, False]


def test_a_gradio_without_the_insides_the_limits_read_stops_the_launch_in_one_line(engine, tmp_path, monkeypatch):
    """The limits, the queue place and the disk cap read Gradio's queue and file sets leniently: a Gradio without
    them would silently turn them off, so the launch refuses it instead, naming what is missing."""
    demo = app.build_demo(engine, outputs=tmp_path / "outputs")
    demo.queue()
    app.check_gradio(demo)  # this Gradio has them all
    monkeypatch.setattr(demo._queue, "push", lambda event: None)  # another signature
    with pytest.raises(SystemExit, match=r"^error: gradio .* has no queue.push\('body', 'request', 'username'\)"):
        app.check_gradio(demo)
    monkeypatch.undo()
    monkeypatch.delattr(demo, "temp_file_sets")
    with pytest.raises(SystemExit, match=r"has no demo.temp_file_sets as AdGen's queue limits and disk cap use it"):
        app.check_gradio(demo)


def test_downloads_made_by_two_tabs_at_once_keep_their_names(tmp_path, monkeypatch):
    # each tab's download prunes the oldest links; two pruning at once must not cost either its named file
    import threading
    from types import SimpleNamespace

    monkeypatch.setattr(app, "DOWNLOADS_KEPT", 4)
    images = []
    for seed in range(40):
        png = tmp_path / f"adgen-{seed}-{seed:08x}.png"
        png.write_bytes(b"png %d" % seed)
        images.append(SimpleNamespace(path=str(png), seed=seed))
    fallbacks = []

    def tab(order):
        for entry in order * 5:
            shown = app.named_download(entry, "탄산수")
            if Path(shown).name.startswith("adgen-"):
                fallbacks.append(shown)

    tabs = [threading.Thread(target=tab, args=(images,)), threading.Thread(target=tab, args=(images[::-1],))]
    for t in tabs:
        t.start()
    for t in tabs:
        t.join()
    assert fallbacks == []
    assert len(list((tmp_path / "downloads").iterdir())) <= 4 + 2  # pruned (each tab may be one ahead)
