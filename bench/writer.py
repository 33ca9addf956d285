"""The writer's benchmark rows: memory it adds vs a separately loaded causal LM, and its speed vs transformers'.

Both are ratios within one run. Memory is measured on Qwen3-4B's own width (vocabulary 151936, hidden
2560, bf16) with `layers` of its 36 layers, random weights: the embedding matrix that is also the head is
778 MB, as in ZIT. Speed is measured on the engine's model (the demo model on a CPU), fixed-length.
"""

from __future__ import annotations

import gc
import statistics
import tempfile
import time

import psutil
import torch

from adgen.jobs import Job
from adgen.writer import Sampler, load_instructions

# Qwen3-4B's config (ZIT's text_encoder/config.json, as adgen/synthetic.py builds it).
QWEN3_4B = dict(hidden_size=2560, intermediate_size=9728, num_attention_heads=32, num_key_value_heads=8,
                head_dim=128, vocab_size=151936, tie_word_embeddings=True, rms_norm_eps=1e-6,
                max_position_embeddings=40960, rope_theta=1000000.0)


def _rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


def memory_row(layers: int, tokens: int = 32, base: dict | None = None) -> tuple[str, str, str, str]:
    """RSS added by writing `tokens` tokens with the writer vs by loading Qwen3ForCausalLM from the same weights.

    `base` replaces Qwen3-4B's config (the tests' narrow one)."""
    from transformers import Qwen3Config, Qwen3ForCausalLM, Qwen3Model

    from adgen.demo_model import build_tokenizer

    config = Qwen3Config(num_hidden_layers=layers, **(base or QWEN3_4B))
    with tempfile.TemporaryDirectory(prefix="adgen-bench-writer-") as folder:
        encoder = Qwen3Model(config).to(torch.bfloat16).eval()
        encoder.save_pretrained(folder)
        tokenizer = build_tokenizer()
        instructions = load_instructions()["prompt"].model_copy(update={"max_new_tokens": tokens})
        prompt = tokenizer("Professional commercial product photograph", add_special_tokens=False).input_ids
        Sampler(encoder, tokenizer, instructions, torch.device("cpu")).run(prompt, 0, Job(), None, 0, tokens)  # warm
        before = _rss()
        sampler = Sampler(encoder, tokenizer, instructions, torch.device("cpu"))
        sampler.run(prompt, 1, Job(), None, 0, tokens, until_stop=False)
        writer = _rss() - before
        before = _rss()
        separate = Qwen3ForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)  # what a second LM costs
        with torch.inference_mode():  # used once: its weights are read (a memory-mapped file costs nothing before)
            separate(torch.tensor([prompt]))
        loaded = _rss() - before
        weights = sum(p.numel() * p.element_size() for p in separate.parameters())
        del separate, sampler, encoder
    mb = 2**20
    width = "Qwen3-4B width" if base is None else f"hidden {config.hidden_size}, vocabulary {config.vocab_size}"
    return (f"writer: RAM added by writing {tokens} tokens vs loading Qwen3ForCausalLM ({width}, {layers} of "
            f"36 layers, bf16, weights {weights / mb:.0f} MB)", f"{writer / mb:+.0f} MB vs {loaded / mb:+.0f} MB",
            f"{writer / loaded:.3f}x", "~0 vs the model's size (36 layers: ~7.7 GB)")


def speed_row(engine, tokens: int, runs: int) -> tuple[str, str, str, str]:
    """Writer tokens/s vs transformers' `generate` on a Qwen3ForCausalLM sharing the same loaded weights."""
    from transformers import Qwen3ForCausalLM

    pipe = engine.load()
    encoder, tokenizer = pipe.text_encoder, pipe.tokenizer
    instructions = load_instructions()["prompt"].model_copy(update={"max_new_tokens": tokens})
    prompt = tokenizer("Professional commercial product photograph", add_special_tokens=False).input_ids
    causal = Qwen3ForCausalLM(encoder.config)
    causal.model = encoder  # the same modules: a tied head over the same embedding, nothing copied
    causal.lm_head.weight = encoder.embed_tokens.weight
    causal.eval()
    ids = torch.tensor([prompt], device=encoder.device)

    def ours() -> float:
        start = time.perf_counter()
        Sampler(encoder, tokenizer, instructions, encoder.device).run(prompt, 0, Job(), None, 0, tokens,
                                                                       until_stop=False)
        return time.perf_counter() - start

    def theirs() -> float:
        start = time.perf_counter()
        with torch.inference_mode():
            causal.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens, min_new_tokens=tokens,
                            do_sample=True, top_k=40, top_p=0.9, pad_token_id=0)
        return time.perf_counter() - start

    ours(), theirs()  # warm
    ta, tb = [], []
    for _ in range(runs):
        ta.append(ours())
        tb.append(theirs())
    a, b = statistics.median(ta), statistics.median(tb)
    return (f"writer: {tokens} tokens on {engine.device.type} ({engine.source.label}) vs transformers generate",
            f"{tokens / a:.0f} tok/s vs {tokens / b:.0f} tok/s", f"{b / a:.2f}x transformers' speed", ">= 0.8x")

