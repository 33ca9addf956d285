"""The installation's secret: the page's browser-side history is sealed with it, so it survives a restart.

`ADGEN_SECRET` when set (a Space or a team server with several replicas), else a random secret created once in
the cache folder (readable by its owner only) and read on every later start.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_FILE = "secret"


def installation_secret(folder: Path, environ: dict | None = None) -> str:
    """`ADGEN_SECRET`, else the secret in `folder`/secret, created on first use (never two different ones)."""
    env = os.environ if environ is None else environ
    if env.get("ADGEN_SECRET"):
        return env["ADGEN_SECRET"]
    path = Path(folder) / SECRET_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: two servers starting at once end up with the same secret, the first one's
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_urlsafe(32))
    return _read(path)


def _read(path: Path) -> str:
    value = path.read_text(encoding="ascii").strip()
    if not value:  # a file being written by another start: a moment later it is whole
        raise FileNotFoundError(path)
    return value
