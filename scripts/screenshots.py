"""Regenerate the README's pictures from the current code: `python scripts/screenshots.py`.

Makes docs/example-packshot.png and docs/example-ad.png with the commands the README and docs/app.md show,
then screenshots the page (demo model) in headless Chromium: docs/screenshot-en-desktop.png (English, 1400x1000)
and docs/screenshot-ko-phone.png (Korean, 390x844), each after one generated ad. Tests never run this: it rewrites
tracked files on purpose.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CHROMIUM = "/usr/bin/chromium"
PACKSHOT = ["generate", "--product", "Citrus sparkling water", "--image", "docs/example-product.png", "--background",
            "packshot", "--brand", "citrus", "--copy", "여름 한정", "--subcopy", "제주 감귤 탄산수"]
AD = ["generate", "--product", "제주 감귤 탄산수", "--category", "음료", "--image", "docs/example-product.png",
      "--copy", "여름 한정 30% 할인!", "--subcopy", "₩9,900 · 무료 배송", "--text-style", "extrude_3d",
      "--aspect", "4:5", "--seed", "2026"]


def cli(args: list[str], out: Path) -> Path:
    done = subprocess.run([sys.executable, "-m", "adgen", *args, "--out", str(out), "--quiet"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    return Path(json.loads(done.stdout)["images"][0])


def page_shots(folder: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from playwright.sync_api import sync_playwright

    from adgen.cache import ResultCache
    from adgen.engine import Engine
    from adgen.models import resolve_model

    import app

    engine = Engine(resolve_model("demo"), cache=ResultCache(folder / "cache"), device="cpu")
    engine.load_in_background()
    demo = app.build_demo(engine, outputs=folder / "outputs")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.launch(demo, server_name="127.0.0.1", server_port=port, quiet=True, prevent_thread_lock=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            for locale, viewport, name, label, shot in (
                    ("en-US", {"width": 1400, "height": 1000}, "Aurora wireless earbuds", "Product name",
                     "screenshot-en-desktop.png"),
                    ("ko-KR", {"width": 390, "height": 844}, "제주 감귤 탄산수", "제품명", "screenshot-ko-phone.png")):
                page = browser.new_context(locale=locale, viewport=viewport).new_page()
                page.set_default_timeout(120_000)
                page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
                page.get_by_label(label, exact=True).fill(name)
                page.locator("#generate").click()
                page.locator("#result img").first.wait_for()
                page.locator("#generate").wait_for(state="visible")
                page.screenshot(path=str(DOCS / shot), full_page=True)
                print("wrote", DOCS / shot)
            browser.close()
    finally:
        demo.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for args, name in ((PACKSHOT, "example-packshot.png"), (AD, "example-ad.png")):
            shutil.copyfile(cli(args, folder / name), DOCS / name)
            print("wrote", DOCS / name)
        page_shots(folder)


if __name__ == "__main__":
    main()
