"""Runtime settings shared by the CLI and the app: memory mode, dtype, the optional speed-ups and Ray workers.

One place for their flags, so `app.py` never imports the CLI module.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys


def add_runtime_flags(parser: argparse.ArgumentParser) -> None:
    """Memory mode, dtype and the optional speed-ups (off by default), for the CLI and the app."""
    parser.add_argument("--memory", default=None, help="auto (default; $ADGEN_MEMORY), gpu, offload, lowvram")
    parser.add_argument("--quantize", default=None,
                        help="auto (default; $ADGEN_QUANTIZE: fp8 where bf16 would need offload and fp8 fits on the "
                             "GPU), none, fp8 (float8; dynamic activations on GPUs with FP8 units), int8 "
                             "(weight-only); the transformer only, see docs/quantize.md")
    parser.add_argument("--dtype", default=None,
                        help="auto (default; $ADGEN_DTYPE): bfloat16 on a CUDA GPU, float32 on the CPU; or bfloat16, "
                             "float32")
    parser.add_argument("--attention", default=None,
                        help="attention backend, e.g. flash or _flash_3 (falls back to native when unavailable)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the repeated transformer blocks")
    parser.add_argument("--warmup", action="store_true", help="one throw-away run at 1024x1024 first")
    parser.add_argument("--workers", default=None,
                        help="run N engine workers on Ray, one per GPU (default: one engine in this process; "
                             "$ADGEN_WORKERS; with --ray-address alone: one per GPU in the cluster)")
    parser.add_argument("--ray-address", default=None,
                        help="join a running Ray cluster (e.g. auto, after `ray start --head`) instead of starting a "
                             "local one ($RAY_ADDRESS, used with --workers or $ADGEN_WORKERS)")


@functools.cache
def _ray_address_unused() -> None:
    """Said once per process (the flags are read in several places)."""
    print("note: RAY_ADDRESS is set but not used: pass --workers N or --ray-address (or set ADGEN_WORKERS) for Ray "
          "workers", file=sys.stderr)


def worker_flags(args: argparse.Namespace) -> tuple[int | None, str | None] | None:
    """(workers, Ray address) when Ray workers are asked for (flags or environment), else None: no Ray at all."""
    from .request import check_int

    workers = getattr(args, "workers", None) or os.environ.get("ADGEN_WORKERS") or None
    address = getattr(args, "ray_address", None)
    if workers is None and address is None:
        # RAY_ADDRESS alone (a shell set up for another Ray program) never turns Ray workers on: said, not used
        if os.environ.get("RAY_ADDRESS"):
            _ray_address_unused()
        return None
    address = address or os.environ.get("RAY_ADDRESS") or None  # with --workers: the cluster it names
    return (check_int("workers", workers, 1, 64) if workers is not None else None), address


def make_engine(args: argparse.Namespace, cache=None):
    """The engine the runtime flags ask for: one in this process, or `Workers` over Ray (`--workers`)."""
    from .quantize import check
    from .zerogpu import compile_allowed

    quantize = check(getattr(args, "quantize", None))  # the flag, else $ADGEN_QUANTIZE: workers get the value
    compile, note = compile_allowed(args.compile)  # ZeroGPU: never torch.compile
    if note:
        logging.getLogger("adgen.settings").warning("%s", note)
    ray = worker_flags(args)
    if ray is None:
        from .engine import Engine

        engine = Engine(args.model, cache=cache, memory=args.memory, attention=args.attention, dtype=args.dtype,
                        compile=compile, quantize=quantize)
        engine.notice = note
        return engine
    try:
        from .workers import WorkerConfig, Workers  # imports Ray: only here
    except ImportError as exc:
        from .errors import WorkerError

        if exc.name == "ray":
            raise WorkerError("workers: --workers and --ray-address need Ray: "
                              "pip install -r requirements-ray.txt") from None
        if (exc.name or "").startswith("ray."):  # Ray's private parts AdGen uses to join a cluster (adgen.cluster)
            raise WorkerError(f"workers: this Ray lacks {exc.name}, which AdGen uses; AdGen is tested with the Ray "
                              "of requirements-ray.txt: pip install -r requirements-ray.txt") from None
        raise

    config = WorkerConfig(model=args.model, memory=args.memory, attention=args.attention, dtype=args.dtype,
                          compile=compile, quantize=quantize)
    return Workers(ray[0], ray[1], config, cache=cache)
