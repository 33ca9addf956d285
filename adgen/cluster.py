"""Joining a running Ray cluster (`--ray-address`): its authentication token, and one line when it refuses AdGen.

Ray 2.60's `ray start --head` turns on token authentication when the head has a token (`~/.ray/auth_token`, which a
local Ray writes on its first start, or `RAY_AUTH_TOKEN` / `RAY_AUTH_TOKEN_PATH`), but `ray.init(address=HOST:PORT)`
sends the token only for `address="auto"`: a driver joining by address was refused (`InvalidAuthToken`), and Ray
retried for 20 s before a bare "Failed to connect". Here the driver sends the token wherever it has one (a head
without authentication accepts it too), and asks the head once before `ray.init`, so a refusal, a missing token or
nothing answering is one line at once. Imported only by `adgen.workers` (it imports Ray).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from contextlib import contextmanager
from pathlib import Path

import ray
from ray._private import services
from ray._private.authentication import authentication_token_setup as setup
from ray._raylet import GcsClient

from .errors import WorkerError, first_line

REACH_TIMEOUT = 5.0  # seconds for the head's port to answer (Ray itself waits up to two minutes, silently)


def token_file() -> Path:
    """The token file Ray reads when `RAY_AUTH_TOKEN` is not set (`RAY_AUTH_TOKEN_PATH`, else ~/.ray/auth_token)."""
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")


def token_source() -> str:
    """Where this process's token comes from, as the user would set it."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    return str(token_file())


def join(address: str, **options) -> None:
    """`ray.init(address=address, **options)` with the token sent; a refusal or an unreachable head is a WorkerError
    (`ray.init`'s own errors are the caller's to word)."""
    with _silenced():  # RAY_AUTH_MODE, if set, is kept
        sends = setup.maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    try:
        setup.ensure_token_if_auth_enabled(None, create_token_if_missing=False)
    except ray.exceptions.AuthenticationError:  # RAY_AUTH_MODE=token and no token anywhere
        raise WorkerError(_no_token(address)) from None
    if not address.startswith("ray://"):  # Ray Client addresses are a proxy's, not a GCS to ask
        try:
            head = services.canonicalize_bootstrap_address(address)  # "auto": the cluster this machine runs, if any
        except (ConnectionError, ValueError) as exc:
            raise WorkerError(cannot_join(address, first_line(exc))) from None
        if head is not None:
            _ask(address, head, sends)
    ray.init(address=address, **options)


def _ask(address: str, head: str, sends: bool) -> None:
    """One question to the head's GCS: nothing answering, or the token refused, is said now."""
    host, _, port = head.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_TIMEOUT).close()
    except (OSError, ValueError) as exc:
        raise WorkerError(cannot_join(address, f"nothing answers at {head} ({first_line(exc)})")) from None
    try:
        with _silenced():
            GcsClient(address=head, cluster_id=None)
    except ray.exceptions.AuthenticationError:
        if sends:
            raise WorkerError(f"ray address: the Ray cluster at {address} refused the authentication token from "
                              f"{token_source()}: use the head's token (`ray get-auth-token` on the head prints it) "
                              f"in {token_file()} or RAY_AUTH_TOKEN") from None
        raise WorkerError(_no_token(address)) from None
    except ray.exceptions.RayError:  # anything else: ray.init says it (and retries as it does)
        pass


def _no_token(address: str) -> str:
    return (f"ray address: the Ray cluster at {address} needs an authentication token and this machine has none: "
            f"put the head's token (`ray get-auth-token` on the head prints it) in {token_file()} or RAY_AUTH_TOKEN")


def cannot_join(address: str, detail: str) -> str:
    """The line for a cluster that cannot be joined (nothing answers, a bad address, Ray's own refusal)."""
    return (f"ray address: cannot join the Ray cluster at {address}: {detail} (start one with `ray start --head`, or "
            f"leave --ray-address out for a local one)")


@contextmanager
def _silenced():
    """Ray's own lines while AdGen asks (its token notice, the GCS client's warning): AdGen's one line says it."""
    logger = logging.getLogger(setup.__name__)
    level = logger.level
    logger.setLevel(logging.ERROR)
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to quiet
        saved = None
    try:
        if saved is not None:
            with open(os.devnull, "w") as null:  # the GCS client logs from C++, to the process's stderr itself
                os.dup2(null.fileno(), 2)
        yield
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
        logger.setLevel(level)
