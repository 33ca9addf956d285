"""The MCP server: the typed API as MCP tools, listed and called with the official `mcp` client over HTTP."""

import ast
import asyncio
import base64
import io
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

from adgen.images import MAX_IMAGE_BYTES

import app

ROOT = Path(__file__).resolve().parent.parent
CALL_TIMEOUT = timedelta(seconds=60)  # a 256x256, 2-step demo image takes ~2 s; this only bounds a hang


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mcp_url(port: int) -> str:
    # Gradio's streamable HTTP endpoint (the trailing slash avoids a redirect); /gradio_api/mcp/sse is the older SSE one
    return f"http://127.0.0.1:{port}/gradio_api/mcp/"


async def session_run(url: str, work, timeout: float = 90):
    """Open an MCP session on `url`, run `work(session)` and return its result, all within `timeout` seconds."""

    async def run():
        async with streamable_http_client(url) as (read, write, _), ClientSession(read, write) as session:
            await session.initialize()
            return await work(session)

    return await asyncio.wait_for(run(), timeout)


def summary_of(result) -> dict:
    """The tool's summary: Gradio sends a dict result as one text item, `str(dict)`."""
    assert not result.isError, result.content
    assert len(result.content) == 1 and result.content[0].type == "text"
    return ast.literal_eval(result.content[0].text)


@pytest.fixture
def mcp_served(engine, tmp_path):
    """The app with its MCP server, launched on a free port in this process; its MCP URL, then closed."""
    demo = app.build_demo(engine, outputs=tmp_path / "outputs", admin=False)
    port = free_port()
    app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
               allowed_paths=[str(tmp_path / "outputs")], mcp_server=True, max_file_size=MAX_IMAGE_BYTES)
    yield mcp_url(port)
    demo.close()


def test_generate_is_an_mcp_tool_described_by_its_docstring(mcp_served, engine, tmp_path):
    async def work(session):
        tools = (await session.list_tools()).tools
        made = await session.call_tool("generate", {"name": "Aurora earbuds", "width": 256, "height": 256,
                                                    "steps": 2, "seed": 1}, read_timeout_seconds=CALL_TIMEOUT)
        refused = await session.call_tool("generate", {"name": ""}, read_timeout_seconds=CALL_TIMEOUT)
        return tools, made, refused

    tools, made, refused = asyncio.run(session_run(mcp_served, work))

    # 1. only the typed API is a tool (images, and the writer's text): the UI's own events are private
    assert [t.name for t in tools] == ["generate", "write"]
    tool = tools[0]
    assert tool.description.startswith("Make advertising images of a product with Z-Image-Turbo")
    schema = tool.inputSchema
    assert schema["required"] == ["name"]
    assert schema["properties"]["name"]["description"].startswith("the product's name")
    for field in ("seed", "width", "height", "steps", "count"):
        types = [schema["properties"][field].get("type")] + [o.get("type") for o in
                                                             schema["properties"][field].get("oneOf", [])]
        assert "integer" in types, (field, schema["properties"][field])
    assert schema["properties"]["width"]["default"] == 1024 and schema["properties"]["steps"]["default"] == 8

    # 2. a call makes one image and returns the summary with its path
    summary = summary_of(made)
    assert summary["seeds"] == [1] and summary["cached"] == [False] and summary["demo"] is True
    assert len(summary["images"]) == 1 and Path(summary["images"][0]).parent == tmp_path / "outputs"
    assert Image.open(summary["images"][0]).size == (256, 256)
    assert engine.runs == 1

    # 3. bad input comes back as a tool error that says what is wrong, and runs nothing
    assert refused.isError and "product name: must not be empty" in refused.content[0].text
    assert engine.runs == 1


def test_a_product_photo_reaches_the_tool_as_a_data_url(mcp_served, engine):
    from test_compose import bottle

    png = io.BytesIO()
    bottle().save(png, "PNG")
    photo = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()

    def sized(mb: float) -> str:  # a phone photo's size: the same picture, its file padded (decoders stop at IEND)
        padded = png.getvalue() + bytes(int(mb * 2**20) - len(png.getvalue()))
        return "data:image/png;base64," + base64.b64encode(padded).decode()

    async def work(session):
        calls = []
        for url in (photo, sized(19.9), sized(21)):  # the README's limit is 20 MB: up to it works, past it is said
            calls.append(await session.call_tool("generate", {"name": "Aurora earbuds", "photo": url,
                                                              "copy": "Hear more", "width": 256, "height": 256,
                                                              "steps": 2, "seed": 3},
                                                 read_timeout_seconds=CALL_TIMEOUT))
        return calls

    small, big, too_big = asyncio.run(session_run(mcp_served, work))  # one session: a refusal never ends it
    summary = summary_of(small)
    assert set(summary["steps"][0]) == {"cutout", "mask", "background", "copy_layer"}
    assert summary_of(big)["seeds"] == [3]  # a 19.9 MB photo (26.5 MB of base64): no HTTP 413
    # past it: a tool error naming the limit (Gradio's client, which the MCP server calls the app through, checks
    # the upload limit first), and the session goes on
    assert too_big.isError and f"maximum file size of {MAX_IMAGE_BYTES} bytes" in too_big.content[0].text


def test_python_app_mcp_serves_the_tools(tmp_path):
    """`python app.py --mcp` serves the tools (the page, not a model, must be up for that).

    GRADIO_MCP_SERVER=True takes the same path in `main` (see the ADGEN_AUTH test below).
    """
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("GRADIO_MCP_SERVER", None)
    env.pop("ADGEN_AUTH", None)
    argv = [sys.executable, str(ROOT / "app.py"), "--model", "demo", "--mcp"]
    log = tmp_path / "app.log"  # a file, not a pipe: nobody reads a pipe while the app runs, and a full one blocks it
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:  # up when the MCP endpoint answers (a plain GET gets Gradio's landing page)
            assert process.poll() is None, log.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "the app did not come up within 60 s"
            try:
                if httpx.get(mcp_url(port), timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)

        async def work(session):
            return [t.name for t in (await session.list_tools()).tools]

        assert asyncio.run(session_run(mcp_url(port), work, timeout=30)) == ["generate", "write"]
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_mcp_server_refuses_a_login_it_cannot_use(monkeypatch):
    """Gradio's MCP tools call the app without a login, so --mcp with ADGEN_AUTH stops at once, saying why."""
    monkeypatch.setenv("ADGEN_AUTH", "user:secret")
    with pytest.raises(SystemExit, match="cannot be used with ADGEN_AUTH"):
        app.main(["--mcp"])
    monkeypatch.setenv("GRADIO_MCP_SERVER", "True")
    with pytest.raises(SystemExit, match="cannot be used with ADGEN_AUTH"):
        app.main([])
