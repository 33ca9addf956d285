"""Which model runs: safetensors only, and `auto` on a GPU machine downloading ZIT (or saying why not)."""

import shutil
import threading

import pytest
import torch
from safetensors.torch import load_file

from adgen.engine import Engine
from adgen.errors import ModelError
from adgen.models import ZIT_REPO, resolve_model

from conftest import small


def test_a_pickled_weight_file_is_refused_clearly(demo_source, tmp_path, product):
    folder = tmp_path / "pickled"
    shutil.copytree(demo_source.path, folder)
    weights = folder / "vae" / "diffusion_pytorch_model.safetensors"
    torch.save(load_file(weights), folder / "vae" / "diffusion_pytorch_model.bin")
    weights.unlink()
    engine = Engine(resolve_model(str(folder)), cache=None, device="cpu")
    with pytest.raises(ModelError, match=r"vae/diffusion_pytorch_model\.bin is a pickled weight file; AdGen loads "
                                         r"only \.safetensors"):
        engine.generate(small(product, steps=1))
    assert engine.loads == 0 and engine.state == "error"


def test_a_pickle_beside_safetensors_is_never_read(demo_source, tmp_path, product):
    folder = tmp_path / "both"
    shutil.copytree(demo_source.path, folder)
    (folder / "vae" / "diffusion_pytorch_model.bin").write_bytes(b"not even a pickle")  # would fail if read
    image = Engine(resolve_model(str(folder)), cache=None, device="cpu").generate(small(product, steps=1))
    assert image.images[0].png


def test_auto_on_a_cpu_stays_with_the_demo_model():
    source = Engine("auto", cache=None, device="cpu").source
    assert source.is_demo and source.repo_id is None


def test_auto_on_a_gpu_downloads_zit_and_a_failed_download_runs_the_demo_model_visibly(product):
    """A fresh GPU Space: `auto` fetches ZIT; offline here, so it says why and runs the demo model."""
    engine = Engine("auto", cache=None, device="cpu", download=True)  # download=True: what CUDA implies
    assert engine.source.label == ZIT_REPO and engine.source.path is None and engine.source.fallback
    result = engine.generate(small(product, steps=1))
    assert result.demo and result.model == "demo model (random weights)"
    notice = engine.describe()["notice"]
    assert f"cannot download {ZIT_REPO}" in notice and "running the demo model instead" in notice
    assert engine.describe()["download"].startswith(f"download of {ZIT_REPO}: failed")
    from adgen.monitor import render, snapshot

    assert "running the demo model instead" in render(snapshot(engine.device), engine.describe())


def test_an_explicit_repo_that_cannot_download_is_an_error_not_a_fallback(product):
    engine = Engine("someone/missing-model", cache=None, device="cpu")
    with pytest.raises(ModelError, match="model: cannot download someone/missing-model"):
        engine.generate(small(product, steps=1))


def test_the_panel_never_waits_for_a_download_or_a_load(demo_source):
    """describe() and the non-waiting forecast return while a download holds the source lock."""
    engine = Engine("auto", cache=None, device="cpu", download=True)
    answers = []
    with engine._source_lock, engine._load_lock:  # as if a download (and the load after it) were running
        thread = threading.Thread(target=lambda: answers.append((engine.describe(),
                                                                  engine.forecast(1024, 1024, wait=False))))
        thread.start()
        thread.join(5)
    assert answers and answers[0][1] is None and answers[0][0]["model"] == ZIT_REPO


def test_a_request_during_the_model_download_fails_fast_and_says_why(product):
    """A fresh GPU Space: requests while 33 GB download get a clear line, never a parked worker."""
    from adgen.models import Download

    engine = Engine("auto", cache=None, device="cpu", download=True)
    engine.download = Download(ZIT_REPO)
    engine.download.state, engine.download.done, engine.download.total = "downloading", 7 * 10**9, 33 * 10**9
    with pytest.raises(ModelError, match=r"model: downloading Tongyi-MAI/Z-Image-Turbo: 7\.0 of 33\.0 GB \(21%\); "
                                         "generation starts when it is done"):
        engine.generate(small(product, steps=1))
    assert engine.loads == 0 and engine.runs == 0
