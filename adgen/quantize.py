"""Quantization of ZIT's transformer with torchao: a memory decision (fp8 keeps ZIT on one 24 GB GPU).

`--quantize` (or $ADGEN_QUANTIZE): `auto` (default), `none`, `fp8`, `int8`. Schemes actually run:

- `float8-dynamic`: float8 weights and activations (per-row scales) on GPUs with FP8 matrix units
  (CUDA compute capability 8.9 and up: L4, L40S, RTX 4090, H100/H200, Blackwell);
- `float8-weight`: float8 weights, matmuls in the run dtype (CPU, Ampere: A100, RTX 3090);
- `int8-weight`: int8 weights, the fallback where float8 cannot run.

Only the matrices of the attention and feed-forward layers are quantized (98% of the weights); the
embedders, the final layer and the adaLN modulation stay in the run dtype (KEEP: measured, see
docs/quantize.md), and norms are not linear layers. `auto` quantizes only on a GPU where bf16 needs
offload and fp8 fits with everything on the GPU; on a CPU it changes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import torch

from .errors import InputError, first_line
from .memory import GB, HEADROOM, Footprint, forecast

log = logging.getLogger("adgen.quantize")
CHOICES = ("auto", "none", "fp8", "int8")
TORCHAO_MIN = "0.18.0"  # the version AdGen is tested with (requirements.txt pins it)
SCHEMES = {"fp8": ("float8-dynamic", "float8-weight"), "int8": ("int8-weight",)}
# Kept in the run dtype: a module whose name contains one of these. Their weights are 2% of the
# transformer; per byte saved they moved the output 30-600x as much as the other 98% (docs/quantize.md).
KEEP = ("x_embedder", "final_layer", "adaLN_modulation", "t_embedder", "cap_embedder")
SCALE_BYTES = 4  # one float32 scale per output row


def check(value: str | None) -> str:
    """`value` (else $ADGEN_QUANTIZE, else auto) checked against the choices: one line naming them otherwise."""
    name = str(value or os.environ.get("ADGEN_QUANTIZE") or "auto").strip().lower()
    if name not in CHOICES:
        raise InputError("quantize", f"must be one of {', '.join(CHOICES)} (got {name!r})")
    return name


def quantizable(name: str) -> bool:
    """A weight (by its full name) that the quantized schemes store in 8 bits: attention and feed-forward matrices."""
    parts = name.split(".")
    return parts[-1] == "weight" and not any(keep in part for part in parts for keep in KEEP) \
        and ("attention" in parts or "feed_forward" in parts)


def torchao_problem() -> str | None:
    """Why torchao cannot quantize here (missing, too old), naming the package and version; None when it can."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import Version

    try:
        found = version("torchao")
    except PackageNotFoundError:
        return f"quantize: torchao is not installed (pip install torchao=={TORCHAO_MIN}); running unquantized"
    if Version(found) < Version(TORCHAO_MIN):
        return f"quantize: torchao {found} is too old (AdGen needs {TORCHAO_MIN} or newer); running unquantized"
    return None


def fp8_units(device: torch.device) -> bool:
    """The GPU has FP8 matrix units (CUDA compute capability 8.9 and up)."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 9)


def _quiet_torchao() -> None:
    # torchao logs its optional CUDA kernels' load failures and a missing Triton as warnings on a CPU machine
    logging.getLogger("torchao").setLevel(logging.ERROR)


def config_of(scheme: str):
    """torchao's config for `scheme`."""
    _quiet_torchao()
    from torchao.quantization import (
        Float8DynamicActivationFloat8WeightConfig,
        Float8WeightOnlyConfig,
        Int8WeightOnlyConfig,
        PerRow,
    )

    if scheme == "float8-dynamic":
        return Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())
    if scheme == "float8-weight":
        return Float8WeightOnlyConfig()
    if scheme == "int8-weight":
        return Int8WeightOnlyConfig()
    raise ValueError(f"quantization scheme must be one of float8-dynamic, float8-weight, int8-weight (got {scheme!r})")


def quantize(module: torch.nn.Module, scheme: str, device: torch.device | None = None) -> torch.nn.Module:
    """Quantize `module`'s attention and feed-forward linear layers in place (each moved to `device` first)."""
    _quiet_torchao()
    from torchao.quantization import quantize_

    def chosen(layer: torch.nn.Module, name: str) -> bool:
        return isinstance(layer, torch.nn.Linear) and quantizable(f"{name}.weight")

    quantize_(module, config_of(scheme), filter_fn=chosen, device=device)
    return module


def probe(scheme: str, device: torch.device, dtype: torch.dtype) -> str | None:
    """Why `scheme` cannot run on `device` in `dtype` (a tiny layer quantized and run for real); None if it can."""
    _quiet_torchao()
    from torchao.quantization import quantize_

    try:
        layer = torch.nn.Sequential(torch.nn.Linear(64, 64, dtype=dtype, device=device))
        quantize_(layer, config_of(scheme))
        with torch.no_grad():
            layer(torch.ones(2, 64, dtype=dtype, device=device))
    except Exception as exc:  # unsupported device, dtype or kernel: the caller falls back and says so
        return first_line(exc, 160)
    return None


def choose(requested: str, device: torch.device, dtype: torch.dtype) -> tuple[str, str]:
    """(scheme, why) for an explicit `none`, `fp8` or `int8` here: the nearest that runs, with one line when it is
    not what was asked for."""
    if requested == "none":
        return "none", ""
    problem = torchao_problem()
    if problem:
        return "none", problem
    first = SCHEMES[requested][0] if fp8_units(device) or requested != "fp8" else SCHEMES["fp8"][1]
    notes = []
    if requested == "fp8" and first == "float8-weight":
        notes.append(f"fp8: float8 weights only on {_where(device)} (no FP8 matrix units; they need CUDA compute "
                     "capability 8.9+)")
    order = (*SCHEMES["fp8"], "int8-weight") if requested == "fp8" else SCHEMES["int8"]
    for scheme in order[order.index(first):]:  # the nearest scheme that runs here
        why = probe(scheme, device, dtype)
        if why is None:
            return scheme, "; ".join(notes) or f"{requested}: {scheme}"
        notes.append(f"{scheme} cannot run on {_where(device)} ({why}); falling back")
    return "none", "; ".join(notes) + " to none"


def _where(device: torch.device) -> str:
    if device.type != "cuda":
        return device.type.upper()
    major, minor = torch.cuda.get_device_capability(device)
    return f"{torch.cuda.get_device_name(device)} (compute capability {major}.{minor})"


def transformer_bytes(named_shapes: Iterable[tuple[str, tuple[int, ...]]], element: int, scheme: str) -> int:
    """The transformer's weight bytes under `scheme`: quantizable matrices at 1 byte plus a scale per row."""
    total = 0
    for name, shape in named_shapes:
        numel = 1
        for side in shape:
            numel *= side
        if scheme != "none" and len(shape) == 2 and quantizable(name):
            total += numel + shape[0] * SCALE_BYTES
        else:
            total += numel * element
    return total


def model_footprints(path: Path | None, dtype: torch.dtype) -> tuple[Footprint, Footprint]:
    """(unquantized, 8-bit transformer) footprints of the model folder `path` at `dtype` (None: the full-size
    synthetic ZIT), from file headers or ZIT's shapes: the one figure the engine and `adgen memory` both report."""
    if path is None:
        from .synthetic import footprint_full_size, transformer_shapes

        base, shapes = footprint_full_size(dtype), transformer_shapes()
    else:
        from .memory import footprint, tensor_shapes

        base, shapes = footprint(path, dtype), list(tensor_shapes(path / "transformer"))
    return base, quantized_footprint(base, shapes, torch.empty((), dtype=dtype).element_size(), "8-bit")


def quantized_footprint(fp: Footprint, named_shapes: Iterable[tuple[str, tuple[int, ...]]], element: int,
                        scheme: str) -> Footprint:
    """`fp` with the transformer's bytes under `scheme` (activations stay in the run dtype)."""
    if scheme == "none":
        return fp
    return dataclasses.replace(fp, transformer=transformer_bytes(named_shapes, element, scheme))


def prefer_fp8(memory: str, free: int | None, plain: Footprint, fp8: Footprint, width: int = 1024,
               height: int = 1024) -> tuple[bool, str]:
    """`auto`: (quantize to fp8?, why). Yes only on a GPU where bf16 needs offload and fp8 fits with everything on
    the GPU (the fast path); an explicit offload mode, a CPU or a card where bf16 fits keeps the weights as they
    are."""
    if free is None or memory not in ("auto", "gpu"):
        return False, ""
    plain_need, fp8_need = forecast(plain, "gpu", width, height), forecast(fp8, "gpu", width, height)
    if plain_need * HEADROOM <= free or fp8_need * HEADROOM > free:
        return False, ""
    return True, (f"auto: fp8 keeps everything on the GPU (~{fp8_need / GB:.1f} GB at {width}x{height}; unquantized "
                  f"needs ~{plain_need / GB:.1f} GB, {free / GB:.1f} GB free)")


def weight_bytes(module: torch.nn.Module) -> int:
    """Bytes of `module`'s parameters and buffers as stored (torchao's tensors by their inner storages), each once."""
    from torch.utils._python_dispatch import is_traceable_wrapper_subclass

    seen: dict[int, int] = {}

    def visit(tensor: torch.Tensor) -> None:
        if is_traceable_wrapper_subclass(tensor):
            names, _ = tensor.__tensor_flatten__()
            for name in names:
                visit(getattr(tensor, name))
            return
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()

    for tensor in [*module.parameters(), *module.buffers()]:
        visit(tensor.data if isinstance(tensor, torch.nn.Parameter) and not is_traceable_wrapper_subclass(tensor)
              else tensor)
    return sum(seen.values())


class Quantizer:
    """The quantization asked for and the scheme the transformer runs in, resolved once per loaded model."""

    def __init__(self, requested: str | None, device: torch.device, dtype: torch.dtype):
        self.requested, self.device, self.dtype = check(requested), device, dtype
        self.scheme: str | None = None  # None: not resolved yet
        self.reason = ""

    def resolve(self, memory: str, free: int | None, footprint_at) -> str:
        """The scheme in force (`footprint_at(quantized: bool)` gives the footprints `auto` compares)."""
        if self.scheme is None:
            requested, why = self.requested, ""
            if requested == "auto":
                fp8, why = prefer_fp8(memory, free, footprint_at(False), footprint_at(True)) if free is not None \
                    else (False, "")
                requested = "fp8" if fp8 else "none"
            scheme, note = choose(requested, self.device, self.dtype)
            self.scheme, self.reason = scheme, "; ".join(r for r in (why, note) if r)  # a fallback is said too
            if self.reason:
                (log.warning if "falling back" in note or "running unquantized" in note else log.info)(
                    "quantize: %s", self.reason)
        return self.scheme

    def apply(self, pipe) -> None:
        """Quantize the pipeline's transformer in place, layer by layer on the engine's device."""
        if self.scheme not in (None, "none"):
            quantize(pipe.transformer, self.scheme, self.device)

    def notice(self) -> str:
        """One line for the user when the scheme is not the one asked for (fallback, torchao missing)."""
        return self.reason if ("falling back" in self.reason or "unquantized" in self.reason
                               or "weights only" in self.reason) else ""
