"""Memory modes, the VRAM forecast and its refusals, OOM recovery, and the speed-up switches."""

import dataclasses

import pytest
import torch

from adgen.engine import Engine
from adgen.errors import InputError, OutOfMemory, WontFit
from adgen.memory import GB, Footprint, choose_mode, footprint, forecast, place

from conftest import pixels, small

# Z-Image-Turbo in bf16: 6.15B transformer, Qwen3-4B text encoder (4.02B), 84M-parameter VAE.
ZIT = Footprint(transformer=int(12.3 * GB), text_encoder=int(8.04 * GB), vae=int(0.17 * GB))


@pytest.mark.parametrize(("mode", "measured"), [("gpu", 24.9), ("offload", 13.5), ("lowvram", 6.6)])
def test_forecast_matches_the_public_measurements_at_1024(mode, measured):
    assert forecast(ZIT, mode, 1024, 1024) / GB == pytest.approx(measured, abs=0.1)


def test_forecast_grows_with_size_not_with_count():
    small_, big = forecast(ZIT, "gpu", 512, 512), forecast(ZIT, "gpu", 2048, 2048)
    assert small_ < forecast(ZIT, "gpu", 1024, 1024) < big
    assert forecast(ZIT, "offload", 1024, 1024, count=4) == forecast(ZIT, "offload", 1024, 1024, count=1)


@pytest.mark.parametrize(
    ("free_gb", "mode"),
    [(80, "gpu"), (40, "gpu"), (24, "offload"), (16, "offload"), (12, "lowvram"), (8, "lowvram"), (4, "lowvram")],
)
def test_auto_picks_the_fastest_mode_that_fits(free_gb, mode):
    chosen, why = choose_mode("auto", free_gb * GB, ZIT)
    assert chosen == mode and why.startswith(f"{mode}: ")
    assert ("expect refusals" in why) == (free_gb == 4)


def test_an_explicit_mode_and_cpu_are_reported():
    assert choose_mode("offload", 80 * GB, ZIT)[0] == "offload"
    assert "chosen by the user" in choose_mode("offload", 80 * GB, ZIT)[1]
    assert choose_mode("auto", None, ZIT) == ("cpu", "CPU: memory modes apply to GPUs only")
    with pytest.raises(ValueError, match="memory mode must be one of auto, gpu, offload, lowvram"):
        choose_mode("turbo", None, ZIT)


def test_footprint_is_read_from_headers_without_loading(engine):
    fp = footprint(engine.source.path, torch.float32)
    pipe = engine.load()
    for name in ("transformer", "text_encoder", "vae"):
        params = sum(p.numel() for p in getattr(pipe, name).parameters())
        assert getattr(fp, name) == params * 4, name
    assert (fp.dim, fp.vae_channels) == (32, 8)


def test_a_request_that_will_not_fit_is_refused_before_running(demo_source, cache, product):
    engine = Engine(demo_source, cache=cache, device="cpu", vram_probe=lambda: (int(0.1 * GB), 8 * GB))
    with pytest.raises(WontFit, match=r"size: 2048x2048 needs ~.* GB of VRAM .* try a smaller size, fewer images"):
        engine.generate(small(product, width=2048, height=2048))
    assert engine.runs == 0 and engine.loads == 0
    assert pixels(engine.generate(small(product)).images[0].png).shape == (256, 256, 3)


def test_switching_memory_mode_replaces_the_one_pipeline(demo_source, product):
    probe = lambda: (80 * GB, 80 * GB)  # noqa: E731 - figures of a big GPU; the modules stay on the CPU
    engine = Engine(demo_source, cache=None, device="cpu", vram_probe=probe)
    first = engine.generate(small(product, steps=2)).images[0].png
    assert engine.memory_mode == "gpu" and engine.memory_reason.startswith("gpu: needs ~")
    transformer = engine._pipe.transformer
    for mode in ("offload", "lowvram", "gpu", "auto"):
        assert engine.set_memory_mode(mode)
        assert engine.generate(small(product, steps=2)).images[0].png == first, mode
    assert engine.loads == 1 and engine._pipe.transformer is transformer
    with pytest.raises(InputError, match="memory: must be one of"):
        engine.set_memory_mode("turbo")


def test_place_removes_the_previous_modes_hooks(engine):
    pipe = engine.load()
    place(pipe, "offload", torch.device("cpu"))
    assert hasattr(pipe.transformer, "_hf_hook")
    place(pipe, "lowvram", torch.device("cpu"))
    assert not hasattr(pipe.transformer, "_hf_hook")
    place(pipe, "gpu", torch.device("cpu"))
    assert not getattr(pipe.transformer, "_diffusers_hook", None) or not pipe.transformer._diffusers_hook.hooks


def test_on_cpu_the_mode_says_it_does_not_apply(engine, product):
    engine.generate(small(product, steps=1))
    assert engine.describe()["memory"] == "cpu"
    assert engine.describe()["memory_reason"] == "CPU: memory modes apply to GPUs only"


def test_an_injected_out_of_memory_is_recovered_and_the_next_request_works(engine, product):
    def explode(done, total):
        if done == 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(OutOfMemory, match="the GPU ran out of memory; memory was freed"):
        engine.generate(small(product, steps=4), progress=explode)
    assert engine.out_of_memory == 1 and engine.state == "ready"
    after = engine.generate(small(product, steps=4))
    assert not after.images[0].cached and engine.loads == 1


def test_a_new_seed_or_size_for_the_same_prompt_skips_the_text_encoder(engine, product):
    engine.generate(small(product, steps=1))
    engine.generate(small(product, steps=1, seed=5))
    engine.generate(small(product, steps=1, width=512))
    assert engine.encodes == 1 and engine.runs == 3
    engine.generate(small(product, steps=1, prompt="another prompt"))
    assert engine.encodes == 2


@pytest.mark.parametrize(("backend", "dtype", "says"), [
    ("_flash_3", "float32", "not usable"),  # its package is missing
    ("_native_cudnn", "float32", "No viable backend"),  # passes diffusers' check, no kernel here
    ("_native_efficient", "bfloat16", "No viable backend"),
    ("_native_flash", "bfloat16", "attn_mask"),  # runs, but not with ZIT's padding mask
])
def test_an_attention_backend_that_cannot_run_falls_back_to_native(demo_source, backend, dtype, says):
    """Checked with one real tiny call before any request (a cache key records the backend), nothing loaded."""
    fast = Engine(demo_source, cache=None, device="cpu", attention=backend, dtype=dtype)
    assert fast.attention_used.startswith(f"native ({backend} unavailable: ") and says in fast.attention_used
    assert fast.describe()["attention"] == fast.attention_used and fast.loads == 0  # the panel says it
    assert Engine(demo_source, cache=None, device="cpu", attention="_native_math").attention_used == "_native_math"


def test_requests_run_on_native_after_a_fallback(demo_source, product, engine):
    fast = Engine(demo_source, cache=None, device="cpu", attention="_native_cudnn")
    made = fast.generate(small(product, steps=1)).images[0].png
    assert made == engine.generate(small(product, steps=1)).images[0].png


def test_warmup_runs_once_and_stores_nothing(engine, cache):
    seconds = engine.warmup(256, 256)
    assert seconds > 0 and engine.runs == 1 and cache.size_bytes() == 0


@pytest.mark.parametrize(("memory", "available_gb", "refused"),
                         [("auto", 22, False), ("gpu", 22, True), ("auto", 5, True), ("lowvram", 8, False)])
def test_before_the_first_load_the_check_uses_the_mode_auto_will_pick(demo_source, memory, available_gb, refused):
    # the memory modes alone: unquantized (on 22 GB `auto` quantization would pick fp8, which fits on the GPU)
    engine = Engine(demo_source, cache=None, device="cpu", memory=memory, quantize="none",
                    vram_probe=lambda: (available_gb * GB, 24 * GB))
    # as if the folder held the real ZIT weights (an L4 has ~22 GB free); its 8-bit transformer is 6.2 GB
    engine._footprints = (ZIT, dataclasses.replace(ZIT, transformer=int(6.2 * GB)))
    if refused:
        with pytest.raises(WontFit, match="1024x1024 needs ~"):
            engine.check_fits(1024, 1024)
    else:
        engine.check_fits(1024, 1024)
    assert engine.loads == 0


def test_a_memory_mode_that_runs_out_of_memory_rolls_back_and_says_why(engine, product):
    """Out of memory half-way through re-placing: back to the previous mode (or, failing that too, unloaded)."""
    engine.load()
    vae, left = engine._pipe.vae, [1]
    real_to = vae.to

    def to(*args, **kwargs):  # the GPU fills up while the pipeline's last module moves
        if left[0]:
            left[0] -= 1
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_to(*args, **kwargs)

    vae.to = to
    with pytest.raises(OutOfMemory, match="memory: offload ran out of GPU memory; memory was freed and the model is "
                                          "back in cpu mode. Try offload or lowvram"):
        engine.set_memory_mode("offload")
    assert engine.memory.requested == "auto" and engine.memory_mode == "cpu"  # the mode says what is in force
    assert engine.state == "ready" and engine.out_of_memory == 1
    again = engine.generate(small(product, steps=1, seed=43)).images[0]  # the next request runs, no reload
    assert not again.cached and engine.loads == 1
    left[0] = 2  # the way back runs out of memory too: unloaded, said, the next request loads it
    with pytest.raises(OutOfMemory, match=r"model unloaded \(the next request loads it\)"):
        engine.set_memory_mode("lowvram")
    assert engine.state == "unloaded" and engine.memory.requested == "auto" and engine._pipe is None


def test_a_writer_job_recovers_from_an_out_of_memory_by_the_same_path_as_images(engine, short_writer, monkeypatch):
    """Image and writer jobs share the engine's one GPU section, its OOM recovery included."""
    import adgen.engine
    from adgen.request import Product
    from adgen.writer import WriteRequest

    recovered, flush = [], adgen.engine.flush_memory
    monkeypatch.setattr(adgen.engine, "flush_memory", lambda: (recovered.append(engine.out_of_memory), flush()))

    def explode(done, total):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    request = WriteRequest(Product("탄산수"), "copy", seed=1)
    with pytest.raises(OutOfMemory, match="the GPU ran out of memory while writing; memory was freed"):
        engine.write(request, progress=explode, use_cache=False)
    assert engine.out_of_memory == 1 and recovered == [1] and engine.state == "ready"
    assert engine.write(request, use_cache=False).tokens > 0  # the next job runs
