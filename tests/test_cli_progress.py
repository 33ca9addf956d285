"""The CLI's progress bars: on stderr only when it is a terminal, never with --quiet; stdout stays one JSON object."""

import contextlib
import fcntl
import json
import os
import pty
import struct
import sys
import termios
import threading

from adgen.__main__ import main

FAST = ["generate", "--product", "x", "--size", "256x256", "--steps", "2", "--seed", "7"]


@contextlib.contextmanager
def terminal(columns: int | None = 100):
    """stderr on a pseudo-terminal while the CLI runs in this process (`columns=None`: one that reports 0x0, as some
    containers do). Yields a bytearray that holds what reached the terminal once the block ends.

    The terminal is the process's own fd 2, so whatever writes there (Python or a library underneath) is seen, as
    with a CLI started in a shell; running in-process spares a torch and diffusers import per run.
    """
    master, slave = pty.openpty()
    if columns:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    seen = bytearray()

    def read() -> None:  # drained as it comes: a full terminal buffer would block the CLI
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every end of the terminal is closed
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    saved_fd, saved_stderr = os.dup(2), sys.stderr
    os.dup2(slave, 2)
    os.close(slave)
    sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115 - closed below, fd 2 restored after
    try:
        yield seen
    finally:
        sys.stderr.close()
        sys.stderr = saved_stderr
        os.dup2(saved_fd, 2)  # the terminal's last end closes: the reader sees EIO
        os.close(saved_fd)
        reader.join(timeout=30)
        os.close(master)


def run_in_terminal(capsys, *args: str, columns: int | None = 100) -> tuple[int, dict, str]:
    """Run the CLI with stderr on a pseudo-terminal. Returns the exit status, stdout parsed as one JSON object, and
    what reached the terminal."""
    capsys.readouterr()
    with terminal(columns) as seen:
        rc = main(list(args))
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 1, out
    return rc, json.loads(out), seen.decode(errors="replace")


def test_a_terminal_shows_model_loading_then_steps_over_all_images(tmp_path, capsys):
    rc, report, err = run_in_terminal(capsys, *FAST, "--count", "2", "--no-cache", "--out", str(tmp_path))
    assert rc == 0 and report["seeds"] == [7, 8]
    assert "loading demo model (random weights)" in err
    assert "denoising" in err and "4/4" in err  # 2 steps x 2 images, one bar
    assert err.index("loading") < err.index("denoising")


def test_an_ad_on_a_terminal_with_no_size_still_draws_its_bar_and_a_cached_run_loads_nothing(tmp_path, capsys):
    args = [*FAST, "--copy", "hello", "--count", "2", "--out", str(tmp_path)]
    rc, report, err = run_in_terminal(capsys, *args, columns=None)
    assert rc == 0 and report["cached"] == [False, False]
    assert "denoising" in err and "4/4" in err  # the ad's progress counts both images' backgrounds
    rc, report, err = run_in_terminal(capsys, *args, columns=None)
    assert rc == 0 and report["cached"] == [True, True]
    assert err == ""  # all from the cache: no model load, no steps, no bar


def test_quiet_on_a_terminal_and_stderr_not_a_terminal_draw_nothing(tmp_path, capsys):
    rc, report, err = run_in_terminal(capsys, *FAST, "--no-cache", "--quiet", "--out", str(tmp_path))
    assert rc == 0 and report["seeds"] == [7]
    assert err == ""
    assert main([*FAST, "--no-cache", "--out", str(tmp_path)]) == 0  # stderr captured: a pipe's isatty() is False too
    done = capsys.readouterr()
    assert done.err == "" and json.loads(done.out)["seeds"] == [7]
