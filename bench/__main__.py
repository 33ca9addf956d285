"""AdGen's benchmark: `python -m bench` (see --help). Every figure is a ratio against a baseline
measured in the same run, interleaved and taken as medians, because these machines are noisy.

Measures: adgen's generate vs a plain diffusers ZImagePipeline loop; a cache hit vs a miss; a style
(LoRA) switch vs one generation; a seed-only change with vs without the prompt-embedding cache;
memory growth over N generations after warm-up; a 4-image request with PNG encoding overlapped vs
inline; a 6-channel campaign vs 6 separate generate calls; the writer's tokens/s vs transformers' generate and
the RAM it adds vs a separately loaded Qwen3ForCausalLM; a batch of 8 images on 2 Ray workers vs 1;
a 12-megapixel photo's soft product cutout vs decoding it (bench/cutout.py; also its quality table);
`python app.py` until its page answers vs a
bare gr.Blocks app; the server's RSS per 100 new client sessions vs 100 requests of one (bench/sessions.py).
Runs on the embedded demo model,
or on the real ZIT when it is present (`--model`). `python -m bench --gpu` is the GPU benchmark.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adgen.cache import ResultCache  # noqa: E402
from adgen.engine import Engine  # noqa: E402
from adgen.models import quiet_libraries  # noqa: E402
from adgen.request import AdRequest, Product  # noqa: E402
from bench.timing import interleaved, timed  # noqa: E402

PRODUCT = Product("Citrus sparkling water", features="lemon, zero sugar", scene="summer picnic")
# marketplace_white is a white packshot by rule (no model); the others have distinct generation sizes.
CAMPAIGN = ("instagram_square", "marketplace_white", "instagram_portrait", "instagram_story", "facebook_link",
            "display_300x250")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, {gpu}"


def run(args) -> tuple[list[tuple[str, str, str, str]], str]:
    """The rows (what, measured, ratio, target) and the model's label."""
    quiet_libraries()
    tmp = Path(tempfile.mkdtemp(prefix="adgen-bench-"))
    engine = Engine(args.model, cache=ResultCache(tmp / "results"), device=args.device)
    size = dict(width=args.size, height=args.size, steps=args.steps)
    seeds = iter(range(10**6))
    request = lambda **kw: AdRequest(PRODUCT, seed=next(seeds), **size, **kw)  # noqa: E731
    rows = []

    # 1. adgen vs a plain diffusers loop on the same model and settings (both warmed up)
    from diffusers import ZImagePipeline

    pipe = engine.load()
    plain = ZImagePipeline(**pipe.components)  # the same modules on the same device: no second copy
    plain.set_progress_bar_config(disable=True)
    prompt = engine.generate(request(), use_cache=False).prompt

    def plain_call():  # what a plain script does: generate, then save a PNG (here to memory, as adgen does)
        generator = torch.Generator("cpu").manual_seed(next(seeds))
        image = plain(prompt, num_inference_steps=args.steps, guidance_scale=0.0, generator=generator,
                      width=args.size, height=args.size).images[0]
        image.save(io.BytesIO(), format="PNG")

    plain_call()
    t_adgen, t_plain = interleaved(lambda: engine.generate(request(), use_cache=False), plain_call, args.runs)
    rows.append(("adgen generate vs plain diffusers loop", f"{t_adgen:.3f} s vs {t_plain:.3f} s",
                 f"{t_adgen / t_plain:.2f}x", "<= 1.05"))

    # 2. cache hit vs miss
    hit_request = request()
    engine.generate(hit_request)
    t_miss, t_hit = interleaved(lambda: engine.generate(request()), lambda: engine.generate(hit_request), args.runs)
    rows.append(("cache hit vs miss", f"{t_hit * 1000:.2f} ms vs {t_miss:.3f} s", f"{t_miss / t_hit:.0f}x faster",
                 ">= 100x"))

    # 3. a style (LoRA) switch vs one generation
    anime, semi = engine.presets["anime"], engine.presets["semi_realistic"]
    for preset in (anime, semi):  # load both adapters once
        engine.generate(request(preset=preset.name), use_cache=False)
    files = {p.name: engine.adapters.file_for(p) for p in (anime, semi)}
    ids = {name: engine.adapters.loaded[name] for name in files}
    switches = []
    for _ in range(args.runs * 4):
        for p in (anime, semi):
            switches.append(timed(lambda p=p: engine.adapters.apply(pipe, p, files[p.name], ids[p.name], 0.8)))
    t_switch = statistics.median(switches)
    t_one = statistics.median(timed(lambda: engine.generate(request(), use_cache=False)) for _ in range(args.runs))
    rows.append(("style (LoRA) switch vs one generation", f"{t_switch * 1000:.2f} ms vs {t_one:.3f} s",
                 f"{t_switch / t_one:.3f}", "<= 0.1"))

    # 4. a seed-only change with the prompt-embedding cache vs without
    def without_cache():
        engine._embeds.clear()
        engine.generate(request(), use_cache=False)

    t_with, t_without = interleaved(lambda: engine.generate(request(), use_cache=False), without_cache, args.runs)
    rows.append(("seed-only change: embedding cache vs none", f"{t_with:.3f} s vs {t_without:.3f} s",
                 f"{t_with / t_without:.2f}x", "< 1 (the text encoder skipped)"))

    # 5. memory growth over N generations after warm-up
    small = dict(width=256, height=256, steps=args.steps)
    for _ in range(3):
        engine.generate(AdRequest(PRODUCT, seed=next(seeds), **small), use_cache=False)
    gc.collect()
    rss0 = psutil.Process().memory_info().rss
    vram0 = torch.cuda.memory_allocated() if torch.cuda.is_available() else 0
    for _ in range(args.soak):
        engine.generate(AdRequest(PRODUCT, seed=next(seeds), **small), use_cache=False)
    gc.collect()
    growth = (psutil.Process().memory_info().rss - rss0) / 2**20
    vram = (torch.cuda.memory_allocated() - vram0) / 2**20 if torch.cuda.is_available() else 0.0
    rows.append((f"memory growth over {args.soak} generations", f"RSS {growth:+.1f} MB, VRAM {vram:+.1f} MB",
                 f"{growth:+.1f} MB", "<= 20 MB"))

    # 6. a 4-image 1024x1024 request with PNG encoding beside the next denoise vs inline under the GPU lock
    big = dict(width=args.overlap_size, height=args.overlap_size, steps=args.steps)
    image = engine.generate(AdRequest(PRODUCT, seed=next(seeds), **big), use_cache=False).images[0].png
    from PIL import Image

    decoded = Image.open(io.BytesIO(image)).convert("RGB")
    t_png = statistics.median(timed(lambda: decoded.save(io.BytesIO(), format="PNG")) for _ in range(args.runs))

    def four(overlap: bool):
        engine.set_overlap(overlap)
        engine.generate(AdRequest(PRODUCT, seed=next(seeds), count=4, **big), use_cache=False)

    t_on, t_off = interleaved(lambda: four(True), lambda: four(False), max(2, args.runs // 2))
    engine.set_overlap(True)
    bound = t_off - 3 * t_png  # denoising of 4 images + one encode
    rows.append((f"4 images {args.overlap_size}x{args.overlap_size}: PNG encode beside the next denoise vs inline",
                 f"{t_on:.3f} s vs {t_off:.3f} s (one PNG encode {t_png * 1000:.0f} ms)", f"{t_on / t_off:.2f}x",
                 f"<= {bound / t_off:.2f}x (denoising + one encode)"))

    # 8. a 6-channel campaign vs 6 separate `generate` calls for the same product (each at its channel's
    #    generation size, what a user without campaigns would do); the campaign shares the cutout, the prompt
    #    embedding and backgrounds of equal generation sizes, and a marketplace image needs no model at all
    from adgen.ad import AdMaker, AdSpec
    from adgen.campaign import make_campaign
    from adgen.channels import generation_size, load_channels

    # Backgrounds at the real generation size (about --overlap-size², one megapixel by default): the finished
    # channel images are large (up to 2000x2000), and their compositing and PNG encoding are part of the cost.
    maker, area = AdMaker(engine), args.overlap_size ** 2
    photo = (ROOT / "docs" / "example-product.png").read_bytes()
    channels = [load_channels()[c] for c in CAMPAIGN]
    ad = Product(PRODUCT.name, features=PRODUCT.features, scene=PRODUCT.scene, copy="Fresh summer")

    def campaign():
        make_campaign(maker, AdSpec(AdRequest(ad, seed=next(seeds), image=photo, steps=args.steps), background="t2i"),
                      channels,
                      area=area)

    def separate():
        seed = next(seeds)
        for channel in channels:
            width, height = generation_size(channel.width, channel.height, area)
            maker.make(AdSpec(AdRequest(ad, seed=seed, image=photo, width=width, height=height, steps=args.steps),
                              background="t2i"))

    t_campaign, t_separate = interleaved(campaign, separate, max(2, args.runs // 2))
    rows.append((f"{len(channels)}-channel campaign vs {len(channels)} separate generate calls (t2i, "
                 f"~{args.overlap_size}² px backgrounds)", f"{t_campaign:.3f} s vs {t_separate:.3f} s",
                 f"{t_campaign / t_separate:.2f}x",
                 "< 1 (shared backgrounds, no model for the white image)"))

    # 9. the writer: its speed vs transformers' generate on the same weights, and the memory it adds vs a second LM
    from bench.writer import memory_row, speed_row

    rows.append(speed_row(engine, args.writer_tokens, args.runs))
    if args.writer_layers:
        rows.append(memory_row(args.writer_layers))

    # 11. the product cutout: a 12-megapixel phone photo's soft cutout vs decoding it (no model involved)
    from bench.cutout import speed_row as cutout_row

    rows.append(cutout_row(args.runs, args.cutout_size))

    # 10. Ray workers: a batch of images on 2 workers vs 1 (throughput), each worker one CPU thread
    if not args.skip_workers:
        from bench.workers import row as workers_row

        rows.append(workers_row(args.model, args.workers_images, args.workers_size, max(2, args.runs // 2)))

    # 7. `python app.py` until its page answers vs a bare `gr.Blocks` app (torch loads after the page is up)
    if not args.skip_app:
        rows.append(app_row(args.model))

    # 11. soak: the server's RSS per 100 new client sessions after warm-up vs 100 requests of one session
    if not args.skip_app:
        from bench.sessions import row as sessions_row

        rows.append(sessions_row(args.model, args.sessions_warmup))
    return rows, engine.source.label


def app_row(model: str | None, runs: int = 3) -> tuple[str, str, str, str]:
    """`python app.py` until its page answers vs a bare `gr.Blocks` app, interleaved (`import app` loads no torch)."""
    bare = [sys.executable, "-c", "import gradio as gr\nwith gr.Blocks() as demo:\n    gr.Markdown('hi')\n"
            "demo.launch()"]
    adgen = [sys.executable, str(ROOT / "app.py")]
    t_app, t_bare = interleaved(lambda: app_start(adgen, model), lambda: app_start(bare, None), runs)
    return ("`python app.py` page answers vs a bare gr.Blocks app", f"{t_app:.1f} s vs {t_bare:.1f} s",
            f"{t_app / t_bare:.2f}x", "<= 1.3x")


def app_start(command: list[str], model: str | None) -> float:
    """Seconds from starting `command` until its page answers on a free port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1"}
    if model:
        env["ADGEN_MODEL"] = model
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < 120:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{command[-1][:40]} did not serve its page within 120 s")
    finally:
        proc.kill()
        proc.wait()


def table(rows, args, label: str) -> str:
    lines = [f"### {time.strftime('%Y-%m-%d')} · {machine()}", "",
             f"Model: {label} · {args.size}x{args.size}, {args.steps} steps · medians of {args.runs} interleaved runs",
             "",
             "| measurement | measured | ratio | target |", "| --- | --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--gpu" in argv:  # a separate benchmark with its own flags: python -m bench --gpu --help
        from bench.gpu import main as gpu_main

        sys.exit(gpu_main([arg for arg in argv if arg != "--gpu"]))
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", action="store_true",
                        help="the GPU benchmark instead: VRAM per memory mode, compile, flash attention (CUDA only)")
    parser.add_argument("--model", default=None, help="auto (default: ZIT if cached, else the demo model), demo, ...")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--size", type=int, default=512, help="square size for the timings (default 512)")
    parser.add_argument("--steps", type=int, default=8, help="denoising steps per image (default 8, ZIT's)")
    parser.add_argument("--runs", type=int, default=5, help="interleaved runs per timing (default 5)")
    parser.add_argument("--overlap-size", type=int, default=1024, help="square size of the 4-image overlap row")
    parser.add_argument("--soak", type=int, default=50, help="generations for the memory-growth check")
    parser.add_argument("--writer-tokens", type=int, default=64, help="tokens per writer timing (default 64)")
    parser.add_argument("--writer-layers", type=int, default=2,
                        help="layers of the Qwen3-4B-wide model for the writer's memory row (0 skips it; default 2)")
    parser.add_argument("--skip-app", action="store_true", help="skip the app start-up timing")
    parser.add_argument("--cutout-size", type=lambda v: tuple(int(n) for n in v.split("x")), default=(4032, 3024),
                        help="the photo of the cutout row, WxH (default 4032x3024, a 12 MP phone photo)")
    parser.add_argument("--app-only", action="store_true", help="only the app start-up timing (no model load)")
    parser.add_argument("--workers-images", type=int, default=8, help="images in the Ray workers' batch (default 8)")
    parser.add_argument("--workers-size", type=int, default=1024,
                        help="square size of the Ray workers' batch (default 1024, ZIT's)")
    parser.add_argument("--skip-workers", action="store_true",
                        help="skip the Ray workers' row (it needs requirements-ray.txt)")
    parser.add_argument("--sessions-warmup", type=int, default=300,
                        help="new sessions before the soak row measures (default 300: more than the server keeps)")
    parser.add_argument("--sessions-only", action="store_true", help="only the soak row (new client sessions)")
    parser.add_argument("--append", type=Path, help="append the table to this Markdown file")
    args = parser.parse_args(argv)
    if args.sessions_only:
        from bench.sessions import row as sessions_row

        rows, label = [sessions_row(args.model, args.sessions_warmup)], "soak only (demo model, 256x256, 1 step)"
    elif args.app_only:
        rows, label = [app_row(args.model, args.runs)], "app start-up only"
    else:
        rows, label = run(args)
    text = table(rows, args, label)
    print(text)
    if args.append:
        with args.append.open("a", encoding="utf-8") as handle:
            handle.write("\n" + text)


if __name__ == "__main__":
    main()
