"""What one server allows, so a public page cannot be flooded: waiting GPU jobs, jobs per session, sessions held.

Pure (no gradio): `app.py` applies these to Gradio's queue and launch. Each limit has an environment variable,
checked like every other setting (a bad value is one line naming it).
"""

from __future__ import annotations

import os

from .i18n import text


def _env_int(name: str, default: int, low: int, high: int) -> int:
    from .request import check_int

    return check_int(name, os.environ.get(name, str(default)), low, high)


def queue_max() -> int:
    """GPU jobs that may wait at once (all sessions): $ADGEN_QUEUE_MAX, default 32; one more is refused."""
    return _env_int("ADGEN_QUEUE_MAX", 32, 1, 100_000)


def session_jobs() -> int:
    """GPU jobs one session (a tab, an API client) may have queued or running at once: $ADGEN_SESSION_JOBS, default 2.

    The page runs one job per tab (its buttons wait); this stops a script sending hundreds on one session.
    """
    return _env_int("ADGEN_SESSION_JOBS", 2, 1, 1000)


def max_sessions() -> int:
    """Sessions whose page state the server keeps (least recently used dropped first): $ADGEN_MAX_SESSIONS, 256.

    Gradio keeps each session's copy of the page's configuration (~0.4 MB for AdGen's page) for up to 10,000
    sessions; on a public page every visitor is a new one. An open tab stays recent (its status line ticks).
    """
    return _env_int("ADGEN_MAX_SESSIONS", 256, 8, 100_000)


def refusal(waiting: int, mine: int, lang: str = "en") -> str | None:
    """The one line refusing a new GPU job (None: it may queue), given the jobs `waiting` in the GPU queue and
    this session's queued or running ones (`mine`), in `lang`."""
    per_session, most = session_jobs(), queue_max()
    if mine >= per_session:
        return text("limit_session_jobs", lang, n=mine, max=per_session)
    if waiting >= most:
        return text("limit_queue_full", lang, n=waiting, max=most)
    return None
