"""The engine on the embedded demo pipeline, for real: determinism, cache, styles, stop, unload.

Every test here runs twice: in float32 and in bfloat16 (the dtype AdGen runs in on a GPU).
"""

import gc
import shutil
import threading
import weakref

import numpy as np
import pytest
import torch
from diffusers import ZImagePipeline
from safetensors.torch import load_file, save_file

from adgen.engine import Engine
from adgen.errors import GenerationStopped, InputError
from adgen.jobs import Job
from adgen.metadata import read_params
from adgen.models import resolve_model
from adgen.presets import load_presets

from conftest import pixels, small


@pytest.fixture(params=["float32", "bfloat16"])
def dtype(request) -> str:
    return request.param


@pytest.fixture
def engine(demo_source, cache, dtype) -> Engine:
    """A fresh engine on the demo model, in float32 and in bfloat16."""
    return Engine(demo_source, cache=cache, presets=load_presets(), device="cpu", dtype=dtype)


def test_same_request_gives_identical_bytes(engine, demo_source, tmp_path, product, dtype):
    first = engine.generate(small(product, count=2), use_cache=False)
    other = Engine(demo_source, cache=None, device="cpu", dtype=dtype)  # a second process would build this afresh
    second = other.generate(small(product, count=2))
    assert [i.png for i in first.images] == [i.png for i in second.images]
    assert first.images[0].png != first.images[1].png  # image i uses seed + i
    assert [i.seed for i in first.images] == [42, 43]


def test_image_i_equals_image_zero_of_seed_plus_i_and_variation_plus_i(engine, product):
    batch = engine.generate(small(product, seed=10, count=3), use_cache=False)
    third = engine.generate(small(product, seed=12, variation=2), use_cache=False)
    assert batch.images[2].png == third.images[0].png


def test_the_images_of_one_request_have_different_scenes_unless_same_scene(engine, product):
    """ZIT varies little across seeds: image i uses the preset's scene variation i, recorded in its PNG."""
    varied = engine.generate(small(product, seed=10, count=4))
    prompts = [p.prompt for p in varied.images]
    assert len(set(prompts)) == 4 and [p.variation for p in varied.images] == [0, 1, 2, 3]
    assert [read_params(p.png)["prompt"] for p in varied.images] == prompts
    same = engine.generate(small(product, seed=10, count=4, same_scene=True))
    assert len({p.prompt for p in same.images}) == 1 and same.images[0].variation is None
    assert read_params(same.images[0].png)["same_scene"] is True
    assert "Setting:" not in same.prompt and "Setting:" in varied.prompt


def test_a_cache_hit_never_touches_the_pipeline(engine, demo_source, cache, product, dtype):
    made = engine.generate(small(product, count=2))
    assert [i.cached for i in made.images] == [False, False]
    fresh = Engine(demo_source, cache=cache, device="cpu", dtype=dtype)
    hit = fresh.generate(small(product, count=2))
    assert [i.cached for i in hit.images] == [True, True]
    assert [i.png for i in hit.images] == [i.png for i in made.images]
    assert (fresh.loads, fresh.runs, fresh.encodes) == (0, 0, 0)
    assert fresh.state == "unloaded"
    partial = fresh.generate(small(product, count=3))  # seeds 42, 43 cached; 44 is new
    assert [i.cached for i in partial.images] == [True, True, False] and fresh.runs == 1


def test_a_damaged_cache_entry_is_regenerated(engine, cache, product):
    made = engine.generate(small(product)).images[0]
    cache.path(made.key).write_bytes(made.png[:100])
    again = engine.generate(small(product)).images[0]
    assert not again.cached and again.png == made.png
    assert cache.get(made.key) == made.png


def test_style_switch_changes_the_image_without_reloading_the_model(engine, product):
    fixed = dict(prompt="one prompt for every style")
    photo = engine.generate(small(product, preset="photo", **fixed)).images[0]
    anime = engine.generate(small(product, preset="anime", **fixed)).images[0]
    semi = engine.generate(small(product, preset="semi_realistic", **fixed)).images[0]
    back = engine.generate(small(product, preset="photo", **fixed), use_cache=False).images[0]
    anime_again = engine.generate(small(product, preset="anime", **fixed), use_cache=False).images[0]
    assert len({photo.png, anime.png, semi.png}) == 3
    assert back.png == photo.png and anime_again.png == anime.png
    assert engine.loads == 1  # the base model was loaded once
    assert engine.lora_loads == 2 and sorted(engine.loaded_loras) == ["anime", "semi_realistic"]
    assert engine.encodes == 1  # same prompt: the text encoder ran once


def test_lora_scale_zero_equals_no_lora(engine, product):
    fixed = dict(prompt="one prompt for every style")
    none = engine.generate(small(product, preset="photo", **fixed)).images[0]
    zero = engine.generate(small(product, preset="anime", lora_scale=0.0, **fixed)).images[0]
    half = engine.generate(small(product, preset="anime", lora_scale=0.5, **fixed)).images[0]
    assert np.array_equal(pixels(zero.png), pixels(none.png))
    assert not np.array_equal(pixels(half.png), pixels(none.png))
    assert zero.key != none.key  # different settings, different cache entries


def test_a_changed_model_misses_the_cache(engine, demo_source, cache, tmp_path, product, dtype):
    first = engine.generate(small(product)).images[0]
    copy = tmp_path / "changed-model"
    shutil.copytree(demo_source.path, copy)
    weights = copy / "vae" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(weights)
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] + 0.01
    save_file(tensors, weights, metadata={"format": "pt"})
    changed = Engine(resolve_model(str(copy)), cache=cache, device="cpu", dtype=dtype)
    assert changed.model_fingerprint() != engine.model_fingerprint()
    second = changed.generate(small(product)).images[0]
    assert not second.cached and second.key != first.key


def test_a_changed_lora_file_misses_the_cache_and_reloads(engine, product):
    first = engine.generate(small(product, preset="anime")).images[0]
    lora = engine.source.path / "loras" / "anime.safetensors"
    original = lora.read_bytes()
    try:
        tensors = load_file(lora)
        tensors = {k: v * 2 for k, v in tensors.items()}
        save_file(tensors, lora, metadata={"format": "pt"})
        second = engine.generate(small(product, preset="anime")).images[0]
    finally:
        lora.write_bytes(original)
    assert not second.cached and second.key != first.key and second.png != first.png
    assert engine.lora_loads == 2 and engine.loads == 1


def test_every_supported_size_up_to_2048(engine, product):
    largest = [(2048, 2048)] if engine.dtype == torch.float32 else []  # the area's limit once: 4 s on 2 cores
    for width, height in [*largest, (2048, 256), (256, 2048), (720, 1280)]:
        image = engine.generate(small(product, width=width, height=height, steps=1), use_cache=False).images[0]
        assert pixels(image.png).shape == (height, width, 3)


def test_progress_is_reported_per_step_and_stop_ends_the_run(engine, product):
    seen = []
    engine.generate(small(product, count=2, steps=3), progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 6), (2, 6), (3, 6), (4, 6), (5, 6), (6, 6)]

    job = Job("tab-1")

    def stop_at_two(done, total):
        if done == 2:
            assert engine.stop("tab-1") == 1

    with pytest.raises(GenerationStopped) as stopped:
        engine.generate(small(product, seed=7, steps=8), progress=stop_at_two, job=job)
    assert (stopped.value.step, stopped.value.total) == (2, 8)
    assert str(stopped.value) == "generation stopped by the user after step 2 of 8"
    after = engine.generate(small(product, seed=7, steps=8))  # the next run works and runs fully
    assert not after.images[0].cached and engine.cache.get(after.images[0].key) is not None


def test_concurrent_first_requests_load_the_model_once(demo_source, cache, product, dtype):
    engine = Engine(demo_source, cache=cache, device="cpu", dtype=dtype)
    results, errors = [], []

    def run(seed):
        try:
            results.append(engine.generate(small(product, seed=seed, steps=2)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4 and engine.loads == 1


def test_img2img_shares_the_loaded_weights(engine, product):
    photo = engine.generate(small(product)).images[0].png
    out = engine.generate(small(product, image=photo, strength=0.5)).images[0]
    assert engine._img2img.transformer is engine._pipe.transformer
    assert engine._img2img.text_encoder is engine._pipe.text_encoder
    assert engine.loads == 1 and pixels(out.png).shape == (256, 256, 3)
    other = engine.generate(small(product, image=photo, strength=0.9)).images[0]
    assert other.key != out.key


def test_unload_frees_the_pipeline(engine, product):
    engine.generate(small(product, steps=1))
    ref = weakref.ref(engine._pipe.transformer)
    engine.unload()
    gc.collect()
    assert ref() is None and engine.state == "unloaded" and engine.loaded_loras == []
    engine.generate(small(product, steps=1, seed=9))
    assert engine.loads == 2 and engine.state == "ready"


def test_unknown_preset_and_escaping_lora_fail_before_any_work(engine, demo_source, tmp_path, monkeypatch, product):
    with pytest.raises(InputError, match="unknown style 'nope'"):
        engine.generate(small(product, preset="nope"))
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "sneaky.yaml").write_text("label: S\nlabel_ko: 에스\ndescription: d\ndescription_ko: 디\n"
                                                "prompt: '{subject}'\nlora: {file: link.safetensors}\n")
    loras = tmp_path / "loras"
    loras.mkdir()
    (loras / "link.safetensors").symlink_to("/etc/hostname")
    monkeypatch.setenv("ADGEN_LORA_DIR", str(loras))
    sneaky = Engine(demo_source, cache=None, presets=load_presets(tmp_path / "p"), device="cpu")
    with pytest.raises(InputError, match="outside the allowed LoRA folders"):
        sneaky.generate(small(product, preset="sneaky"))
    assert engine.runs == 0 and sneaky.loads == 0


def test_the_demo_model_loads_with_from_pretrained_from_its_folder(demo_source):
    pipe = ZImagePipeline.from_pretrained(demo_source.path)
    assert type(pipe.transformer).__name__ == "ZImageTransformer2DModel"
    assert type(pipe.text_encoder).__name__ == "Qwen3Model"
    assert type(pipe.tokenizer).__name__ == "Qwen2Tokenizer"
    assert pipe.vae.config.latent_channels == 16 and pipe.vae_scale_factor == 8
    assert pipe.scheduler.config.shift == 3.0 and pipe.scheduler.config.use_dynamic_shifting is False
    image = pipe("빨간 사과", height=256, width=256, num_inference_steps=2, guidance_scale=0.0).images[0]
    assert image.size == (256, 256)


def test_a_cache_hit_is_served_while_the_model_is_still_loading(engine, demo_source, cache, product, dtype):
    engine.generate(small(product))
    loading = Engine(demo_source, cache=cache, device="cpu", dtype=dtype)
    with loading._load_lock:  # as if a slow load held it (the real model takes minutes)
        done = []
        thread = threading.Thread(target=lambda: done.append(loading.generate(small(product))))
        thread.start()
        thread.join(timeout=30)
        assert done and done[0].images[0].cached and loading.loads == 0


def test_the_cache_key_holds_what_changes_pixels_beyond_the_request(demo_source, cache, product):
    """A bf16 engine never serves the float32 image (nor one of another attention, compile or library version)."""
    f32 = Engine(demo_source, cache=cache, device="cpu", dtype="float32").generate(small(product, steps=2))
    bf16 = Engine(demo_source, cache=cache, device="cpu", dtype="bfloat16").generate(small(product, steps=2))
    assert not bf16.images[0].cached and bf16.images[0].key != f32.images[0].key
    assert pixels(bf16.images[0].png).tolist() != pixels(f32.images[0].png).tolist()
    numerics = Engine(demo_source, cache=None, device="cpu", dtype="bfloat16").numerics()
    assert set(numerics) == {"dtype", "device", "attention", "compile", "torch", "diffusers", "threads"}
    assert numerics["dtype"] == "bfloat16" and numerics["device"] == "cpu" and numerics["attention"] == "native"
    import torch

    torch._dynamo.reset()  # a fresh process: other tests' engines compiled the same block code
    compiled = Engine(demo_source, cache=cache, device="cpu", compile=True, compile_backend="eager")
    assert compiled.numerics()["compile"] is True
    assert compiled.generate(small(product, steps=2)).images[0].key != f32.images[0].key


def test_a_cache_hit_carries_its_own_requests_parameters(engine, product):
    """Two products under one prompt override share pixels, but each PNG names its own product."""
    from adgen.metadata import read_params
    from adgen.request import Product

    first = engine.generate(small(product, prompt="a bottle on a table")).images[0]
    other = Product("Aurora earbuds", category="electronics")
    second = engine.generate(small(other, prompt="a bottle on a table")).images[0]
    assert second.cached and second.key == first.key and engine.runs == 1
    assert read_params(second.png)["product"]["name"] == "Aurora earbuds"
    assert read_params(first.png)["product"]["name"] == product.name
    assert np.array_equal(pixels(second.png), pixels(first.png))
    again = engine.generate(small(product, prompt="a bottle on a table")).images[0]
    assert again.png == first.png  # its own parameters already: the stored bytes, untouched


def test_png_encoding_and_cache_writes_run_beside_the_next_denoise(demo_source, tmp_path, product, dtype):
    """Only denoising holds the GPU lock; image i's PNG is encoded and stored on the encoder thread."""
    from adgen.cache import ResultCache

    seen = []

    class Watched(ResultCache):
        def put(self, key, data):
            seen.append(threading.current_thread().name)
            return super().put(key, data)

    overlapped = Engine(demo_source, cache=Watched(tmp_path / "a"), device="cpu", dtype=dtype)
    inline = Engine(demo_source, cache=Watched(tmp_path / "b"), device="cpu", dtype=dtype, overlap=False)
    one = overlapped.generate(small(product, steps=2, count=3))
    assert len(seen) == 3 and all(name.startswith("adgen-png") for name in seen)
    seen.clear()
    two = inline.generate(small(product, steps=2, count=3))
    assert len(seen) == 3 and not any(name.startswith("adgen-png") for name in seen)
    assert [i.png for i in one.images] == [i.png for i in two.images]


def test_images_finished_before_a_stop_are_kept(engine, product):
    job = Job("tab")
    with pytest.raises(GenerationStopped):
        engine.generate(small(product, steps=2, count=3), job=job,
                        progress=lambda done, total: job.stop() if done == 3 else None)
    again = engine.generate(small(product, steps=2, count=3))
    assert [i.cached for i in again.images] == [True, False, False]
