"""Memory modes, the peak-VRAM forecast, and placing the one pipeline for a mode.

Modes: `gpu` (everything on the GPU), `offload` (model CPU offload: one component on the GPU at a
time), `lowvram` (group offload at leaf level, with CUDA streams: layers stream in as needed).
`auto` picks the fastest mode whose forecast fits the free VRAM.

The forecast is weights + activations, calibrated on public measurements of ZIT through diffusers
at 1024x1024 in bf16 (weights 20.5 GB): no offload ~24.9 GB peak, model CPU offload ~13.5 GB,
group offload (leaf level, streams) ~6.6 GB. Activations scale with the image tokens (transformer)
and pixels (VAE decode), and with the model's width; images of one request run one after another,
so the image count does not raise the peak.
"""

from __future__ import annotations

import gc
import json
import logging
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import WontFit

log = logging.getLogger("adgen.memory")
MODES = ("auto", "gpu", "offload", "lowvram")
GB = 10**9  # the calibration figures are decimal gigabytes
CPU_REASON = "CPU: memory modes apply to GPUs only"
HEADROOM = 1.10  # auto wants 10% to spare over the forecast

# ZIT at 1024x1024 (4096 image tokens + 512 caption tokens), transformer width 3840, VAE 128 channels:
REF_TOKENS, REF_PIXELS, REF_DIM, REF_VAE = 4096 + 512, 1024 * 1024, 3840, 128
TRANSFORMER_ACT = 1.2 * GB  # offload peak 13.5 = transformer 12.3 + 1.2
VAE_ACT = 4.4 * GB  # no-offload peak 24.9 = weights 20.5 + VAE decode 4.4
TEXT_ACT = 0.2 * GB
LOWVRAM_BUFFER = 2.2 * GB  # group offload peak 6.6 = VAE decode 4.4 + layers in flight 2.2
_DTYPE_BYTES = {"F64": 8, "F32": 4, "BF16": 2, "F16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I64": 8, "I32": 4, "I8": 1,
                "U8": 1, "BOOL": 1}


@dataclass(frozen=True)
class Footprint:
    """A pipeline's weights in bytes at the dtype it runs in, and the sizes activations scale with."""

    transformer: int
    text_encoder: int
    vae: int
    dim: int = REF_DIM
    vae_channels: int = REF_VAE
    act_bytes: int = 2  # bytes per activation value: the run dtype's (the calibration is bf16's)

    @property
    def weights(self) -> int:
        return self.transformer + self.text_encoder + self.vae


def footprint(model_dir: Path, dtype: torch.dtype) -> Footprint:
    """Weights per component from the safetensors headers (nothing is loaded), at `dtype`'s width."""
    size = torch.empty((), dtype=dtype).element_size()
    counts = {c: sum(_numel(shape) for _, shape in tensor_shapes(model_dir / c))
              for c in ("transformer", "text_encoder", "vae")}
    config = json.loads((model_dir / "transformer" / "config.json").read_text())
    vae = json.loads((model_dir / "vae" / "config.json").read_text())
    return Footprint(counts["transformer"] * size, counts["text_encoder"] * size, counts["vae"] * size,
                     dim=config.get("dim", REF_DIM), vae_channels=vae.get("block_out_channels", [REF_VAE])[0],
                     act_bytes=size)


def tensor_shapes(folder: Path) -> Iterator[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every tensor in a component folder's safetensors files, from their headers only."""
    for path in sorted(folder.glob("*.safetensors")):
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        for name, info in header.items():
            if name != "__metadata__":
                yield name, tuple(info["shape"])


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for side in shape:
        count *= side
    return count


def activations(fp: Footprint, width: int, height: int) -> tuple[float, float, float]:
    """(transformer, text encoder, VAE decode) activation peaks in bytes for one image, at the run dtype's width."""
    tokens = (width // 16) * (height // 16) + 512
    scale = fp.dim / REF_DIM * fp.act_bytes / 2  # float32 activations take twice bf16's bytes
    transformer = TRANSFORMER_ACT * tokens / REF_TOKENS * scale
    vae = VAE_ACT * (width * height) / REF_PIXELS * fp.vae_channels / REF_VAE * fp.act_bytes / 2
    return transformer, TEXT_ACT * scale, vae


def forecast(fp: Footprint, mode: str, width: int, height: int, count: int = 1) -> int:
    """Peak VRAM in bytes for `mode` at width x height (count does not raise it: images run in turn)."""
    transformer_act, text_act, vae_act = activations(fp, width, height)
    if mode == "gpu":
        peak = fp.weights + max(transformer_act, text_act, vae_act)
    elif mode == "offload":
        peak = max(fp.transformer + transformer_act, fp.text_encoder + text_act, fp.vae + vae_act)
    elif mode == "lowvram":
        peak = max(transformer_act, vae_act) + LOWVRAM_BUFFER * fp.dim / REF_DIM * fp.act_bytes / 2
    else:
        raise ValueError(f"memory mode must be one of {', '.join(MODES[1:])} (got {mode!r})")
    return int(peak)


def choose_mode(requested: str, free: int | None, fp: Footprint, width: int = 1024,
                height: int = 1024) -> tuple[str, str]:
    """(mode, why): `requested` unless it is `auto`; then the fastest mode that fits `free` bytes of VRAM."""
    if requested not in MODES:
        raise ValueError(f"memory mode must be one of {', '.join(MODES)} (got {requested!r})")
    if free is None:
        return "cpu", CPU_REASON
    if requested != "auto":
        need = forecast(fp, requested, width, height)
        return requested, f"{requested}: chosen by the user (needs ~{need / GB:.1f} GB at {width}x{height}, " \
                          f"{free / GB:.1f} GB free)"
    for mode in ("gpu", "offload", "lowvram"):
        need = forecast(fp, mode, width, height)
        if need * HEADROOM <= free:
            return mode, f"{mode}: needs ~{need / GB:.1f} GB at {width}x{height}, {free / GB:.1f} GB free"
    need = forecast(fp, "lowvram", width, height)
    return "lowvram", f"lowvram: even it needs ~{need / GB:.1f} GB and only {free / GB:.1f} GB is free; " \
                      "expect refusals at this size"


VramProbe = Callable[[], "tuple[int, int] | None"]  # (bytes available to this process, bytes in all)


def cuda_probe(device: torch.device) -> VramProbe:
    """VRAM this process could use now: the device's free memory plus what torch holds in reserve."""

    def probe() -> tuple[int, int]:
        free, total = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device), total

    return probe


class MemoryPlanner:
    """The memory mode the one pipeline is in and why, its forecast, and the check that a request fits."""

    def __init__(self, requested: str, device: torch.device, probe: VramProbe | None,
                 footprint_of: Callable[[], Footprint]):
        self.requested, self.device, self.probe, self.footprint_of = requested, device, probe, footprint_of
        self.mode = self.reason = ""

    def available(self) -> int | None:
        figures = self.probe() if self.probe else None
        return figures[0] if figures else None

    def place(self, pipe) -> None:
        """Choose the mode (auto: from the free VRAM) and place the pipeline for it."""
        mode, why = choose_mode(self.requested, self.available(), self.footprint_of())
        place(pipe, mode, self.device)
        self.mode, self.reason = mode, why
        log.info("memory mode %s", why)

    @contextmanager
    def unplaced(self, pipe):
        """The pipeline without offload hooks for the block (diffusers' LoRA loading re-enables offload on its
        own default device, which fails on a CPU), then placed again in the same mode."""
        if self.mode not in ("offload", "lowvram"):
            yield
            return
        rest(pipe, self.mode)
        clear_placement(pipe)
        try:
            yield
        finally:
            place(pipe, self.mode, self.device)

    def rest(self, pipe) -> None:
        """After a run, however it ended: every component where the mode in force keeps it."""
        rest(pipe, self.mode)

    def mode_for(self, available: int | None) -> str:
        """The mode in force, or before the first load the one `auto` will pick (as `place` does)."""
        if self.mode in ("gpu", "offload", "lowvram"):
            return self.mode
        mode, _ = choose_mode(self.requested, available, self.footprint_of())
        return mode if mode != "cpu" else "gpu"

    def forecast(self, width: int, height: int, count: int = 1) -> int:
        return forecast(self.footprint_of(), self.mode_for(self.available()), width, height, count)

    def check_fits(self, width: int, height: int, count: int = 1) -> None:
        """Raise WontFit, before any work, when the forecast exceeds the VRAM available (no probe: no check)."""
        available = self.available()
        if available is None:
            return
        mode = self.mode_for(available)
        need = forecast(self.footprint_of(), mode, width, height, count)
        if need > available:
            raise WontFit(f"size: {width}x{height} needs ~{need / GB:.1f} GB of VRAM in {mode} mode but only "
                          f"{available / GB:.1f} GB is available; try a smaller size, fewer images, or a memory "
                          "mode that offloads (offload, lowvram)")


def place(pipe, mode: str, device: torch.device) -> None:
    """Put the one pipeline's modules where `mode` says, removing the previous mode's hooks first."""
    clear_placement(pipe)
    if mode in ("gpu", "cpu"):
        pipe.to(device)
    elif mode == "offload":
        pipe.enable_model_cpu_offload(device=device)
    elif mode == "lowvram":
        pipe.to("cpu")
        pipe.enable_group_offload(onload_device=device, offload_device=torch.device("cpu"),
                                  offload_type="leaf_level", use_stream=device.type == "cuda")
    else:
        raise ValueError(f"memory mode must be one of {', '.join(MODES[1:])} (got {mode!r})")


def rest(pipe, mode: str) -> None:
    """Put every component back where `mode` keeps it between runs.

    A pipeline call that ends by an exception (Stop, OOM) never reaches the hooks that move its
    modules back to the CPU: in `offload` mode the 12.3 GB transformer would stay on the GPU when
    the 8 GB text encoder comes in next. Pipelines made with `from_pipe` have no hooks list of
    their own, so even their successful calls leave the VAE on the GPU. The engine calls this
    after every run; for modules already at rest it moves nothing.
    """
    if mode == "offload":
        for hook in getattr(pipe, "_all_hooks", None) or []:
            hook.offload()
    elif mode == "lowvram":
        for group in offload_groups(pipe.components.values()):
            group.offload_()


def offload_groups(components) -> list:
    """The group-offloading groups (lowvram mode) of `components` (a pipeline's modules), each once."""
    from diffusers.hooks import HookRegistry
    from diffusers.hooks.group_offloading import _GROUP_OFFLOADING, _is_group_offload_enabled

    groups, seen = [], set()
    for component in components:
        if not isinstance(component, torch.nn.Module) or not _is_group_offload_enabled(component):
            continue
        for module in component.modules():
            registry = getattr(module, "_diffusers_hook", None)
            hook = registry.get_hook(_GROUP_OFFLOADING) if isinstance(registry, HookRegistry) else None
            if hook is not None and id(hook.group) not in seen:
                seen.add(id(hook.group))
                groups.append(hook.group)
    return groups


@contextmanager
def onloaded(module: torch.nn.Module) -> Iterator[None]:
    """`module`'s weights on its execution device for a use outside its own forward (the writer's head reads the
    text encoder's embedding matrix). In lowvram mode its group-offload group is onloaded for the block and
    offloaded after; in the other modes the weights already are where the encoder's forward left them."""
    from diffusers.hooks import HookRegistry
    from diffusers.hooks.group_offloading import _GROUP_OFFLOADING

    registry = getattr(module, "_diffusers_hook", None)
    hook = registry.get_hook(_GROUP_OFFLOADING) if isinstance(registry, HookRegistry) else None
    if hook is None:
        yield
        return
    hook.group.onload_()
    if hook.group.stream is not None:  # the copy runs on a side stream: wait for it before reading the weights
        hook.group.stream.synchronize()
    try:
        yield
    finally:
        hook.group.offload_()


def clear_placement(pipe) -> None:
    """Remove accelerate's offload hooks and diffusers' group-offload hooks from every component."""
    from diffusers.hooks import HookRegistry
    from diffusers.hooks.group_offloading import (
        _GROUP_OFFLOADING,
        _LAYER_EXECUTION_TRACKER,
        _LAZY_PREFETCH_GROUP_OFFLOADING,
        _is_group_offload_enabled,
    )

    pipe.remove_all_hooks()
    for module in pipe.components.values():
        if isinstance(module, torch.nn.Module) and _is_group_offload_enabled(module):
            registry = HookRegistry.check_if_exists_or_initialize(module)
            for name in (_GROUP_OFFLOADING, _LAYER_EXECUTION_TRACKER, _LAZY_PREFETCH_GROUP_OFFLOADING):
                registry.remove_hook(name, recurse=True)


def flush_memory() -> None:
    """Give freed tensors back: Python's garbage first, then CUDA's cached blocks."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.ipc_collect()
