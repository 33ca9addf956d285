"""`python -m bench --gpu`: ZIT's VRAM and speed on one CUDA GPU, appended as a dated table to docs/BENCHMARKS.md.

The model is the real Z-Image-Turbo when it is in the Hugging Face cache, else the full-size
synthetic one (ZIT's architecture with random weights: the same memory and speed, noise images).
In one run of under ten minutes on an H100 it measures: peak VRAM per memory mode at 1024² and
2048² against the forecast; seconds per warm 1024² image eager, regionally compiled, with flash
attention and with both; a 4-image request; the VRAM left after an injected out-of-memory error;
a 4-image request with PNG encoding overlapped vs inline; the writer's seconds for a 120-token prompt on the
loaded text encoder and the VRAM it adds. Each measurement is a function of an
engine factory and sizes, so the tests run every one on CPU on the demo model (peak stats aside).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from adgen.engine import Engine
from adgen.errors import InputError, OutOfMemory, WontFit
from adgen.memory import GB, flush_memory
from adgen.request import AdRequest, Product, check_int
from bench.quant import fp8_rows
from bench.timing import timed

ROOT = Path(__file__).resolve().parent.parent
BENCH_FILE = ROOT / "docs" / "BENCHMARKS.md"
BUDGET_S = 9 * 60  # the whole run must end inside a 10-minute device call
COMPILE_RESERVE_S = 120  # a compiled engine's warm-up takes a minute or two: not started this close to the end
MODES = ("gpu", "offload", "lowvram")
PEAK_STEPS = 2  # the peak is reached in the first step and the VAE decode; more steps only cost time
OOM_TOLERANCE = 64 * 2**20  # "back to baseline": the allocator may keep a few small blocks
PRODUCT = Product("Citrus sparkling water", features="lemon, zero sugar", scene="summer picnic")
NO_CUDA = ("bench --gpu needs a CUDA GPU; this machine has none (torch.cuda.is_available() is False); "
           "`python -m bench` is the CPU benchmark")

Row = tuple[str, str, str, str]  # (measurement, measured, compared with, note)
Factory = Callable[..., Engine]  # keyword arguments as Engine's: memory=, attention=, compile=, overlap=


class OneEngine:
    """An engine factory that keeps one engine alive: the same settings reuse it, others replace it."""

    def __init__(self, make: Factory):
        self.make, self.current, self.settings, self.label = make, None, None, ""

    def __call__(self, **settings) -> Engine:
        if self.current is not None and settings == self.settings:
            return self.current
        engine = self.make(**settings)  # before closing the old one: a TypeError here leaves it intact
        self.close()  # never two pipelines on the GPU at once: ZIT in bf16 is 20.5 GB
        self.current, self.settings, self.label = engine, settings, engine.source.label
        return engine

    def close(self) -> None:
        if self.current is None:
            return
        self.current.unload()
        if self.settings.get("compile"):
            torch._dynamo.reset()  # compiled graphs hold on to the modules they were traced with
        self.current = self.settings = None
        flush_memory()


class Clock:
    """The wall-clock guard: measurements start only while the budget lasts."""

    def __init__(self, budget_s: float):
        self.budget_s, self.start = budget_s, time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def over(self, reserve_s: float = 0.0) -> bool:
        return self.elapsed + reserve_s > self.budget_s


def request(size: int, seed: int = 0, **changes) -> AdRequest:
    return AdRequest(PRODUCT, seed=seed, width=size, height=size, **changes)


def warm(engine: Engine, size: int, steps: int | None) -> float | None:
    """One throw-away generation (loads, compiles, allocates) unless the engine has run already; its seconds."""
    if engine.runs:  # the measurements share one engine where they can: warm it once, not per row
        return None
    return timed(lambda: engine.generate(request(size, seed=0, steps=steps), use_cache=False))


def cuda(engine: Engine) -> bool:
    return engine.device.type == "cuda"


def flash_backend() -> str | None:
    """The fastest installed flash attention for diffusers: FA3 (`_flash_3`), FA2 (`flash`), else None."""
    for module, backend in (("flash_attn_interface", "_flash_3"), ("flash_attn", "flash")):
        if importlib.util.find_spec(module) is not None:
            return backend
    return None


def _gb(n: float) -> str:
    return f"{n / GB:.2f} GB"


def _error(forecast: int, measured: int) -> str:
    return f"{(forecast - measured) / measured * 100:+.0f}%"


# -- measurements: each takes the engine factory and sizes, returns table rows ------------------
def load_time(factory: Factory) -> list[Row]:
    """Seconds to load (or, for the synthetic model, build) the pipeline onto the device."""
    engine = factory(memory="gpu")
    seconds = timed(engine.load)
    return [("load the pipeline", f"{seconds:.1f} s", "", f"{engine.source.label} on {engine.device.type}")]


def peak_vram(factory: Factory, sizes: tuple[int, ...]) -> list[Row]:
    """Peak VRAM per memory mode and size (allocated and reserved) against the engine's forecast for that mode."""
    engine = factory(memory="gpu")
    engine.load()
    rows = []
    try:
        for mode in MODES:
            engine.set_memory_mode(mode)
            for size in dict.fromkeys(sizes):  # in order, once each
                rows.append(_peak_row(engine, mode, size))
    finally:
        engine.set_memory_mode("gpu")  # as the factory made it, for the measurements that reuse it
    return rows


def _peak_row(engine: Engine, mode: str, size: int) -> Row:
    what = f"peak VRAM · {mode} · {size}²"
    try:
        peak = _peak(engine, request(size, steps=PEAK_STEPS))
    except WontFit as exc:  # on a smaller GPU the refusal is the result
        return what, "refused by the forecast", "", str(exc).splitlines()[0]
    except OutOfMemory as exc:  # the forecast let it through and the GPU could not hold it: a finding
        return what, "out of memory", "", str(exc).splitlines()[0]
    forecast = engine.forecast(size, size)
    if peak is None:
        return what, "n/a (peak stats need CUDA)", f"forecast {_gb(forecast)}", engine.memory_mode
    allocated, reserved = peak
    return (what, f"allocated {_gb(allocated)} · reserved {_gb(reserved)}",
            f"forecast {_gb(forecast)}: {_error(forecast, allocated)} vs allocated, "
            f"{_error(forecast, reserved)} vs reserved", f"{PEAK_STEPS} steps")


def _peak(engine: Engine, req: AdRequest) -> tuple[int, int] | None:
    """(max allocated, max reserved) bytes over one uncached generation; None off CUDA."""
    if not cuda(engine):
        engine.generate(req, use_cache=False)
        return None
    flush_memory()
    torch.cuda.reset_peak_memory_stats(engine.device)
    engine.generate(req, use_cache=False)
    torch.cuda.synchronize(engine.device)
    return torch.cuda.max_memory_allocated(engine.device), torch.cuda.max_memory_reserved(engine.device)


def speed(factory: Factory, size: int, label: str, runs: int, baseline: float | None = None,
          steps: int | None = None, **settings) -> tuple[Row, float]:
    """Median seconds per warm `size`² image for one engine setting (compile, attention), and its ratio to eager."""
    engine = factory(memory="gpu", **settings)
    warmup = warm(engine, size, steps)  # not part of the figure
    seconds = statistics.median(
        timed(lambda n=n: engine.generate(request(size, seed=n + 1, steps=steps), use_cache=False))
        for n in range(runs))
    ratio = f"{baseline / seconds:.2f}x eager's speed" if baseline else "the baseline"
    note = f"warm-up {warmup:.1f} s" if warmup is not None else "already warm"
    note += f" · attention {engine.attention_used} · median of {runs}"
    return (f"seconds per warm {size}² image · {label}", f"{seconds:.2f} s", ratio, note), seconds


def batch(factory: Factory, size: int, count: int = 4, steps: int | None = None) -> list[Row]:
    """A `count`-image request: seconds in all and per image."""
    engine = factory(memory="gpu")
    warm(engine, size, steps)
    seconds = timed(lambda: engine.generate(request(size, seed=100, count=count, steps=steps), use_cache=False))
    return [(f"{count}-image {size}² request", f"{seconds:.2f} s", f"{seconds / count:.2f} s per image", "")]


def oom_recovery(factory: Factory, size: int) -> list[Row]:
    """VRAM allocated after an out-of-memory error injected at step 2 against the baseline before the request."""
    engine = factory(memory="gpu")
    warm(engine, size, 2)  # loads, and caches this prompt's embeddings before the baseline

    def explode(done: int, total: int) -> None:
        if done == 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected by bench --gpu)")

    flush_memory()
    before = torch.cuda.memory_allocated(engine.device) if cuda(engine) else None
    try:
        engine.generate(request(size, seed=201, steps=3), progress=explode, use_cache=False)
        recovered = "the error did not surface"
    except OutOfMemory:
        recovered = "OutOfMemory raised"
    after = torch.cuda.memory_allocated(engine.device) if cuda(engine) else None
    engine.generate(request(size, seed=202, steps=2), use_cache=False)  # raises if the engine was left broken
    note = f"{recovered}; the next request ran"
    if before is None or after is None:
        return [("injected OOM: VRAM allocated after recovery vs before", "n/a (needs CUDA)", "", note)]
    verdict = "back to baseline" if abs(after - before) <= OOM_TOLERANCE else "NOT back to baseline"
    return [("injected OOM: VRAM allocated after recovery vs before", f"{_gb(after)} vs {_gb(before)}",
             f"{(after - before) / 2**20:+.0f} MiB: {verdict}", note)]


def overlap(factory: Factory, size: int, count: int = 4, steps: int | None = None) -> list[Row]:
    """A `count`-image request with PNG encoding overlapped with the next image vs inline under the GPU lock."""
    what = f"{count}-image {size}² request · PNG encoding overlapped vs inline"
    same = request(size, seed=300, count=count, steps=steps)
    engine = factory(memory="gpu")
    warm(engine, size, steps)
    with_overlap = timed(lambda: engine.generate(same, use_cache=False))
    try:
        engine = factory(memory="gpu", overlap=False)
    except TypeError:  # an engine without the switch: nothing to compare
        return [(what, "n/a", "", "this engine takes no overlap= keyword")]
    warm(engine, size, steps)
    inline = timed(lambda: engine.generate(same, use_cache=False))
    return [(what, f"{with_overlap:.2f} s vs {inline:.2f} s", f"{with_overlap / inline:.2f}x", "")]


def writer(factory: Factory, tokens: int = 120, baseline: float | None = None) -> list[Row]:
    """Seconds to write a `tokens`-token prompt on the loaded text encoder, and the VRAM it adds over the weights."""
    from adgen.jobs import Job
    from adgen.writer import Sampler, load_instructions

    engine = factory(memory="gpu")
    instructions = load_instructions()["prompt"].model_copy(update={"max_new_tokens": tokens})

    def measure(pipe) -> tuple[float, int | None, int | None]:
        prompt = pipe.tokenizer("Professional commercial product photograph of citrus sparkling water",
                                add_special_tokens=False).input_ids
        sampler = Sampler(pipe.text_encoder, pipe.tokenizer, instructions, pipe._execution_device)
        sampler.run(prompt, 0, Job(), None, 0, 8, until_stop=False)  # warm: kernels and allocator
        flush_memory()
        if cuda(engine):
            torch.cuda.synchronize(engine.device)
            torch.cuda.reset_peak_memory_stats(engine.device)
        weights = torch.cuda.memory_allocated(engine.device) if cuda(engine) else None
        seconds = timed(lambda: sampler.run(prompt, 1, Job(), None, 0, tokens, until_stop=False))
        peak = torch.cuda.max_memory_allocated(engine.device) if cuda(engine) else None
        return seconds, weights, peak

    seconds, weights, peak = engine.exclusive(Job(), measure)
    what = f"writer: a {tokens}-token prompt on the loaded text encoder"
    added = f"VRAM +{(peak - weights) / 2**20:.0f} MiB over the loaded weights" if peak is not None else \
        "VRAM n/a (needs CUDA)"
    compared = f"one warm image: {baseline:.2f} s" if baseline else ""
    return [(what, f"{seconds:.2f} s ({tokens / seconds:.0f} tok/s)", compared, added)]


def measure(factory: Factory, clock: Clock, size: int = 1024, large: int = 2048, runs: int = 3,
            attention: str | None = None, steps: int | None = None, count: int = 4, fp8: bool = True) -> list[Row]:
    """Every measurement in order of importance; past the clock's budget the rest are listed as skipped.

    `steps` None is ZIT's 8 (the figures to report); the tests pass fewer steps and images (`count`).
    """
    rows: list[Row] = []
    baseline: dict[str, float] = {}

    def timing(label: str, **settings) -> Callable[[], list[Row]]:
        def run() -> list[Row]:
            row, seconds = speed(factory, size, label, runs, baseline.get("eager"), steps, **settings)
            baseline.setdefault(label, seconds)
            return [row]
        return run

    flash = attention or "flash"
    plan: list[tuple[str, Callable[[], list[Row]] | None]] = [
        ("load the pipeline", lambda: load_time(factory)),
        # issue 23: fp8 against bf16 first, as the one GPU measurement AdGen may get (bench/quant.py)
        *([("fp8 vs bf16", lambda: fp8_rows(factory, sys.modules[__name__], clock, (size, large), runs, steps))]
          if fp8 else []),
        ("peak VRAM per memory mode", lambda: peak_vram(factory, (size, large))),
        (f"seconds per warm {size}² image · eager", timing("eager")),
        (f"{count}-image {size}² request", lambda: batch(factory, size, count, steps)),
        ("injected OOM", lambda: oom_recovery(factory, size)),
        ("PNG encoding overlapped vs inline", lambda: overlap(factory, size, count, steps)),
        ("writer: a prompt on the loaded text encoder",
         lambda: writer(factory, 120 if steps is None else 16, baseline.get("eager"))),
        (f"seconds per warm {size}² image · regional compile", timing("regional compile", compile=True)),
        (f"seconds per warm {size}² image · {flash}", timing(flash, attention=attention) if attention else None),
        (f"seconds per warm {size}² image · compile + {flash}",
         timing(f"compile + {flash}", attention=attention, compile=True) if attention else None),
    ]
    for what, run in plan:
        if run is None:
            rows.append((what, "skipped", "", "flash-attn is not installed (flash_attn_interface or flash_attn)"))
        elif clock.over(reserve := COMPILE_RESERVE_S if "compile" in what else 0.0):
            why = f" (a compiled warm-up needs ~{reserve / 60:.0f} min)" if reserve else ""
            rows.append((what, "skipped", "", f"past the {clock.budget_s / 60:.0f}-minute guard{why}"))
        else:
            try:
                rows += run()
            except Exception as exc:  # one failed measurement must not lose the others' rows
                rows.append((what, "failed", "", f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"))
    if isinstance(factory, OneEngine):
        factory.close()
    return rows


def table(rows: list[Row], gpu: str, label: str, clock: Clock, steps: int = 8) -> str:
    """The dated Markdown table: GPU, versions, model, then one line per row."""
    import diffusers

    skipped = sum("-minute guard" in note for *_, note in rows)
    lines = [f"### {time.strftime('%Y-%m-%d')} · {gpu} · `python -m bench --gpu`", "",
             f"Model: {label} · torch {torch.__version__} · diffusers {diffusers.__version__} · {steps} steps "
             f"(peak VRAM rows: {PEAK_STEPS}) · {clock.elapsed / 60:.1f} min", ""]
    if skipped:
        lines += [f"The {clock.budget_s / 60:.0f}-minute guard stopped the run: {skipped} measurement(s) skipped.", ""]
    lines += ["| measurement | measured | compared with | note |", "| --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n" + text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench --gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None,
                        help="default: Tongyi-MAI/Z-Image-Turbo if cached, else the full-size synthetic model")
    parser.add_argument("--bench-file", type=Path, default=BENCH_FILE, help="append the table here")
    parser.add_argument("--size", default="1024", help="square size for the timings (default 1024)")
    parser.add_argument("--large", default="2048", help="the second size for peak VRAM (default 2048)")
    parser.add_argument("--runs", default="3", help="timed runs per speed row, median (default 3)")
    parser.add_argument("--budget", default=str(BUDGET_S), help=f"seconds before rows stop (default {BUDGET_S})")
    args = parser.parse_args(argv)
    try:  # 1. every flag checked before anything loads
        size = check_int("--size", args.size, 256, 2048, 16)
        large = check_int("--large", args.large, 256, 2048, 16)
        runs = check_int("--runs", args.runs, 1, 20)
        budget = check_int("--budget", args.budget, 1, 3600)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print(NO_CUDA, file=sys.stderr)
        return 2
    # 2. measure on the real ZIT when cached, else the synthetic one, one engine at a time
    from adgen.models import ZIT_REPO, cached_snapshot, quiet_libraries

    quiet_libraries()
    model = args.model or (ZIT_REPO if cached_snapshot(ZIT_REPO) else "synthetic")
    # quantize: none unless a row asks (auto could pick fp8 on a 24 GB card and blur the bf16 rows)
    factory = OneEngine(lambda **settings: Engine(model, cache=None, device="cuda", dtype="bfloat16",
                                                  **{"quantize": "none", **settings}))
    clock = Clock(budget)
    rows = measure(factory, clock, size, large, runs, flash_backend())
    # 3. report
    text = table(rows, torch.cuda.get_device_name(), factory.label or str(model), clock)
    print(text)
    append(args.bench_file, text)
    return 0
