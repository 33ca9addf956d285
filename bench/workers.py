"""The Ray workers' row: a batch of images on 2 workers vs 1 worker, as a throughput ratio (same run).

Both pools live on one local Ray (each worker one CPU, so one torch thread); the batch is N single-image
requests sent at once, as `python -m adgen batch --workers N` sends its rows, none from the cache.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

from adgen.request import AdRequest, Product

PRODUCT = Product("Citrus sparkling water", features="lemon, zero sugar", scene="summer picnic")


def batch(pool, images: int, size: int, seeds) -> None:
    """`images` requests at once on `pool` (as many in flight as it has workers), fresh seeds, no cache."""
    requests = [AdRequest(PRODUCT, seed=next(seeds), width=size, height=size) for _ in range(images)]
    with ThreadPoolExecutor(pool.parallel) as threads:
        list(threads.map(lambda r: pool.generate(r, use_cache=False), requests))


def batch_row(one, two, images: int, size: int, runs: int) -> tuple[str, str, str, str]:
    """(what, measured, ratio, target): seconds for the batch on `two` vs on `one` (interleaved medians)."""
    from bench.timing import interleaved

    seeds = itertools.count(10_000)
    batch(one, 1, size, seeds)  # both warm: every worker has loaded its model
    batch(two, 2, size, seeds)
    t_two, t_one = interleaved(lambda: batch(two, images, size, seeds), lambda: batch(one, images, size, seeds), runs)
    return (f"batch of {images} images {size}x{size}: {two.parallel} Ray workers vs {one.parallel} (CPU, one "
            f"thread each)", f"{t_two:.2f} s vs {t_one:.2f} s", f"{t_one / t_two:.2f}x throughput", ">= 1.6x")


def row(model: str | None, images: int, size: int, runs: int) -> tuple[str, str, str, str]:
    """Start a local Ray with a 1-worker and a 2-worker pool on `model`, measure, shut it down."""
    from adgen.workers import WorkerConfig, Workers

    config = WorkerConfig(model=model or "demo", device="cpu")
    two = Workers(2, config=config, ray_options={"num_cpus": 3})  # three actors, one logical CPU each
    one = Workers(1, config=config)
    try:
        return batch_row(one, two, images, size, runs)
    finally:
        one.close()
        two.close()
