"""What the page shows, without gradio: who may administer, the status line, the mask editor's value,
"Load from image"'s fields, and the user's language. `app.py` only wires these to widgets.
"""

from __future__ import annotations

import dataclasses
import io
import ipaddress
import os
import re
from pathlib import Path

import numpy as np
from PIL import Image

from .compose import auto_mask
from .errors import AdgenError, InputError
from .form import AdForm
from .i18n import label, lang_code, lang_of, load_locales, localize_error, text, translate_message
from .images import decode_image, read_image_file
from .request import ASPECTS

FORM_FIELDS = {f.name for f in dataclasses.fields(AdForm)}
EXAMPLES = {  # per page language: name, ad copy, key features (the buttons' labels are the names, in locales/)
    "en": [["Jeju citrus sparkling water", "Summer only: 30% off!", "100% Jeju citrus, no sugar, crisp bubbles"],
           ["Aurora wireless earbuds", "Hear only what matters", "noise cancelling, 30 h battery, IPX5"],
           ["Glow vitamin C serum", "Wake up glowing", "15% vitamin C, vegan, glass dropper"]],
    "ko": [["제주 감귤 탄산수", "여름 한정 30% 할인!", "100% 제주 감귤, 무설탕, 상쾌한 탄산"],
           ["오로라 무선 이어폰", "원하는 소리만 들으세요", "노이즈 캔슬링, 30시간 배터리, IPX5 방수"],
           ["글로우 비타민C 세럼", "빛나는 아침을 깨우세요", "비타민C 15%, 비건, 유리 스포이트"]],
}
CAMPAIGN_DEFAULTS = {  # the channels ticked when the campaign tab opens, per page language
    "en": ("instagram_square", "instagram_story", "display_300x250"),
    "ko": ("coupang_main", "naver_smartstore", "11st_main", "kakaotalk_store_square", "instagram_square"),
}
MASK_LAYER_ALPHA = 170  # the mask drawn over the photo: white, see-through enough to trace the product
USABLE_MASK = (0.002, 0.995)  # shares of the photo a usable mask covers: not blank, not everything


GRADIO_KEYS = {"common.complete": "gradio_complete", "common.error": "gradio_error",  # Gradio's key -> ours
               "status.queue_position": "gradio_queue_position"}


def page_locales() -> dict[str, dict]:
    """The page's strings for `gr.I18n`, with the strings Gradio's own page looks up but lacks (its status
    announcer shows "common.complete" as is) under Gradio's names, nested as its dictionaries are."""
    locales = {}
    for lang, strings in load_locales().items():
        nested: dict[str, dict] = {}
        for gradio_key, ours in GRADIO_KEYS.items():
            space, _, name = gradio_key.partition(".")
            nested.setdefault(space, {})[name] = strings[ours]
        locales[lang] = {**strings, **nested}
    return locales


# The page's load script (`launch(js=...)`): Gradio's own English its translations lack, in the page's language
# (Gradio sets <html lang>): labels (aria-label, title, alt: what a screen reader says and a hover shows) and a few
# whole texts it draws (the mask editor's "select the draw tool to start"); and a checkbox's hover title the choice's
# shown label, not its value ("kakao_bizboard"). It runs again, once a frame, whenever the page changes; a
# translated label or text no longer matches, so it settles.
LABELS_JS = """() => {
  const rules = Object.fromEntries(Object.entries(%s).map(([l, rs]) => [l, rs.map(([p, to]) => [new RegExp(p), to])]));
  const texts = %s;
  const fix = () => {
    for (const box of document.querySelectorAll('input[type=checkbox][title]')) {
      const shown = box.closest('label')?.innerText.trim();
      if (shown && box.title !== shown) box.title = shown;
    }
    const lang = (document.documentElement.lang || '').slice(0, 2), own = rules[lang], words = texts[lang];
    if (!own) return;
    for (const el of document.querySelectorAll('[aria-label], [title], [alt]'))
      for (const name of ['aria-label', 'title', 'alt']) {
        const value = el.getAttribute(name);
        if (!value) continue;
        for (const [pattern, to] of own) {
          const m = value.match(pattern);
          if (m) { el.setAttribute(name, to.replace(/[{]([xy])[}]/g, (_, k) => m[k === 'x' ? 1 : 2] ?? '')); break; }
        }
      }
    const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walk.nextNode(); node; node = walk.nextNode()) {
      const value = node.nodeValue.trim();
      if (value && Object.hasOwn(words, value)) node.nodeValue = node.nodeValue.replace(value, () => words[value]);
    }
  };
  let queued = false;
  const later = () => { if (!queued) { queued = true; requestAnimationFrame(() => { queued = false; fix(); }); } };
  new MutationObserver(later)
    .observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true,
                             attributeFilter: ['aria-label', 'title', 'alt']});
  fix();
}"""


def labels_js() -> str:
    """`LABELS_JS` with its rules, per language but English: each `gradio_label_*` string's English (Gradio's exact
    words, `{x}` and `{y}` standing for what varies, in that order) as a pattern, and that language's words for it;
    each `gradio_text_*` string's English (a whole text Gradio draws) and that language's."""
    import json

    locales = load_locales()
    labels = sorted(k for k in locales["en"] if k.startswith("gradio_label_"))
    texts = sorted(k for k in locales["en"] if k.startswith("gradio_text_"))

    def pattern(english: str) -> str:
        escaped = re.escape(english).replace("\\ ", " ")
        return "^" + escaped.replace(r"\{x\}", "(.+?)").replace(r"\{y\}", "(.+?)") + "$"

    others = {lang: strings for lang, strings in locales.items() if lang != "en"}
    rules = {lang: [[pattern(locales["en"][k]), strings[k]] for k in labels] for lang, strings in others.items()}
    words = {lang: {locales["en"][k]: strings[k] for k in texts} for lang, strings in others.items()}
    return LABELS_JS % (json.dumps(rules, ensure_ascii=False), json.dumps(words, ensure_ascii=False))


def admin_allowed(server_name: str | None, share: bool, environ: dict | None = None) -> bool:
    """Admin controls (memory mode, unload) only on a local launch; `ADGEN_ADMIN=1`/`0` overrides.

    Public means: a Hugging Face Space (`SPACE_ID`), a share link, or listening beyond loopback.
    """
    env = os.environ if environ is None else environ
    if env.get("ADGEN_ADMIN") in ("0", "1"):
        return env["ADGEN_ADMIN"] == "1"
    return not is_public(server_name, share, env)


def is_public(server_name: str | None, share: bool, environ: dict | None = None) -> bool:
    """A launch others reach: a Hugging Face Space (`SPACE_ID`), a share link, or listening beyond loopback."""
    env = os.environ if environ is None else environ
    if env.get("SPACE_ID") or share:
        return True
    host = (server_name or "127.0.0.1").strip("[]")
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost: reachable from elsewhere
        return True


PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")  # set by nginx, Caddy, tunnels: not this machine


def request_is_local(request) -> bool:
    """Whether a Gradio request comes from this machine itself: a loopback client that no proxy forwarded.

    A launch on 127.0.0.1 behind nginx or a tunnel sees every visitor as a loopback client; only the proxy's
    headers tell them apart, so a request carrying one is never local. Direct calls (no request) are.
    """
    if request is None:
        return True
    headers = getattr(request, "headers", None)
    try:
        names = {str(name).lower() for name in headers.keys()} if headers is not None else set()
    except Exception:  # a request without real headers (internal calls)
        names = set()
    if names & set(PROXY_HEADERS):
        return False
    client = getattr(request, "client", None)
    host = client.get("host") if isinstance(client, dict) else getattr(client, "host", None)
    if host is None:
        return True  # not an HTTP request (a handler called in-process)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host).strip("[]")).is_loopback
    except ValueError:  # "testclient", a host name: not known to be this machine
        return False


def lang_of_request(request) -> str:
    """The UI language of the browser behind a Gradio request ("en" for direct calls)."""
    headers = getattr(request, "headers", None)
    try:
        value = headers.get("accept-language") if headers is not None else None
    except Exception:  # a request without real headers (tests, internal calls)
        value = None
    return lang_of(value)


def session_of(request) -> str:
    """The browser session (tab) or API client a request comes from; "local" for direct calls."""
    return getattr(request, "session_hash", None) or "local"


def uploaded(path: object, field: str, folder: str | Path) -> str | None:
    """`path` if it names a file the page uploaded (inside Gradio's upload `folder`, not a link); None for none.

    A widget's value comes from the browser: a posted path to any server file must never be read as a
    product photo, logo or font.
    """
    if path is None or path == "":
        return None
    path = path.get("path") if isinstance(path, dict) else getattr(path, "path", path)
    if isinstance(path, (str, Path)) and str(path):
        candidate, root = Path(path), Path(folder).resolve()
        try:
            inside = candidate.resolve().is_relative_to(root)
        except (OSError, RuntimeError):
            inside = False
        if inside and not candidate.is_symlink():
            if not candidate.exists():  # pruned by the disk cap (Handlers.tidy) while the page still named it
                raise InputError(field, "was removed from the server to keep its disk within its limit: upload it "
                                        "again")
            return str(candidate)
    raise InputError(field, "must be a file uploaded on this page; a path on the server is never read")


_RGB = re.compile(r"rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*(?:,\s*[\d.]+\s*)?\)")


def hex_color(value: object) -> str:
    """A colour picker's value as #RRGGBB: it may send "#rgb", "#rrggbb", "#rrggbbaa" or "rgb(a)(r, g, b[, a])".

    Anything else is passed through for the brand's own check to refuse by name."""
    text = str(value or "").strip()
    match = _RGB.fullmatch(text)
    if match:
        return "#" + "".join(f"{min(255, round(float(c))):02X}" for c in match.groups())
    if re.fullmatch(r"#[0-9a-fA-F]{3}", text):
        return "#" + "".join(c * 2 for c in text[1:]).upper()
    if re.fullmatch(r"#[0-9a-fA-F]{8}", text):
        return text[:7].upper()
    return text.upper() if re.fullmatch(r"#[0-9a-fA-F]{6}", text) else text


def brand_colors_of(use: bool, main: object, second: object) -> str:
    """The brand colours the two pickers give, only when "use brand colours" is ticked ("" otherwise)."""
    if not use:
        return ""
    return ", ".join(hex_color(c) for c in (main, second) if str(c or "").strip())


def brand_choices() -> list[tuple[str, str]]:
    """(shown name, file name) of each brand kit in presets/brands ("Citrus Co.", "citrus")."""
    from .brand import brand_names, load_brand

    choices = []
    for name in brand_names():
        try:
            shown = load_brand(name).name
        except AdgenError:  # a broken kit stays listed: choosing it says what is wrong
            shown = name
        choices.append((shown, name))
    return choices


def warnings_note(result, lang: str) -> str:
    """A result's notes ("ℹ") and warnings ("⚠"), English as made, in `lang`, a line each; empty without any."""
    from .i18n import translate_message

    said = [("ℹ ", n) for n in getattr(result, "notes", ())] + [("⚠ ", w) for w in result.warnings]
    return "  \n".join(mark + (translate_message(m, lang) or m) for mark, m in said)


def notes_line(*notes: str) -> str:
    """The page's message: the non-empty notes, one per line."""
    return "  \n".join(n for n in notes if n)


THUMBNAIL_SIDE = 240  # px: the product photo's picture beside its file


def photo_thumbnail(photo_path: str) -> Image.Image | None:
    """The product photo as a small picture (HEIC/AVIF decoded here, where the browser may not); None if unreadable."""
    try:
        photo = decode_image(read_image_file(photo_path, "product photo"), "product photo")
    except (AdgenError, OSError):
        return None
    photo.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    return photo


def mask_editor_value(photo_path: str) -> tuple[dict, bool]:
    """The mask editor's value for a photo: the photo, dimmed, under a see-through white mask layer.

    The photo stays visible to trace the product, and white strokes show on the dimmed photo.
    Returns (value, whether an automatic mask was found); without one the layer is empty.
    """
    photo = decode_image(read_image_file(photo_path, "product photo"), "product photo")
    try:
        mask, found = auto_mask(photo), True
    except InputError:
        mask, found = Image.new("L", photo.size, 0), False
    rgb = photo.convert("RGB")
    dimmed = Image.blend(rgb, Image.new("RGB", rgb.size, (40, 40, 48)), 0.55)
    layer = Image.new("RGBA", photo.size, (255, 255, 255, 0))
    layer.putalpha(mask.point(lambda v: v * MASK_LAYER_ALPHA // 255))  # the soft mask, soft edges shown as they are
    composite = dimmed.convert("RGBA")
    composite.alpha_composite(layer)
    return {"background": dimmed, "layers": [layer], "composite": composite}, found


def mask_png(editor) -> bytes | None:
    """The product mask painted in the editor (white = product) as PNG bytes; None when there is no editor value.

    A blank or everything-covering mask is "no usable mask": it would paste nothing, or the whole
    photo with its backdrop, as the product.
    """
    if not isinstance(editor, dict):
        return None
    layers = [layer for layer in editor.get("layers") or [] if layer is not None]
    if not layers:
        return None
    painted = np.zeros(_size(layers[0])[::-1], dtype=bool)
    for layer in layers:
        rgba = np.asarray(_image(layer).convert("RGBA"), dtype=np.int16)
        painted |= (rgba[..., 3] >= 64) & (rgba[..., :3].min(axis=2) >= 128)  # white-ish strokes
    share = painted.mean()
    if not USABLE_MASK[0] <= share <= USABLE_MASK[1]:
        raise InputError("product mask", "no usable mask: paint the product white on the photo (the mask is "
                         f"{'blank' if share < USABLE_MASK[0] else 'covering everything'})")
    buffer = io.BytesIO()
    Image.fromarray((painted * 255).astype(np.uint8), "L").save(buffer, format="PNG")
    return buffer.getvalue()


def check_mask_fits(photo_path: str, mask: bytes) -> None:
    """Refuse a mask painted for another photo (uploading a new photo and generating before its mask came)."""
    photo = decode_image(read_image_file(photo_path, "product photo"), "product photo")
    with Image.open(io.BytesIO(mask)) as painted:
        if painted.size != photo.size:
            raise InputError("product mask", "is for another photo: wait until the new photo appears in the mask "
                             "editor, then generate")


def _image(value) -> Image.Image:
    return value if isinstance(value, Image.Image) else Image.open(value)


def _size(value) -> tuple[int, int]:
    return _image(value).size


def restored_fields(params: dict, lang: str = "en") -> tuple[dict, str, bool]:
    """(form widget values by name, a line of what was restored in `lang`, whether the ad had a product photo)."""
    product = params["product"]
    ratio = next((r for r, size in ASPECTS.items() if size == (params["width"], params["height"])), "custom")
    fields = {"name": product["name"], "category": product["category"], "features": ", ".join(product["features"]),
              "audience": product["audience"], "scene": product["scene"], "colors": product["colors"],
              "copy": product["copy"], "style": params["preset"], "product_focus": params["product_focus"],
              "lora_scale": params["lora_scale"] if params["lora_scale"] is not None else 1.0,
              # a prompt of the user's or the writer's without the scene generation adds to it ("Setting: …")
              "prompt": params["prompt"] if params["prompt_override"] is None else params["prompt_override"],
              "auto_prompt": "" if params["prompt_override"] else params["prompt"],
              "variation": params.get("variation") or 0,  # image N's scene, not image 1's
              "prompt_edited": bool(params["prompt_override"]),
              "seed": params["seed"], "random_seed": False, "aspect": ratio, "width": params["width"],
              "height": params["height"], "steps": params["steps"], "same_scene": bool(params.get("same_scene")),
              # the writer's work: the prompt stays "written" while unedited; scenes are written again for the seed
              "enhanced_prompt": (params["prompt_override"] or "") if params.get("prompt_written") else "",
              "different_scenes": bool(params.get("scenes_written"))}
    what = [f"“{product['name']}”", _label_of("preset", params["preset"], lang),
            text("loaded_seed", lang, seed=params["seed"]), f"{params['width']}x{params['height']}",
            text("loaded_steps", lang, steps=params["steps"])]
    ad = params.get("ad")
    if ad:
        place = ad["placement"]
        fields.update(subcopy=ad["subcopy"], text_style=ad["text_style"], text_position=ad["text_position"],
                      background=ad["background"], place_x=place["x"], place_y=place["y"], place_scale=place["scale"])
        if ad["background"] == "packshot" and ad.get("packshot"):
            fields["packshot"] = ad["packshot"]
        what.append(_label_of("text_style", ad["text_style"], lang))
    return fields, ", ".join(what), bool(ad and ad.get("photo", params.get("strength") is not None))


def _label_of(kind: str, name: str, lang: str) -> str:
    """A style's or copy style's label in `lang` (its id when the data file no longer has it)."""
    from .presets import load_presets
    from .typography import load_text_styles

    try:
        items = load_presets() if kind == "preset" else load_text_styles()
    except AdgenError:
        return name
    return label(items[name], lang) if name in items else name


def status_line(slot, lang: str, width=None, height=None, count=None, place: str = "", public: bool = False
                ) -> tuple[str, str]:
    """(one compact status line, the memory details) — from counters only; never waits for the engine.

    `place`: this tab's own place in the queue ("you are 2nd in line · about 30 s"), shown instead of the job count.
    `public`: a public launch: no host names, process ids or server paths (`monitor.public_view`).
    """
    from .monitor import (
        STATE_KEYS,
        device_text,
        dtype_text,
        model_text,
        public_view,
        render,
        scrub,
        snapshot,
        workers_text,
    )

    engine = slot.peek()
    if engine is None:
        if slot.error is not None:
            detail = scrub(str(slot.error)) if public else str(slot.error)
            return "⚠ " + text("status_failed", lang, detail=detail), ""
        return text("status_starting", lang), ""
    described = public_view(engine.describe()) if public else engine.describe()
    snap = snapshot(engine.device)
    memory = (f"VRAM {snap.used / 1e9:.1f}/{snap.total / 1e9:.0f} GB" if snap.device == "cuda"
              else f"RAM {snap.rss / 2**20:.0f} MB")
    state = {"ready": "●", "loading": "◐", "unloaded": "○", "error": "✕"}.get(described["state"], "○")
    key = STATE_KEYS.get(described["state"], "status_unloaded")
    device = (workers_text(described["workers"], lang) if "workers" in described
              else device_text(described["device"], lang))
    quantized = described.get("quantize") not in (None, "none", "auto")
    dtype = dtype_text(described["dtype"], lang) + (f" · {described['quantize']}" if quantized else "")
    parts = [f"{state} {text(key, lang)}", model_text(described, lang), f"{device} · {dtype}", memory]
    if place:  # this tab waits behind others: its own place, not their jobs
        parts.append(place)
    elif described.get("jobs"):
        parts.append(text("status_jobs", lang, n=described["jobs"]))
    line = " · ".join(parts)
    if described.get("download"):
        line += f"  \n{described['download']}"
    if described["demo"]:
        line += "  \n⚠ " + text("status_demo", lang)
    if described.get("notice"):
        line += f"  \n**{translate_message(described['notice'], lang) or described['notice']}**"
    details = render(snap, described, lang)
    if engine.device.type == "cuda" and width and height:
        try:
            need = engine.forecast(int(width), int(height), int(count or 1), wait=False)
            if need is not None:  # None while the model downloads: the panel never waits for it
                details += "  \n" + text("forecast", lang, width=int(width), height=int(height), gb=f"{need / 1e9:.1f}")
        except AdgenError as exc:  # the panel never fails: it says why
            details += f"  \n⚠ {localize_error(exc, lang)}"
    return line, details


def progress_text(done: int, total: int, images: int, lang: str) -> str:
    """"image 2 of 4 · step 3/8" (one image: "step 3/8") from the steps done of all images, in `lang`."""
    images = max(1, int(images or 1))
    per = max(1, total // images) if total else 1
    index = min(images, done // per + 1)
    step = min(per, done - (index - 1) * per)
    if images == 1:
        return text("progress_step", lang, step=step, steps=per)
    return text("progress_image", lang, i=index, n=images, step=step, steps=per)


def writing_text(lang: str) -> str:
    """The writer's progress in the UI's words: "writing" (Gradio's bar adds the share done, "- 40.0%"; its budget of
    tokens is no unit a person reads)."""
    return text("progress_writing", lang)


def download_name(product: str, seed: int | None, suffix: str = ".png", day: str | None = None) -> str:
    """A download's name after the product and the date (and one image's seed): "제주-감귤-2026-12-03-11.png"."""
    import datetime

    stem = re.sub(r"[^\w-]+", "-", product or "").strip("-")[:40] or "adgen"
    day = day or datetime.date.today().isoformat()
    return f"{stem}-{day}" + (f"-{seed}" if seed is not None else "") + suffix


def ordinal(n: int, lang: str) -> str:
    """1st, 2nd, 3rd, 4th ... (Korean: the number; the sentence says 번째)."""
    if lang_code(lang) == "ko":
        return str(n)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def painted(result, packshot: bool) -> int:
    """How many of `result`'s images (an `engine.Result`) the model painted: none for a packshot (drawn without it),
    none that came from the cache (the final image, or an ad's background step)."""
    if packshot:
        return 0
    return sum(not p.cached and not p.step_cached.get("background", False) for p in result.images)


def place_text(place: int, running_ends: list[float], waiting_before: list[float], seconds_per_image: float | None,
               now: float, lang: str, slots: int = 1) -> str:
    """A waiting tab's line: its place ("2nd in line") and the seconds until its job starts. `slots` jobs run at once
    (Ray workers; else one): each running job frees its slot at its expected end (a job late on its estimate frees
    it now: never a figure that has run past itself), an idle slot is free now, and each job waiting before this
    one takes the first slot free for its images (counted at 1024x1024, 8 steps) x measured seconds per such image.
    This tab's job starts when the next slot is free after them."""
    import heapq

    if seconds_per_image is None:  # nothing measured yet: the place alone
        return text("queue_place_soon", lang, place=ordinal(place, lang))
    free = [max(0.0, end - now) for end in running_ends]
    free += [0.0] * max(0, slots - len(free))
    heapq.heapify(free)
    for images in waiting_before:
        heapq.heappush(free, heapq.heappop(free) + images * seconds_per_image)
    left = free[0]
    if left < 1:
        return text("queue_place_soon", lang, place=ordinal(place, lang))
    return text("queue_place", lang, place=ordinal(place, lang), seconds=round(left))
