"""Where users run AdGen: bf16 (as on a GPU), every memory mode, compile, Stop and OOM, two sessions.

Each scenario runs in float32 and in bfloat16 on the CPU, and after each one: every module of the
pipeline still has the engine's dtype, the hooks of the memory mode in force are intact and every
component is back where that mode keeps it between runs, and the next request works.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from adgen.engine import Engine
from adgen.errors import GenerationStopped, OutOfMemory
from adgen.jobs import Job
from adgen.memory import GB, offload_groups

from conftest import pixels, small

BIG_GPU = lambda: (80 * GB, 80 * GB)  # noqa: E731 - figures of a big GPU (auto picks gpu); modules stay on the CPU


@pytest.fixture(params=["float32", "bfloat16"])
def dtype(request) -> str:
    return request.param


def make_engine(demo_source, cache, dtype, **kwargs) -> Engine:
    return Engine(demo_source, cache=cache, device="cpu", dtype=dtype, vram_probe=BIG_GPU, **kwargs)


def module_dtypes(engine: Engine) -> set[torch.dtype]:
    """The dtypes of every parameter of the pipeline and of the pipelines made from it.

    Also checks that no buffer changed dtype since the load (Qwen3 keeps its rotary buffers in
    float32 on purpose; a recast would change every prompt embedding).
    """
    found, buffers = set(), {}
    for pipe in (engine._pipe, engine._img2img, engine._inpaint):
        if pipe is None:
            continue
        for name, component in pipe.components.items():
            if isinstance(component, torch.nn.Module):
                found |= {p.dtype for p in component.parameters()}
                buffers.update({f"{name}.{n}": b.dtype for n, b in component.named_buffers()})
    loaded = LOADED_BUFFERS.setdefault((id(engine._pipe), str(engine.dtype)), buffers)
    assert buffers == loaded, "a buffer changed dtype"
    return found


LOADED_BUFFERS: dict = {}


class Residency:
    """Watches the real offload hooks: which components (offload) or groups (lowvram) are on the device.

    On the CPU the onload and offload devices are the same, so the hooks' calls are what tells where
    a module would be: an accelerate hook's `pre_forward` onloads its model and `init_hook` (what
    `offload()` calls) puts it back; a group's `onload_`/`offload_` do the same for lowvram.
    """

    def __init__(self, engine: Engine):
        self.on: set[str] = set()
        pipe = engine._pipe
        names = {id(m): n for n, m in pipe.components.items() if isinstance(m, torch.nn.Module)}
        for user_hook in getattr(pipe, "_all_hooks", None) or []:
            self._watch(user_hook.hook, "pre_forward", "init_hook", names[id(user_hook.model)])
        for n, group in enumerate(offload_groups(pipe.components.values())):
            self._watch(group, "onload_", "offload_", f"group {n}")

    def _watch(self, owner, onload: str, offload: str, name: str) -> None:
        real_on, real_off = getattr(owner, onload), getattr(owner, offload)

        def on(*args, **kwargs):
            self.on.add(name)
            return real_on(*args, **kwargs)

        def off(*args, **kwargs):
            self.on.discard(name)
            return real_off(*args, **kwargs)

        setattr(owner, onload, on)
        setattr(owner, offload, off)


def hooks_intact(engine: Engine, mode: str) -> bool:
    """The hooks of `mode` are on every component (and those of no other mode)."""
    pipe = engine._pipe
    modules = [pipe.transformer, pipe.text_encoder, pipe.vae]
    accelerate = [hasattr(m, "_hf_hook") for m in modules]
    grouped = [bool(offload_groups([m])) for m in modules]
    if mode == "offload":
        return all(accelerate) and not any(grouped) and len(pipe._all_hooks) == 3
    if mode == "lowvram":
        return all(grouped) and not any(accelerate)
    return not any(accelerate) and not any(grouped)


def check_after(engine: Engine, mode: str, product, dtype: str, residency: Residency | None = None) -> None:
    assert module_dtypes(engine) == {getattr(torch, dtype)}
    assert engine.memory_mode == mode and hooks_intact(engine, mode)
    if residency is not None:
        assert residency.on == set(), f"still on the device after the run: {sorted(residency.on)}"
    image = engine.generate(small(product, seed=991, steps=2), use_cache=False).images[0]
    assert image.png and module_dtypes(engine) == {getattr(torch, dtype)}


def test_photo_ads_keep_the_pipelines_dtype(demo_source, cache, product, dtype):
    """plain -> inpaint -> img2img -> plain with one prompt: from_pipe must not turn modules float32."""
    engine = make_engine(demo_source, cache, dtype)
    prompt = dict(prompt="a bottle on a table")
    photo = engine.generate(small(product, steps=2, **prompt)).images[0].png
    engine.generate(small(product, steps=2, image=photo, mask=photo, strength=1.0, **prompt))
    assert module_dtypes(engine) == {getattr(torch, dtype)}
    engine.generate(small(product, steps=2, image=photo, strength=0.5, **prompt))
    assert module_dtypes(engine) == {getattr(torch, dtype)}
    engine.generate(small(product, steps=2, seed=3, **prompt))  # cached embeddings meet the modules again
    assert engine.encodes == 1 and engine.loads == 1
    check_after(engine, "gpu", product, dtype)


def test_lora_switches_keep_the_dtype(demo_source, cache, product, dtype):
    engine = make_engine(demo_source, cache, dtype)
    for preset, scale in (("anime", None), ("semi_realistic", 0.5), ("photo", None), ("anime", 1.5)):
        engine.generate(small(product, steps=2, preset=preset, lora_scale=scale))
        assert module_dtypes(engine) == {getattr(torch, dtype)}, preset
    check_after(engine, "gpu", product, dtype)


@pytest.mark.parametrize("mode", ["offload", "lowvram", "gpu"])
def test_every_memory_mode_keeps_dtype_and_hooks(demo_source, cache, product, dtype, mode):
    engine = make_engine(demo_source, cache, dtype)
    engine.generate(small(product, steps=2))
    engine.set_memory_mode(mode)
    photo = engine.generate(small(product, steps=2, preset="anime")).images[0].png
    residency = Residency(engine)
    engine.generate(small(product, steps=2, image=photo, strength=0.6))  # from_pipe: no hooks list of its own
    check_after(engine, mode, product, dtype, residency)


@pytest.mark.parametrize("mode", ["offload", "lowvram", "gpu"])
@pytest.mark.parametrize("failure", ["stop", "oom"])
def test_after_stop_or_oom_every_component_is_back_at_rest(demo_source, cache, product, dtype, mode, failure):
    engine = make_engine(demo_source, cache, dtype)
    engine.set_memory_mode(mode)
    engine.generate(small(product, steps=1))
    residency = Residency(engine)
    job = Job("tab")

    def fail_at_two(done, total):  # mid-denoise: the transformer (offload) or some group (lowvram) is on
        if done == 2:
            if failure == "oom":
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            job.stop()

    with pytest.raises(GenerationStopped if failure == "stop" else OutOfMemory):
        engine.generate(small(product, steps=4, seed=5), progress=fail_at_two, job=job)
    check_after(engine, mode, product, dtype, residency)


def test_compile_survives_style_and_scale_switches(demo_source, cache, product, dtype):
    """Regional compile of the repeated blocks gives the same image; a compiled transformer recompiles at most once
    per distinct LoRA and never for a scale change."""
    torch._dynamo.reset()  # a fresh process: earlier tests' engines compiled the same block code
    engine = make_engine(demo_source, cache, dtype, compile=True, compile_backend="eager")
    first = pixels(engine.generate(small(product, steps=1)).images[0].png)
    block = engine._pipe.transformer.layers[0]
    assert "Optimized" in type(block.forward).__name__ or hasattr(block, "_compiled_call_impl")
    graphs = lambda: counters["stats"]["unique_graphs"]  # noqa: E731 - dynamo's own count of compiled graphs
    added, made = [], {}
    for preset, scale in (("anime", 1.0), ("anime", 0.5), ("semi_realistic", 1.0), ("photo", None),
                          ("semi_realistic", 0.25), ("anime", 1.5)):
        before = graphs()
        made[preset, scale] = pixels(engine.generate(small(product, steps=1, preset=preset, lora_scale=scale))
                                     .images[0].png)
        added.append(graphs() - before)
    first_lora = added[0] > 0  # the first LoRA puts adapter layers into the blocks: one recompile
    assert sum(added[1:]) == 0, f"recompiles per switch: {added}"
    assert first_lora and module_dtypes(engine) == {getattr(torch, dtype)}
    plain = make_engine(demo_source, None, dtype)  # and the compiled styles are the styles, not something else
    unstyled = pixels(plain.generate(small(product, steps=1)).images[0].png)
    assert np.array_equal(first, unstyled) if dtype == "float32" else np.abs(first - unstyled).max() <= 1
    for preset, scale in (("anime", 0.5), ("photo", None), ("semi_realistic", 1.0)):  # as the switches made them
        request = small(product, steps=1, preset=preset, lora_scale=scale)
        assert np.abs(made[preset, scale] - pixels(plain.generate(request).images[0].png)).max() <= 1, preset
    check_after(engine, "gpu", product, dtype)


def test_a_stop_in_one_session_never_ends_another_sessions_job(demo_source, cache, product, dtype):
    engine = make_engine(demo_source, cache, dtype)
    engine.generate(small(product, steps=1))
    a_running, results = threading.Event(), {}

    def session_a():
        def report(done, total):
            a_running.set()
            if done == 2:
                deadline = time.monotonic() + 30
                while not engine.jobs.running("tab-b") and time.monotonic() < deadline:
                    time.sleep(0.01)  # B's job is open (queued behind A's) before B presses Stop
                assert engine.stop("tab-b") == 1  # tab B presses Stop while A runs (B is queued)
        try:
            results["a"] = engine.generate(small(product, steps=4, seed=1), progress=report, job=Job("tab-a"))
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            results["a"] = exc

    def session_b():
        a_running.wait(30)
        try:
            results["b"] = engine.generate(small(product, steps=4, seed=2), job=Job("tab-b"))
        except Exception as exc:
            results["b"] = exc

    threads = [threading.Thread(target=session_a), threading.Thread(target=session_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not isinstance(results["a"], Exception), results["a"]
    assert results["a"].images[0].png and not results["a"].images[0].cached
    assert isinstance(results["b"], GenerationStopped)


def test_a_stop_pressed_while_the_model_loads_ends_the_job_before_any_step(demo_source, cache, product, dtype):
    engine = make_engine(demo_source, cache, dtype)
    job = Job("tab")
    with engine._load_lock:  # as if a slow load held it
        thread = threading.Thread(target=lambda: results.append(_run(engine, product, job)))
        results: list = []
        thread.start()
        while not engine.jobs.running("tab"):
            threading.Event().wait(0.01)
        engine.stop("tab")
    thread.join(60)
    assert isinstance(results[0], GenerationStopped) and results[0].step == 0
    assert engine.runs == 0  # before the load or right after it: no step ran
    check_after(engine, "gpu", product, dtype)


def test_a_stop_between_images_ends_the_job_before_the_next_image(demo_source, cache, product, dtype):
    engine = make_engine(demo_source, cache, dtype)
    job = Job("tab")

    def stop_at_the_last_step_of_image_one(done, total):
        if done == 2:  # image 1 of 3 has 2 steps: its last step, then the boundary
            job.stop()

    with pytest.raises(GenerationStopped) as stopped:
        engine.generate(small(product, steps=2, count=3), progress=stop_at_the_last_step_of_image_one, job=job)
    assert (stopped.value.step, stopped.value.total) == (2, 6) and engine.runs == 1


def test_a_disconnected_client_cancels_its_job_at_the_next_step(demo_source, cache, product, dtype):
    engine = make_engine(demo_source, cache, dtype)
    gone = threading.Event()
    seen = []

    def report(done, total):
        seen.append(done)
        if done == 3:
            gone.set()  # the browser tab closed; the job notices at its next check

    job = Job("tab", gone=gone.is_set)
    with pytest.raises(GenerationStopped, match="client disconnected after step 3 of 16"):
        engine.generate(small(product, steps=4, count=4), progress=report, job=job)
    assert seen == [1, 2, 3] and engine.runs == 1  # not the other three images


def _run(engine, product, job):
    try:
        return engine.generate(small(product, steps=2), job=job)
    except Exception as exc:
        return exc
