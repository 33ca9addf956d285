"""The engine: one per process, owning the one Z-Image-Turbo pipeline.

It loads the pipeline once (thread-safe), serves identical requests from the result cache
without touching it, switches style LoRAs by adapter (never a reload), derives img2img from the
loaded pipeline (`from_pipe`, shared weights), and always passes ZIT's own settings.
"""

from __future__ import annotations

import gc
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .cache import ResultCache
from .demo_model import demo_lora_path
from .errors import GenerationStopped, ModelError, OutOfMemory
from .images import decode_image, fit_to
from .metadata import params_of, png_bytes
from .models import ModelSource, download_model, fingerprint, lora_fingerprint, resolve_model
from .presets import StylePreset, get_preset, load_presets, resolve_lora_file
from .prompts import Settings, settings_for
from .request import AdRequest, image_key

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
                 presets: dict[str, StylePreset] | None = None, device: str | None = None):
        self.source = model if isinstance(model, ModelSource) else resolve_model(model)
        self.cache = cache
        self.presets = presets if presets is not None else load_presets()
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self.state, self.error = "unloaded", ""
        self.active_style: str | None = None
        # Counters the tests and the panel read: loads of the base model, LoRA loads,
        # text-encoder calls and denoising runs.
        self.loads = self.lora_loads = self.encodes = self.runs = 0
        self._pipe = self._img2img = self._inpaint = None
        self._fingerprint: str | None = None
        self._adapters: dict[str, str] = {}  # adapter name -> LoRA file fingerprint
        self._embeds: OrderedDict[str, list[torch.Tensor]] = OrderedDict()
        self._load_lock = threading.RLock()
        self._gpu_lock = threading.Lock()
        self._stop = threading.Event()

    # -- model ---------------------------------------------------------------------------------
    @property
    def loaded_loras(self) -> list[str]:
        return list(self._adapters)

    def model_fingerprint(self) -> str:
        with self._load_lock:
            if self._fingerprint is None:
                self._fingerprint = fingerprint(self._local_path())
            return self._fingerprint

    def _local_path(self) -> Path:
        if self.source.path is None:  # an explicit repo id not yet in the cache
            self.source = ModelSource(self.source.spec, self.source.label, download_model(self.source.repo_id or ""))
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
                pipe.to(self.device)
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
            self._adapters.clear()
            self._embeds.clear()
            self.active_style, self.state = None, "unloaded"
        flush_memory()

    def describe(self) -> dict:
        """The model's state for the panel and logs (lock-free reads of plain attributes)."""
        return {"state": self.state, "model": self.source.label, "demo": self.source.is_demo,
                "device": self.device.type, "dtype": str(self.dtype).removeprefix("torch."),
                "loras": list(self._adapters), "style": self.active_style, "error": self.error}

    def load_in_background(self) -> threading.Thread:
        """Start loading now so the first request finds the model ready; errors show in `describe()`."""
        self.state = "loading"

        def run():
            try:
                self.load()
            except Exception:  # reported through self.state / self.error
                pass

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
        lora = self._lora_file(preset)
        lora_id = lora_fingerprint(lora) if lora else None
        photo = decode_image(request.image) if request.image is not None else None
        mask = decode_image(request.mask, "mask").convert("L") if request.mask is not None else None
        common = dict(
            model=self.model_fingerprint(), prompt=settings.prompt, preset=preset.name, lora=lora_id,
            lora_scale=settings.lora_scale, width=settings.width, height=settings.height, steps=settings.steps,
            image=hashlib.sha256(request.image).hexdigest() if request.image is not None else None,
            strength=request.strength if photo is not None else None,
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
                self._apply_style(pipe, preset, lora, lora_id, settings.lora_scale)
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
            flush_memory()
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

    # -- styles --------------------------------------------------------------------------------
    def _lora_file(self, preset: StylePreset) -> Path | None:
        if preset.lora is None:
            return None
        if self.source.is_demo:  # the demo transformer takes only its own tiny LoRAs...
            if preset.lora.file:  # ...but a path that escapes the LoRA folders is refused all the same
                resolve_lora_file(preset.lora, must_exist=False)
            return demo_lora_path(self.source.path, preset.name)  # type: ignore[arg-type]
        if preset.lora.file:
            return resolve_lora_file(preset.lora)  # type: ignore[return-value]
        return hub_lora(preset.lora.repo or "", preset.lora.weight_name or "")

    def _apply_style(self, pipe, preset: StylePreset, lora: Path | None, lora_id: str | None,
                     scale: float | None) -> None:
        """Activate the style's adapter at its scale (loading it once), or no adapter at all."""
        if lora is None:
            if self._adapters:
                pipe.disable_lora()
            self.active_style = preset.name
            return
        name = preset.name
        if self._adapters.get(name) != lora_id:  # new, or its file changed on disk
            if name in self._adapters:
                pipe.delete_adapters(name)
            pipe.load_lora_weights(str(lora.parent), weight_name=lora.name, adapter_name=name,
                                   use_safetensors=True)  # never unpickle
            self._adapters[name] = lora_id or ""
            self.lora_loads += 1
        pipe.enable_lora()  # set_adapters alone does not undo an earlier disable_lora
        pipe.set_adapters([name], adapter_weights=[scale])
        self.active_style = name


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


def hub_lora(repo: str, weight_name: str) -> Path:
    """A hub LoRA file from the local cache, downloading it only when missing."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo, weight_name, local_files_only=True))
    except Exception:
        pass
    try:
        return Path(hf_hub_download(repo, weight_name))
    except Exception as exc:
        raise ModelError(f"lora: cannot get {weight_name} from {repo} ({exc.__class__.__name__}); "
                         "run `python -m adgen download` where there is network") from None


def flush_memory() -> None:
    """Give freed tensors back: Python's garbage first, then CUDA's cached blocks."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.ipc_collect()


def quiet_libraries() -> None:
    """Silence diffusers/transformers progress bars and advice; for entry points (CLI, app), not import."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for module in (diffusers_logging, transformers_logging):
        module.set_verbosity_error()
        module.disable_progress_bar()
