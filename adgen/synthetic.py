"""A full-size synthetic ZIT: Z-Image-Turbo's published architecture with random weights.

It measures speed and memory on a GPU without the 33 GB download: the same classes and shapes
as Tongyi-MAI/Z-Image-Turbo (transformer 6.15B parameters, Qwen3-4B text encoder, FLUX's VAE),
built straight on the target device in the target dtype from a fixed seed. Its images are noise.
The configs are data, so `scaled` makes a tiny copy that tests build through the same code.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import torch

from .demo_model import ZIT_AXES_LENS, ZIT_SCHEDULER, build_tokenizer
from .memory import Footprint

SYNTHETIC_VERSION = 1
FULL_SIZE_LABEL = "full-size synthetic ZIT (random weights)"
MARKER = "ADGEN_SYNTHETIC_MODEL.json"  # from_pretrained ignores it; says what the folder is
SEED = 20251127
INIT_STD = 0.02  # small weights keep activations finite in bf16 through 30 blocks of random layers
DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}
COMPONENTS = ("transformer", "text_encoder", "vae")

# Tongyi-MAI/Z-Image-Turbo transformer/config.json (6,154,908,736 parameters).
TRANSFORMER = {
    "all_patch_size": (2,), "all_f_patch_size": (1,), "in_channels": 16, "dim": 3840, "n_layers": 30,
    "n_refiner_layers": 2, "n_heads": 30, "n_kv_heads": 30, "norm_eps": 1e-5, "qk_norm": True,
    "cap_feat_dim": 2560, "rope_theta": 256.0, "t_scale": 1000.0, "axes_dims": (32, 48, 48),
    "axes_lens": tuple(ZIT_AXES_LENS),
}
# text_encoder/config.json: Qwen3-4B's body (no LM head; its embeddings are tied).
TEXT_ENCODER = {
    "hidden_size": 2560, "num_hidden_layers": 36, "num_attention_heads": 32, "num_key_value_heads": 8,
    "head_dim": 128, "intermediate_size": 9728, "vocab_size": 151936, "tie_word_embeddings": True,
    "max_position_embeddings": 40960, "rope_theta": 1000000, "rms_norm_eps": 1e-6,
}
# vae/config.json: FLUX's VAE, 16 latent channels, 8x downsampling, no quant convs.
VAE = {
    "in_channels": 3, "out_channels": 3, "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4, "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2, "latent_channels": 16, "norm_num_groups": 32, "sample_size": 1024,
    "scaling_factor": 0.3611, "shift_factor": 0.1159, "use_quant_conv": False, "use_post_quant_conv": False,
}


@dataclass(frozen=True)
class ZitConfig:
    """The constructor arguments of the three weighted components (read-only; `scaled` makes changed copies)."""

    transformer: Mapping = field(default_factory=lambda: TRANSFORMER)
    text_encoder: Mapping = field(default_factory=lambda: TEXT_ENCODER)
    vae: Mapping = field(default_factory=lambda: VAE)

    def __post_init__(self) -> None:
        for name in COMPONENTS:  # nobody can change FULL_SIZE (or its cached counts) in place
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))


FULL_SIZE = ZitConfig()


def scaled(config: ZitConfig, **changes: dict) -> ZitConfig:
    """A copy of `config` with some settings changed per component, e.g. scaled(FULL_SIZE, transformer={"dim": 64})."""
    parts = {name: dict(getattr(config, name)) for name in COMPONENTS}
    for name, settings in changes.items():
        if name not in parts:
            raise ValueError(f"scaled: component must be one of {', '.join(COMPONENTS)} (got {name!r})")
        unknown = sorted(set(settings) - set(parts[name]))
        if unknown:
            raise ValueError(f"scaled: {name} has no setting {unknown[0]!r}; it has {', '.join(sorted(parts[name]))}")
        parts[name].update(settings)
    return ZitConfig(**parts)


def to_dtype(dtype: torch.dtype | str) -> torch.dtype:
    """`dtype` as a torch dtype; only bfloat16 (ZIT's) and float32 are allowed."""
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype.removeprefix("torch.") in DTYPES:
        return DTYPES[dtype.removeprefix("torch.")]
    raise ValueError(f"dtype must be one of {', '.join(DTYPES)} (got {dtype!r})")


def parameter_counts(config: ZitConfig = FULL_SIZE) -> dict[str, int]:
    """Parameters per component, counted on the meta device (no memory, well under a second)."""
    if config == FULL_SIZE:
        return dict(_full_size_counts())
    return _count(config)


@functools.cache
def _full_size_counts() -> tuple[tuple[str, int], ...]:
    return tuple(_count(FULL_SIZE).items())


def _count(config: ZitConfig) -> dict[str, int]:
    with torch.device("meta"):
        return _numels(_components(config))


def _numels(modules) -> dict[str, int]:
    return {name: sum(p.numel() for p in module.parameters()) for name, module in zip(COMPONENTS, modules, strict=True)}


def footprint_of(config: ZitConfig, dtype: torch.dtype | str) -> Footprint:
    """Bytes per component at `dtype`, with the widths the activation forecast scales by."""
    size = torch.empty((), dtype=to_dtype(dtype)).element_size()
    counts = parameter_counts(config)
    return Footprint(counts["transformer"] * size, counts["text_encoder"] * size, counts["vae"] * size,
                     dim=config.transformer["dim"], vae_channels=config.vae["block_out_channels"][0], act_bytes=size)


def transformer_shapes(config: ZitConfig = FULL_SIZE) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of the transformer's parameters, from the meta device (the quantized forecast reads them)."""
    if config == FULL_SIZE:
        return list(_full_size_shapes())
    return _shapes(config)


@functools.cache
def _full_size_shapes() -> tuple[tuple[str, tuple[int, ...]], ...]:
    return tuple(_shapes(FULL_SIZE))


def _shapes(config: ZitConfig) -> list[tuple[str, tuple[int, ...]]]:
    from diffusers import ZImageTransformer2DModel

    with torch.device("meta"):
        transformer = ZImageTransformer2DModel(**_lists(config.transformer))
    return [(name, tuple(p.shape)) for name, p in transformer.named_parameters()]


def footprint_full_size(dtype: torch.dtype | str) -> Footprint:
    """The full-size model's bytes per component at `dtype` (20.5 GB in bf16), dim 3840, VAE 128 channels."""
    return footprint_of(FULL_SIZE, dtype)


def build_full_size_pipeline(device: str | torch.device, dtype: torch.dtype | str):
    """The full-size synthetic ZImagePipeline, its random weights made directly on `device` in `dtype`."""
    return build_pipeline(FULL_SIZE, device, dtype)


def build_pipeline(config: ZitConfig, device: str | torch.device, dtype: torch.dtype | str):
    """A ZImagePipeline of `config` with seeded random weights, built on `device` in `dtype` (never float32 first)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline

    device, dtype = torch.device(device), to_dtype(dtype)
    _check(config)
    # Shapes first, on meta (no memory, no default init: that would be 2/3 of a CPU build), then each
    # module's storage allocated once, where and as it will run: never 41 GB of float32 on the CPU first.
    with _default_dtype(dtype), torch.device("meta"):
        modules = _components(config)
    if device.type != "meta":
        for n, module in enumerate(modules):
            module.to_empty(device=device)
            _initialise(module, torch.Generator(device).manual_seed(SEED + n))
    transformer, text_encoder, vae = modules
    return ZImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(**ZIT_SCHEDULER), vae=vae,
                          text_encoder=text_encoder, tokenizer=build_tokenizer(), transformer=transformer)


def save_full_size(out: Path | str, dtype: torch.dtype | str = torch.bfloat16,
                   device: str | torch.device = "cpu") -> Path:
    """Write the full-size synthetic pipeline to `out` as safetensors (~20.5 GB in bf16) for from_pretrained."""
    return save_pipeline(FULL_SIZE, out, dtype, device)


def save_pipeline(config: ZitConfig, out: Path | str, dtype: torch.dtype | str = torch.bfloat16,
                  device: str | torch.device = "cpu") -> Path:
    """Build `config` and write it to `out` (safetensors, never pickles), with a marker saying what it is."""
    out = Path(out)
    # 2 GB shards: safetensors serialises a shard in memory, so 10 GB shards (the default) would need
    # 10 GB beyond the 20.5 GB of weights.
    build_pipeline(config, device, dtype).save_pretrained(out, safe_serialization=True, max_shard_size="2GB")
    label = FULL_SIZE_LABEL if config == FULL_SIZE else "scaled synthetic ZIT (random weights)"
    (out / MARKER).write_text(json.dumps({"adgen_synthetic_model": SYNTHETIC_VERSION, "label": label,
                                          "dtype": str(to_dtype(dtype)).removeprefix("torch.")}) + "\n")
    return out


def free_memory(device: str | torch.device) -> int | None:
    """Bytes free for a build on `device` now (RAM for cpu, VRAM for cuda); None where unknown."""
    device = torch.device(device)
    if device.type == "cpu":
        import psutil

        return psutil.virtual_memory().available
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return None


def smoke_build(device: str | torch.device, dtype: torch.dtype | str) -> dict:
    """Build the full-size model on `device` once and report parameters, seconds and bytes (then free it)."""
    device = torch.device(device)
    start = time.perf_counter()
    pipe = build_full_size_pipeline(device, dtype)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    modules = [getattr(pipe, name) for name in COMPONENTS]
    report = {"parameters": _numels(modules),
              "bytes": sum(p.numel() * p.element_size() for m in modules for p in m.parameters()),
              "seconds": round(seconds, 3), "device": str(device), "dtype": str(to_dtype(dtype)).removeprefix("torch.")}
    if device.type == "cuda":
        report["max_memory_allocated"] = torch.cuda.max_memory_allocated(device)
    return report


def _check(config: ZitConfig) -> None:
    # The transformer reads the text encoder's hidden states: a mismatch only fails deep inside a run.
    width, hidden = config.transformer["cap_feat_dim"], config.text_encoder["hidden_size"]
    if width != hidden:
        raise ValueError(f"config: transformer cap_feat_dim ({width}) must equal text_encoder hidden_size ({hidden})")


def _components(config: ZitConfig) -> tuple:
    """(transformer, text encoder, VAE) built under whatever device and dtype are in force."""
    from diffusers import AutoencoderKL, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    transformer = ZImageTransformer2DModel(**_lists(config.transformer))
    text_encoder = Qwen3Model(Qwen3Config(**config.text_encoder))
    vae = AutoencoderKL(**_lists(config.vae))
    return transformer, text_encoder, vae


def _lists(settings: Mapping) -> dict:
    # Tuples keep the constants immutable; the configs the real model ships (and save_pretrained writes) hold lists.
    return {key: list(value) if isinstance(value, tuple) else value for key, value in settings.items()}


def _initialise(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Seeded weights (matrices ~ N(0, INIT_STD), biases 0, norm scales 1, pad tokens 1) and computed buffers."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.endswith("pad_token"):  # torch.empty in diffusers: give them defined values, as the demo does
                param.fill_(1.0)
            elif param.ndim >= 2:
                param.normal_(0.0, INIT_STD, generator=generator)
            elif name.endswith("bias"):
                param.zero_()
            else:
                param.fill_(1.0)
    # After to_empty the buffers hold garbage. The only ones are Qwen3's rotary frequencies, and
    # transformers' own initialiser recomputes them (in float32, as from_pretrained leaves them).
    for name, owner in module.named_modules():
        if next(owner.buffers(recurse=False), None) is None:
            continue
        if not hasattr(module, "_init_weights"):
            raise RuntimeError(f"synthetic: no way to compute the buffers of {type(module).__name__}.{name}")
        module._init_weights(owner)


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype):
    # As transformers' from_pretrained does: modules are created in `dtype`, while buffers made with an
    # explicit dtype (Qwen3's float32 rotary frequencies) stay as they are. Restored even on error.
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)
