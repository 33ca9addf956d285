"""The real page in headless Debian Chromium (pip playwright), used as a person would."""

import os
import shutil
from pathlib import Path

import pytest

from adgen.engine import Engine

import app
from conftest import ROOT
from test_app import free_port

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed "
                                "(scripts/test.sh installs it)")
SCREENSHOT = ROOT / "docs" / "screenshot.png"


def keep_screenshot(shot: Path, name: str) -> None:
    """Copy a screenshot into docs/ for the README only when asked: a test run never changes tracked files."""
    if os.environ.get("ADGEN_UPDATE_SCREENSHOTS") == "1":
        shutil.copy(shot, ROOT / "docs" / name)


@pytest.fixture
def page(demo_source, cache, tmp_path):
    from playwright.sync_api import sync_playwright

    engine = Engine(demo_source, cache=cache, device="cpu")
    engine.load_in_background()
    demo = app.build_demo(engine, outputs=tmp_path / "outputs")
    port = free_port()
    demo.queue(default_concurrency_limit=1).launch(server_name="127.0.0.1", server_port=port, quiet=True,
                                                   prevent_thread_lock=True, allowed_paths=[str(tmp_path)])
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(60_000)
        page.goto(f"http://127.0.0.1:{port}/")
        yield page
        browser.close()
    demo.close()


def test_a_user_generates_an_ad_and_watches_memory(page, tmp_path):
    assert "demo model (random weights)" in page.locator("#demo-notice").inner_text()
    page.get_by_label("Product name").fill("Aurora wireless earbuds")
    page.get_by_label("Ad copy").fill("Hear only what matters")
    page.get_by_role("tab", name="Style").click()
    page.get_by_label("Anime").check()
    page.get_by_role("tab", name="Seed & Size").click()
    page.get_by_label("4:5").check()

    panel = page.locator("#vram-panel")
    page.wait_for_function("document.querySelector('#vram-panel').innerText.includes('CPU mode')")
    first = panel.inner_text()
    page.wait_for_function("t => document.querySelector('#vram-panel').innerText !== t", arg=first)
    assert "process RSS" in panel.inner_text()

    page.locator("#generate").click()
    page.locator("#gallery img").first.wait_for()
    page.wait_for_function("document.querySelector('#result-info').innerText.includes('seed')")
    info = page.locator("#result-info").inner_text()
    assert "896x1120" in info and "Anime style" in info
    page.wait_for_function("document.querySelector('#vram-panel').innerText.includes('ready')")
    page.screenshot(path=str(tmp_path / "shot.png"), full_page=True)
    keep_screenshot(tmp_path / "shot.png", SCREENSHOT.name)  # the README shows it

    page.get_by_role("tab", name="Product").click()
    page.get_by_label("Product name").fill("")
    page.locator("#generate").click()
    page.get_by_text("product name: must not be empty").first.wait_for()


def test_a_user_uploads_a_product_photo_with_korean_copy(page, tmp_path):
    from test_compose import bottle

    bottle().save(tmp_path / "bottle.png")
    page.get_by_label("Product name").fill("제주 감귤 탄산수")
    page.get_by_label("Ad copy").fill("여름 한정 30% 할인!")
    page.locator("input[type=file]").first.set_input_files(str(tmp_path / "bottle.png"))
    page.get_by_role("tab", name="Ad layout").click()
    page.get_by_label("Sub-line (smaller second line of copy)").fill("₩9,900 무료 배송")
    page.get_by_label("Gold").check()
    page.get_by_role("tab", name="Seed & Size").click()
    page.get_by_label("4:5").check()
    page.locator("#generate").click()
    page.wait_for_function("document.querySelector('#result-info').innerText.includes('copy layer (new)')")
    for step in ("cutout", "background", "copy"):
        page.locator(f"#step-{step} img").first.wait_for()
    assert "896x1120" in page.locator("#result-info").inner_text()
    page.screenshot(path=str(tmp_path / "ad.png"), full_page=True)
    keep_screenshot(tmp_path / "ad.png", "screenshot-ad.png")
