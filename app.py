"""AdGen's Gradio app: a thin shell over `adgen`. `python app.py` serves http://127.0.0.1:7860.

Handlers only turn widget values into an `AdRequest`, call the engine, and turn `adgen` errors
into `gr.Error`. Nothing loads or launches at import time.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
from pathlib import Path

import gradio as gr
from PIL import Image

from adgen.__main__ import add_runtime_flags
from adgen.ad import AdMaker, AdSpec, Output, outputs
from adgen.cache import default_cache, evict_lru, max_cache_bytes, write_atomic
from adgen.compose import Placement, auto_mask
from adgen.engine import Engine
from adgen.errors import AdgenError, InputError
from adgen.images import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, decode_image, read_image_file
from adgen.memory import flush_memory
from adgen.metadata import read_params
from adgen.models import cache_dir, quiet_libraries
from adgen.monitor import render, snapshot
from adgen.presets import StylePreset
from adgen.prompts import build_prompt
from adgen.request import ASPECTS, AdRequest, Product, check_int
from adgen.request import random_seed as new_seed
from adgen.typography import POSITIONS

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


class Handlers:
    """Every event's function; the tests call these directly."""

    def __init__(self, engine: Engine, outputs: Path):
        self.engine, self.outputs = engine, outputs
        self.maker = AdMaker(engine)

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
                 prompt, seed, random_seed, width, height, steps, count, subcopy="", text_style="extrude_3d",
                 text_position="auto", background="inpaint", place_x=0.5, place_y=0.6, place_scale=0.45, mask=None,
                 auto_prompt="", history=None, request: gr.Request | None = None,
                 progress=gr.Progress()):  # noqa: B008 - Gradio injects progress through this default
        """Generate, newest first in this session's gallery.

        With a product photo or ad copy this is the three-step ad (cutout and background, copy layer,
        composite), else a plain image. Returns (gallery, history, info, seed, file, cutout, background, copy).
        """
        history = list(history or [])
        try:
            ad_request = AdRequest(
                product=Product(name or "", category or "", features or "", audience or "", scene or "",
                                colors or "", copy or ""),
                preset=style, lora_scale=lora_scale if style in self.presets and self.presets[style].lora else None,
                prompt=None if (prompt or "") == (auto_prompt or "") else prompt, product_focus=bool(focus),
                seed=None if random_seed else seed, width=width, height=height, steps=steps,
                count=check_int("image count", count, 1, UI_MAX_COUNT),
                image=read_image_file(photo, "product photo") if photo else None,
            )
            ad = ad_request.image is not None or bool(ad_request.product.copy) or bool((subcopy or "").strip())
            if ad:
                spec = AdSpec(ad_request, subcopy=subcopy or "", text_style=text_style, text_position=text_position,
                              placement=Placement(place_x, place_y, place_scale),
                              background=background, mask=mask_png(mask) if photo else None)
            if self.engine.state != "ready":
                progress(0, desc="Loading the model…")
            report = lambda done, total: progress((done, total), desc="Denoising")  # noqa: E731
            # This session's job: its Stop, a closed tab or a cancelled API call ends it, and no other.
            with self.engine.jobs.open(session_of(request), gone=event_gone()) as job:
                result = self.maker.make(spec, progress=report, job=job) if ad else \
                    self.engine.generate(ad_request, progress=report, job=job)
        except AdgenError as exc:
            raise gr.Error(str(exc)) from None
        except Exception as exc:  # a bug: keep serving, say what happened, log the traceback
            log.exception("generation failed")
            raise gr.Error(f"unexpected error ({exc.__class__.__name__}): {exc}") from None
        items = outputs(result)
        size = Image.open(io.BytesIO(items[0].files["final"])).size
        entries = [self._save(item, result, size) for item in items]
        history = (entries + history)[:MAX_HISTORY]  # newest request first, its images in seed order
        first = entries[0]
        return (gallery_of(history), history, info_of(first), first["seed"], first["path"],
                *(first["steps"].get(step) for step in ("cutout", "background", "copy_layer")))

    def _save(self, item: Output, result, size) -> dict:
        """Write the final PNG and its intermediates under outputs/ (content-addressed names), within the cap."""
        self.outputs.mkdir(parents=True, exist_ok=True)
        paths = {}
        for step, data in item.files.items():
            path = self.outputs / item.file_name(step)
            if path.exists():
                os.utime(path)  # shown again: the most recently used, so the last to be evicted
            else:
                write_atomic(path, data)
            paths[step] = str(path)
        # outputs/ is capped like the result cache; what was just saved stays, the gallery shows it
        evict_lru(self.outputs, "*", max_cache_bytes(), keep=[Path(p) for p in paths.values()])
        cached = item.cached
        return {"path": paths.pop("final"), "steps": paths, "seed": item.seed, "prompt": result.prompt,
                "size": f"{size[0]}x{size[1]}", "seconds": round(result.seconds, 2), "cached": cached["final"],
                "step_cache": {k: v for k, v in cached.items() if k != "final"}, "model": result.model}

    def photo_changed(self, photo):
        """A new product photo: its preview and its automatic mask (for the mask editor); bad files say why."""
        if not photo:
            return None, None
        try:
            image = decode_image(read_image_file(photo, "product photo"), "product photo")
        except AdgenError as exc:
            raise gr.Error(str(exc)) from None
        return image, self.auto_mask_for(image)

    @staticmethod
    def auto_mask_for(image: Image.Image):
        """The automatic product mask of a photo as the mask editor's value (None, with a warning, if none)."""
        try:
            mask = auto_mask(image)
        except AdgenError as exc:
            gr.Warning(str(exc))
            return None
        return {"background": mask.convert("RGB"), "layers": [], "composite": mask.convert("RGB")}

    def select(self, history, evt: gr.SelectData):
        entry = (history or [])[evt.index]
        return info_of(entry), entry["path"], *(entry["steps"].get(s) for s in ("cutout", "background", "copy_layer"))

    def stop(self, request: gr.Request | None = None) -> None:
        """Stop this session's job (never another tab's) at its next step."""
        self.engine.stop(session_of(request))

    def session_closed(self, request: gr.Request | None = None) -> None:
        """The tab closed (or reloaded): its job, if one runs, ends at its next step."""
        self.engine.jobs.stop(session_of(request), "stopped because the page was closed")

    def load_from_image(self, file):
        """Every setting a PNG made by AdGen was made with, for the form (the ad layout too, for an ad)."""
        if not file:
            return [gr.update()] * 25
        try:
            params = read_params(Path(file).read_bytes())  # every field used below is checked there
        except AdgenError as exc:
            raise gr.Error(str(exc)) from None
        except Exception as exc:  # a bug: say what happened instead of Gradio's bare "Error"
            log.exception("load from image failed")
            raise gr.Error(f"unexpected error ({exc.__class__.__name__}): {exc}") from None
        product = params["product"]
        ratio = next((r for r, size in ASPECTS.items() if size == (params["width"], params["height"])), "custom")
        auto = "" if params["prompt_override"] else params["prompt"]
        return [product["name"], product["category"], ", ".join(product["features"]), product["audience"],
                product["scene"], product["colors"], product["copy"], params["preset"],
                params["lora_scale"] if params["lora_scale"] is not None else 1.0, params["product_focus"],
                params["prompt"], auto, params["seed"], False, ratio, params["width"], params["height"],
                params["steps"], *ad_layout(params.get("ad"))]

    # -- memory panel ------------------------------------------------------------------------
    def vram(self, width=None, height=None, count=None) -> str:
        """The panel: memory now, the model's state, and the forecast for the size in the form."""
        text = render(snapshot(self.engine.device), self.engine.describe())
        if self.engine.device.type == "cuda" and width and height:
            try:
                need = self.engine.forecast(int(width), int(height), int(count or 1), wait=False)
                if need is not None:  # None while the model downloads: the panel never waits for it
                    text += f"  \nforecast for {int(width)}x{int(height)}: ~{need / 1e9:.1f} GB peak"
            except Exception as exc:  # the panel never fails: it says why
                text += f"  \nforecast unavailable ({exc.__class__.__name__})"
        return text

    def set_memory_mode(self, mode: str) -> str:
        try:
            self.engine.set_memory_mode(mode)
        except AdgenError as exc:
            raise gr.Error(str(exc)) from None
        return self.vram()

    def free_memory(self) -> str:
        flush_memory()
        return self.vram()

    def unload(self) -> str:
        self.engine.unload()
        return self.vram()


def session_of(request: gr.Request | None) -> str:
    """The browser session (tab) or API client a request comes from; "local" for direct calls."""
    return getattr(request, "session_hash", None) or "local"


def event_gone():
    """A probe for the Gradio event running this handler: True once it was cancelled or its client left.

    Gradio cancels a running event's asyncio task (Stop's `cancels`, a client's /cancel, a closed
    stream) but cannot stop the worker thread; the job polls this at each step instead.
    """
    from gradio.context import LocalContext

    blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)
    queue = getattr(blocks, "_queue", None)
    if queue is None or event_id is None:
        return None

    def gone() -> bool:
        for events in list(queue.active_jobs):
            for event in events or []:
                if event._id == event_id:
                    return not event.alive
        return True  # no longer an active job: its task was cancelled

    return gone


def ad_layout(ad: dict | None) -> list:
    """Sub-line, copy style and position, background mode and placement of an ad's parameters."""
    if not ad:
        return [gr.update()] * 7
    place = ad["placement"]
    return [ad["subcopy"], ad["text_style"], ad["text_position"], ad["background"], place["x"], place["y"],
            place["scale"]]


def mask_png(editor) -> bytes | None:
    """The mask editor's picture (white = product) as PNG bytes; None when nothing is there."""
    picture = editor.get("composite") if isinstance(editor, dict) else editor
    if picture is None:
        return None
    if isinstance(picture, (str, Path)):
        picture = Image.open(picture)
    buffer = io.BytesIO()
    picture.convert("L").save(buffer, format="PNG")
    return buffer.getvalue()


def gallery_of(history: list[dict]) -> list[tuple[str, str]]:
    return [(e["path"], f"seed {e['seed']} · {e['size']}" + (" · cache" if e["cached"] else "")) for e in history]


def info_of(entry: dict) -> str:
    source = "from the cache" if entry["cached"] else "generated"
    steps = entry.get("step_cache") or {}
    kept = " · steps: " + ", ".join(f"{k.replace('_', ' ')} {'(kept)' if v else '(new)'}"
                                    for k, v in steps.items()) if steps else ""
    return (f"**seed** {entry['seed']} · **size** {entry['size']} · **time** {entry['seconds']} s · {source} · "
            f"{entry['model']}{kept}\n\n**prompt:** {entry['prompt']}")


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
            memory = gr.Radio(["auto", "gpu", "offload", "lowvram"], value=engine.memory_request,
                              label="Memory mode", scale=3)
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
                        # A File, not an Image: AdGen's own checks (size, bombs, non-images) then say what
                        # is wrong, instead of a bare error from Gradio's image decoding.
                        photo = gr.File(label="Product photo (optional)", file_types=["image"], type="filepath",
                                        elem_id="photo")
                        photo_preview = gr.Image(label="Product photo", interactive=False, height=200,
                                                 format="png", elem_id="photo-preview")
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
                    with gr.Tab("Ad layout"):
                        subcopy = gr.Textbox(label="Sub-line (smaller second line of copy)")
                        text_style = gr.Radio([(t.label, n) for n, t in h.maker.text_styles.items()],
                                              value=next(iter(h.maker.text_styles)), label="Copy style")
                        text_position = gr.Radio(list(POSITIONS), value="auto", label="Copy position (auto: the "
                                                 "calmest band that does not cover the product)")
                        background = gr.Radio([("Repaint around the product (inpaint)", "inpaint"),
                                               ("New scene, then composite (text-to-image)", "t2i")],
                                              value="inpaint", label="Background")
                        with gr.Row():
                            place_x = gr.Slider(0, 1, value=0.5, step=0.01, label="Product centre x")
                            place_y = gr.Slider(0, 1, value=0.6, step=0.01, label="Product centre y")
                            place_scale = gr.Slider(0.05, 1, value=0.45, step=0.01, label="Product height")
                        mask = gr.ImageEditor(label="Product mask: white = product (paint to correct)", type="pil",
                                              image_mode="RGB", brush=gr.Brush(colors=["#FFFFFF", "#000000"]),
                                              sources=[], elem_id="mask-editor")
                    with gr.Tab("Load from image"):
                        png = gr.File(label="Drop a PNG made by AdGen to restore its settings", file_types=[".png"])
                gr.Examples(EXAMPLES, inputs=product, label="Examples")
                with gr.Row():
                    go = gr.Button("Generate", variant="primary", elem_id="generate")
                    stop = gr.Button("Stop", variant="stop", elem_id="stop")
            with gr.Column(scale=7):
                gallery = gr.Gallery(label="Results (newest first)", format="png", columns=2, height=560,
                                     object_fit="contain", elem_id="gallery")
                info = gr.Markdown(elem_id="result-info")
                download = gr.File(label="Download PNG (parameters embedded)")
                with gr.Row():  # the ad's kept steps, each redoable alone
                    with gr.Column(min_width=120):
                        cutout_view = gr.Image(label="1a. Cutout", format="png", interactive=False, height=180,
                                               elem_id="step-cutout")
                        redo_cutout = gr.Button("Redo cutout (with my mask)", size="sm")
                    with gr.Column(min_width=120):
                        background_view = gr.Image(label="1b. Background", format="png", interactive=False,
                                                   height=180, elem_id="step-background")
                        redo_background = gr.Button("New background", size="sm")
                    with gr.Column(min_width=120):
                        copy_view = gr.Image(label="2. Copy layer", format="png", interactive=False, height=180,
                                            elem_id="step-copy")
                        redo_copy = gr.Button("Redo copy (same background)", size="sm")

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
                  subcopy, text_style, text_position, background, place_x, place_y, place_scale, mask,
                  auto_prompt, history]
        outputs = [gallery, history, info, last_seed, download, cutout_view, background_view, copy_view]
        generate = on_gpu(h.generate)
        gpu = dict(concurrency_limit=1, concurrency_id="gpu")
        run = go.click(generate, inputs, outputs, api_name="generate", **gpu)
        photo.change(h.photo_changed, photo, [photo_preview, mask], **hidden)
        # Redo one step: same seed (the other steps come from their caches) or a new background seed.
        same_seed = (lambda s: (s if s is not None else 0, False), last_seed, [seed, random_seed])
        redo_copy.click(*same_seed, **hidden).then(generate, inputs, outputs, api_name="redo_copy", **gpu)
        redo_cutout.click(*same_seed, **hidden).then(generate, inputs, outputs, api_name="redo_cutout", **gpu)
        redo_background.click(lambda: (new_seed(), False), None, [seed, random_seed], **hidden).then(
            generate, inputs, outputs, api_name="new_background", **gpu)
        # Gradio's cancel alone can't stop a running thread: the engine's flag ends it within a step.
        stop.click(h.stop, None, None, queue=False, cancels=[run], **hidden)
        demo.unload(h.session_closed)
        gallery.select(h.select, history, [info, download, cutout_view, background_view, copy_view], **hidden)
        png.upload(h.load_from_image, png, [*product, style, lora_scale, focus, prompt, auto_prompt, seed,
                                            random_seed, aspect, width, height, steps, subcopy, text_style,
                                            text_position, background, place_x, place_y, place_scale], **hidden)

        # The panel refreshes outside the GPU queue: it only reads counters.
        timer = gr.Timer(1.5)
        timer.tick(h.vram, [width, height, count], panel, queue=False, show_progress="hidden", **hidden)
        memory.change(h.set_memory_mode, memory, panel, api_name="memory_mode", **gpu)
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
    add_runtime_flags(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    quiet_libraries()
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS  # Pillow's decompression-bomb limit, for every decode
    try:
        engine = Engine(args.model, cache=default_cache(), memory=args.memory, attention=args.attention,
                        dtype=args.dtype, compile=args.compile)
    except AdgenError as exc:
        raise SystemExit(f"error: {exc}") from None
    engine.load_in_background(warmup=args.warmup)  # the page is up at once; the panel shows "loading"
    log.info("model: %s (%s)", engine.source.label, engine.device)
    demo = build_demo(engine)
    auth = os.environ.get("ADGEN_AUTH")
    if auth and (":" not in auth or auth.startswith(":") or auth.endswith(":")):
        raise SystemExit("error: ADGEN_AUTH must look like user:password")
    demo.queue(default_concurrency_limit=1).launch(
        share=args.share, auth=tuple(auth.split(":", 1)) if auth else None, max_file_size=MAX_IMAGE_BYTES,
        allowed_paths=[str(cache_dir() / "outputs")],
    )


if __name__ == "__main__":
    main()
