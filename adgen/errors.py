"""Errors that teach: each names the field and what is allowed."""

from __future__ import annotations


def first_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's first line for a one-line message (its class name when it says nothing)."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else exc.__class__.__name__


class AdgenError(Exception):
    """Base class for every error AdGen reports to a user (CLI line, gr.Error, API)."""


class InputError(AdgenError, ValueError):
    """Bad user input; `field` names the offending field, the message says what is allowed."""

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")

    def __reduce__(self):  # pickled whole: a Ray worker's error reaches the front end as itself
        return self.__class__, (self.field, self.message)


class PresetError(AdgenError):
    """A preset file that does not match the schema (message names file and field)."""


class ModelError(AdgenError):
    """The model can't be found, downloaded or loaded."""


class GenerationStopped(AdgenError):
    """The job was stopped (Stop, a disconnect); it ended at a step boundary. Steps count the whole request (a
    campaign's: every file's), and a campaign's Stop says how many of its files were finished."""

    def __init__(self, step: int = 0, total: int = 0, reason: str = "", files: tuple[int, int] | None = None):
        self.step, self.total, self.reason = step, total, reason or "stopped by the user"
        self.files = files  # a campaign's (files finished, files in all)
        where = f"after step {step} of {total}" if total else "before it started"
        done = f", {files[0]} of {files[1]} files done" if files else ""
        super().__init__(f"generation {self.reason} {where}{done}")

    def __reduce__(self):
        return self.__class__, (self.step, self.total, self.reason, self.files)


class OutOfMemory(AdgenError):
    """The GPU ran out of memory; memory was freed and the engine is usable again."""


class WontFit(AdgenError):
    """The forecast peak VRAM exceeds what is available; refused before running."""


class WorkerError(AdgenError):
    """A Ray worker died, failed or cannot run jobs; the job it held failed (a dead worker is restarted by Ray)."""
