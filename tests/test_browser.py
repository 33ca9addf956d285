"""The real page in headless Debian Chromium (pip playwright), used as people would: Korean and English
browsers, a 1400x1000 desktop and a 390x844 phone, two tabs at once, a reload, and a Space."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from adgen.engine import Engine

import app
from conftest import ROOT
from test_app import free_port

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed "
                                "(scripts/test.sh installs it)")
DESKTOP, PHONE = {"width": 1400, "height": 1000}, {"width": 390, "height": 844}
LABELS = {"ko-KR": {"name": "제품명", "generate": "생성", "advanced": "고급 설정", "size": "시드·크기",
                    "example": "오로라 무선 이어폰", "feature": "노이즈 캔슬링"},
          "en-US": {"name": "Product name", "generate": "Generate", "advanced": "Advanced", "size": "Seed & Size",
                    "example": "Aurora wireless earbuds", "feature": "noise cancelling"}}


def keep_screenshot(shot: Path, name: str) -> None:
    """Copy a screenshot into docs/ for the README only when asked: a test run never changes tracked files."""
    if os.environ.get("ADGEN_UPDATE_SCREENSHOTS") == "1":
        shutil.copy(shot, ROOT / "docs" / name)


class Served:
    """The launched page: `url, engine = served`, and `restart()`: the server stops and starts again on its port."""

    def __init__(self, engine, outputs: Path, allowed: Path):
        self.engine, self.outputs, self.allowed, self.port = engine, outputs, allowed, free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.demo = None
        self.start()

    def __iter__(self):
        return iter((self.url, self.engine))

    def start(self):
        self.demo = app.build_demo(self.engine, outputs=self.outputs)
        app.launch(self.demo, server_name="127.0.0.1", server_port=self.port, quiet=True, prevent_thread_lock=True,
                   allowed_paths=[str(self.allowed)])

    def restart(self):
        self.demo.close()
        self.start()


@pytest.fixture
def server(demo_source, cache, tmp_path):
    engine = Engine(demo_source, cache=cache, device="cpu")
    engine.load_in_background()
    served = Served(engine, tmp_path / "outputs", tmp_path)
    yield served
    served.demo.close()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


def open_page(browser, url: str, locale: str, viewport: dict):
    page = browser.new_context(locale=locale, viewport=viewport).new_page()
    page.set_default_timeout(60_000)
    page.goto(url, wait_until="load")
    page.locator("#generate").wait_for()
    return page


def includes(selector: str, text: str, prop: str = "innerText") -> str:
    """A page function: whether the element's text (or value) includes `text`."""
    return f"document.querySelector({json.dumps(selector)})?.{prop}.includes({json.dumps(text)})"


def no_english_labels(page) -> None:
    """What a screen reader says and a hover shows on a Korean page (aria-label, title, alt) is Korean too, Gradio's
    own labels included: none is an English phrase with no Hangul (file names and "AdGen" aside)."""
    english = []
    for _ in range(50):  # the page's script translates them once a frame after each change
        english = page.evaluate("""() => [...document.querySelectorAll('[aria-label], [title], [alt]')]
            .flatMap(el => ['aria-label', 'title', 'alt'].map(a => el.getAttribute(a)))
            .filter(v => v && /[A-Za-z]{3,}/.test(v) && !/[가-힣]/.test(v) && !/[.](png|zip)$/.test(v)
                         && v !== 'AdGen')""")
        if not english:
            return
        time.sleep(0.1)
    assert not english, english


def box(page, selector: str) -> dict:
    return page.locator(selector).first.bounding_box()


def set_size(page, locale: str, ratio: str) -> None:
    """Open Advanced, then the size tab, and pick an aspect ratio."""
    page.get_by_text(LABELS[locale]["advanced"], exact=True).first.click()
    page.get_by_role("tab", name=LABELS[locale]["size"]).click()
    page.get_by_label(ratio, exact=True).check()


@pytest.mark.parametrize(("locale", "viewport", "generate"), [
    ("ko-KR", PHONE, True), ("en-US", DESKTOP, True), ("ko-KR", DESKTOP, False), ("en-US", PHONE, False)],
    ids=["ko-phone", "en-desktop", "ko-desktop", "en-phone"])
@pytest.mark.usefixtures("short_writer")  # Write copy on the demo model: a short token budget
def test_the_ad_comes_first_in_the_browsers_language(server, browser, tmp_path, locale, viewport, generate):
    url, engine = server
    page = open_page(browser, url, locale, viewport)
    labels = LABELS[locale]
    if locale == "ko-KR":  # one language per page: the status line (demo notice included) has no English word
        page.wait_for_function("document.querySelector('#status')?.innerText.includes('준비됨')")
        status = page.locator("#status").inner_text().replace("python -m adgen download", "")
        assert not set(re.findall(r"[A-Za-z]{3,}", status)) - {"VRAM", "RAM", "CPU", "GPU", "CUDA"}, status
    page.get_by_label(labels["name"], exact=True).wait_for()
    assert page.locator("#generate").inner_text().strip() == labels["generate"]
    other = LABELS["en-US" if locale == "ko-KR" else "ko-KR"]
    assert page.get_by_label(other["name"], exact=True).count() == 0  # not a mix of languages
    generate_box, status_box = box(page, "#generate"), box(page, "#status")
    # Generate comes before any panel: within the first screen, above the results and the folded settings
    assert generate_box["y"] + generate_box["height"] <= viewport["height"], generate_box
    assert generate_box["y"] < box(page, "#advanced")["y"] and status_box["y"] < generate_box["y"]
    if viewport is PHONE:
        assert generate_box["y"] < box(page, "#result")["y"]  # the result right under the form
    assert not page.locator("#stop").is_visible()  # Stop shows only while this tab's job runs
    assert page.locator("#redo-copy").is_disabled()  # nothing to redo yet
    assert page.locator("#load-png").is_visible()  # Load from image: one tap to its file picker, not in Advanced
    if not generate:
        if locale == "ko-KR":  # a seed out of range: one Korean line naming the field, and the tab is free again
            page.get_by_label(labels["name"], exact=True).fill("탄산수")
            page.get_by_text(labels["advanced"], exact=True).first.click()
            page.get_by_role("tab", name=labels["size"]).click()
            page.locator("#random-seed input").uncheck()
            page.locator("#seed input").fill("-12")
            page.locator("#generate").click()
            page.wait_for_function(includes("#message", "시드"))
            page.locator("#generate").wait_for(state="visible", timeout=10_000)
            assert not page.locator("#stop").is_visible() and not page.locator(".toast-body").count()
            # the mask editor's own words (its tools, "select the draw tool to start") are Korean too, and with a
            # photo in it, the brush's and the eraser's options
            page.get_by_role("tab", name="광고 레이아웃").click()
            page.locator("#mask-editor").wait_for()
            no_english_labels(page)
            page.wait_for_function("!/[A-Za-z]{3,}/.test(document.querySelector('#mask-editor').innerText)",
                                   timeout=5_000)
            from PIL import Image, ImageDraw

            photo = Image.new("RGB", (90, 120), (160, 120, 80))
            ImageDraw.Draw(photo).rectangle((36, 24, 54, 100), fill=(30, 160, 60))
            photo.save(tmp_path / "bottle.png")
            page.locator("#photo input[type=file]").set_input_files(str(tmp_path / "bottle.png"))
            page.locator("#mask-editor canvas").first.wait_for()
            for tool in ("브러시", "지우개"):
                page.locator(f"#mask-editor [aria-label='{tool}']").first.click()
                no_english_labels(page)
        if viewport is PHONE:  # an uploaded photo's name is readable beside its thumbnail (it was cut to ".png")
            from PIL import Image

            Image.new("RGB", (60, 80), (200, 150, 100)).save(tmp_path / "bottle-photo.png")
            page.locator("#photo input[type=file]").set_input_files(str(tmp_path / "bottle-photo.png"))
            page.locator("#photo .stem").wait_for()
            stem = page.evaluate("(() => { const s = document.querySelector('#photo .stem');"
                                 " return [s.clientWidth, s.scrollWidth]; })()")
            assert stem[0] > 0 and stem[0] >= stem[1], stem  # shown whole, not cut by an ellipsis
        if locale == "ko-KR":  # the campaign's channels too: a hover shows "카카오 비즈보드", not "kakao_bizboard"
            page.get_by_role("tab", name="캠페인").click()
            page.locator("#campaign-channels input[type=checkbox]").first.wait_for()
            no_english_labels(page)
        return
    if viewport is PHONE:  # an error after Generate shows where the phone has scrolled to, with Stop's row
        page.locator("#generate").click()
        page.wait_for_function(includes("#message", labels["name"]))
        page.wait_for_function("(() => { const r = document.querySelector('#message').getBoundingClientRect();"
                               " return r.top >= 0 && r.bottom <= innerHeight; })()", timeout=5_000)
    # An example fills three fields at once; the prompt must still follow what is typed next
    page.get_by_role("button", name=labels["example"]).click()
    page.get_by_text(labels["advanced"], exact=True).first.click()
    prompt = page.locator("#prompt textarea")
    page.wait_for_function(includes("#prompt textarea", labels["example"], "value"))
    page.get_by_text(labels["advanced"], exact=True).first.click()  # fold it again
    name = "제주 감귤 탄산수" if locale == "ko-KR" else "Cola zero"
    page.get_by_label(labels["name"], exact=True).fill(name)
    # the user's own product: the example's features are gone from the prompt
    page.wait_for_function(f"(() => {{ const v = document.querySelector('#prompt textarea').value;"
                           f" return v.includes({name!r}) && !v.includes({labels['feature']!r}); }})()", timeout=20_000)
    assert labels["example"] not in prompt.input_value()
    if locale == "ko-KR":  # Write copy: the demo model's text is random, and the page says so, in Korean
        copy = page.locator("#copy textarea, #copy input").first
        before = copy.input_value()
        page.locator("#write-copy").click()
        page.wait_for_function("document.querySelector('#writer-message')?.innerText.includes('데모 모델')")
        assert "문구 칸은 그대로입니다" in page.locator("#writer-message").inner_text()
        assert copy.input_value() == before and engine.writes == 1
    set_size(page, locale, "4:5")
    scrolled = page.evaluate("scrollY")
    page.locator("#generate").click()
    # Answer where the user looks: on a phone the result area (with its progress) comes into view; a desktop stays
    on_screen = "(() => { const r = document.querySelector('#result').getBoundingClientRect();" \
                " return r.top < innerHeight && r.bottom > 0; })()"
    page.wait_for_function(on_screen)
    image = page.locator("#result img").first
    image.wait_for()
    if viewport is DESKTOP:
        assert page.evaluate("scrollY") == scrolled
    page.wait_for_function("document.querySelector('#result-info')?.innerText.includes('896x1120')")
    # The whole ad, never cropped: the drawn picture keeps the image's aspect and fits its box
    drawn = page.evaluate("""() => { const i = document.querySelector('#result img');
        const r = i.getBoundingClientRect(); const s = Math.min(r.width / i.naturalWidth, r.height / i.naturalHeight);
        return {fit: getComputedStyle(i).objectFit, w: i.naturalWidth, h: i.naturalHeight, rw: r.width, rh: r.height,
                shown_w: i.naturalWidth * s, shown_h: i.naturalHeight * s}; }""")
    assert (drawn["w"], drawn["h"]) == (896, 1120)
    assert drawn["fit"] == "contain" or abs(drawn["rw"] / drawn["rh"] - 896 / 1120) < 0.02, drawn
    assert drawn["shown_w"] <= drawn["rw"] + 1 and drawn["shown_h"] <= drawn["rh"] + 1
    # the download is named after the product and the date; no raw key of Gradio's ("common.complete") on the page
    page.wait_for_function(includes("#download", name.replace(" ", "-")))
    assert "common." not in page.evaluate("document.body.innerText")
    if locale == "ko-KR":  # the result's own buttons (full screen, download) too, and full screen's own
        no_english_labels(page)
        page.locator("#result [aria-label='전체 화면']").first.click()
        page.locator("#result [aria-label='전체 화면 나가기']").first.wait_for()
        no_english_labels(page)
        page.locator("#result [aria-label='전체 화면 나가기']").first.click()
    page.screenshot(path=str(tmp_path / "shot.png"), full_page=True)
    keep_screenshot(tmp_path / "shot.png", f"screenshot-{locale[:2]}-{'phone' if viewport is PHONE else 'desktop'}.png")
    if viewport is DESKTOP:  # the placement sliders' labels stay whole on one line ("Produ/ct/centre/x" before)
        page.get_by_role("tab", name="Ad layout" if locale == "en-US" else "광고 레이아웃").click()
        label = page.locator("#place-x [data-testid='block-info']").first
        label.wait_for()
        assert label.bounding_box()["height"] < 30, label.bounding_box()
    # history survives a reload (the browser keeps it; the server checks every name)
    page.reload(wait_until="load")
    page.locator("#gallery img").first.wait_for()
    assert page.locator("#gallery img").count() == 1
    if viewport is PHONE:  # ... and a server restart: the history's secret is the installation's, not the launch's
        server.restart()
        page = page.context.new_page()  # the same browser (its storage), a new tab: a reload of the old one can
        page.set_default_timeout(60_000)  # find it detached while the server was away
        page.goto(url, wait_until="load")
        page.locator("#gallery img").first.wait_for()
        assert page.locator("#gallery img").count() == 1


def test_stop_in_one_tab_never_touches_another_tabs_job(server, browser):
    url, engine = server
    first = open_page(browser, url, "en-US", DESKTOP)
    second = open_page(browser, url, "ko-KR", DESKTOP)
    first.get_by_label("Product name", exact=True).fill("Aurora earbuds")
    set_size(first, "en-US", "1:1")
    count = first.locator("#count input[type=number]")
    count.fill("4")  # a longer job: four 1024x1024 images
    count.press("Tab")
    first.locator("#generate").click()
    first.locator("#stop").wait_for(state="visible")  # the first tab's job runs
    deadline = time.time() + 60
    while engine.runs == 0 and time.time() < deadline:
        time.sleep(0.05)
    second.get_by_label("제품명", exact=True).fill("제주 감귤 탄산수")
    second.locator("#generate").click()  # queued behind the first tab's job
    second.locator("#stop").wait_for(state="visible")
    # the waiting tab sees its own place (the running job is 1st), in its language, not the other tab's job
    second.wait_for_function("document.querySelector('#status')?.innerText.includes('대기 2번째')")
    # ... also where its result will show, and never Gradio's English "queue: 1/1" over it
    second.wait_for_function("document.querySelector('#place')?.innerText.includes('대기 2번째')")
    assert "queue:" not in second.locator("#result").inner_text()
    assert "대기" not in first.locator("#status").inner_text()
    second.locator("#stop").click()  # the second tab gives up
    second.locator("#generate").wait_for(state="visible")
    second.wait_for_function("document.querySelector('#message')?.innerText.includes('중지')")
    first.wait_for_function("document.querySelector('#result-info')?.innerText.includes('seed')",
                            timeout=180_000)  # four 1024x1024 images on 2 shared cores: over a minute
    assert "stopped" not in first.locator("#message").inner_text()
    first.locator("#generate").wait_for(state="visible")  # the buttons swap back in their own event, just after
    assert not first.locator("#stop").is_visible()
    assert engine.runs == 4  # the first tab's four images, and nothing of the second's


def test_a_space_has_no_admin_controls_or_endpoints(tmp_path):
    """`python app.py` started as a Hugging Face Space: no unload or memory-mode endpoint, no admin panel."""
    port = free_port()
    env = {**os.environ, "SPACE_ID": "adgen/demo", "GRADIO_SERVER_PORT": str(port), "ADGEN_MODEL": "demo",
           "GRADIO_SERVER_NAME": "127.0.0.1", "ADGEN_CACHE_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/gradio_api/info", timeout=2) as response:
                    info = response.read().decode()
                break
            except OSError:
                assert time.time() < deadline, "app.py did not answer"
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=10) as response:
            config = response.read().decode()
    finally:
        proc.kill()
        proc.wait()
    assert '"/generate"' in info and "unload" not in info and "memory_mode" not in info
    shown = json.dumps([c.get("props", {}) for c in json.loads(config)["components"]])  # not the translations
    assert "memory_mode" not in shown and "unload_model" not in shown and "free_memory" not in shown
    assert "product_name" in shown  # the page itself is there


def test_a_korean_user_makes_an_ad_from_a_product_photo(server, browser, tmp_path):
    from test_compose import bottle

    url, engine = server
    bottle().save(tmp_path / "bottle.png")
    page = open_page(browser, url, "ko-KR", DESKTOP)
    page.get_by_label("제품명", exact=True).fill("제주 감귤 탄산수")
    page.locator("#copy textarea, #copy input").first.fill("여름 한정 30% 할인!")
    page.locator("#subcopy textarea, #subcopy input").first.fill("₩9,900 무료 배송")
    page.locator("#photo input[type=file]").set_input_files(str(tmp_path / "bottle.png"))
    # the demo model's backgrounds are noise: a packshot is preselected, and the page says why
    page.wait_for_function("document.querySelector('#message')?.innerText.includes('데모 모델')")
    set_size(page, "ko-KR", "4:5")
    page.locator("#generate").click()
    page.wait_for_function("document.querySelector('#result-info')?.innerText.includes('문구 레이어 (새로 만듦)')")
    for step in ("cutout", "background", "copy"):
        page.locator(f"#step-{step} img").first.wait_for()
    assert "896x1120" in page.locator("#result-info").inner_text()
    # the job over: Generate back, Stop gone, each redo clickable that can change the ad (it has all three steps;
    # a packshot's backdrop is the same for every seed, so New background is not)
    page.wait_for_function("document.querySelector('#generate') && !document.querySelector('#redo-copy').disabled")
    assert page.locator("#generate").is_visible() and not page.locator("#stop").is_visible()
    assert all(page.locator(f"#{redo}").is_enabled() for redo in ("redo-cutout", "redo-copy"))
    assert page.locator("#new-background").is_disabled()
    # no error; the only line is the photo's size, named in Korean (a 200x240 bottle is enlarged 2.8x)
    assert page.locator("#message").inner_text().strip().startswith("⚠ 제품 사진이 200x240 px라서 896x1120에서")
    page.screenshot(path=str(tmp_path / "ad.png"), full_page=True)
    keep_screenshot(tmp_path / "ad.png", "screenshot-ad.png")


def test_a_korean_user_makes_a_campaign_and_downloads_its_zip(server, browser, tmp_path):
    """The Campaign tab uses the same form: two channels ticked, Generate campaign, the gallery, Download ZIP."""
    import zipfile

    url, engine = server
    page = open_page(browser, url, "ko-KR", DESKTOP)
    page.get_by_label("제품명", exact=True).fill("제주 감귤 탄산수")
    page.locator("#photo input[type=file]").set_input_files(str(ROOT / "docs" / "example-product.png"))
    page.wait_for_function("document.querySelector('#message')?.innerText.includes('데모 모델')")  # packshot chosen
    page.get_by_role("tab", name="캠페인").click()
    channels = page.locator("#campaign-channels")
    for name in ("쿠팡 · 쿠팡 대표 이미지", "네이버 · 네이버 스마트스토어 대표 이미지",  # a Korean page's defaults
                 "메타 · 인스타그램 정사각형"):
        assert channels.get_by_label(name, exact=True).is_checked()
    while channels.locator("input:checked").count():
        channels.locator("input:checked").first.uncheck()
    for name in ("메타 · 인스타그램 정사각형", "구글 / IAB · 디스플레이 320x50 (모바일 배너)"):
        channels.get_by_label(name, exact=True).check()
    page.locator("#campaign-generate").click()
    page.wait_for_function("document.querySelectorAll('#campaign-gallery img').length === 2")
    page.wait_for_function("document.querySelector('#campaign-message')?.innerText.includes('파일 2개')")
    gallery = page.locator("#campaign-gallery").inner_text()
    assert "인스타그램 정사각형 · 1080x1080 · 버전 1 · ✓ 메타 규칙" in gallery and "320x50 · 버전 1 · ✓" in gallery
    assert gallery.index("인스타그램 정사각형") < gallery.index("320x50 (모바일 배너)")  # in the channels' order
    assert engine.runs == 0  # packshots: no model work
    assert box(page, "#campaign-zip")["y"] < box(page, "#campaign-gallery")["y"]  # the ZIP with the result
    page.screenshot(path=str(tmp_path / "campaign.png"), full_page=True)
    with page.expect_download() as download:
        page.locator("#campaign-zip").click()
    download.value.save_as(tmp_path / "campaign.zip")
    with zipfile.ZipFile(tmp_path / "campaign.zip") as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
    assert names == {"instagram_square-v1.png", "display_320x50-v1.png", "manifest.json"}
    assert [f["file"] for f in manifest["files"]] == ["instagram_square-v1.png", "display_320x50-v1.png"]
    assert manifest["product"]["name"] == "제주 감귤 탄산수" and manifest["background"] == "packshot"
    page.locator("#campaign-gallery img").first.click()  # its enlarged view speaks Korean too
    page.locator("#campaign-gallery [aria-label='닫기']").first.wait_for()
    no_english_labels(page)
