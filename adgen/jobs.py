"""Jobs own Stop: each request runs as a `Job` with its own id and stop flag.

A Stop pressed in one browser tab, or a client that goes away (a closed tab, a cancelled call),
ends that job at its next step boundary (or before its next image, or right after the model load
it waited for) and no other. The engine's one GPU lock still runs one job at a time; this only decides which job a
Stop belongs to.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .errors import GenerationStopped


class Job:
    """One request's run: an id, the session it belongs to, and its own Stop."""

    def __init__(self, session: str | None = None, gone: Callable[[], bool] | None = None):
        self.id = uuid.uuid4().hex
        self.session = session
        self.reason = ""
        self._stop = threading.Event()
        self._gone = gone  # polled at each check: True once the client that asked has disconnected
        self._hooks: list[Callable[[], None]] = []

    def stop(self, reason: str = "stopped by the user") -> None:
        """Ask this job to end at its next check (idempotent; the first reason wins)."""
        if not self._stop.is_set():
            self.reason = reason
            self._stop.set()
            for hook in list(self._hooks):
                self._call(hook)

    @staticmethod
    def _call(hook: Callable[[], None]) -> None:
        try:
            hook()
        except Exception:  # noqa: BLE001 - a hook that fails must not keep the Stop from the others
            pass

    @contextmanager
    def on_stop(self, hook: Callable[[], None]) -> Iterator[None]:
        """Call `hook` the moment this job is stopped, while the block runs (a Ray worker's job: the Stop is
        passed on at once, not at the next poll)."""
        self._hooks.append(hook)
        try:
            if self._stop.is_set():
                self._call(hook)
            yield
        finally:
            self._hooks.remove(hook)

    @property
    def stopped(self) -> bool:
        if not self._stop.is_set() and self._gone is not None:
            try:
                gone = self._gone()
            except Exception:  # a probe that fails must never end a job
                gone = False
            if gone:
                self.stop("stopped because the client disconnected")
        return self._stop.is_set()

    def check(self, done: int = 0, total: int = 0) -> None:
        """Raise GenerationStopped when this job was asked to stop; `done`/`total` are steps of the request."""
        if self.stopped:
            raise GenerationStopped(done, total, self.reason)


class Jobs:
    """The jobs open now, so Stop can find those of one session (and only those)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._open: dict[str, Job] = {}

    @contextmanager
    def open(self, session: str | None = None, gone: Callable[[], bool] | None = None,
             job: Job | None = None) -> Iterator[Job]:
        """Register a job (a new one, or `job`) for the duration of the block; nested opens of one job nest."""
        job = job or Job(session, gone)
        with self._lock:
            outer = job.id not in self._open
            self._open[job.id] = job
        try:
            yield job
        finally:
            if outer:
                with self._lock:
                    self._open.pop(job.id, None)

    def stop(self, session: str, reason: str = "stopped by the user") -> int:
        """Stop every open job of `session`; returns how many were asked to stop."""
        with self._lock:
            mine = [job for job in self._open.values() if job.session == session]
        for job in mine:
            job.stop(reason)
        return len(mine)

    def stop_all(self, reason: str = "stopped by the operator") -> int:
        """Stop every open job (an operator's Stop, a shutdown)."""
        with self._lock:
            every = list(self._open.values())
        for job in every:
            job.stop(reason)
        return len(every)

    def running(self, session: str | None = None) -> list[Job]:
        """The open jobs (of `session`, when given)."""
        with self._lock:
            return [job for job in self._open.values() if session is None or job.session == session]
