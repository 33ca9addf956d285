"""AdGen's Gradio app: a thin shell over `adgen`. `python app.py` serves http://127.0.0.1:7860.

Handlers only turn widget values into an `AdRequest`, call the engine, and turn `adgen` errors
into `gr.Error`. Nothing loads or launches at import time.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import gradio as gr
from PIL import Image

from adgen.cache import default_cache, write_atomic
from adgen.engine import Engine, quiet_libraries
from adgen.errors import AdgenError, InputError
from adgen.images import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, read_image_file
from adgen.metadata import read_params
from adgen.models import cache_dir
from adgen.monitor import render, snapshot
from adgen.presets import StylePreset
from adgen.prompts import build_prompt
from adgen.request import ASPECTS, AdRequest, Product, check_int

log = logging.getLogger("adgen.app")
MAX_HISTORY = 48
UI_MAX_COUNT = 4
EXAMPLES = [
    ["제주 감귤 탄산수", "음료", "100% 제주 감귤, 무설탕, 상쾌한 탄산", "20-30대 직장인", "여름 해변 피크닉, 밝은 햇살",
     "주황색과 민트", "여름 한정 30% 할인!"],
    ["Aurora wireless earbuds", "electronics", "noise cancelling, 30 h battery, IPX5", "commuters",
     "minimal desk at dawn", "midnight blue and silver", "Hear only what matters"],
    ["Glow vitamin C serum", "skincare", "15% vitamin C, vegan, glass dropper", "women 25-40",
     "marble bathroom, morning light", "gold and cream", "Wake up glowing"],
]
PRODUCT_FIELDS = ["name", "category", "features", "audience", "scene", "colors", "copy"]


class Handlers:
    """Every event's function; the tests call these directly."""

    def __init__(self, engine: Engine, outputs: Path):
        self.engine, self.outputs = engine, outputs

    @property
    def presets(self) -> dict[str, StylePreset]:
        return self.engine.presets

    # -- form helpers ------------------------------------------------------------------------
    def preview(self, current: str, last_auto: str, name, category, features, audience, scene, colors, copy,
                style, focus) -> tuple[str, str]:
        """Rebuild the prompt preview; a prompt the user edited (differs from the last built one) is kept."""
        try:
            product = Product(name or "(product)", category, features, audience, scene, colors, copy)
            auto = build_prompt(product, self.presets[style], bool(focus))
        except (InputError, KeyError):
            return current, last_auto  # the Generate button reports bad fields
        return (auto if current in ("", last_auto) else current), auto

    def style_info(self, style: str):
        preset = self.presets.get(style)
        if preset is None:
            return "", gr.update(visible=False)
        lora = f" · LoRA default scale {preset.lora.scale}" if preset.lora else " · no LoRA"
        return f"**{preset.label}**: {preset.description}{lora}", gr.update(
            visible=preset.lora is not None, value=preset.lora.scale if preset.lora else 1.0)

    @staticmethod
    def aspect(ratio: str):
        if ratio not in ASPECTS:
            return gr.update(), gr.update()
        return ASPECTS[ratio]

    # -- generation --------------------------------------------------------------------------
    def generate(self, name, category, features, audience, scene, colors, copy, photo, style, lora_scale, focus,
                 prompt, seed, random_seed, width, height, steps, count, auto_prompt="", history=None,
                 progress=gr.Progress()):  # noqa: B008 - Gradio injects progress through this default
        """Generate, newest first in this session's gallery; returns (gallery, history, info, seed, file)."""
        history = list(history or [])
        try:
            request = AdRequest(
                product=Product(name or "", category or "", features or "", audience or "", scene or "",
                                colors or "", copy or ""),
                preset=style, lora_scale=lora_scale if style in self.presets and self.presets[style].lora else None,
                prompt=None if (prompt or "") == (auto_prompt or "") else prompt, product_focus=bool(focus),
                seed=None if random_seed else seed, width=width, height=height, steps=steps,
                count=check_int("image count", count, 1, UI_MAX_COUNT),
                image=read_image_file(photo, "product photo") if photo else None,
            )
            if self.engine.state != "ready":
                progress(0, desc="Loading the model…")
            result = self.engine.generate(request, progress=lambda done, total: progress((done, total),
                                                                                         desc="Denoising"))
        except AdgenError as exc:
            raise gr.Error(str(exc)) from None
        except Exception as exc:  # a bug: keep serving, say what happened, log the traceback
            log.exception("generation failed")
            raise gr.Error(f"unexpected error ({exc.__class__.__name__}): {exc}") from None
        entries = [self._save(item, result) for item in result.images]
        history = (entries + history)[:MAX_HISTORY]  # newest request first, its images in seed order
        return gallery_of(history), history, info_of(entries[0]), entries[0]["seed"], entries[0]["path"]

    def _save(self, item, result) -> dict:
        self.outputs.mkdir(parents=True, exist_ok=True)
        path = self.outputs / f"adgen-{item.seed}-{item.key[:10]}.png"
        if not path.exists():
            write_atomic(path, item.png)
        s = result.settings
        return {"path": str(path), "seed": item.seed, "prompt": s.prompt, "size": f"{s.width}x{s.height}",
                "seconds": round(result.seconds, 2), "cached": item.cached, "model": result.model}

    def select(self, history, evt: gr.SelectData):
        entry = (history or [])[evt.index]
        return info_of(entry), entry["path"]

    def stop(self) -> None:
        self.engine.stop()

    def load_from_image(self, file):
        """Every setting a PNG made by AdGen was made with, for the form."""
        if not file:
            return [gr.update()] * 17
        try:
            params = read_params(Path(file).read_bytes())
        except AdgenError as exc:
            raise gr.Error(str(exc)) from None
        product = params["product"]
        ratio = next((r for r, size in ASPECTS.items() if size == (params["width"], params["height"])), "custom")
        auto = "" if params["prompt_override"] else params["prompt"]
        return [product["name"], product["category"], ", ".join(product["features"]), product["audience"],
                product["scene"], product["colors"], product["copy"], params["preset"],
                params["lora_scale"] if params["lora_scale"] is not None else 1.0, params["product_focus"],
                params["prompt"], auto, params["seed"], False, ratio, params["width"], params["height"]]

    # -- memory panel ------------------------------------------------------------------------
    def vram(self) -> str:
        return render(snapshot(self.engine.device), self.engine.describe())

    def free_memory(self) -> str:
        from adgen.engine import flush_memory

        flush_memory()
        return self.vram()

    def unload(self) -> str:
        self.engine.unload()
        return self.vram()


def gallery_of(history: list[dict]) -> list[tuple[str, str]]:
    return [(e["path"], f"seed {e['seed']} · {e['size']}" + (" · cache" if e["cached"] else "")) for e in history]


def info_of(entry: dict) -> str:
    source = "from the cache" if entry["cached"] else "generated"
    return (f"**seed** {entry['seed']} · **size** {entry['size']} · **time** {entry['seconds']} s · {source} · "
            f"{entry['model']}\n\n**prompt:** {entry['prompt']}")


def on_gpu(fn):
    """`@spaces.GPU` on Hugging Face ZeroGPU Spaces; unchanged everywhere else."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=120)(fn)


def build_demo(engine: Engine, outputs: Path | None = None) -> gr.Blocks:
    """The whole UI, wired to `engine`; nothing is loaded or launched here."""
    h = Handlers(engine, outputs or cache_dir() / "outputs")
    hidden = dict(api_visibility="undocumented")
    with gr.Blocks(title="AdGen") as demo:
        gr.Markdown("# AdGen\nProduct details in, an advertising image out, with Z-Image-Turbo.")
        if engine.source.is_demo:
            gr.Markdown("**Running the demo model (random weights): its images are noise.** It exercises every "
                        "step for real; install the real Z-Image-Turbo (`python -m adgen download`) for ads.",
                        elem_id="demo-notice")
        panel = gr.Markdown("starting…", elem_id="vram-panel")
        with gr.Row():
            free = gr.Button("Free cached memory", size="sm")
            unload = gr.Button("Unload model", size="sm")
        history, auto_prompt, last_seed = gr.State([]), gr.State(""), gr.State(None)
        with gr.Row():
            with gr.Column(scale=5):
                with gr.Tabs():
                    with gr.Tab("Product"):
                        product = [
                            gr.Textbox(label="Product name", placeholder="e.g. 제주 감귤 탄산수 (required)"),
                            gr.Textbox(label="Category"),
                            gr.Textbox(label="Key features", placeholder="comma-separated: lemon, zero sugar"),
                            gr.Textbox(label="Target audience"),
                            gr.Textbox(label="Scene / mood"),
                            gr.Textbox(label="Brand colours"),
                            gr.Textbox(label="Ad copy"),
                        ]
                        photo = gr.Image(label="Product photo (optional)", type="filepath", sources=["upload"])
                    with gr.Tab("Style"):
                        style = gr.Radio([(p.label, n) for n, p in h.presets.items()], value=next(iter(h.presets)),
                                         label="Style")
                        style_text = gr.Markdown()
                        lora_scale = gr.Slider(0, 2, value=1.0, step=0.05, label="LoRA scale", visible=False)
                        focus = gr.Checkbox(True, label="Product focus: the product is the hero, no people or faces")
                        prompt = gr.Textbox(label="Prompt (edit to override the built one)", lines=6)
                    with gr.Tab("Seed & Size"):
                        with gr.Row():
                            seed = gr.Number(0, label="Seed", precision=0, minimum=0, maximum=2**32 - 1)
                            random_seed = gr.Checkbox(True, label="Random seed")
                            reuse = gr.Button("Reuse last seed", size="sm")
                        aspect = gr.Radio([*ASPECTS, "custom"], value="1:1", label="Aspect ratio")
                        width = gr.Slider(256, 2048, value=1024, step=16, label="Width")
                        height = gr.Slider(256, 2048, value=1024, step=16, label="Height")
                        steps = gr.Slider(1, 50, value=8, step=1, label="Steps (Z-Image-Turbo: 8)")
                        count = gr.Slider(1, UI_MAX_COUNT, value=1, step=1, label="Images")
                    with gr.Tab("Load from image"):
                        png = gr.File(label="Drop a PNG made by AdGen to restore its settings", file_types=[".png"])
                gr.Examples(EXAMPLES, inputs=product, label="Examples")
                with gr.Row():
                    go = gr.Button("Generate", variant="primary", elem_id="generate")
                    stop = gr.Button("Stop", variant="stop", elem_id="stop")
            with gr.Column(scale=7):
                gallery = gr.Gallery(label="Results (newest first)", format="png", columns=2, height=560,
                                     elem_id="gallery")
                info = gr.Markdown(elem_id="result-info")
                download = gr.File(label="Download PNG (parameters embedded)")

        # The prompt preview follows the form; the user's own edit is kept.
        form = [*product, style, focus]
        for widget in form:
            widget.change(h.preview, [prompt, auto_prompt, *form], [prompt, auto_prompt], **hidden)
        style.change(h.style_info, style, [style_text, lora_scale], **hidden)
        aspect.change(h.aspect, aspect, [width, height], **hidden)
        for side in (width, height):
            side.release(lambda: "custom", None, aspect, **hidden)
        reuse.click(lambda s: (s if s is not None else 0, False), last_seed, [seed, random_seed], **hidden)

        inputs = [*product, photo, style, lora_scale, focus, prompt, seed, random_seed, width, height, steps, count,
                  auto_prompt, history]
        run = go.click(on_gpu(h.generate), inputs, [gallery, history, info, last_seed, download],
                       api_name="generate", concurrency_limit=1, concurrency_id="gpu")
        # Gradio's cancel alone can't stop a running thread: the engine's flag ends it within a step.
        stop.click(h.stop, None, None, queue=False, cancels=[run], **hidden)
        gallery.select(h.select, history, [info, download], **hidden)
        png.upload(h.load_from_image, png, [*product, style, lora_scale, focus, prompt, auto_prompt, seed,
                                            random_seed, aspect, width, height], **hidden)

        # The panel refreshes outside the GPU queue: it only reads counters.
        timer = gr.Timer(1.5)
        timer.tick(h.vram, None, panel, queue=False, show_progress="hidden", **hidden)
        free.click(h.free_memory, None, panel, queue=False, **hidden)
        unload.click(h.unload, None, panel, concurrency_limit=1, concurrency_id="gpu", api_name="unload")
        demo.load(h.style_info, style, [style_text, lora_scale], **hidden)
        demo.load(h.preview, [prompt, auto_prompt, *form], [prompt, auto_prompt], **hidden)
        demo.load(h.vram, None, panel, queue=False, show_progress="hidden", **hidden)
    demo.handlers = h  # for tests and embedding
    return demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="AdGen web app")
    parser.add_argument("--model", help="auto (default), demo, a local folder or a Hugging Face repo id")
    parser.add_argument("--share", action="store_true", help="make a public gradio.live link (off by default)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    quiet_libraries()
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS  # Pillow's decompression-bomb limit, for every decode
    try:
        engine = Engine(args.model, cache=default_cache())
    except AdgenError as exc:
        raise SystemExit(f"error: {exc}") from None
    engine.load_in_background()  # the page is up at once; the panel shows "loading"
    log.info("model: %s (%s)", engine.source.label, engine.device)
    demo = build_demo(engine)
    auth = os.environ.get("ADGEN_AUTH")
    demo.queue(default_concurrency_limit=1).launch(
        share=args.share, auth=tuple(auth.split(":", 1)) if auth else None, max_file_size=MAX_IMAGE_BYTES,
        allowed_paths=[str(cache_dir() / "outputs")],
    )


if __name__ == "__main__":
    main()
