"""The benchmark runs end to end (a smoke test: it checks the rows, never the timings)."""

from bench.__main__ import main


def test_bench_prints_every_row(capsys, tmp_path):
    out = tmp_path / "BENCH.md"
    main(["--model", "demo", "--size", "256", "--steps", "2", "--runs", "1", "--soak", "2", "--overlap-size", "256",
          "--skip-app", "--writer-tokens", "16", "--writer-layers", "0", "--skip-workers", "--cutout-size", "400x300",
          "--append", str(out)])
    text = capsys.readouterr().out
    assert "256x256, 2 steps" in text
    for row in ("adgen generate vs plain diffusers loop", "cache hit vs miss", "style (LoRA) switch",
                "seed-only change", "memory growth over 2 generations",
                "4 images 256x256: PNG encode beside the next denoise vs inline",
                "6-channel campaign vs 6 separate generate calls", "writer: 16 tokens on cpu",
                "soft cutout of a 400x300 photo vs decoding it"):
        assert f"| {row}" in text
    assert out.read_text().strip() == text.strip()


def test_the_writers_memory_row_compares_with_a_separately_loaded_model():
    from bench.writer import memory_row

    narrow = dict(hidden_size=64, intermediate_size=128, num_attention_heads=2, num_key_value_heads=2, head_dim=32,
                  vocab_size=151936, tie_word_embeddings=True)
    what, measured, ratio, _ = memory_row(1, tokens=8, base=narrow)
    assert what.startswith("writer: RAM added by writing 8 tokens vs loading Qwen3ForCausalLM (hidden 64")
    assert " MB vs " in measured and ratio.endswith("x")
