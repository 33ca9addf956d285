"""Errors that teach: each names the field and what is allowed."""

from __future__ import annotations


class AdgenError(Exception):
    """Base class for every error AdGen reports to a user (CLI line, gr.Error, API)."""


class InputError(AdgenError, ValueError):
    """Bad user input; `field` names the offending field, the message says what is allowed."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


class PresetError(AdgenError):
    """A preset file that does not match the schema (message names file and field)."""


class ModelError(AdgenError):
    """The model can't be found, downloaded or loaded."""


class GenerationStopped(AdgenError):
    """The user pressed Stop; the run ended at a step boundary."""

    def __init__(self, step: int = 0, total: int = 0):
        self.step, self.total = step, total
        super().__init__(f"generation stopped by the user after step {step} of {total}")


class OutOfMemory(AdgenError):
    """The GPU ran out of memory; memory was freed and the engine is usable again."""


class WontFit(AdgenError):
    """The forecast peak VRAM exceeds what is available; refused before running."""
