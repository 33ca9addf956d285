"""Runtime settings shared by the CLI and the app: memory mode, dtype and the optional speed-ups.

One place for their flags, so `app.py` never imports the CLI module.
"""

from __future__ import annotations

import argparse


def add_runtime_flags(parser: argparse.ArgumentParser) -> None:
    """Memory mode, dtype and the optional speed-ups (off by default), for the CLI and the app."""
    parser.add_argument("--memory", default=None, help="auto (default; $ADGEN_MEMORY), gpu, offload, lowvram")
    parser.add_argument("--dtype", default=None,
                        help="auto (default; $ADGEN_DTYPE): bfloat16 on a CUDA GPU, float32 on the CPU; or bfloat16, "
                             "float32")
    parser.add_argument("--attention", default=None,
                        help="attention backend, e.g. flash or _flash_3 (falls back to native when unavailable)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the repeated transformer blocks")
    parser.add_argument("--warmup", action="store_true", help="one throw-away run at 1024x1024 first")
