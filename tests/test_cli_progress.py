"""The CLI's progress bars: on stderr only when it is a terminal, never with --quiet; stdout stays one JSON object."""

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import threading

from adgen.__main__ import main

from conftest import ROOT

FAST = ["generate", "--product", "x", "--size", "256x256", "--steps", "2", "--seed", "7"]


def run_in_terminal(*args: str, columns: int | None = 100) -> tuple[int, dict, str]:
    """Run the CLI with stderr on a pseudo-terminal (`columns=None`: one that reports 0x0, as some containers do).

    Returns the exit status, stdout parsed as one JSON object, and what reached the terminal.
    """
    master, slave = pty.openpty()
    if columns:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    done = subprocess.Popen([sys.executable, "-m", "adgen", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=slave, stdin=subprocess.DEVNULL, env=dict(os.environ))
    os.close(slave)
    seen = bytearray()

    def read() -> None:  # drained as it comes: a full terminal buffer would block the CLI
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the CLI closed its end
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    out, _ = done.communicate(timeout=300)
    reader.join(timeout=30)
    os.close(master)
    assert len(out.splitlines()) == 1, out
    return done.returncode, json.loads(out), seen.decode(errors="replace")


def test_a_terminal_shows_model_loading_then_steps_over_all_images(tmp_path):
    rc, report, err = run_in_terminal(*FAST, "--count", "2", "--no-cache", "--out", str(tmp_path))
    assert rc == 0 and report["seeds"] == [7, 8]
    assert "loading demo model (random weights)" in err
    assert "denoising" in err and "4/4" in err  # 2 steps x 2 images, one bar
    assert err.index("loading") < err.index("denoising")


def test_an_ad_on_a_terminal_with_no_size_still_draws_its_bar_and_a_cached_run_loads_nothing(tmp_path):
    args = [*FAST, "--copy", "hello", "--count", "2", "--out", str(tmp_path)]
    rc, report, err = run_in_terminal(*args, columns=None)
    assert rc == 0 and report["cached"] == [False, False]
    assert "denoising" in err and "4/4" in err  # the ad's progress counts both images' backgrounds
    rc, report, err = run_in_terminal(*args, columns=None)
    assert rc == 0 and report["cached"] == [True, True]
    assert err == ""  # all from the cache: no model load, no steps, no bar


def test_quiet_on_a_terminal_and_stderr_not_a_terminal_draw_nothing(tmp_path, capsys):
    rc, report, err = run_in_terminal(*FAST, "--no-cache", "--quiet", "--out", str(tmp_path))
    assert rc == 0 and report["seeds"] == [7]
    assert err == ""
    assert main([*FAST, "--no-cache", "--out", str(tmp_path)]) == 0  # stderr captured: a pipe's isatty() is False too
    done = capsys.readouterr()
    assert done.err == "" and json.loads(done.out)["seeds"] == [7]
