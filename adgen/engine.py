"""The engine: one per process, owning the one Z-Image-Turbo pipeline.

It loads the pipeline once (thread-safe), serves identical requests from the result cache
without touching it, switches style LoRAs by adapter (never a reload), derives img2img from the
loaded pipeline (`from_pipe`, shared weights), and always passes ZIT's own settings.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .cache import ResultCache
from .errors import GenerationStopped, InputError, ModelError, OutOfMemory
from .images import decode_image, fit_to
from .loras import Adapters
from .memory import MODES, MemoryPlanner, VramProbe, cuda_probe, flush_memory, footprint
from .metadata import params_of, png_bytes
from .models import ModelSource, download_model, fingerprint, lora_fingerprint, resolve_model
from .presets import StylePreset, get_preset, load_presets
from .prompts import Settings, settings_for
from .request import AdRequest, image_key

log = logging.getLogger("adgen.engine")
Progress = Callable[[int, int], None]  # (steps done, steps in all) over the whole request
EMBED_CACHE_SIZE = 16


@dataclass(frozen=True)
class ImageResult:
    png: bytes = field(repr=False)
    seed: int
    key: str
    cached: bool


@dataclass(frozen=True)
class AdResult:
    images: tuple[ImageResult, ...]
    settings: Settings
    model: str
    demo: bool
    seconds: float

    @property
    def prompt(self) -> str:
        return self.settings.prompt


class Engine:
    """Owns the pipeline; `generate` is the one entry point for the CLI, the UI and the API."""

    def __init__(self, model: str | Path | ModelSource | None = None, *, cache: ResultCache | None = None,
                 presets: dict[str, StylePreset] | None = None, device: str | None = None,
                 memory: str | None = None, attention: str | None = None, compile: bool = False,
                 compile_backend: str = "inductor", vram_probe: VramProbe | None = None):
        memory = memory or os.environ.get("ADGEN_MEMORY") or "auto"
        if memory not in MODES:
            raise InputError("memory", f"must be one of {', '.join(MODES)} (got {memory!r})")
        self.source = model if isinstance(model, ModelSource) else resolve_model(model)
        self.cache = cache
        self.presets = presets if presets is not None else load_presets()
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self.attention, self.attention_used = attention, "native"
        self.compile, self.compile_backend = compile, compile_backend
        probe = vram_probe or (cuda_probe(self.device) if self.device.type == "cuda" else None)
        self.memory = MemoryPlanner(memory, self.device, probe, self.footprint)
        self.state, self.error = "unloaded", ""
        # Counters the tests and the panel read: loads of the base model, LoRA loads,
        # text-encoder calls and denoising runs.
        self.loads = self.encodes = self.runs = self.out_of_memory = 0
        self.adapters = Adapters(self.source)
        self._pipe = self._img2img = self._inpaint = None
        self._fingerprint: str | None = None
        self._footprint = None
        self._embeds: OrderedDict[str, list[torch.Tensor]] = OrderedDict()
        self._load_lock = threading.RLock()
        self._source_lock = threading.RLock()  # path and fingerprint: cache hits never wait for a load
        self._gpu_lock = threading.Lock()
        self._stop = threading.Event()

    # -- model ---------------------------------------------------------------------------------
    @property
    def loaded_loras(self) -> list[str]:
        return list(self.adapters.loaded)

    @property
    def lora_loads(self) -> int:
        return self.adapters.loads

    @property
    def active_style(self) -> str | None:
        return self.adapters.active

    @property
    def memory_request(self) -> str:
        return self.memory.requested

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

    def _local_path(self) -> Path:
        with self._source_lock:
            if self.source.path is None:  # an explicit repo id not yet in the cache
                path = download_model(self.source.repo_id or "")
                self.source = ModelSource(self.source.spec, self.source.label, path)
                self.adapters.source = self.source
            return self.source.path  # type: ignore[return-value]

    def load(self):
        """The pipeline, loaded on first use (one load per process, whatever the threads)."""
        with self._load_lock:
            if self._pipe is not None:
                return self._pipe
            from diffusers import ZImagePipeline

            self.state, self.error = "loading", ""
            try:
                path = self._local_path()
                pipe = ZImagePipeline.from_pretrained(path, dtype=self.dtype, local_files_only=True)
                pipe.set_progress_bar_config(disable=True)
                self.memory.place(pipe)
                self._speedups(pipe)
            except ModelError as exc:
                self.state, self.error = "error", str(exc)
                raise
            except Exception as exc:
                self.state, self.error = "error", f"model: cannot load {self.source.label}: {exc}"
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
        """The model's weights per component at the run dtype (from file headers once; nothing is loaded)."""
        with self._source_lock:
            if self._footprint is None:
                self._footprint = footprint(self._local_path(), self.dtype)
            return self._footprint

    def set_memory_mode(self, mode: str) -> str:
        """Re-place the one loaded pipeline for `mode` (never a second copy); returns why it was picked."""
        if mode not in MODES:
            raise InputError("memory", f"must be one of {', '.join(MODES)} (got {mode!r})")
        with self._gpu_lock, self._load_lock:
            self.memory.requested = mode
            if self._pipe is not None:
                self._img2img = self._inpaint = None  # remade from the re-placed pipeline on demand
                self.memory.place(self._pipe)
                flush_memory()
            return self.memory.reason or mode

    def _speedups(self, pipe) -> None:
        """Optional: a faster attention backend (falling back to native) and regional compilation."""
        if self.attention and self.attention != "native":
            try:
                pipe.transformer.set_attention_backend(self.attention)
                self.attention_used = self.attention
            except Exception as exc:  # flash-attn not installed, wrong GPU, ...: native SDPA still works
                pipe.transformer.set_attention_backend("native")
                self.attention_used = f"native ({self.attention} unavailable: {str(exc).splitlines()[0][:120]})"
                log.warning("attention backend %s", self.attention_used)
        if self.compile:  # only the repeated transformer blocks: compiles once, reused by all 30
            pipe.transformer.compile_repeated_blocks(fullgraph=True, backend=self.compile_backend)

    def forecast(self, width: int, height: int, count: int = 1) -> int:
        """Forecast peak VRAM in bytes for the memory mode in force (or the one a load will pick)."""
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
        return {"state": self.state, "model": self.source.label, "demo": self.source.is_demo,
                "device": self.device.type, "dtype": str(self.dtype).removeprefix("torch."),
                "loras": self.loaded_loras, "style": self.active_style, "error": self.error,
                "memory": self.memory.mode or self.memory.requested, "memory_reason": self.memory.reason,
                "attention": self.attention_used, "compiled": self.compile}

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

    def stop(self) -> None:
        """Ask the running generation to end at its next step boundary."""
        self._stop.set()

    # -- generation ----------------------------------------------------------------------------
    def generate(self, request: AdRequest, progress: Progress | None = None, use_cache: bool = True) -> AdResult:
        """Images for `request`: from the cache where the same image was made before, else from the pipeline."""
        start = time.perf_counter()
        request = request.resolved()
        preset = get_preset(self.presets, request.preset)
        settings = settings_for(request, preset)
        lora = self.adapters.file_for(preset)
        lora_id = lora_fingerprint(lora) if lora else None
        common = dict(
            model=self.model_fingerprint(), prompt=settings.prompt, preset=preset.name, lora=lora_id,
            lora_scale=settings.lora_scale, width=settings.width, height=settings.height, steps=settings.steps,
            image=hashlib.sha256(request.image).hexdigest() if request.image is not None else None,
            strength=request.strength if request.image is not None else None,
            mask=hashlib.sha256(request.mask).hexdigest() if request.mask is not None else None,
        )
        keys = {seed: image_key(seed=seed, **common) for seed in request.seeds()}
        cache = self.cache if use_cache else None
        done: dict[int, ImageResult] = {}
        for seed, key in keys.items():
            data = cache.get(key) if cache else None
            if data is not None:
                done[seed] = ImageResult(data, seed, key, cached=True)
        pending = {seed: key for seed, key in keys.items() if seed not in done}
        if pending:
            self.check_fits(settings.width, settings.height, len(pending))
            # Decoded only now: a cache hit needs the bytes' hash, never the pixels.
            photo = decode_image(request.image) if request.image is not None else None
            mask = decode_image(request.mask, "mask").convert("L") if request.mask is not None else None
            for seed, png in self._run(request, preset, settings, lora, lora_id, photo, mask, pending, progress):
                done[seed] = ImageResult(png, seed, keys[seed], cached=False)
                if cache:
                    cache.put(keys[seed], png)
        return AdResult(tuple(done[s] for s in keys), settings, self.source.label, self.source.is_demo,
                        time.perf_counter() - start)

    def _run(self, request, preset, settings, lora, lora_id, photo, mask, keys: dict[int, str], progress):
        """Yield (seed, png) for each seed in `keys`, on the pipeline, one run at a time per process."""
        pipe = self.load()
        out_of_memory = False
        with self._gpu_lock:
            self._stop.clear()
            try:
                self.adapters.apply(pipe, preset, lora, lora_id, settings.lora_scale)
                kind = "inpaint" if mask is not None else "img2img"
                runner = pipe if photo is None else self._derived(pipe, kind)
                embeds = self._encode(pipe, settings.prompt)
                for n, (seed, key) in enumerate(keys.items()):
                    image = self._call(runner, embeds, settings, seed, photo, mask, request.strength,
                                       _Steps(progress, self._stop, n, len(keys)))
                    lora_name = preset.name if lora is not None else None
                    yield seed, png_bytes(image, params_of(request, settings, seed, self.source.label, key, lora_name))
            except torch.cuda.OutOfMemoryError:
                out_of_memory = True  # freed below, outside the except block that holds the frames
        if out_of_memory:
            self.out_of_memory += 1
            flush_memory()
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
            raise OutOfMemory("the GPU ran out of memory; memory was freed. Try a smaller size, fewer images, "
                              "or a memory mode that offloads (--memory offload)")

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
        """The img2img or inpaint pipeline, made once with `from_pipe`: it shares every module, no second copy."""
        attribute = f"_{kind}"
        if getattr(self, attribute) is None:
            from diffusers import ZImageImg2ImgPipeline, ZImageInpaintPipeline

            cls = ZImageInpaintPipeline if kind == "inpaint" else ZImageImg2ImgPipeline
            derived = cls.from_pipe(pipe)
            derived.set_progress_bar_config(disable=True)
            setattr(self, attribute, derived)
        return getattr(self, attribute)

class _Steps:
    """The per-step callback: reports progress and ends the run at a step boundary on Stop."""

    def __init__(self, progress: Progress | None, stop: threading.Event, image: int, images: int):
        self.progress, self.stop, self.image, self.images = progress, stop, image, images

    def __call__(self, pipe, step: int, timestep, callback_kwargs: dict) -> dict:
        total = pipe.num_timesteps
        if self.progress:
            self.progress(self.image * total + step + 1, self.images * total)
        if self.stop.is_set():
            raise GenerationStopped(step + 1, total)
        return callback_kwargs
