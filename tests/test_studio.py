"""The studio without the page: the engine slot's start errors and the bounds on what it writes."""

import gc
import sys

from adgen.errors import ModelError
from adgen.studio import EngineSlot


def test_a_failed_start_raises_a_fresh_error_each_request_and_holds_no_request_frames():
    def broken():
        raise ModelError("model: cannot load demo: the file is damaged")

    slot = EngineSlot(broken)
    slot._ready.wait(10)
    seen = []

    def handler():
        request = bytearray(1024)  # a request's locals, held by its frame while the traceback names it
        return slot.get(timeout=1), request

    for _ in range(50):
        try:
            handler()
        except ModelError as exc:
            seen.append(exc)
    frames = [len(_frames(exc.__traceback__)) for exc in seen]
    assert str(seen[-1]) == "model: cannot load demo: the file is damaged"
    assert frames[0] == frames[-1] <= 3, frames  # the same few frames each time, never growing
    assert len({id(exc) for exc in seen}) == len(seen) and slot.error is not seen[0]
    stored = slot.error.__traceback__
    assert len(_frames(stored)) <= 3  # the stored error keeps only its own start's frames
    del seen
    gc.collect()
    assert sys.getrefcount(slot.error) < 10


def _frames(tb) -> list:
    out = []
    while tb is not None:
        out.append(tb.tb_frame)
        tb = tb.tb_next
    return out
