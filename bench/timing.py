"""Timing helpers every bench module shares (one side of the import, so the bench's modules form no circle)."""

from __future__ import annotations

import statistics
import time


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(a, b, runs: int) -> tuple[float, float]:
    """Medians of `runs` alternating timings of a() and b()."""
    ta, tb = [], []
    for _ in range(runs):
        ta.append(timed(a))
        tb.append(timed(b))
    return statistics.median(ta), statistics.median(tb)
