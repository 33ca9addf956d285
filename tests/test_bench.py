"""The benchmark runs end to end (a smoke test: it checks the rows, never the timings)."""

from bench.__main__ import main


def test_bench_prints_every_row(capsys, tmp_path):
    out = tmp_path / "BENCH.md"
    main(["--model", "demo", "--size", "256", "--runs", "1", "--soak", "2", "--overlap-size", "256", "--skip-app",
          "--append", str(out)])
    text = capsys.readouterr().out
    for row in ("adgen generate vs plain diffusers loop", "cache hit vs miss", "style (LoRA) switch",
                "seed-only change", "memory growth over 2 generations",
                "4 images 256x256: PNG encode beside the next denoise vs inline",
                "6-channel campaign vs 6 separate generate calls"):
        assert f"| {row}" in text
    assert out.read_text().strip() == text.strip()
