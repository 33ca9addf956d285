"""The writer on the demo model, for real: no new weights, determinism, Stop, memory modes, dtypes, cache."""

from __future__ import annotations

import json
import threading
import time

import psutil
import pytest
import torch
from transformers import Qwen3Config, Qwen3Model

from adgen.demo_model import build_tokenizer
from adgen.engine import Engine
from adgen.errors import GenerationStopped, InputError, ModelError, PresetError
from adgen.jobs import Job
from adgen.memory import GB, offload_groups, onloaded
from adgen.metadata import read_params
from adgen.presets import load_presets
from adgen.prompts import PRODUCT_FOCUS
from adgen.request import AdRequest, Product
from adgen.writer import (
    NOT_USABLE,
    Sampler,
    WriteRequest,
    enhance,
    load_instruction,
    load_instructions,
    plan,
    tied_embedding,
    with_scenes,
)

PRODUCT = Product("제주 감귤 탄산수", features="제로 슈거, 500ml")


def storages(pipe) -> dict[str, tuple[int, torch.dtype, torch.device]]:
    """Every parameter and buffer of the pipeline by name: where its storage is, its dtype and device."""
    found = {}
    for name in ("text_encoder", "transformer", "vae"):
        module = getattr(pipe, name)
        for key, tensor in [*module.named_parameters(), *module.named_buffers()]:
            found[f"{name}.{key}"] = (tensor.data_ptr(), tensor.dtype, tensor.device)
    return found


def test_the_writer_adds_no_parameter_and_its_head_is_the_encoders_embedding(engine):
    pipe = engine.load()
    before = storages(pipe)
    written = engine.write(WriteRequest(PRODUCT, "copy", seed=1), use_cache=False)
    assert storages(pipe) == before  # same tensors, same storages, same dtype: nothing made, nothing recast
    assert written.tokens > 0 and engine.writes == 1 and engine.loads == 1
    sampler = Sampler(pipe.text_encoder, pipe.tokenizer, load_instructions()["copy"], torch.device("cpu"))
    assert sampler.head.weight is pipe.text_encoder.embed_tokens.weight


def test_process_memory_grows_by_the_kv_cache_not_by_a_head():
    # Qwen3-4B's vocabulary on a narrow body: an untied head would be one more 151936 x 128 matrix (78 MB).
    config = Qwen3Config(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=2, head_dim=64, vocab_size=151936, tie_word_embeddings=True)
    encoder = Qwen3Model(config).eval()
    head_bytes = encoder.embed_tokens.weight.numel() * 4
    tokenizer = build_tokenizer()
    instructions = load_instructions()["prompt"].model_copy(update={"max_new_tokens": 64})
    prompt_ids = tokenizer("Professional commercial product photograph", add_special_tokens=False).input_ids
    Sampler(encoder, tokenizer, instructions, torch.device("cpu")).run(prompt_ids, 0, Job(), None, 0, 64)  # warm
    process = psutil.Process()
    rss = process.memory_info().rss
    sampler = Sampler(encoder, tokenizer, instructions, torch.device("cpu"))
    _, tokens = sampler.run(prompt_ids, 1, Job(), None, 0, 64)
    grown = process.memory_info().rss - rss
    kv_bytes = 2 * config.num_hidden_layers * config.num_key_value_heads * config.head_dim * \
        (len(prompt_ids) + tokens) * 4
    assert grown < kv_bytes + 16 * 2**20 < head_bytes / 2, (grown, kv_bytes, head_bytes)


def test_an_untied_encoder_is_refused_with_what_it_needs():
    encoder = Qwen3Model(Qwen3Config(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     num_key_value_heads=2, head_dim=8, vocab_size=64, tie_word_embeddings=False))
    with pytest.raises(ModelError, match="does not tie its input and output embeddings.*Qwen3-4B"):
        tied_embedding(encoder)


def test_same_inputs_and_seed_write_the_same_text_another_seed_other_text(engine):
    first = engine.write(WriteRequest(PRODUCT, "prompt", seed=7), use_cache=False)
    again = engine.write(WriteRequest(PRODUCT, "prompt", seed=7), use_cache=False)
    other = engine.write(WriteRequest(PRODUCT, "prompt", seed=8), use_cache=False)
    assert first.raw and first.raw == again.raw
    assert other.raw != first.raw


def test_junk_answers_end_as_not_usable_after_the_bounded_tries(engine):
    for job in ("copy", "prompt", "variations"):
        written = engine.write(WriteRequest(PRODUCT, job, n=None if job == "prompt" else 2, seed=3))
        tries = load_instructions()[job].tries
        assert not written.usable and written.texts == () and written.demo
        assert written.reason == f"{NOT_USABLE} in {tries} tries" and len(written.raw) == tries
    request = AdRequest(PRODUCT, seed=3, width=256, height=256)
    kept, _ = enhance(engine, request)
    assert kept == request and not kept.enhanced  # the template prompt stays in use
    assert with_scenes(engine, request, 2)[0] == request


def test_a_cached_answer_skips_the_model(engine, cache):
    first = engine.write(WriteRequest(PRODUCT, "copy", seed=11))
    hit = engine.write(WriteRequest(PRODUCT, "copy", seed=11))
    assert not first.cached and hit.cached and hit.tokens == 0 and engine.writes == 1
    assert (hit.texts, hit.usable, hit.raw) == (first.texts, first.usable, first.raw)
    engine.write(WriteRequest(PRODUCT, "copy", seed=12))
    assert engine.writes == 2


def test_stop_ends_the_job_at_the_next_token_and_stores_nothing(engine, cache):
    job = Job("tab-a")
    seen = []

    def progress(done, total):
        seen.append(done)
        if done == 5:
            job.stop()

    with pytest.raises(GenerationStopped, match="after step 5 of"):
        engine.write(WriteRequest(PRODUCT, "copy", seed=1), progress=progress, job=job)
    assert seen == [1, 2, 3, 4, 5]
    assert cache.get_json(plan(engine, WriteRequest(PRODUCT, "copy", seed=1)).key) is None
    assert engine.write(WriteRequest(PRODUCT, "copy", seed=1)).tokens > 0  # the engine goes on serving


def test_one_sessions_stop_ends_only_its_own_writer_job(engine):
    outcome: dict[str, object] = {}

    def other_tab():
        try:
            outcome["a"] = engine.write(WriteRequest(PRODUCT, "copy", seed=2), job=Job("tab-a"))
        except GenerationStopped as exc:
            outcome["a"] = exc

    waiting = threading.Thread(target=other_tab)

    def progress(done, total):
        if done == 1:  # tab b holds the GPU; tab a queues behind it, then tab a's Stop is pressed
            waiting.start()
            deadline = time.monotonic() + 10
            while not engine.jobs.running("tab-a") and time.monotonic() < deadline:
                time.sleep(0.01)
            assert engine.stop("tab-a") == 1

    mine = engine.write(WriteRequest(PRODUCT, "copy", seed=4), progress=progress, job=Job("tab-b"))
    waiting.join(10)
    assert mine.tokens > 0 and isinstance(outcome["a"], GenerationStopped)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_every_memory_mode_writes_the_same_text_in_each_dtype(demo_source, dtype, monkeypatch, short_writer):
    # short_writer: 16 tokens and 2 tries are as many forwards through each mode's hooks as the comparison needs
    probe = lambda: (80 * GB, 80 * GB)  # noqa: E731 - a big GPU's figures: the modes place hooks, on the CPU
    engine = Engine(demo_source, cache=None, device="cpu", vram_probe=probe, dtype=dtype, presets=load_presets())
    request = WriteRequest(PRODUCT, "prompt", seed=5)
    answers = {}
    for mode in ("gpu", "offload", "lowvram"):
        engine.set_memory_mode(mode)
        pipe = engine.load()
        before = storages(pipe)
        if mode == "lowvram":  # the head's weight lives in a group-offload group: `onloaded` brings it in and back
            group = next(g for g in offload_groups([pipe.text_encoder]) if pipe.text_encoder.embed_tokens in g.modules)
            calls = []
            for name in ("onload_", "offload_"):
                real = getattr(group, name)
                spy = lambda real=real, name=name, calls=calls: (calls.append(name), real())[1]  # noqa: E731
                monkeypatch.setattr(group, name, spy)
            with onloaded(pipe.text_encoder.embed_tokens):
                assert calls == ["onload_"]
            assert calls == ["onload_", "offload_"]
        answers[mode] = engine.write(request, use_cache=False).raw
        assert {k: v[1:] for k, v in storages(pipe).items()} == {k: v[1:] for k, v in before.items()}, mode
        assert pipe.text_encoder.embed_tokens.weight.dtype == getattr(torch, dtype)
    assert answers["gpu"] and answers["gpu"] == answers["offload"] == answers["lowvram"]
    assert engine.loads == 1


def test_a_usable_answer_becomes_the_prompt_and_is_recorded_as_written(engine, cache):
    # The demo model never answers usably; a usable answer is put where the writer caches its answers,
    # so everything after the model (cache hit, enhance, generation, PNG parameters) runs for real.
    request = AdRequest(PRODUCT, seed=21, width=256, height=256, steps=1, draw_copy=True)
    work = plan(engine, WriteRequest(PRODUCT, "prompt", 1, 21, request.preset))
    text = "A frosted bottle of citrus sparkling water on wet slate, cool rim light, droplets, 85mm lens."
    cache.put_json(work.key, {"key": work.key, "raw": [f"<think>\n\n</think>\n\nPrompt: {text}"]})
    enhanced, written = enhance(engine, request)
    assert written.cached and enhanced.enhanced and enhanced.prompt == f"{text} {PRODUCT_FOCUS}"  # the policy kept
    params = read_params(engine.generate(enhanced).images[0].png)
    assert params["prompt_written"] is True and params["prompt_override"] == enhanced.prompt
    assert params["prompt"].startswith(enhanced.prompt + " Setting: ")  # a written prompt takes its scene too
    assert read_params(engine.generate(request).images[0].png)["prompt_written"] is False


def test_written_scenes_replace_the_styles_variations_image_by_image(engine, cache):
    request = AdRequest(PRODUCT, seed=31, width=256, height=256, steps=1, count=2)
    work = plan(engine, WriteRequest(PRODUCT, "variations", 2, 31, request.preset))
    scenes = ["on a mossy basalt rock by the sea, overcast soft light", "on a sunlit wooden pier, golden hour glow"]
    cache.put_json(work.key, {"key": work.key, "raw": ["not JSON", json.dumps(scenes)]})
    scened, _ = with_scenes(engine, request, 2)
    result = engine.generate(scened)
    assert [scene in picture.prompt for picture, scene in zip(result.images, scenes, strict=True)] == [True, True]
    assert read_params(result.images[1].png)["scenes_written"] == scenes


def test_requests_and_instruction_files_are_checked(tmp_path):
    with pytest.raises(InputError, match="writer job: must be one of copy, prompt, variations"):
        WriteRequest(PRODUCT, "poem")
    with pytest.raises(InputError, match="text count: must be from 1 to 8"):
        WriteRequest(PRODUCT, "copy", n=9)
    assert WriteRequest(PRODUCT, "prompt").n == 1 and WriteRequest(PRODUCT, "copy").n == 3
    with pytest.raises(InputError, match="text count: a prompt job writes one prompt"):
        WriteRequest(PRODUCT, "prompt", n=5)
    bad = tmp_path / "copy.yaml"
    bad.write_text("system: {en: a, ko: 가}\nuser: {en: '{details} {price}', ko: 나}\n", encoding="utf-8")
    with pytest.raises(PresetError, match=r"copy.yaml: user.en: unknown placeholder 'price'"):
        load_instruction(bad)
    bad.write_text("system: {en: a, ko: 가}\nuser: {en: b, ko: 나}\ntries: 50\n", encoding="utf-8")
    with pytest.raises(PresetError, match=r"copy.yaml: tries: .*less than or equal to 5"):
        load_instruction(bad)
    bad.write_text("system: {en: a, ko: 가}\nuser: {en: b, ko: 나}\nthinking: true\n", encoding="utf-8")
    with pytest.raises(PresetError, match="thinking: unknown field; allowed: system, user"):
        load_instruction(bad)
    bad.write_text("system: {en: a, ko: 가}\nuser: {en: b, ko: 나}\n", encoding="utf-8")
    with pytest.raises(PresetError, match="no instructions for the writer job 'prompt'"):
        load_instructions(tmp_path)
