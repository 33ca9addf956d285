"""Hugging Face ZeroGPU Spaces as they are in 2026: the GPU is lent per call for a duration computed from the
request, and `torch.compile` is not allowed (only ahead-of-time compilation through the `spaces` package).

`@spaces.GPU(duration=...)` takes a function of the call's arguments: AdGen asks for the seconds the request
needs (images x megapixels x steps at the seconds per megapixel-step measured on this Space, or a prior until
the first call is measured), with a margin, instead of a fixed 120 s that both wastes quota on a 1-step
preview and cuts a 4-image 2048² request short.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Callable

PRIOR_S_PER_MP_STEP = 0.35  # bf16 ZIT on an H100/H200-class GPU, eager: ~3 s per 1024² image at 8 steps, with margin
OVERHEAD_S = 20.0  # a cold call: moving weights onto the lent GPU, the text encoder and the VAE decode
MARGIN = 1.5
MIN_S, MAX_S = 30, 600
COMPILE_NOTE = ("compile: torch.compile is not allowed on ZeroGPU Spaces (ahead-of-time compilation only); "
                "running eager")


def on_zerogpu() -> bool:
    """This process runs on a ZeroGPU Space (the `spaces` package sets SPACES_ZERO_GPU there)."""
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "true")


def compile_allowed(compile: bool) -> tuple[bool, str]:
    """(compile?, note): `--compile` is refused with a note on ZeroGPU, never run as torch.compile there."""
    if compile and on_zerogpu():
        return False, COMPILE_NOTE
    return compile, ""


class Durations:
    """Seconds per megapixel-step measured on this Space's GPU calls (a running mean), and the duration a request
    asks for."""

    def __init__(self, prior: float = PRIOR_S_PER_MP_STEP):
        self.per_mp_step, self.measured = prior, 0
        self._lock = threading.Lock()

    def observe(self, images: int, width: int, height: int, steps: int, seconds: float) -> None:
        """Record one finished call (only calls that ran the model: a cache hit says nothing about the GPU)."""
        work = _work(images, width, height, steps)
        if work <= 0 or seconds < 2:  # a cache hit or a refusal: says nothing about the GPU
            return
        with self._lock:
            rate = max(seconds - OVERHEAD_S / 4, 0.0) / work
            self.measured += 1
            self.per_mp_step += (rate - self.per_mp_step) / min(self.measured, 8)  # recent calls weigh more

    def seconds(self, images: int, width: int, height: int, steps: int) -> int:
        """The GPU duration to ask for: the request's work at the measured rate, with a margin, within limits."""
        need = (OVERHEAD_S + _work(images, width, height, steps) * self.per_mp_step) * MARGIN
        return int(min(max(need, MIN_S), MAX_S))


def _work(images, width, height, steps) -> float:
    try:
        return max(int(images), 1) * int(width) * int(height) / 1e6 * max(int(steps), 1)
    except (TypeError, ValueError):  # a field the form could not parse: the request will be refused anyway
        return 0.0


def named_values(fn: Callable, args: tuple, kwargs: dict, names: dict | None = None) -> dict:
    """The call's values by field name: `fn`'s own parameters (the API functions), and in a dict argument (a Gradio
    handler given its inputs as one {component: value} dict) the components `names` maps to a field name."""
    values: dict = {}
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs)
        bound.apply_defaults()
        values.update(bound.arguments)
    except (TypeError, ValueError):
        pass
    for arg in (*args, *kwargs.values()):
        if isinstance(arg, dict) and names:
            values.update({names[key]: value for key, value in arg.items() if _hashable(key) and key in names})
    return values


def _hashable(key) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True


def request_sizes(values: dict) -> tuple[int, int, int, int]:
    """(images, width, height, steps) of a call from its named values; a campaign is channels x variants images at
    ZIT's 1024² (its backgrounds run at the nearest ZIT size)."""
    channels = values.get("channels")
    if channels:
        images = len(channels if isinstance(channels, (list, tuple)) else str(channels).split(","))
        images *= int(values.get("variants") or 1)
    else:
        images = values.get("count") or 1
    return images, values.get("width") or 1024, values.get("height") or 1024, values.get("steps") or 8
