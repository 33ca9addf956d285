"""Style LoRAs on the one pipeline: which file a style needs, loaded once as a named adapter, then
switched with `set_adapters` (or `disable_lora` for a style without one) — never a model reload."""

from __future__ import annotations

from pathlib import Path

from .demo_model import demo_lora_path
from .models import ModelSource, hub_lora
from .presets import StylePreset, resolve_lora_file


class Adapters:
    """The pipeline's LoRA adapters, by style name, each with the fingerprint of the file it came from."""

    def __init__(self, source: ModelSource):
        self.source = source
        self.loaded: dict[str, str] = {}  # adapter name -> LoRA file fingerprint
        self.loads = 0
        self.active: str | None = None

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

    def apply(self, pipe, preset: StylePreset, lora: Path | None, lora_id: str | None, scale: float | None) -> None:
        """Activate the style's adapter at its scale (loading it once), or no adapter at all."""
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

    def clear(self) -> None:
        self.loaded.clear()
        self.active = None
