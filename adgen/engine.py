"""The engine: one per process, owning the one Z-Image-Turbo pipeline.

It loads the pipeline once (thread-safe), serves identical requests from the result cache
without touching it, switches style LoRAs by adapter (never a reload), derives img2img from the
loaded pipeline (`from_pipe`, shared weights, the engine's dtype), and always passes ZIT's own
settings. Each request runs as a `Job` that owns its Stop. The GPU never waits for the CPU: PNG
encoding and cache writes of image i run outside the GPU lock, beside the denoising of image i+1.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .cache import ResultCache
from .errors import InputError, ModelError, OutOfMemory, first_line
from .images import decode_image, fit_to
from .jobs import Job, Jobs
from .loras import Adapters
from .memory import CPU_REASON, MODES, MemoryPlanner, VramProbe, cuda_probe, flush_memory
from .metadata import params_of, png_bytes, restamp
from .models import (
    Download,
    ModelSource,
    check_safetensors_only,
    download_model,
    fingerprint,
    lora_fingerprint,
    resolve_model,
)
from .presets import StylePreset, get_preset, load_presets
from .prompts import Settings, settings_for
from .quantize import Quantizer
from .request import AdRequest, image_key

log = logging.getLogger("adgen.engine")
Progress = Callable[[int, int], None]  # (steps done, steps in all) over the whole request
EMBED_CACHE_SIZE = 16
DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """`auto` (default; $ADGEN_DTYPE): bfloat16 on CUDA (how ZIT is meant to run), float32 on the CPU."""
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise InputError("dtype", f"must be one of auto, {', '.join(DTYPES)} (got {dtype})")
        return dtype
    name = str(dtype or os.environ.get("ADGEN_DTYPE") or "auto").strip().removeprefix("torch.")
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if name not in DTYPES:
        raise InputError("dtype", f"must be one of auto, {', '.join(DTYPES)} (got {name!r})")
    return DTYPES[name]


def plan_attention(backend: str | None, device: torch.device | None = None, dtype: torch.dtype | None = None,
                   shape: tuple[int, int] = (2, 64)) -> tuple[str, str]:
    """(backend that will run, why): the requested one if its package is usable here and (given a `device`) one
    real tiny call on it runs, else native SDPA. Decided before any request: cache keys record the backend."""
    if not backend or backend == "native":
        return "native", ""
    try:
        from diffusers.models.attention_dispatch import AttentionBackendName, _check_attention_backend_requirements

        _check_attention_backend_requirements(AttentionBackendName(backend))
        if device is not None:
            probe_attention(backend, device, dtype or torch.float32, *shape)
    except Exception as exc:  # flash-attn not installed, unknown name, no kernel here, ...: native SDPA still works
        return "native", f"{backend} unavailable: {first_line(exc, 120)}"
    return backend, ""


def attention_shape(path: Path | None) -> tuple[int, int]:
    """(heads, head size) of the transformer in the model folder `path`, from its config (no weights read)."""
    import json

    try:
        config = json.loads((Path(path) / "transformer" / "config.json").read_text()) if path else {}
        heads = int(config["n_heads"])
        return heads, int(config["dim"]) // heads
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
        return 30, 128  # Z-Image-Turbo's


def probe_attention(backend: str, device: torch.device, dtype: torch.dtype, heads: int, size: int) -> None:
    """One real tiny attention call as ZIT's transformer makes it (its heads, head size and dtype, a padding mask,
    an odd length) on `backend`; raises what a request would raise. A backend can pass diffusers' package check
    and still have no kernel for this GPU, dtype or mask (`_native_cudnn` on a CPU: "No viable backend")."""
    from diffusers.models.attention_dispatch import AttentionBackendName, dispatch_attention_fn

    q = torch.randn(1, 77, heads, size, generator=torch.Generator("cpu").manual_seed(0)).to(device, dtype)
    mask = torch.ones(1, 1, 1, 77, dtype=torch.bool, device=device)
    mask[..., 70:] = False  # padding: the prompt's tokens are masked like this
    with torch.no_grad():
        out = dispatch_attention_fn(q, q, q, attn_mask=mask, dropout_p=0.0, is_causal=False,
                                    backend=AttentionBackendName(backend))
    if not torch.isfinite(out).all():
        raise RuntimeError(f"{backend} returned non-finite values")


@dataclass(frozen=True)
class Picture:
    """One finished image: its PNG, seed and cache key, and for an ad the steps it was built from."""

    png: bytes = field(repr=False)
    seed: int
    key: str
    cached: bool  # the final image came from the cache
    steps: dict[str, bytes] = field(default_factory=dict, repr=False)  # ad: cutout, mask, background, copy_layer
    step_keys: dict[str, str] = field(default_factory=dict)
    step_cached: dict[str, bool] = field(default_factory=dict)
    prompt: str = ""  # the prompt this image was made with (its scene variation's)
    variation: int | None = None  # the index of the preset's scene variation it used (None: none)
    channel: str | None = None  # a campaign's picture: its channel and variant (1..N)
    variant: int | None = None
    warnings: tuple[str, ...] = ()  # what the user should know, in English (e.g. the photo is enlarged too much)

    @property
    def files(self) -> dict[str, bytes]:
        """Every PNG by step name, the final image last under "final"."""
        return {**self.steps, "final": self.png}

    def file_name(self, step: str = "final") -> str:
        """`adgen-SEED-HASH.png` (HASH: of the final PNG's bytes), with `.STEP` before `.png` for an intermediate.

        Named by content, not by cache key: two requests sharing pixels (one prompt override, two
        products) carry different parameters, so they are different files.
        """
        digest = hashlib.sha256(self.png).hexdigest()[:12]
        return f"adgen-{self.seed}-{digest}" + ("" if step == "final" else f".{step}") + ".png"


@dataclass(frozen=True)
class Result:
    """What a request made, plain image or ad: the images in seed order and how they were made."""

    images: tuple[Picture, ...]
    settings: Settings
    model: str
    demo: bool
    seconds: float
    written: tuple = ()  # what the writer wrote for it ("Different scenes"): `writer.Written`s, usable or not
    notes: tuple[str, ...] = ()  # said once for the whole result, not a problem: why some files carry no copy

    @property
    def prompt(self) -> str:
        return self.settings.prompt

    @property
    def warnings(self) -> tuple[str, ...]:
        """Every image's warnings, each once, in order."""
        return tuple(dict.fromkeys(w for picture in self.images for w in picture.warnings))


@dataclass(frozen=True)
class ModelInfo:
    """The model as the cache sees it: its fingerprint and what besides the request changes pixels."""

    fingerprint: str
    numerics: dict
    label: str
    demo: bool


@dataclass(frozen=True)
class ImagePlan:
    """A request made concrete before anything runs: each seed's settings, cache key and PNG parameters.

    The engine and the Ray front end (`adgen.workers`) plan alike, so a key is the same wherever it is made.
    """

    request: AdRequest
    preset: StylePreset
    lora_id: str | None
    info: ModelInfo
    settings_of: dict[int, Settings]
    keys: dict[int, str]
    params: dict[int, dict]

    @property
    def settings(self) -> Settings:
        return self.settings_of[self.request.seed]  # image 0's settings describe the request

    def cached(self, cache: ResultCache | None) -> dict[int, Picture]:
        """The pictures the cache already holds, each restamped with this request's own parameters."""
        done = {}
        for seed, key in self.keys.items():
            data = cache.get(key) if cache else None
            if data is not None:  # same pixels; the PNG carries this request's own parameters
                done[seed] = self.picture(seed, restamp(data, self.params[seed]), cached=True)
        return done

    def picture(self, seed: int, png: bytes, cached: bool = False) -> Picture:
        settings = self.settings_of[seed]
        return Picture(png, seed, self.keys[seed], cached=cached, prompt=settings.prompt,
                       variation=settings.variation)

    def result(self, done: dict[int, Picture], seconds: float) -> Result:
        return Result(tuple(done[s] for s in self.keys), self.settings, self.info.label, self.info.demo, seconds)


def plan_images(request: AdRequest, preset: StylePreset, info: ModelInfo, lora_id: str | None) -> ImagePlan:
    """The `ImagePlan` of a resolved `request` in `preset` on the model `info` describes."""
    # Image i has its own scene variation, so its own prompt.
    settings_of = {seed: settings_for(request, preset, i) for i, seed in enumerate(request.seeds())}
    settings = settings_of[request.seed]
    common = dict(
        model=info.fingerprint, preset=preset.name, lora=lora_id,
        lora_scale=settings.lora_scale, width=settings.width, height=settings.height, steps=settings.steps,
        image=hashlib.sha256(request.image).hexdigest() if request.image is not None else None,
        strength=request.strength if request.image is not None else None,
        mask=hashlib.sha256(request.mask).hexdigest() if request.mask is not None else None,
        numerics=info.numerics,
    )
    keys = {seed: image_key(seed=seed, prompt=settings_of[seed].prompt, **common) for seed in request.seeds()}
    lora_name = preset.name if lora_id is not None else None
    params = {seed: params_of(request, settings_of[seed], seed, info.label, key, lora_name)
              for seed, key in keys.items()}
    if info.numerics.get("quantize"):  # the PNG says it was made quantized (none: no field, as before)
        for values in params.values():
            values["quantize"] = info.numerics["quantize"]
    return ImagePlan(request, preset, lora_id, info, settings_of, keys, params)


class Engine:
    """Owns the pipeline; `generate` is the one entry point for the CLI, the UI and the API."""

    parallel = 1  # jobs it runs at once (Ray workers: one per worker)

    def __init__(self, model: str | Path | ModelSource | None = None, *, cache: ResultCache | None = None,
                 presets: dict[str, StylePreset] | None = None, device: str | None = None,
                 memory: str | None = None, attention: str | None = None, compile: bool = False,
                 compile_backend: str = "inductor", vram_probe: VramProbe | None = None,
                 dtype: str | torch.dtype | None = None, download: bool | None = None, overlap: bool = True,
                 quantize: str | None = None):
        memory = memory or os.environ.get("ADGEN_MEMORY") or "auto"
        if memory not in MODES:
            raise InputError("memory", f"must be one of {', '.join(MODES)} (got {memory!r})")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = resolve_dtype(dtype, self.device)
        # `auto` downloads ZIT on a CUDA machine (a fresh GPU Space), never on a CPU.
        download = self.device.type == "cuda" if download is None else download
        self.source = model if isinstance(model, ModelSource) else resolve_model(model, download=download)
        self.cache = cache
        self.presets = presets if presets is not None else load_presets()
        self.attention = attention
        self.attention_used, why = plan_attention(attention, self.device, self.dtype, attention_shape(self.source.path))
        if why:
            self.attention_used = f"native ({why})"
        self.compile, self.compile_backend = compile, compile_backend
        probe = vram_probe or (cuda_probe(self.device) if self.device.type == "cuda" else None)
        self.memory = MemoryPlanner(memory, self.device, probe, self.footprint)
        self.quantizer = Quantizer(quantize, self.device, self.dtype)  # the transformer's fp8/int8 (adgen.quantize)
        self.state, self.error, self.notice = "unloaded", "", ""
        self.download: Download | None = None  # a model download in progress (the panel reads it)
        # Counters the tests and the panel read: loads of the base model, LoRA loads,
        # text-encoder calls, denoising runs and writer jobs run on the model.
        self.loads = self.encodes = self.runs = self.writes = self.out_of_memory = 0
        self.adapters = Adapters(self.source, slot=compile)  # compiled: one hot-swapped slot, no recompiles
        self.jobs = Jobs()
        self._pipe = self._img2img = self._inpaint = None
        self._fingerprint: str | None = None
        self._footprints: tuple | None = None  # (unquantized, 8-bit transformer) footprints
        self._embeds: OrderedDict[str, list[torch.Tensor]] = OrderedDict()
        self._load_lock = threading.RLock()
        self._source_lock = threading.RLock()  # path and fingerprint: cache hits never wait for a load
        self._gpu_lock = threading.Lock()
        # PNG encoding and cache writes of image i overlap the denoising of image i+1 (one worker keeps order).
        self._encoder = ThreadPoolExecutor(1, thread_name_prefix="adgen-png") if overlap else None

    # -- model ---------------------------------------------------------------------------------
    @property
    def loaded_loras(self) -> list[str]:
        return self.adapters.names

    @property
    def lora_loads(self) -> int:
        return self.adapters.loads

    @property
    def active_style(self) -> str | None:
        return self.adapters.active

    @property
    def memory_mode(self) -> str:
        return self.memory.mode

    @property
    def memory_reason(self) -> str:
        return self.memory.reason

    def model_fingerprint(self) -> str:
        with self._source_lock:
            if self._fingerprint is None:
                self._fingerprint = fingerprint(self._local_path())
            return self._fingerprint

    def _local_path(self) -> Path | None:
        """The model's folder, downloading it first when needed (None for the synthetic model)."""
        with self._source_lock:
            if self.source.path is None and not self.source.synthetic:  # a repo id not yet in the cache
                self.download = Download(self.source.repo_id or "")
                try:
                    path = download_model(self.source.repo_id or "", self.download)
                except ModelError as exc:
                    if not self.source.fallback:
                        raise
                    # `auto` on a GPU: run the demo model, but visibly (panel, log, result), never silently.
                    self.notice = f"{exc} — running the demo model instead (random weights: images are noise)"
                    log.warning("%s", self.notice)
                    self._set_source(resolve_model("demo"))
                else:
                    self._set_source(ModelSource(self.source.spec, self.source.label, path))
            return self.source.path

    def _set_source(self, source: ModelSource) -> None:
        self.source = self.adapters.source = source
        self._fingerprint = self._footprints = self.quantizer.scheme = None

    def load(self):
        """The pipeline, loaded on first use (one load per process, whatever the threads)."""
        with self._load_lock:
            if self._pipe is not None:
                return self._pipe
            from diffusers import ZImagePipeline

            self.state, self.error = "loading", ""
            try:
                path = self._local_path()
                if path is None:  # the full-size synthetic ZIT, made on the device in the engine's dtype
                    from .synthetic import build_full_size_pipeline

                    on_device = self.memory.requested in ("auto", "gpu") and self.quantization() == "none"
                    # quantized: built on the CPU, each layer quantized onto the GPU (never 20.5 GB of bf16 there)
                    pipe = build_full_size_pipeline(self.device if on_device else "cpu", self.dtype)
                else:
                    check_safetensors_only(path)
                    pipe = ZImagePipeline.from_pretrained(path, dtype=self.dtype, local_files_only=True,
                                                          use_safetensors=True)  # never unpickle
                pipe.set_progress_bar_config(disable=True)
                self.quantization()
                self.quantizer.apply(pipe)  # before placing: layer by layer, never the whole bf16 transformer twice
                self.memory.place(pipe)
                self._speedups(pipe)
            except ModelError as exc:
                self.state, self.error = "error", str(exc)
                raise
            except Exception as exc:
                log.exception("loading %s failed", self.source.label)  # the whole story for the log
                self.state, self.error = "error", f"model: cannot load {self.source.label}: {first_line(exc, 200)}"
                raise ModelError(self.error) from exc
            self._pipe, self.state = pipe, "ready"
            self.loads += 1
            return pipe

    def unload(self) -> None:
        """Drop the pipeline and everything derived from it, and give the memory back."""
        with self._gpu_lock, self._load_lock:
            self._pipe = self._img2img = self._inpaint = None
            self.adapters.clear()
            self._embeds.clear()
            self.state = "unloaded"
        flush_memory()

    def footprint(self):
        """The model's weights per component at the run dtype and quantization (file headers; nothing is loaded)."""
        return self._footprint_at(self.quantization() != "none")

    def _footprint_at(self, quantized: bool):
        with self._source_lock:
            path = self._local_path()
            if self._footprints is None:
                from .quantize import model_footprints

                self._footprints = model_footprints(path, self.dtype)
            return self._footprints[quantized]

    def quantization(self) -> str:
        """The scheme the transformer runs in: none, float8-dynamic, float8-weight or int8-weight (`auto`: from the
        free VRAM, resolved once)."""
        with self._source_lock:
            if self.quantizer.scheme is None:
                free = self.memory.available() if self.quantizer.requested == "auto" else None
                self.quantizer.resolve(self.memory.requested, free, self._footprint_at)
                self.notice = self.quantizer.notice() or self.notice
            return self.quantizer.scheme or "none"

    def set_quantize(self, value: str) -> str:
        """Switch the quantization: the loaded model is dropped and reloaded on the next request (a quantized
        transformer cannot be turned back); returns the scheme it will run in."""
        from .quantize import check

        value = check(value)
        with self._gpu_lock, self._load_lock, self._source_lock:
            if value == self.quantizer.requested:
                return self.quantization()
            reload = self._pipe is not None
            self._pipe = self._img2img = self._inpaint = None
            self.adapters.clear()
            self._embeds.clear()
            self.quantizer.requested, self.quantizer.scheme = value, None
            self.notice = ""
            if reload:
                self.state = "unloaded"
        flush_memory()
        return self.quantization()

    def set_memory_mode(self, mode: str) -> str:
        """Re-place the one loaded pipeline for `mode` (never a second copy); returns why it was picked."""
        if mode not in MODES:
            raise InputError("memory", f"must be one of {', '.join(MODES)} (got {mode!r})")
        with self._gpu_lock, self._load_lock:
            before = self.memory.requested
            self.memory.requested = mode
            if self._pipe is not None:
                self._img2img = self._inpaint = None  # remade from the re-placed pipeline on demand
                if not self._placed(self._pipe):  # out of memory half-way: back to the mode it was in
                    self.out_of_memory += 1
                    self.memory.requested = before
                    if not self._placed(self._pipe):
                        self._pipe = None
                        self.adapters.clear()
                        self._embeds.clear()
                        self.state = "unloaded"  # the next request loads it again
                        flush_memory()
                        raise OutOfMemory(f"memory: {mode} ran out of GPU memory; memory was freed and the model "
                                          "unloaded (the next request loads it). Try offload or lowvram")
                    raise OutOfMemory(f"memory: {mode} ran out of GPU memory; memory was freed and the model is "
                                      f"back in {self.memory.mode or before} mode. Try offload or lowvram")
                flush_memory()
            if self.memory.available() is None:  # loaded or not: on a CPU no mode places anything
                return CPU_REASON
            return self.memory.reason or mode

    def _placed(self, pipe) -> bool:
        """Place `pipe` for the requested mode; False (memory freed) when the GPU ran out of memory on the way."""
        try:
            self.memory.place(pipe)
            return True
        except torch.cuda.OutOfMemoryError:
            pass  # freed below, outside the except block that holds the frames
        flush_memory()
        return False

    def _speedups(self, pipe) -> None:
        """Optional: a faster attention backend (falling back to native) and regional compilation."""
        if self.attention_used not in ("native",) and not self.attention_used.startswith("native"):
            try:
                pipe.transformer.set_attention_backend(self.attention_used)
            except Exception as exc:  # wrong GPU, dtype or mask, ...: native SDPA still works
                pipe.transformer.set_attention_backend("native")
                self.attention_used = f"native ({self.attention} unavailable: {first_line(exc, 120)})"
        if self.attention_used.startswith("native ("):
            log.warning("attention backend %s", self.attention_used)
        if self.compile:  # only the repeated transformer blocks: compiles once, reused by all 30
            self.adapters.prepare(pipe)  # LoRAs then swap into one slot: style and scale changes never recompile
            pipe.transformer.compile_repeated_blocks(fullgraph=True, backend=self.compile_backend)

    def forecast(self, width: int, height: int, count: int = 1, wait: bool = True) -> int | None:
        """Forecast peak VRAM in bytes for the memory mode in force (or the one a load will pick).

        `wait=False` (the panel): None instead of waiting for a download or a first header read.
        """
        if not wait and self._footprints is None:
            if not self._source_lock.acquire(blocking=False):
                return None
            try:
                if self.source.path is None and not self.source.synthetic:
                    return None  # reading the footprint would start the download here
            finally:
                self._source_lock.release()
        return self.memory.forecast(width, height, count)

    def check_fits(self, width: int, height: int, count: int = 1) -> None:
        """Refuse, before any work, a request whose forecast exceeds the VRAM available to this process."""
        self.memory.check_fits(width, height, count)

    def warmup(self, width: int = 1024, height: int = 1024) -> float:
        """One throw-away generation at the default size (compiles and allocates up front); returns seconds."""
        from .request import Product

        start = time.perf_counter()
        self.generate(AdRequest(Product("warm-up"), seed=0, width=width, height=height), use_cache=False)
        return time.perf_counter() - start

    def describe(self) -> dict:
        """The model's state for the panel and logs (lock-free reads of plain attributes)."""
        download = self.download
        return {"state": self.state, "model": self.source.label, "demo": self.source.is_demo,
                "device": self.device.type, "dtype": str(self.dtype).removeprefix("torch."),
                "loras": self.loaded_loras, "style": self.active_style, "error": self.error,
                "notice": self.notice, "download": download.line() if download else "",
                "memory": self.memory.mode or self.memory.requested, "memory_reason": self.memory.reason,
                "attention": self.attention_used, "compiled": self.compile, "jobs": len(self.jobs.running()),
                "quantize": self.quantizer.scheme or self.quantizer.requested, "quantize_reason": self.quantizer.reason}

    def numerics(self) -> dict:
        """What besides the request changes the pixels: dtype, device, attention, compile, library versions
        (and on a CPU the thread count)."""
        import diffusers

        numerics = {"dtype": str(self.dtype).removeprefix("torch."), "device": self.device.type,
                    "attention": self.attention_used.split(" ", 1)[0], "compile": self.compile,
                    "torch": torch.__version__, "diffusers": diffusers.__version__}
        if self.quantization() != "none":  # an fp8 request is never served a bf16 image (and none keeps its keys)
            numerics["quantize"] = self.quantization()
        if self.device.type == "cpu":  # CPU kernels split their sums by thread: 1 and 2 threads differ by 1/255
            numerics["threads"] = torch.get_num_threads()
        return numerics

    def load_in_background(self, warmup: bool = False) -> threading.Thread:
        """Start loading now (and optionally warm up) so the first request finds the model ready;
        errors show in `describe()`."""
        self.state = "loading"

        def run():
            try:
                self.load()
                if warmup:
                    log.info("warm-up run took %.1f s", self.warmup())
            except Exception as exc:  # reported through self.state / self.error
                log.error("loading failed: %s", exc)

        thread = threading.Thread(target=run, name="adgen-load", daemon=True)
        thread.start()
        return thread

    def set_overlap(self, on: bool) -> None:
        """PNG encoding beside the next denoise (default) or inline under the GPU lock (the bench's baseline)."""
        if on and self._encoder is None:
            self._encoder = ThreadPoolExecutor(1, thread_name_prefix="adgen-png")
        elif not on and self._encoder is not None:
            self._encoder.shutdown(wait=True)
            self._encoder = None

    def stop(self, session: str) -> int:
        """Stop the jobs of one session (a browser tab, an API client) at their next step; returns how many."""
        return self.jobs.stop(session)

    def exclusive(self, job: Job, work: Callable, total: int = 0, writing: bool = False):
        """`work(pipe)` on the loaded pipeline, held alone on the one GPU queue: the one way in and out of the GPU.

        Image jobs and writer jobs both come through here. Stop is checked while queued, after the load and once
        the GPU is free; afterwards every component goes back where the memory mode keeps it, however `work`
        ended (a Stop or an OOM skips the pipeline's own offload hooks). A CUDA out-of-memory error is recovered
        here, once the frames that hold its tensors are gone, and raised as `OutOfMemory` (`writing`: the writer's).
        """
        job.check(0, total)  # stopped while queued
        pipe = self.load()
        job.check(0, total)  # stopped while the model loaded
        with self._gpu_lock:
            if self._pipe is not pipe:  # unloaded (or reloaded) while this job waited for the GPU
                pipe = self.load()
            try:
                job.check(0, total)  # stopped while another job held the GPU
                return work(pipe)
            except torch.cuda.OutOfMemoryError:
                pass  # freed below, outside the except block that holds the frames
            finally:
                self.memory.rest(pipe)
        self.out_of_memory += 1
        flush_memory()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        if writing:
            raise OutOfMemory("the GPU ran out of memory while writing; memory was freed. Try a memory mode that "
                              "offloads (--memory offload)")
        raise OutOfMemory("the GPU ran out of memory; memory was freed. Try a smaller size, fewer images, or a memory "
                          "mode that offloads (--memory offload)")

    def write(self, request, progress: Progress | None = None, use_cache: bool = True, job: Job | None = None):
        """Ad copy, a scene prompt or scene variations from the loaded text encoder (see `adgen.writer`)."""
        from .writer import write

        return write(self, request, progress, use_cache, job)

    # -- generation ----------------------------------------------------------------------------
    def info(self) -> ModelInfo:
        """What a cache key needs to know of this engine's model (nothing is loaded)."""
        return ModelInfo(self.model_fingerprint(), self.numerics(), self.source.label, self.source.is_demo)

    def lora_id(self, preset: StylePreset) -> str | None:
        """The fingerprint of the LoRA file `preset` runs with (None: no LoRA)."""
        lora = self.adapters.file_for(preset)
        return lora_fingerprint(lora) if lora else None

    def plan(self, request: AdRequest) -> ImagePlan:
        """`request`'s images made concrete: settings, cache keys and PNG parameters per seed (nothing runs)."""
        request = request.resolved()
        preset = get_preset(self.presets, request.preset)
        return plan_images(request, preset, self.info(), self.lora_id(preset))

    def check_download(self) -> None:
        download = self.download
        if download is not None and download.state == "downloading":  # never park a worker for 33 GB
            raise ModelError(f"model: {download.line()}; generation starts when it is done (see the status line)")

    def generate(self, request: AdRequest, progress: Progress | None = None, use_cache: bool = True,
                 job: Job | None = None) -> Result:
        """Images for `request`: from the cache where the same image was made before, else from the pipeline.

        `job` owns this request's Stop (a new one when not given); Stop, a disconnect or an error ends
        it at the next step and no other job.
        """
        start = time.perf_counter()
        self.check_download()
        plan = self.plan(request)
        cache = self.cache if use_cache else None
        done = plan.cached(cache)
        pending = [seed for seed in plan.keys if seed not in done]
        if pending:
            made = self.render(plan, pending, progress, job, cache)
            done.update({seed: plan.picture(seed, png) for seed, png in made.items()})
        return plan.result(done, time.perf_counter() - start)

    def render(self, plan: ImagePlan, seeds: list[int], progress: Progress | None = None, job: Job | None = None,
               cache: ResultCache | None = None) -> dict[int, bytes]:
        """PNG bytes of `plan`'s images for `seeds`, made on the pipeline (each stored in `cache` as it is done)."""
        request, settings = plan.request, plan.settings_of[seeds[0]]
        self.check_fits(settings.width, settings.height, len(seeds))
        lora = self.adapters.file_for(plan.preset)
        # Decoded only now: a cache hit needs the bytes' hash, never the pixels.
        photo = decode_image(request.image) if request.image is not None else None
        mask = decode_image(request.mask, "mask").convert("L") if request.mask is not None else None
        with self.jobs.open(job=job) as running:
            return self._run(request, plan.preset, plan.settings_of, lora, plan.lora_id, photo, mask,
                             {seed: (plan.keys[seed], plan.params[seed]) for seed in seeds}, progress, running, cache)

    def _run(self, request, preset, settings_of: dict[int, Settings], lora, lora_id, photo, mask,
             pending: dict[int, tuple[str, dict]], progress, job: Job, cache) -> dict[int, bytes]:
        """PNG bytes for each seed in `pending`, made on the pipeline, one job at a time per process.

        Only denoising holds the GPU lock: image i's PNG encoding and cache write run on the encoder
        thread while image i+1 denoises. Images finished before a Stop are still stored.
        """
        settings = settings_of[next(iter(pending))]  # all but the prompt are the same for every image
        encoded: dict[int, Future] = {}

        def denoise(pipe) -> None:
            if self.adapters.needs_load(preset, lora, lora_id):
                with self.memory.unplaced(pipe):
                    self.adapters.apply(pipe, preset, lora, lora_id, settings.lora_scale)
            else:
                self.adapters.apply(pipe, preset, lora, lora_id, settings.lora_scale)
            kind = "inpaint" if mask is not None else "img2img"
            runner = pipe if photo is None else self._derived(pipe, kind)
            for n, (seed, (key, params)) in enumerate(pending.items()):
                job.check(n * settings.steps, total)  # stopped between images
                embeds = self._encode(pipe, settings_of[seed].prompt)  # remembered: one encode per scene
                image = self._call(runner, embeds, settings, seed, photo, mask, request.strength,
                                   _Steps(progress, job, n, len(pending)))
                encoded[seed] = self._submit(image, params, key, cache)

        total = len(pending) * settings.steps
        try:
            self.exclusive(job, denoise, total)
        finally:  # after the lock: images finished before a Stop or an OOM are stored by the time the job ends
            for future in encoded.values():
                future.exception()
        return {seed: future.result() for seed, future in encoded.items()}

    def _submit(self, image, params: dict, key: str, cache) -> Future:
        """Encode `image` as PNG and store it, on the encoder thread (inline without overlap)."""

        def encode() -> bytes:
            png = png_bytes(image, params)
            if cache:
                cache.put(key, png)
            return png

        if self._encoder is not None:
            return self._encoder.submit(encode)
        future: Future = Future()
        future.set_result(encode())
        return future

    def _call(self, runner, embeds, settings: Settings, seed: int, photo, mask, strength: float, steps: _Steps):
        kwargs = dict(
            prompt_embeds=embeds, height=settings.height, width=settings.width,
            num_inference_steps=settings.steps, guidance_scale=0.0,  # ZIT: no CFG; diffusers' default is 5
            generator=torch.Generator("cpu").manual_seed(seed),  # CPU noise: same image on any device
            callback_on_step_end=steps,
        )
        if photo is not None:
            kwargs.update(image=fit_to(photo.convert("RGB"), settings.width, settings.height), strength=strength)
        if mask is not None:
            kwargs.update(mask_image=fit_to(mask, settings.width, settings.height))
        self.runs += 1
        return runner(**kwargs).images[0]

    def _encode(self, pipe, prompt: str) -> list[torch.Tensor]:
        """Prompt embeddings, remembered per prompt: a new seed or size skips the text encoder."""
        if prompt in self._embeds:
            self._embeds.move_to_end(prompt)
            return self._embeds[prompt]
        embeds, _ = pipe.encode_prompt(prompt, device=pipe._execution_device, do_classifier_free_guidance=False)
        self.encodes += 1
        self._embeds[prompt] = embeds
        while len(self._embeds) > EMBED_CACHE_SIZE:
            self._embeds.popitem(last=False)
        return embeds

    def _derived(self, pipe, kind: str):
        """The img2img or inpaint pipeline, made once from the loaded modules: it shares them all, no second copy."""
        attribute = f"_{kind}"
        derived = getattr(self, attribute)
        if derived is None or derived.transformer is not pipe.transformer:  # never one made from a dropped pipe
            from diffusers import ZImageImg2ImgPipeline, ZImageInpaintPipeline

            cls = ZImageInpaintPipeline if kind == "inpaint" else ZImageImg2ImgPipeline
            # The same module objects, untouched. `from_pipe` always ends in `.to(dtype)`: without a dtype it
            # turns every shared module float32 (41 GB for ZIT), and even with one it recasts the text
            # encoder's float32 rotary buffers, so prompt embeddings would differ after the first photo ad.
            derived = cls(**pipe.components)
            derived.set_progress_bar_config(disable=True)
            setattr(self, attribute, derived)
        return getattr(self, attribute)

class _Steps:
    """The per-step callback: reports progress and ends the job at a step boundary when it is stopped.

    Steps count the whole request (image i's step s is i * steps + s), in progress and in the Stop message alike.
    """

    def __init__(self, progress: Progress | None, job: Job, image: int, images: int):
        self.progress, self.job, self.image, self.images = progress, job, image, images

    def __call__(self, pipe, step: int, timestep, callback_kwargs: dict) -> dict:
        total = pipe.num_timesteps
        done = self.image * total + step + 1
        if self.progress:
            self.progress(done, self.images * total)
        self.job.check(done, self.images * total)
        return callback_kwargs
