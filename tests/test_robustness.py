"""Concurrent users, disconnects, crashes during cache writes, file serving, and hostile input."""

import os
import re
import signal
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.utils import Status
from PIL import Image

from adgen.cache import ResultCache
from adgen.engine import Engine
from adgen.form import AdForm

import app
from conftest import ROOT, small
from test_app import FORM, FakeProgress, free_port

NOT_IMAGE = "product photo: is not a readable image (AdGen reads PNG, JPEG, WebP, HEIC/HEIF, AVIF)"


class RecordingEngine(Engine):
    """The real engine, noting the order in which requests reach it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.order: list[int] = []

    def generate(self, request, *args, **kwargs):
        self.order.append(request.seed)
        return super().generate(request, *args, **kwargs)


@pytest.fixture
def server(demo_source, tmp_path):
    engine = RecordingEngine(demo_source, cache=ResultCache(tmp_path / "results"), device="cpu")
    outputs = tmp_path / "outputs"
    demo = app.build_demo(engine, outputs=outputs, admin=False)
    port = free_port()
    app.launch(demo, server_name="127.0.0.1", server_port=port, quiet=True, prevent_thread_lock=True,
               allowed_paths=[str(outputs)])
    yield f"http://127.0.0.1:{port}/", engine, outputs
    demo.close()


API_FORM = dict(name=FORM.name, category=FORM.category, features=FORM.features, seed=FORM.seed, width=256,
                height=256, steps=2, count=1)


def call(client: Client, **changes) -> dict:
    """The typed API: only the fields given, the rest the page's defaults; returns its JSON summary."""
    return client.predict(**{**API_FORM, **changes}, api_name="/generate")


def test_eight_clients_three_requests_each_in_order_and_identical_to_alone(server, demo_source, tmp_path):
    url, engine, _ = server
    clients = [Client(url, verbose=False) for _ in range(8)]
    jobs = []
    for round_ in range(3):  # client c's request r has seed 100 + 10 * c + r
        for c, client in enumerate(clients):
            seed = 100 + 10 * c + round_
            job = client.submit(**{**API_FORM, "count": 1, "steps": 2, "seed": seed}, api_name="/generate")
            jobs.append((seed, job))
            while job.status().code in (Status.STARTING, Status.JOINING_QUEUE):  # in the queue before the next
                time.sleep(0.005)
    results = {seed: job.result(timeout=300) for seed, job in jobs}
    assert len(results) == 24
    assert engine.order == [seed for seed, _ in jobs]  # one GPU queue, first come first served
    alone = Engine(demo_source, cache=None, device="cpu")
    for seed in (100, 131, 172):
        expected = alone.generate(small(app_product(), seed=seed, steps=2)).images[0].png
        assert Path(results[seed]["images"][0]).read_bytes() == expected


def app_product():
    from adgen.request import Product

    return Product(FORM.name, FORM.category, FORM.features)


def test_a_client_that_disconnects_mid_run_does_not_block_the_queue(server):
    url, engine, _ = server
    leaving = Client(url, verbose=False)
    job = leaving.submit(**{**API_FORM, "count": 4, "width": 1024, "height": 1024, "steps": 8, "seed": 1},
                         api_name="/generate")
    deadline = time.time() + 60
    while engine.runs == 0 and time.time() < deadline:
        time.sleep(0.05)
    job.cancel()
    leaving.close()
    staying = Client(url, verbose=False)
    summary = call(staying, seed=2, steps=1)
    assert Image.open(summary["images"][0]).size == (256, 256)
    # The cancelled job ended at its next step: not the other three 1024x1024 images before serving the next
    assert engine.runs == 2 and engine.order == [1, 2]


WRITER = """
import sys
sys.path.insert(0, {root!r})
from test_metadata import raw_png
from adgen.cache import ResultCache
cache = ResultCache({folder!r})
filler = "x" * 3_000_000  # big entries: the kill lands inside writes
print("ready", flush=True)
i = 0
while True:
    key = f"{{i:064x}}"
    cache.put(key, raw_png({{"adgen": 1, "key": key, "filler": filler}}))
    i += 1
"""


@pytest.mark.parametrize("delay", [0.3, 0.7, 1.1])
def test_sigkill_during_cache_writes_never_leaves_a_corrupt_entry(tmp_path, delay):
    folder = tmp_path / "cache"
    script = WRITER.format(root=str(ROOT / "tests"), folder=str(folder))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"})
    assert proc.stdout.readline().strip() == b"ready"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cache = ResultCache(folder)  # "after restart"
    entries = list(folder.glob("*/*.png"))
    assert entries, "the writer wrote nothing before the kill"
    for path in entries:
        data = cache.get(path.stem)
        assert data is not None and data == path.read_bytes()  # every visible entry is whole
    # A write cut short leaves only a `.tmp-*` file, which no key names (stale ones are swept by evict).


def test_gradio_serves_no_file_outside_adgens_outputs(server):
    url, engine, outputs = server
    call(Client(url, verbose=False), seed=3, steps=1)
    produced = next(outputs.glob("*.png"))
    for path in ("/etc/passwd", str(ROOT / "app.py"), str(ROOT / "adgen" / "engine.py"), "../../../etc/passwd"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}gradio_api/file={path}", timeout=10)
        assert refused.value.code in (403, 404), path
    with urllib.request.urlopen(f"{url}gradio_api/file={produced}", timeout=10) as response:
        assert response.status == 200 and response.read()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- hostile input: each gets a clear error, no traceback, nothing written, the app keeps serving ----

def png_bomb(side: int = 30000) -> bytes:
    """A tiny PNG that claims side x side pixels (a decompression bomb)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (side // 8 + 1) * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def files(tmp_path: Path) -> dict[str, str]:
    made = {
        "bomb": png_bomb(),
        "corrupt": b"\x89PNG\r\n\x1a\n" + os.urandom(2000),
        "text": b"just some text, not an image",
        "elf": Path(sys.executable).read_bytes()[:4096],
        "huge": b"\x89PNG\r\n\x1a\n" + b"\0" * (21 * 1024 * 1024),
        "empty": b"",
    }
    paths = {}
    for name, data in made.items():
        paths[name] = str(tmp_path / f"{name}.png")
        Path(paths[name]).write_bytes(data)
    return paths


HOSTILE = [  # (form changes, what the error says)
    ({"width": 0}, "width: must be from 256 to 2048"),
    ({"width": -16}, "width: must be from 256 to 2048"),
    ({"width": 10**9}, "width: must be from 256 to 2048"),
    ({"width": 512.5}, "width: must be a whole number"),
    ({"width": float("nan")}, "width: must be a whole number"),
    ({"height": 1000}, "height: must be a multiple of 16"),
    ({"seed": -1}, "seed: must be from 0 to 4294967295"),
    ({"seed": 2**64}, "seed: must be from 0 to 4294967295"),
    ({"seed": "abc"}, "seed: must be a whole number"),
    ({"count": 0}, "image count: must be from 1 to 4"),
    ({"count": 100}, "image count: must be from 1 to 4"),
    ({"steps": 0}, "steps: must be from 1 to 50"),
    ({"steps": 10**6}, "steps: must be from 1 to 50"),
    ({"lora_scale": 1e9, "style": "anime"}, "LoRA scale: must be from 0.0 to 2.0"),
    ({"lora_scale": -1, "style": "anime"}, "LoRA scale: must be from 0.0 to 2.0"),
    ({"photo": "{bomb}"}, "product photo: is too large to decode safely; at most 40 megapixels"),
    ({"photo": "{corrupt}"}, NOT_IMAGE),
    ({"photo": "{text}"}, NOT_IMAGE),
    ({"photo": "{elf}"}, NOT_IMAGE),
    ({"photo": "{huge}"}, "product photo: file is 21.0 MB; at most 20 MB allowed"),
    ({"photo": "{empty}"}, NOT_IMAGE),
    ({"photo": "/etc/passwd"}, NOT_IMAGE),
    ({"style": "../../etc/passwd"}, "preset: must be a preset name"),
    ({"style": "photo/../anime"}, "preset: must be a preset name"),
    ({"style": "nope"}, "preset: unknown style 'nope'"),
    ({"prompt": "x" * 100_000}, "prompt: must be at most 4000 characters"),
    ({"copy": "가" * 100_000}, "ad copy: must be at most 500 characters"),
    ({"name": "bad\x00name"}, "product name: must not contain control characters (found U+0000)"),
    ({"name": "\x1b[31mred"}, "product name: must not contain control characters (found U+001B)"),
    ({"features": "a\x07b"}, "key features: must not contain control characters"),
    ({"name": ""}, "product name: must not be empty"),
    ({"name": "\u200b \t"}, "product name: must not be empty"),
    ({"copy": "귤 🍊"}, "ad copy: the copy font has no glyph"),
    ({"copy": "a", "text_style": "../etc"}, "text style: unknown '../etc'"),
    ({"copy": "a", "text_position": "../../x"}, "text position: must be one of auto, top, center, bottom"),
    ({"copy": "a", "background": "hack"}, "background: must be one of inpaint, t2i, packshot"),
    ({"copy": "a", "place_x": 5}, "placement x: must be from 0.0 to 1.0"),
    ({"subcopy": "\x7f"}, "sub-copy: must not contain control characters"),
]


@pytest.mark.parametrize(("changes", "says"), HOSTILE, ids=[s.split(":")[0] + f"-{i}" for i, (_, s) in
                                                            enumerate(HOSTILE)])
def test_hostile_input_through_the_ui(handlers_factory, tmp_path, changes, says):
    handlers, outputs, cache = handlers_factory
    paths = files(tmp_path)
    changes = {k: (v.format(**paths) if isinstance(v, str) and v.startswith("{") else v) for k, v in changes.items()}
    shown = handlers.generate(AdForm.of({**FORM.fields(), **changes}), progress=FakeProgress())
    assert set(shown) == {"message"} and says in shown["message"] and "Traceback" not in shown["message"]
    assert not outputs.exists() and cache.size_bytes() == 0  # nothing written
    assert handlers.generate(FORM, progress=FakeProgress())["image"]  # and the app keeps serving


@pytest.fixture
def handlers_factory(demo_source, tmp_path):
    cache = ResultCache(tmp_path / "results")
    engine = Engine(demo_source, cache=cache, device="cpu")
    outputs = tmp_path / "outputs"
    return app.build_demo(engine, outputs=outputs).handlers, outputs, cache


def test_hostile_input_over_http_gets_clear_errors_and_the_server_keeps_serving(server, tmp_path):
    url, engine, _ = server
    client = Client(url, verbose=False)
    for changes, says in [({"width": 1000}, "width: must be a multiple of 16"),
                          ({"style": "../../etc/passwd"}, "preset: must be a preset name"),
                          ({"name": "x\x00"}, "control characters"), ({"prompt": "p" * 10_000}, "at most 4000")]:
        with pytest.raises(Exception, match=re.escape(says)):
            call(client, **changes)
    paths = files(tmp_path)
    for name, says in [("bomb", "product photo: is too large to decode safely"),
                       ("text", "product photo: is not a readable image"), ("huge", "at most 20 MB")]:
        with pytest.raises(Exception, match=re.escape(says)):
            call(client, photo=handle_file(paths[name]))
    body = b'{"data": [1, 2, 3]}'  # the wrong number of fields, posted by hand
    request = urllib.request.Request(f"{url}gradio_api/call/generate", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=10).read()
    except urllib.error.HTTPError as refused:
        assert refused.code < 500
    assert Image.open(call(client, seed=9, steps=1)["images"][0]).size == (256, 256)


CLI_HOSTILE = [
    (["--size", "0x0"], "--size (width): must be from 256 to 2048"),
    (["--size", "99999999999x16"], "--size (width): must be from 256 to 2048"),
    (["--seed", "18446744073709551616"], "--seed: must be from 0 to 4294967295"),
    (["--count", "-3"], "--count: must be from 1 to 8"),
    (["--steps", "1e9"], "--steps: must be a whole number"),
    (["--preset", "../../../etc/passwd"], "--preset: must be a preset name"),
    (["--image", "{bomb}"], "--image: is too large to decode safely; at most 40 megapixels"),
    (["--image", "{elf}"], "--image: is not a readable image"),
    (["--image", "{huge}"], "--image: file is 21.0 MB; at most 20 MB allowed"),
    (["--prompt", "p" * 100_000], "--prompt: must be at most 4000 characters"),
    (["--copy", "c" * 100_000], "--copy: must be at most 500 characters"),
    (["--features", "\x1b]0;pwned\x07"], "--features: must not contain control characters"),
    (["--text-position", "../x", "--copy", "a"], "--text-position: must be one of"),
    (["--memory", "all"], "--memory: must be one of auto, gpu, offload, lowvram"),
    (["--unknown-field", "1"], "error: unrecognized arguments: --unknown-field 1"),
]


@pytest.mark.parametrize(("args", "says"), CLI_HOSTILE)
def test_hostile_input_through_the_cli(tmp_path, capsys, demo_cache, args, says):
    from test_cli import exit_code

    paths = files(tmp_path)
    args = [a.format(**paths) if a.startswith("{") else a for a in args]
    before = sorted(demo_cache.rglob("*"))
    assert exit_code(["generate", "--product", "x", *args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() and sorted(demo_cache.rglob("*")) == before
