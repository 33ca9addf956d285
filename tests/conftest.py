"""Shared fixtures: the embedded demo model (built once per session) and fresh engines on it.

Every test runs with its own AdGen cache and an empty, offline Hugging Face cache, so a real
Z-Image-Turbo in the developer's cache is never picked up and nothing reaches the network.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adgen.cache import ResultCache  # noqa: E402
from adgen.engine import Engine  # noqa: E402
from adgen.models import quiet_libraries, resolve_model  # noqa: E402
from adgen.presets import load_presets  # noqa: E402
from adgen.request import AdRequest, Product  # noqa: E402

quiet_libraries()

if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):  # `-n N`: the cores shared out, not every worker on all of them
    import torch

    threads = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)  # the CLIs the tests start use as many (threads are in a cache key)

# Under `-n N` the files go to the workers in this order: the longest first, so no long one is left for the end.
LONGEST_FIRST = ("test_workers.py", "test_app.py", "test_browser.py", "test_writer.py", "test_cli_write.py",
                 "test_bench_gpu.py", "test_mcp.py", "test_engine.py", "test_robustness.py", "test_bench.py")


def pytest_collection_modifyitems(items):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        first = {name: n for n, name in enumerate(LONGEST_FIRST)}
        items.sort(key=lambda item: first.get(item.path.name, len(first)))  # stable: each file's own order kept


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory) -> Path:
    """A cache folder holding the demo model, built once for the whole session."""
    folder = tmp_path_factory.mktemp("adgen-cache")
    resolve_model("demo", cache=folder)
    return folder


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path, demo_cache):
    monkeypatch.setenv("ADGEN_CACHE_DIR", str(demo_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-empty"))
    monkeypatch.delenv("ADGEN_MODEL", raising=False)
    monkeypatch.delenv("ADGEN_LORA_DIR", raising=False)
    monkeypatch.delenv("ADGEN_PRESETS_DIR", raising=False)
    monkeypatch.delenv("ADGEN_QUANTIZE", raising=False)


@pytest.fixture
def demo_source(demo_cache):
    return resolve_model("demo", cache=demo_cache)


@pytest.fixture
def cache(tmp_path) -> ResultCache:
    return ResultCache(tmp_path / "results")


@pytest.fixture
def engine(demo_source, cache) -> Engine:
    """A fresh engine on the demo model with an empty result cache."""
    return Engine(demo_source, cache=cache, presets=load_presets(), device="cpu")


@pytest.fixture
def product() -> Product:
    return Product(name="탄산수 Citrus Sparkling Water", category="drink", features="lemon, zero sugar",
                   audience="office workers", scene="summer picnic", colors="mint and white",
                   copy="여름 한정 30% 할인!")


def small(product: Product, **changes) -> AdRequest:
    """A fast request (256x256) with a fixed seed unless given."""
    fields = dict(product=product, seed=42, width=256, height=256)
    fields.update(changes)
    return AdRequest(**fields)


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


@pytest.fixture
def short_writer(monkeypatch, tmp_path):
    """The writer's own instructions with a 16-token budget and 2 tries: the demo model's random weights answer
    junk at any length, and a full budget (up to 1,200 tokens a job) would cost seconds per test. With Ray
    workers the front end plans the job (instructions included), so the short budget reaches them too."""
    import yaml

    import adgen.writer

    folder = tmp_path / "writer"
    folder.mkdir()
    for path in adgen.writer.WRITER_DIR.glob("*.yaml"):
        data = {**yaml.safe_load(path.read_text(encoding="utf-8")), "max_new_tokens": 16, "tries": 2}
        (folder / path.name).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    monkeypatch.setattr(adgen.writer, "WRITER_DIR", folder)
