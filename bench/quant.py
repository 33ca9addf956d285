"""`python -m bench --gpu` rows for quantization: fp8 against bf16 at 1024² and 2048² on one engine at a time.

Per size: seconds per warm image (eager, and compiled at the first size), peak VRAM allocated against the
engine's own forecast, and how far the image moves (mean absolute difference in 0..255 and correlation of the
pixels against bf16's on the same seed). Targets on an H100/H200: fp8 at least 1.3x bf16's speed and at most
0.75x its peak VRAM; the forecast within 10% (docs/quantize.md).
"""

from __future__ import annotations

import io
import statistics

import numpy as np
from PIL import Image

from adgen.memory import GB

SPEED_TARGET, VRAM_TARGET, FORECAST_TOLERANCE = 1.3, 0.75, 0.10
SEED = 7


def image_distance(png_a: bytes, png_b: bytes) -> tuple[float, float]:
    """(mean absolute difference in 0..255, Pearson correlation) of two same-sized images' RGB pixels."""
    a, b = (np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64).ravel() for png in (png_a, png_b))
    if a.shape != b.shape:
        raise ValueError(f"images differ in size ({a.size} vs {b.size} values)")
    mad = float(np.abs(a - b).mean())
    if a.std() == 0 or b.std() == 0:  # a flat image: correlation is undefined; equal images still correlate fully
        return mad, 1.0 if mad == 0 else 0.0
    return mad, float(np.corrcoef(a, b)[0, 1])


def verdict(value: float, target: float, at_least: bool) -> str:
    ok = value >= target if at_least else value <= target
    return f"{'meets' if ok else 'misses'} the target ({'≥' if at_least else '≤'} {target:g}x)"


def _measure(factory, gpu, size: int, runs: int, steps: int | None, **settings) -> dict:
    """One setting at one size: the seed's PNG, peak VRAM (None off CUDA), forecast and median warm seconds."""
    import torch

    engine = factory(memory="gpu", **settings)
    req = gpu.request(size, seed=SEED, steps=steps)
    cuda = gpu.cuda(engine)
    if cuda:  # the first call loads, compiles and allocates: it is the warm-up, and its peak is the request's
        engine.load()
        gpu.flush_memory()
        torch.cuda.reset_peak_memory_stats(engine.device)
    png = engine.generate(req, use_cache=False).images[0].png
    peak = torch.cuda.max_memory_allocated(engine.device) if cuda else None
    seconds = statistics.median(
        gpu.timed(lambda n=n: engine.generate(gpu.request(size, seed=SEED + 1 + n, steps=steps), use_cache=False))
        for n in range(runs))
    return {"png": png, "peak": peak, "forecast": engine.forecast(size, size),
            "seconds": seconds, "scheme": engine.quantization()}


def fp8_rows(factory, gpu, clock, sizes: tuple[int, ...] = (1024, 2048), runs: int = 3, steps: int | None = None,
             compiled: bool = True) -> list[tuple[str, str, str, str]]:
    """fp8 against bf16 per size (eager), then compiled at the first size; rows as `bench.gpu`'s."""
    rows = []
    plans = [(size, False) for size in sizes] + ([(sizes[0], True)] if compiled else [])
    for size, compile in plans:
        label = "compiled" if compile else "eager"
        what = f"fp8 vs bf16 · {size}²"
        if clock.over(gpu.COMPILE_RESERVE_S if compile else 0.0):
            rows.append((f"{what} · {label}", "skipped", "", f"past the {clock.budget_s / 60:.0f}-minute guard"))
            continue
        try:
            extra = {"compile": True} if compile else {}
            plain = _measure(factory, gpu, size, runs, steps, quantize="none", **extra)
            fp8 = _measure(factory, gpu, size, runs, steps, quantize="fp8", **extra)
        except Exception as exc:  # one failed size must not lose the others' rows
            rows.append((f"{what} · {label}", "failed", "", f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"))
            continue
        speed = plain["seconds"] / fp8["seconds"]
        rows.append((f"{what} · seconds per warm image · {label}",
                     f"{fp8['seconds']:.2f} s vs {plain['seconds']:.2f} s", f"{speed:.2f}x bf16's speed",
                     f"{fp8['scheme']}; {verdict(speed, SPEED_TARGET, True)}"))
        if compile:
            continue
        rows.append(_vram_row(what, plain, fp8))
        mad, corr = image_distance(plain["png"], fp8["png"])
        rows.append((f"{what} · image against bf16 (seed {SEED})", f"mean abs diff {mad:.2f}/255 · correlation "
                     f"{corr:.4f}", "same seed, same prompt", fp8["scheme"]))
    return rows


def _vram_row(what: str, plain: dict, fp8: dict) -> tuple[str, str, str, str]:
    name = f"{what} · peak VRAM allocated"
    if plain["peak"] is None or fp8["peak"] is None:
        return (name, "n/a (peak stats need CUDA)", f"forecast fp8 {fp8['forecast'] / GB:.2f} GB vs bf16 "
                f"{plain['forecast'] / GB:.2f} GB", "")
    ratio = fp8["peak"] / plain["peak"]
    error = (fp8["forecast"] - fp8["peak"]) / fp8["peak"]
    return (name, f"{fp8['peak'] / GB:.2f} GB vs {plain['peak'] / GB:.2f} GB",
            f"{ratio:.2f}x bf16's; fp8 forecast {fp8['forecast'] / GB:.2f} GB ({error * 100:+.0f}%)",
            f"{verdict(ratio, VRAM_TARGET, False)}; forecast "
            f"{'within' if abs(error) <= FORECAST_TOLERANCE else 'outside'} {FORECAST_TOLERANCE * 100:.0f}%")
