"""The soak row: the server's RSS growth per 100 new client sessions after warm-up, vs 100 requests of one session.

`python app.py` runs on the demo model in a process of its own; each new session does what a new visitor's tab
does first (the page's load events) and one small generate through the API's queue, as a raw HTTP client (no
gradio_client in this process, so its own memory is not in the figure). The baseline is the same requests from one
session, measured in the same run: memory a session leaves behind is the difference.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


class Visitor:
    """Raw HTTP to the page: its load events and one generate per visit, with a session of the caller's choice."""

    def __init__(self, url: str):
        self.url = url
        config = json.loads(urllib.request.urlopen(f"{url}/config", timeout=30).read())
        values = {c["id"]: c.get("props", {}).get("value") for c in config["components"]}
        deps = config["dependencies"]
        self.loads = [(d["id"], [values.get(i) for i in d["inputs"]]) for d in deps
                      if any(t[1] == "load" for t in d["targets"]) and d.get("backend_fn")]
        self.generate = next(d["id"] for d in deps if d.get("api_name") == "generate")

    def visit(self, session: str, seed: int) -> None:
        for fn, data in self.loads:
            _post(f"{self.url}/gradio_api/run/predict", {"data": data, "fn_index": fn, "session_hash": session})
        # name, 8 product fields..., photo, style, lora_scale, product_focus, prompt, seed, width, height, steps
        data = ["Aurora earbuds", "", "", "", "", "", "", "", None, "photo", None, True, "", seed % 8, 256, 256, 1]
        event = _post(f"{self.url}/gradio_api/queue/join", {"data": data, "fn_index": self.generate,
                                                             "session_hash": session})["event_id"]
        with urllib.request.urlopen(f"{self.url}/gradio_api/queue/data?session_hash={session}", timeout=120) as r:
            for line in r:
                if b"process_completed" in line and event.encode() in line:
                    break


def row(model: str | None = None, warmup: int = 300, sessions: int = 100) -> tuple[str, str, str, str]:
    """(what, measured, ratio, target): RSS growth over `sessions` new sessions vs as many requests of one session,
    after `warmup` new sessions (more than the server keeps: $ADGEN_MAX_SESSIONS, 256)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = Path(tempfile.mkdtemp(prefix="adgen-soak-"))
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "ADGEN_MODEL": model or "demo", "ADGEN_CACHE_DIR": str(folder), "GRADIO_TEMP_DIR": str(folder / "gradio")}
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        start = time.perf_counter()
        while True:
            try:
                visitor = Visitor(url)
                break
            except OSError:
                if time.perf_counter() - start > 180:
                    raise RuntimeError("app.py did not serve its page within 180 s") from None
                time.sleep(0.2)
        server = psutil.Process(proc.pid)
        rss = lambda: server.memory_info().rss / 2**20  # noqa: E731
        for n in range(warmup):
            visitor.visit(uuid.uuid4().hex[:11], n)
        before = rss()
        for n in range(sessions):
            visitor.visit(uuid.uuid4().hex[:11], n)
        new = rss() - before
        one, before = uuid.uuid4().hex[:11], rss()
        for n in range(sessions):
            visitor.visit(one, n)
        same = rss() - before
    finally:
        proc.kill()
        proc.wait()
    per = 100 / sessions
    return (f"server RSS per 100 new sessions (page load + one generate each) after {warmup} vs 100 requests of "
            f"one session", f"{new * per:+.1f} MB vs {same * per:+.1f} MB",
            f"{(new - same) * per:+.1f} MB left per 100 sessions", "<= 2 MB per 100 new sessions")
