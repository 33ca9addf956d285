"""The user's folders for AdGen (no model, no torch): one small module the cache, the models and the page share."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """AdGen's cache folder: $ADGEN_CACHE_DIR, else the user cache dir."""
    return Path(os.environ.get("ADGEN_CACHE_DIR") or platformdirs.user_cache_dir("adgen")).expanduser()
