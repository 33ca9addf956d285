"""Memory snapshots for the live VRAM panel: torch.cuda counters, NVML, psutil.

Reads counters only; never takes the engine's lock, so the panel never waits behind a generation.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

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


STATE_KEYS = {"ready": "status_ready", "loading": "status_loading", "error": "status_error"}  # else unloaded
_DEVICES, _DTYPES = ("cpu", "cuda"), ("float32", "bfloat16", "float16")


def model_text(model: dict, lang: str = "en") -> str:
    """The model's name as a person reads it in `lang` (the demo model's label is translated; a repo id is not)."""
    from .i18n import text

    return text("model_demo", lang) if model.get("demo") else model["model"]


def device_text(device: str, lang: str = "en") -> str:
    """"CPU"/"GPU" for torch's device type; internal ids never reach the page."""
    from .i18n import text

    return text(f"device_{device}", lang) if device in _DEVICES else device


def label_of(kind: str, value: str, lang: str) -> str:
    """The label of an internal id (a memory mode, an attention backend: its first word) in `lang`, or the id."""
    from .i18n import _locales, text

    key = f"{kind}_{str(value).split(' ')[0]}"
    return text(key, lang) if key in _locales()["en"] else str(value)


def dtype_text(dtype: str, lang: str = "en") -> str:
    """torch's dtype name as its label in `lang` ("float32" -> "32비트 정밀도")."""
    from .i18n import text

    return text(f"dtype_{dtype}", lang) if dtype in _DTYPES else dtype


def render(snap: MemorySnapshot, model: dict, lang: str = "en") -> str:
    """Markdown for the panel, in `lang`: memory, then the model's state (`model` from `Engine.describe()`)."""
    from .i18n import lang_code, text, translate_message

    clock = time.strftime("%H:%M:%S", time.localtime(snap.taken_at))
    if "workers" in model:  # Ray workers: this process is the front end; each worker's own line follows
        lines = [text("panel_workers", lang, n=len(model["workers"]), rss=f"{snap.rss / MB:.1f}")]
    elif snap.device == "cuda":
        util = f" · GPU {snap.utilization}%" if snap.utilization is not None else ""
        lines = [f"**{snap.gpu_name}** · " + text("panel_vram", lang, used=f"{snap.used / GB:.1f}",
                                                   total=f"{snap.total / GB:.1f}") + util,
                 text("panel_process", lang, allocated=f"{snap.allocated / GB:.2f}",
                      reserved=f"{snap.reserved / GB:.2f}", peak=f"{snap.peak / GB:.2f}")]
    else:
        lines = [text("panel_cpu", lang, rss=f"{snap.rss / MB:.1f}"),
                 text("panel_ram", lang, used=f"{snap.ram_used / GB:.1f}", total=f"{snap.ram_total / GB:.1f}")]
    state = STATE_KEYS.get(model["state"], "status_unloaded")
    device = workers_text(model["workers"], lang) if "workers" in model else device_text(model["device"], lang)
    lines.append(text("panel_model", lang, state=text(state, lang), model=model_text(model, lang), device=device,
                      dtype=dtype_text(model["dtype"], lang),
                      loras=", ".join(model["loras"]) or text("panel_none", lang)))
    if model.get("memory"):
        compiled = f" · {text('panel_compiled', lang)}" if model.get("compiled") else ""
        mode, attention = model["memory_reason"] or model["memory"], model.get("attention", "native")
        if lang_code(lang) == "ko":  # the planner's reasons are English sentences: the mode's label instead
            mode, attention = label_of("memory_mode", model["memory"], lang), label_of("attention", attention, lang)
        lines.append(text("panel_memory_mode", lang, mode=mode, attention=attention) + compiled)
    if model.get("quantize") not in (None, "none", "auto"):
        lines.append(text("panel_quantize", lang, scheme=model["quantize"]))
    if model.get("download"):
        lines.append(model["download"])
    if model.get("notice"):
        lines.append(f"**{translate_message(model['notice'], lang) or model['notice']}**")
    if model.get("error") and "workers" not in model:
        lines.append(text("panel_last_error", lang, error=model["error"]))
    if "workers" in model:
        lines.extend(worker_lines(model["workers"], lang))
    lines.append(text("panel_updated", lang, clock=clock))
    return "  \n".join(lines)


def workers_text(workers: list[dict], lang: str = "en") -> str:
    """"1/2 Ray workers ready" in `lang`: the status line shows a worker restarting without opening the panel."""
    from .i18n import text

    return text("status_workers", lang, ready=sum(w.get("state") == "ready" for w in workers), n=len(workers))


def worker_lines(workers: list[dict], lang: str = "en") -> list[str]:
    """One line per Ray worker (`Workers.workers()`): state, device and GPU, memory, host, and whether it runs a job."""
    from .i18n import text

    lines = []
    for worker in workers:
        n, state = worker["index"] + 1, worker.get("state", "starting")
        if state in ("starting", "restarting"):
            why = text(f"panel_worker_{state}", lang, resource="GPU" if worker.get("gpus") else "CPU")
            lines.append(text("panel_worker_error", lang, n=n, state=text("status_loading", lang), error=why))
            continue
        label = text(STATE_KEYS.get(state, "status_unloaded"), lang)
        if state == "error":
            lines.append(text("panel_worker_error", lang, n=n, state=label, error=worker.get("error") or "?"))
            continue
        cuda = worker.get("device") == "cuda"
        used, total = worker.get("used", 0), worker.get("total", 0)
        memory = f"VRAM {used / GB:.1f}/{total / GB:.0f} GB" if cuda else f"RAM {used / MB:.0f} MB"
        device = f"{(worker.get('gpu') if cuda else '') or worker.get('device')} · {worker.get('dtype')}"
        job = text("panel_worker_job", lang) if worker.get("busy") else ""
        if "host" not in worker and "pid" not in worker:  # a public page: where the worker runs is not shown
            lines.append(text("panel_worker_public", lang, n=n, state=label, device=device, memory=memory, job=job))
            continue
        lines.append(text("panel_worker", lang, n=n, state=label, device=device, memory=memory,
                          host=worker.get("host", "?"), pid=worker.get("pid", "?"), job=job))
    return lines


# An absolute path (POSIX or Windows) starting a word, an IPv4 address (with its port), "pid 1234": what a public
# page never shows. A path inside a URL or a ratio ("1.0/24 GB", "1/2 workers") is not a path.
_PRIVATE = re.compile(r"(?<![\w.:/~-])(?:/|~/|[A-Za-z]:\\)(?=[\w.~-])[^\s'\"`,;:()\[\]]*"
                      r"|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b|\bpid[ =:]*\d+", re.IGNORECASE)


def scrub(line: str) -> str:
    """`line` without server paths, IP addresses or process ids (each becomes "…"), for a public page."""
    return _PRIVATE.sub("…", str(line or ""))


def public_view(model: dict) -> dict:
    """`Engine.describe()` (or the Ray front end's) as a public page may show it: a local model folder by its name
    only, no worker's host or process id, and no server path, address or pid in any error, notice or line."""
    shown = dict(model)
    label = str(shown.get("model") or "")
    if label.startswith(("/", "~", ".")) or Path(label).is_absolute() or re.match(r"[A-Za-z]:\\", label):
        shown["model"] = Path(label).name or "…"
    for key in ("error", "notice", "download", "memory_reason", "quantize_reason"):
        if shown.get(key):
            shown[key] = scrub(shown[key])
    if "workers" in shown:
        shown["workers"] = [{**{k: v for k, v in w.items() if k not in ("host", "pid")},
                             **({"error": scrub(w["error"])} if w.get("error") else {})} for w in shown["workers"]]
    return shown
