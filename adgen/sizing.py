"""`python -m adgen memory`: each memory mode's forecast peak for a model, size and quantization, and which fit a
card of N GB — for people choosing hardware. Nothing is loaded: file headers (or ZIT's published shapes) only."""

from __future__ import annotations

import torch

from .errors import InputError, ModelError
from .memory import GB, HEADROOM, MODES, choose_mode, forecast
from .quantize import check, model_footprints, prefer_fp8

FULL_SIZE_NOTE = "full-size ZIT's figures"


def check_gb(value: str | float | None) -> float | None:
    """A card's memory in GB (1..1024), or None."""
    if value is None or value == "":
        return None
    try:
        gb = float(value)
    except (TypeError, ValueError):
        raise InputError("GPU GB", f"must be a number from 1 to 1024 (got {value!r})") from None
    if not 1 <= gb <= 1024:
        raise InputError("GPU GB", f"must be from 1 to 1024 (got {value!r})")
    return gb


def footprints(model: str | None, dtype: torch.dtype):
    """(label, footprint unquantized, footprint with an 8-bit transformer) of the resolved model."""
    from .models import ZIT_REPO, resolve_model

    source = resolve_model(model, download=False)
    if source.path is not None and not source.synthetic and source.label != ZIT_REPO:
        path, label = source.path, source.label
    elif source.synthetic or ZIT_REPO in (source.label, source.repo_id):
        path, label = None, f"{ZIT_REPO} ({FULL_SIZE_NOTE})"
    else:
        raise ModelError(f"model: {source.spec} is not on this machine; its sizes are read from its files "
                         "(download it first, or ask for synthetic: ZIT's own figures)")
    return (label, *model_footprints(path, dtype))


def report(model: str | None = None, width: int = 1024, height: int = 1024, quantize: str | None = None,
           gpu_gb: float | None = None, dtype: torch.dtype = torch.bfloat16) -> dict:
    """Each mode's forecast peak (GB) for the model at width x height, and on a card of `gpu_gb` which fit and what
    `auto` would choose."""
    requested = check(quantize)
    label, plain, eight = footprints(model, dtype)
    free = gpu_gb * GB if gpu_gb is not None else None
    why = ""
    if requested == "auto":
        use_fp8, why = prefer_fp8("auto", free, plain, eight, width, height)
        used = "fp8" if use_fp8 else "none"
    else:
        used = requested
    fp = plain if used == "none" else eight
    modes = {}
    for mode in MODES[1:]:
        need = forecast(fp, mode, width, height)
        modes[mode] = {"peak_gb": round(need / GB, 2)}
        if free is not None:
            modes[mode]["fits"] = need * HEADROOM <= free
    out = {"model": label, "size": f"{width}x{height}", "dtype": str(dtype).removeprefix("torch."),
           "quantize": used, "modes": modes, "weights_gb": round(fp.weights / GB, 2),
           "components_gb": {"transformer": round(fp.transformer / GB, 2),
                             "text_encoder": round(fp.text_encoder / GB, 2), "vae": round(fp.vae / GB, 2)},
           "headroom": HEADROOM}
    if requested == "auto":
        out["quantize_requested"] = "auto"
    if free is not None:
        mode, mode_why = choose_mode("auto", free, fp, width, height)
        out.update(gpu_gb=gpu_gb, auto={"memory": mode, "quantize": used, "why": why or mode_why})
    return out


def text(figures: dict) -> str:
    """The report as lines for a terminal."""
    parts = figures["components_gb"]
    lines = [f"{figures['model']} · {figures['size']} · {figures['dtype']} · quantize {figures['quantize']}",
             f"weights {figures['weights_gb']:.2f} GB (transformer {parts['transformer']:.2f}, text encoder "
             f"{parts['text_encoder']:.2f}, VAE {parts['vae']:.2f})"]
    card = figures.get("gpu_gb")
    for mode, values in figures["modes"].items():
        line = f"  {mode:<8} peak ~{values['peak_gb']:.2f} GB"
        if card is not None:
            line += f"  {'fits' if values['fits'] else 'does not fit'} a {card:g} GB card"
        lines.append(line)
    if card is not None:
        auto = figures["auto"]
        lines.append(f"auto on a {card:g} GB card: {auto['memory']} mode, quantize {auto['quantize']} ({auto['why']})")
    lines.append(f"(fits: the forecast with {round((figures['headroom'] - 1) * 100)}% to spare, as auto wants)")
    return "\n".join(lines)
