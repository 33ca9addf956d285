"""Style LoRAs on the one pipeline: which file a style needs, loaded once as a named adapter, then
switched with `set_adapters` (or `disable_lora` for a style without one) — never a model reload.

With a compiled transformer every change of Python-level LoRA state (which adapters are active,
their float scales, `disable_lora`'s flag) is a guard failure and a recompile; after a few,
torch stops with `FailOnRecompileLimitHit`. So a compiled pipeline gets one adapter *slot*
instead: the first LoRA is loaded into it padded to `MAX_RANK` (one recompile), later LoRAs are
copied into the same tensors (`hotswap`), and the scale is a tensor filled in place — a style
without a LoRA is scale 0, which adds exactly nothing. The compiled graph reads those tensors, so
neither a style nor a scale change recompiles.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .demo_model import demo_lora_path
from .models import ModelSource, hub_lora
from .presets import StylePreset, resolve_lora_file

log = logging.getLogger("adgen.loras")
SLOT = "style"  # the one adapter name of a compiled pipeline
MAX_RANK = int(os.environ.get("ADGEN_LORA_MAX_RANK") or 128)  # slot rank: LoRAs up to it swap without recompiling


class Adapters:
    """The pipeline's LoRA adapters, by style name, each with the fingerprint of the file it came from."""

    def __init__(self, source: ModelSource, slot: bool = False):
        self.source = source
        self.slot = slot  # one hot-swapped adapter with tensor scales (compiled pipelines)
        self.loaded: dict[str, str] = {}  # adapter name -> LoRA file fingerprint (slot: the style in it)
        self.loads = 0
        self.active: str | None = None
        self._unit: list[tuple[object, float]] = []  # slot: (LoRA layer, its scale tensor's value at scale 1)

    def file_for(self, preset: StylePreset) -> Path | None:
        """The LoRA file a style needs (None for none), checked to stay inside the allowed folders."""
        if preset.lora is None:
            return None
        if self.source.is_demo:  # the demo transformer takes only its own tiny LoRAs...
            if preset.lora.file:  # ...but a path that escapes the LoRA folders is refused all the same
                resolve_lora_file(preset.lora, must_exist=False)
            return demo_lora_path(self.source.path, preset.name)  # type: ignore[arg-type]
        if preset.lora.file:
            return resolve_lora_file(preset.lora)  # type: ignore[return-value]
        return hub_lora(preset.lora.repo or "", preset.lora.weight_name or "")

    def prepare(self, pipe) -> None:
        """Before compiling: make the first LoRA load pad to MAX_RANK and keep its scales as tensors."""
        if self.slot:
            pipe.enable_lora_hotswap(target_rank=MAX_RANK, check_compiled="ignore")  # regional compile: no wrapper

    def needs_load(self, preset: StylePreset, lora: Path | None, lora_id: str | None) -> bool:
        """Whether `apply` will read a LoRA file (offload hooks must be off while diffusers injects layers)."""
        if lora is None:
            return False
        if self.slot:
            return self.loaded.get(SLOT) != f"{preset.name}:{lora_id}"
        return self.loaded.get(preset.name) != lora_id

    def apply(self, pipe, preset: StylePreset, lora: Path | None, lora_id: str | None, scale: float | None) -> None:
        """Activate the style's adapter at its scale (loading it once), or no adapter at all."""
        if self.slot:
            return self._apply_slot(pipe, preset, lora, lora_id, scale)
        if lora is None:
            if self.loaded:
                pipe.disable_lora()
            self.active = preset.name
            return
        name = preset.name
        if self.loaded.get(name) != lora_id:  # new, or its file changed on disk
            if name in self.loaded:
                pipe.delete_adapters(name)
            pipe.load_lora_weights(str(lora.parent), weight_name=lora.name, adapter_name=name,
                                   use_safetensors=True)  # never unpickle
            self.loaded[name] = lora_id or ""
            self.loads += 1
        pipe.enable_lora()  # set_adapters alone does not undo an earlier disable_lora
        pipe.set_adapters([name], adapter_weights=[scale])
        self.active = name

    def _apply_slot(self, pipe, preset: StylePreset, lora: Path | None, lora_id: str | None,
                    scale: float | None) -> None:
        """The slot: swap this style's weights in (when another is there), then fill the scale tensors."""
        if lora is not None and self.loaded.get(SLOT) != f"{preset.name}:{lora_id}":
            hotswap = SLOT in (pipe.transformer.peft_config if hasattr(pipe.transformer, "peft_config") else {})
            try:
                pipe.load_lora_weights(str(lora.parent), weight_name=lora.name, adapter_name=SLOT,
                                       hotswap=hotswap, use_safetensors=True)
            except (RuntimeError, ValueError) as exc:  # other layers, or a rank above the slot's: a fresh slot
                # (one recompile)
                log.warning("LoRA %s cannot be hot-swapped (%s); loading it afresh", preset.name, exc)
                pipe.delete_adapters(SLOT)
                pipe.load_lora_weights(str(lora.parent), weight_name=lora.name, adapter_name=SLOT,
                                       use_safetensors=True)
            self.loaded = {SLOT: f"{preset.name}:{lora_id}"}
            self.loads += 1
            self._unit = _scale_tensors(pipe.transformer)
        for tensor, unit in self._unit:
            tensor.fill_(unit * (scale if lora is not None else 0.0))  # no LoRA: scale 0 adds exactly nothing
        self.active = preset.name

    @property
    def names(self) -> list[str]:
        """The styles whose LoRAs are loaded (slot: the one in the slot)."""
        if self.slot:
            return [value.split(":", 1)[0] for value in self.loaded.values()]
        return list(self.loaded)

    def clear(self) -> None:
        self.loaded.clear()
        self._unit = []
        self.active = None


def _scale_tensors(transformer) -> list[tuple[object, float]]:
    """Each LoRA layer's scale tensor for the slot with its value at scale 1 (alpha / rank of the file loaded)."""
    import torch
    from peft.tuners.lora import LoraLayer

    found = []
    for module in transformer.modules():
        if isinstance(module, LoraLayer) and SLOT in module.scaling:
            value = module.scaling[SLOT]
            if not isinstance(value, torch.Tensor):  # a fresh (non-hotswap) load keeps floats: make it a tensor once
                value = module.scaling[SLOT] = torch.tensor(float(value))
            found.append((value, float(value)))
    return found
