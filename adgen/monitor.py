"""Memory snapshots for the live VRAM panel: torch.cuda counters, NVML, psutil.

Reads counters only; never takes the engine's lock, so the panel never waits behind a generation.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil

GB = 1024**3
MB = 1024**2


@dataclass(frozen=True)
class MemorySnapshot:
    device: str  # "cuda" or "cpu"
    taken_at: float
    rss: int  # this process's resident memory
    ram_used: int
    ram_total: int
    gpu_name: str = ""
    allocated: int = 0  # by this process (torch)
    reserved: int = 0
    peak: int = 0
    used: int = 0  # on the whole device (NVML, else torch.cuda.mem_get_info)
    total: int = 0
    utilization: int | None = None  # percent, NVML only


def snapshot(device: torch.device | str | None = None) -> MemorySnapshot:  # noqa: F821 - torch loads lazily
    """Memory of this process and machine now, plus the GPU's when `device` is CUDA."""
    import torch  # here, not at import: the page must be up before torch is

    ram = psutil.virtual_memory()
    base = dict(taken_at=time.time(), rss=psutil.Process(os.getpid()).memory_info().rss,
                ram_used=ram.total - ram.available, ram_total=ram.total)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type != "cuda" or not torch.cuda.is_available():
        return MemorySnapshot(device="cpu", **base)
    index = device.index if device.index is not None else torch.cuda.current_device()
    used, total, util = _nvml(index)
    if total == 0:
        free, total = torch.cuda.mem_get_info(index)
        used = total - free
    return MemorySnapshot(
        device="cuda", gpu_name=torch.cuda.get_device_name(index), allocated=torch.cuda.memory_allocated(index),
        reserved=torch.cuda.memory_reserved(index), peak=torch.cuda.max_memory_allocated(index),
        used=used, total=total, utilization=util, **base,
    )


def _nvml(index: int) -> tuple[int, int, int | None]:
    """(used, total, utilisation %) from NVML; zeros when NVML is missing (e.g. no driver library)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        util = pynvml.nvmlDeviceGetUtilizationRates(handle).gpu
        return int(memory.used), int(memory.total), int(util)
    except Exception:  # NVML absent or not permitted: fall back to torch's figures
        return 0, 0, None


def render(snap: MemorySnapshot, model: dict) -> str:
    """Markdown for the panel: memory, then the model's state (`model` from `Engine.describe()`)."""
    clock = time.strftime("%H:%M:%S", time.localtime(snap.taken_at))
    if snap.device == "cuda":
        util = f" · GPU {snap.utilization}%" if snap.utilization is not None else ""
        lines = [
            f"**{snap.gpu_name}** · VRAM {snap.used / GB:.1f} / {snap.total / GB:.1f} GB used on device{util}",
            f"this process: allocated {snap.allocated / GB:.2f} GB · reserved {snap.reserved / GB:.2f} GB · "
            f"peak {snap.peak / GB:.2f} GB",
        ]
    else:
        lines = [f"**CPU mode** (no GPU) · process RSS {snap.rss / MB:.1f} MB",
                 f"system RAM {snap.ram_used / GB:.1f} / {snap.ram_total / GB:.1f} GB used"]
    loras = ", ".join(model["loras"]) or "none"
    lines.append(f"model: **{model['state']}** · {model['model']} · {model['device']} · {model['dtype']} · "
                 f"LoRAs loaded: {loras}")
    if model.get("memory"):
        lines.append(f"memory mode: {model['memory_reason'] or model['memory']} · attention: "
                     f"{model.get('attention', 'native')}{' · compiled' if model.get('compiled') else ''}")
    if model.get("download"):
        lines.append(model["download"])
    if model.get("notice"):
        lines.append(f"**{model['notice']}**")
    if model.get("error"):
        lines.append(f"last error: {model['error']}")
    lines.append(f"updated {clock}")
    return "  \n".join(lines)
