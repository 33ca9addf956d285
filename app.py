"""AdGen's Gradio app: a thin shell over `adgen.studio`. `python app.py` serves http://127.0.0.1:7860.

The ad comes first: the form and Generate at the top, the result beside it (under it on a phone),
shown whole; settings fold into "Advanced", memory into one status line with details folded.
Handlers take one typed form (`AdForm`) built from the widgets by name. Nothing loads or launches
at import time, and torch loads in the background after the server is up.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import inspect
import logging
import os
import shutil
import threading
import time
import types
from pathlib import Path

import gradio as gr
from gradio import utils
from PIL import Image

from adgen.cache import evict_files, max_cache_bytes
from adgen.channels import choice_label, load_channels
from adgen.errors import AdgenError, GenerationStopped, InputError
from adgen.form import UI_MAX_COUNT, AdForm
from adgen.i18n import description, label, lang_code, localize_error, text
from adgen.images import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, UPLOAD_TYPES, decode_image, read_image_file
from adgen.limits import max_sessions, queue_max, refusal
from adgen.metadata import read_chunk, read_params
from adgen.page import (
    CAMPAIGN_DEFAULTS,
    EXAMPLES,
    FORM_FIELDS,
    admin_allowed,
    brand_choices,
    brand_colors_of,
    check_mask_fits,
    download_name,
    is_public,
    labels_js,
    lang_of_request,
    mask_editor_value,
    mask_png,
    notes_line,
    page_locales,
    painted,
    photo_thumbnail,
    place_text,
    progress_text,
    request_is_local,
    restored_fields,
    session_of,
    status_line,
    uploaded,
    warnings_note,
    writing_text,
)
from adgen.paths import cache_dir
from adgen.presets import load_presets
from adgen.request import ASPECTS, COPY_LIMITS, MAX_FIELD_CHARS
from adgen.request import random_seed as new_seed
from adgen.secret import installation_secret
from adgen.settings import add_runtime_flags, worker_flags
from adgen.settings import make_engine as make_runtime_engine
from adgen.studio import (
    MAX_HISTORY,
    STEP_VIEWS,
    UI_MAX_VARIANTS,
    EngineSlot,
    Entry,
    Studio,
    campaign_gallery,
    gallery_of,
    info_text,
)
from adgen.typography import POSITIONS, load_text_styles
from adgen.zerogpu import Durations

GPU_DURATIONS = Durations()  # ZeroGPU: seconds per megapixel-step measured on this Space's calls
log = logging.getLogger("adgen.app")
WRITE_COPIES = 3  # copy suggestions per "Write copy"
# On a narrow screen (a phone) the result sits below the form: a job's button brings its result area, where the
# progress shows, into view; on a desktop it is beside the form and nothing jumps.
BRING_INTO_VIEW = """() => { window.adgenShown = document.querySelector('#result img')?.src || '';
  if (window.innerWidth < 768) {
  document.querySelector('%s')?.scrollIntoView({behavior: 'smooth', block: 'start'}); } }"""
# ... and when the job ends without a new result (an error, e.g. an empty product name), its message beside Generate
# comes into view instead: the phone had scrolled to the result, where nothing changed (a scroll to the result still
# under way ends there too).
SHOW_MESSAGE = """() => { if (window.innerWidth >= 768) return;
  const m = document.querySelector('#message'), src = document.querySelector('#result img')?.src || '';
  if (!m || !m.innerText.trim() || src !== window.adgenShown) return;
  m.scrollIntoView({behavior: 'smooth', block: 'center'}); }"""
CSS = """
#result img, #gallery img, #campaign-gallery img { object-fit: contain !important; }
.checker img { background: repeating-conic-gradient(#9a9a9a 0% 25%, #dcdcdc 0% 50%) 50% / 16px 16px; }
#status { font-size: 0.9em; }
#title p { margin: 0; }
/* Korean breaks between words, never mid-word (무작위입니다 stays whole); a long token still wraps */
.gradio-container { word-break: keep-all; overflow-wrap: anywhere; }
#message:empty, #campaign-message:empty, #writer-message:empty, #prompt-note:empty { display: none; }
#message, #campaign-message, #writer-message, #prompt-note {
  border-left: 3px solid var(--border-color-accent, #f97316); padding-left: 8px; }
#place:empty, #campaign-place:empty { display: none; }
#result, #campaign-gallery { scroll-margin-top: 96px; }  /* brought into view with the queue place above them */
/* Gradio's own queue line ("queue: 2/3 | 3.5/1.9s") is English and its estimate runs past itself: #place says it */
.meta-text, .meta-text-center { display: none !important; }
/* its screen-reader announcer, never drawn on the page (it showed as text above the footer) */
.sr-only { position: absolute !important; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden;
  clip: rect(0, 0, 0, 0); white-space: nowrap; border: 0; }
/* whole images everywhere: the steps and the galleries' tiles, captions below them on as many lines as needed */
[id^="step-"] img, #photo-thumb img { object-fit: contain !important; }
#gallery .thumbnail-item, #campaign-gallery .thumbnail-item { aspect-ratio: auto; display: flex;
  flex-direction: column; }
#gallery .thumbnail-item img, #campaign-gallery .thumbnail-item img { height: 160px !important;
  object-fit: contain !important; }
#gallery .fixed-height, #campaign-gallery .fixed-height { min-height: 0 !important; max-height: none !important; }
#gallery .caption-label, #campaign-gallery .caption-label { position: static; white-space: normal;
  max-width: 100%; overflow: visible; opacity: 1; border: 0; text-align: center; }
/* a slider's min and max stay on one line on a phone ("256" and "2048", not "25/6") */
.min_value, .max_value { white-space: nowrap; }
.slider_input_container input[type=number] { min-width: 5.5ch; }
/* the uploaded photo's name stays readable beside its thumbnail on a phone (Gradio's table row gave it 0 px beside
   the file's size): the name on its own line, the size under it */
#photo tr.file { display: flex; flex-wrap: wrap; }
#photo tr.file td.filename { flex: 1 1 100%; min-width: 0; }
@media (max-width: 767px) {
  /* the status line (with the demo model's notice, up to six lines on a phone) leaves Generate on the first screen */
  #status, #status .prose, #status p { font-size: 13px !important; line-height: 1.35 !important; }
  /* Stop floats at the bottom while a job runs, so it is reachable wherever the phone has scrolled */
  #stop, #campaign-stop { position: fixed; right: 12px; bottom: 12px; z-index: 100; width: auto !important;
    min-width: 96px; box-shadow: 0 4px 16px rgba(0, 0, 0, 0.35); }
}
"""


class Handlers:
    """Every event's function; the tests call these directly with an `AdForm`."""

    def __init__(self, studio: Studio, admin: bool, public: bool | None = None):
        self.studio, self.admin = studio, admin
        self.public = not admin if public is None else public  # a public launch: no hosts, pids or paths shown
        self.queue = lambda: None  # the page's Gradio queue (build_demo sets it): a waiting tab's own place
        self.images_of = lambda event: 1  # a waiting Gradio event's images (`wire` sets it from its inputs)
        self.slots = 1  # GPU jobs run at once (Ray workers: build_demo sets it)
        self.files = lambda: ([], set())  # the files Gradio copied or received for the page, and those it keeps
        self.seconds_per_image: float | None = None  # measured per image of 1024x1024 at 8 steps (`work_of`)
        self._running: dict[object, float] = {}  # a running generation's id -> when it should end (measured)
        self.presets = load_presets()
        self.text_styles = load_text_styles()
        try:
            self.channels = load_channels()
        except AdgenError:  # a broken channel file: the campaign says so when it runs
            self.channels = {}

    @contextlib.contextmanager
    def timed(self, images: float):
        """Time a GPU job expected to paint `images` images (counted as 1024x1024 at 8 steps: `work_of`): its expected
        end while it runs. The job then sets `.images` on what this yields to what the model really painted (`painted`:
        none from the cache or for a packshot), and the seconds per such image are measured from that alone, on a
        model loaded before the job began (the first job, which waits for the load, would say hours per image)."""
        start, key = time.monotonic(), object()
        engine = self.studio.slot.peek()
        warm = engine is not None and engine.state == "ready"  # else the job's time includes the model's load
        done = types.SimpleNamespace(images=0.0)
        self._running[key] = start + (self.seconds_per_image or 0.0) * images
        try:
            yield done
        finally:
            self._running.pop(key, None)
        if done.images > 0 and warm:  # a job of cache hits or packshots says nothing of the model's speed
            spent = (time.monotonic() - start) / done.images
            self.seconds_per_image = (spent if self.seconds_per_image is None
                                      else 0.7 * self.seconds_per_image + 0.3 * spent)

    def admission(self, session: str, request=None) -> str | None:
        """The line refusing one more GPU job of `session` (the queue is full, or the session has its share queued or
        running), in the request's language; None when it may queue."""
        waiting, mine = queue_counts(self.queue(), session)
        if _from_mcp(request):  # every MCP user's call comes through Gradio's one loopback client, one session:
            mine = 0  # a per-session share would be all MCP users' together (the queue's limit still holds)
        return refusal(waiting, mine, lang_of_request(request))

    def tidy(self) -> int:
        """Keep Gradio's copies of what the page showed (images, steps, galleries, ZIPs) and the uploads within
        $ADGEN_CACHE_MAX_MB, least recently used first; the bytes freed. Runs after each job, when its copies exist."""
        try:  # the job's end step runs this: it must never fail, or the tab's buttons would not come back
            files, kept = self.files()
            return evict_files(files, max_cache_bytes(), keep=kept, empty_folders=True)
        except Exception:  # noqa: BLE001 - logged; the next job's end tries again
            log.exception("could not keep Gradio's files within the cache cap")
            return 0

    def place(self, session: str, lang: str) -> str:
        """This tab's own place in the GPU queue and an estimate, when it waits ("" when it does not)."""
        ahead = queue_ahead(self.queue(), session)
        if ahead is None:
            return ""
        running = list(self._running.values())
        return place_text(len(running) + len(ahead) + 1, running, [self.images_of(e) for e in ahead],
                          self.seconds_per_image, time.monotonic(), lang, self.slots)

    @property
    def engine(self):
        return self.studio.engine

    # -- generation --------------------------------------------------------------------------
    def generate(self, form: AdForm, history: list | None = None, request: gr.Request | None = None,
                 progress=None, redo: str | None = None) -> dict:
        """Run `form` as this session's job. Returns the result's parts by name.

        A stop or an error never hides earlier results: only "message" (and nothing else) comes back,
        in the UI's language. `redo` ("cutout", "copy_layer"): a redo button's run; when every image it made is
        already in the history (nothing it redoes had changed), the result is shown, the history gets no second
        copy, and the message says what to change.
        """
        lang = lang_of_request(request)
        history = self.studio.checked(history or [])
        report = None
        if progress is not None:
            report = lambda done, total: progress(done / total if total else 0.0,  # noqa: E731
                                                  desc=progress_text(done, total, form.count, lang))
            engine = self.studio.slot.peek()
            if engine is None or engine.state != "ready":
                progress(0, desc=text("progress_loading", lang))
        packshot = form.background == "packshot"
        try:
            try:  # the form's values are checked by the job itself (a bad one is its one-line error)
                each = work_of(1, form.width, form.height, form.steps)
            except (TypeError, ValueError, OverflowError):
                each = 1.0
            with (self.engine.jobs.open(session_of(request), gone=event_gone()) as job,
                  self.timed(0.0 if packshot else each * max(1, int(form.count or 1))) as timer):
                result = self.studio.make(form, job=job, progress=report)
                timer.images = painted(result, packshot) * each
            entries = self.studio.save(result)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one line in the page
            return {"message": failure(exc, lang, kept=bool(history))}
        if form.photo and form.background == "packshot":  # made without the model: no prompt to show
            entries = [dataclasses.replace(e, prompt="") for e in entries]
        notes = [scenes_note(result.written, lang), warnings_note(result, lang)]
        if redo in ("cutout", "copy_layer") and {e.path for e in entries} <= {e.path for e in history}:
            notes.insert(0, "ℹ " + text(f"redo_same_{redo}", lang))
        else:
            history = (entries + history)[:MAX_HISTORY]  # newest request first, its images in seed order
        return {**self.shown(entries[0], lang, form.name), "history": [e.to_json() for e in history],
                "gallery": gallery_of(history, lang), "seed": entries[0].seed, "message": notes_line(*notes)}

    def campaign(self, form: AdForm, channel_ids: list[str] | None, variants: int = 1,
                 request: gr.Request | None = None, progress=None, shown: bool = False) -> dict:
        """The form's ad in each chosen channel x `variants`, as this session's job (one Stop, as for Generate).

        Returns "gallery" (grouped by channel, captioned in the UI's language), "zip" and "message";
        a stop or an error returns only "message", earlier results stay (`shown`: the tab shows some).
        """
        lang = lang_of_request(request)
        report = None
        if progress is not None:
            desc = text("progress_campaign", lang)
            report = lambda done, total: progress(done / total if total else 0.0, desc=desc)  # noqa: E731
            progress(0.0, desc=desc)
        packshot = form.background == "packshot"
        try:  # timed as a generation is (each file about a megapixel), so a tab waiting behind it sees its time
            each = work_of(1, steps=form.steps)
            files = max(1, len(channel_ids or [])) * max(1, int(variants or 1))
        except (TypeError, ValueError, OverflowError):
            each, files = 1.0, 1
        try:
            with (self.engine.jobs.open(session_of(request), gone=event_gone()) as job,
                  self.timed(0.0 if packshot else each * files) as timer):
                result, zip_path = self.studio.campaign(form, channel_ids, variants, job=job, progress=report)
                timer.images = painted(result, packshot) * each
        except Exception as exc:  # noqa: BLE001 - every failure becomes one line in the page
            return {"message": failure(exc, lang, kept=shown)}
        zip_path = named_zip(zip_path, form.name)
        done = text("campaign_done", lang, files=len(result.images), seconds=round(result.seconds, 1))
        note = notes_line(scenes_note(result.written, lang), warnings_note(result, lang))
        return {"gallery": campaign_gallery(result, zip_path, lang), "zip": zip_path,
                "message": f"{done}  \n{note}" if note else done}

    # -- the writer ----------------------------------------------------------------------------
    def write_copy(self, form: AdForm, request: gr.Request | None = None, progress=None) -> dict:
        """`WRITE_COPIES` copy suggestions for the form's product, as this session's job (Stop as for Generate).

        Returns "suggestions" ((shown line, "HEADLINE\\nSUB-LINE") pairs, only when usable ones came back) and
        "message", one line in the UI's language; the copy boxes change only when a suggestion is clicked.
        """
        lang = lang_of_request(request)
        try:
            written = self._write(lambda job, report: self.studio.write(form, "copy", WRITE_COPIES, job, report),
                                  request, progress, lang)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one line in the page
            return {"message": failure(exc, lang, stopped="writer_copy_stopped")}
        if not written.usable:
            return {"message": writer_line("writer_no_copy", written, lang)}
        return {"suggestions": [(f"{headline} · {subline}" if subline else headline, f"{headline}\n{subline}")
                                for headline, subline in written.copies],
                "message": writer_line("writer_copy_done", written, lang, n=len(written.texts))}

    @staticmethod
    def use_copy(choice: str | None) -> tuple:
        """A clicked suggestion ("HEADLINE\\nSUB-LINE") as (copy box, sub-copy box)."""
        if not choice:
            return gr.skip(), gr.skip()
        headline, _, subline = str(choice).partition("\n")
        return headline, subline

    def enhance(self, form: AdForm, request: gr.Request | None = None, progress=None) -> dict:
        """The writer's prompt for the form, as this session's job: "prompt" and "enhanced_prompt" (the same text:
        while the box still holds it, Generate records it as written) when usable, and "message" in the UI's
        language; not usable: only "message", and the template prompt stays in the box."""
        lang = lang_of_request(request)
        try:
            prompt, written = self._write(lambda job, report: self.studio.enhance(form, job, report), request,
                                          progress, lang)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one line in the page
            return {"message": failure(exc, lang, stopped="writer_prompt_stopped")}
        if prompt is None:
            return {"message": writer_line("writer_no_prompt", written, lang)}
        return {"prompt": prompt, "enhanced_prompt": prompt, "message": writer_line("writer_prompt_done", written,
                                                                                     lang)}

    def _write(self, work, request: gr.Request | None, progress, lang: str):
        """`work(job, report)` as this session's job, with the writer's progress (tokens) in the UI's language."""
        report = None
        if progress is not None:
            report = lambda done, total: progress(done / total if total else 0.0,  # noqa: E731
                                                  desc=writing_text(lang))
            engine = self.studio.slot.peek()
            if engine is None or engine.state != "ready":
                progress(0, desc=text("progress_loading", lang))
        with self.engine.jobs.open(session_of(request), gone=event_gone()) as job:
            return work(job, report)

    def shown(self, entry: Entry, lang: str = "en", product: str | None = None) -> dict:
        """What the result area shows for one entry: the download named after `product` (read from the PNG when
        not given) and the date; "redo": whether each step's redo button can act (`redo_ready`)."""
        return {"image": entry.path, "info": info_text(entry, lang), "download": named_download(entry, product),
                **{step: entry.steps.get(step) for step in STEP_VIEWS},
                "redo": redo_ready(*(entry.steps.get(step) for step in STEP_VIEWS))}

    def select(self, history, index: int, request: gr.Request | None = None) -> dict:
        """The history entry behind gallery row `index` (rows match the stored list, even after evictions)."""
        rows = history if isinstance(history, list) else []
        entries = self.studio.checked(rows[index:index + 1]) if 0 <= index < len(rows) else []
        return self.shown(entries[0], lang_of_request(request)) if entries else {}

    def restore_history(self, history, request: gr.Request | None = None) -> dict:
        """After a reload: the browser's history, keeping only entries naming files AdGen made and still has."""
        lang = lang_of_request(request)
        entries = self.studio.checked(history or [])
        return {"history": [e.to_json() for e in entries], "gallery": gallery_of(entries, lang),
                **(self.shown(entries[0], lang) if entries else {})}

    def stop(self, request: gr.Request | None = None) -> int:
        """Stop this session's job (never another tab's) at its next step."""
        engine = self.studio.slot.peek()
        return engine.stop(session_of(request)) if engine else 0

    def stop_ui(self, job: str | None = None, request: gr.Request | None = None, kept: bool = True,
                redo: list[bool] | None = None) -> dict:
        """Stop this tab's job (`job` names it: "generate", "campaign", "write_copy" or "enhance"), and say so:
        a cancelled event's own reply never reaches the page. "message": the stopped line for that job (beside
        its button; "earlier results kept" only when `kept`: the tab shows some), "buttons": every job button
        back (`button_updates(False, redo)`)."""
        self.stop(request)
        key = STOPPED_LINES.get(job, "status_stopped" if kept else "status_stopped_none")
        return {"message": text(key, lang_of_request(request)), "buttons": button_updates(False, redo)}

    def session_closed(self, request: gr.Request | None = None) -> None:
        """The tab closed (or reloaded): its job, if one runs, ends at its next step."""
        engine = self.studio.slot.peek()
        if engine:
            engine.jobs.stop(session_of(request), "stopped because the page was closed")

    # -- form helpers ------------------------------------------------------------------------
    def preview(self, form: AdForm, current: str, last_auto: str) -> tuple[str, str]:
        """The prompt generation will use; a prompt the user edited (differs from the last built one) is kept."""
        try:
            auto = dataclasses.replace(form, name=form.name or "…", prompt="").prompt_used(self.presets)
        except AdgenError:
            return current, last_auto  # Generate reports bad fields
        return (auto if (current or "") in ("", last_auto or "") else current), auto

    @staticmethod
    def counter(name: str, value: str | None, request: gr.Request | None = None):
        """The copy field's character count against its limit, as the field's info line."""
        return gr.update(info=text("char_count", lang_of_request(request), n=len(value or ""), max=COPY_LIMITS[name]))

    def style_info(self, style: str, request: gr.Request | None = None):
        preset = self.presets.get(style)
        if preset is None:
            return "", gr.update(visible=False)
        lang = lang_of_request(request)
        return f"**{label(preset, lang)}**: {description(preset, lang)}", gr.update(
            visible=preset.lora is not None, value=preset.lora.scale if preset.lora else 1.0)

    def choices(self, request: gr.Request | None = None):
        """The style, copy-style, copy-position, aspect, channel and brand choices labelled in the UI's language (the
        channels ticked by default are the page language's: Korean marketplaces on a Korean page)."""
        lang = lang_of_request(request)
        return (gr.update(choices=[(label(p, lang), n) for n, p in self.presets.items()]),
                gr.update(choices=[(label(t, lang), n) for n, t in self.text_styles.items()]),
                gr.update(choices=[(text(f"position_{p}", lang), p) for p in POSITIONS]),
                gr.update(choices=[(a, a) for a in ASPECTS] + [(text("aspect_custom", lang), "custom")]),
                gr.update(choices=[(choice_label(c, lang), i) for i, c in self.channels.items()],
                          value=[i for i in CAMPAIGN_DEFAULTS[lang_code(lang)] if i in self.channels]),
                gr.update(choices=[(text("brand_none", lang), ""), *brand_choices()]))

    def demo_model(self, wait: float = 10) -> bool:
        """Whether the engine runs the demo model (waiting up to `wait` s for an engine still starting)."""
        try:
            engine = self.studio.slot.peek() or self.studio.slot.get(timeout=wait)
        except Exception:  # noqa: BLE001 - not started (or failed): nothing to preselect
            return False
        return bool(engine.source.is_demo)

    def photo_changed(self, photo, chosen: bool = False, request: gr.Request | None = None):
        """A new product photo: the mask editor shows it faintly under the automatic mask, or says to paint one.

        On the demo model (its backgrounds are noise) a packshot background is preselected, and said why,
        unless the user chose a background themselves. Returns (editor value, note, background); what a removed
        photo puts back is `background_after_photo`'s to say (it knows the background before).
        """
        lang = lang_of_request(request)
        if not photo:
            return None, "", gr.skip()
        notes, background = [], gr.skip()
        if not chosen and self.demo_model():
            notes, background = [text("demo_packshot", lang)], "packshot"
        try:
            value, found = mask_editor_value(photo)
        except AdgenError as exc:
            return None, "⚠ " + localize_error(exc, lang), background
        if not found:
            notes.insert(0, text("error_needs_mask", lang))
        return value, "  \n".join(notes), background

    @staticmethod
    def brand_file_changed(kind: str, path: str | None, request: gr.Request | None = None) -> str:
        """A new logo or brand font checked when it arrives, as a photo is (not only at Generate): "" when it is
        usable or removed, else its one line in the UI's language."""
        from adgen.brand import check_font

        if not path:
            return ""
        try:
            if kind == "logo":
                decode_image(read_image_file(path, "logo"), "logo")
            else:
                check_font(path)
        except AdgenError as exc:
            return "⚠ " + localize_error(exc, lang_of_request(request))
        return ""

    @staticmethod
    def brand_colours(name: str | None):
        """A chosen brand kit's colours shown in the two pickers (they apply only with "use brand colours")."""
        from adgen.brand import load_brand

        try:
            colors = load_brand(name).colors if name else ()
        except AdgenError:
            colors = ()  # Generate says what is wrong with it
        return (colors[0] if colors else gr.skip()), (colors[1] if len(colors) > 1 else gr.skip())

    def load_from_image(self, file, request: gr.Request | None = None) -> dict:
        """Every setting a PNG made by AdGen was made with, for the form, and a line saying what came back."""
        lang = lang_of_request(request)
        if not file:
            return {}
        try:
            params = read_params(Path(file).read_bytes())  # every field used below is checked there
        except AdgenError as exc:
            return {"message": "⚠ " + localize_error(exc, lang)}
        except Exception as exc:  # a bug: say what happened instead of Gradio's bare "Error"
            log.exception("load from image failed")
            return {"message": "⚠ " + text("unexpected_error", lang, kind=exc.__class__.__name__, message=str(exc))}
        fields, what, needs_photo = restored_fields(params, lang)
        return {**fields, "message": text("loaded_upload_photo" if needs_photo else "loaded", lang, what=what)}

    # -- status and memory ---------------------------------------------------------------------
    def status(self, width=None, height=None, count=None, request: gr.Request | None = None,
               place: str | None = None) -> tuple[str, str]:
        """(the one status line, the details) — never waits for the engine, a download or a load. `place`: this tab's
        queue line when the caller has it already."""
        lang = lang_of_request(request)
        place = self.place(session_of(request), lang) if place is None else place
        return status_line(self.studio.slot, lang, width, height, count, place=place,
                           public=self.public or not request_is_local(request))  # a proxied visitor: public too

    def is_admin(self, request: gr.Request | None = None) -> bool:
        """Admin controls for this request: a local launch, and a request from this machine that no proxy forwarded
        (behind nginx or a tunnel every visitor reaches 127.0.0.1)."""
        return self.admin and request_is_local(request)

    def set_memory_mode(self, mode: str, request: gr.Request | None = None) -> str:
        from adgen.memory import CPU_REASON  # here: adgen.memory imports torch, which loads after the page is up

        lang = lang_of_request(request)
        engine = self.studio.slot.peek()
        if not self.is_admin(request) or engine is None:
            return text("admin_only", lang)
        try:
            why = engine.set_memory_mode(mode)
        except AdgenError as exc:
            return "⚠ " + localize_error(exc, lang)
        return ("⚠ " if why == CPU_REASON else "") + why  # on a CPU: said, not silently accepted

    def set_quantize(self, value: str, request: gr.Request | None = None) -> str:
        """Memory details on a local launch: switch fp8/int8/none (the model reloads on the next request)."""
        lang = lang_of_request(request)
        engine = self.studio.slot.peek()
        if not self.is_admin(request) or engine is None or not hasattr(engine, "set_quantize"):
            return text("admin_only", lang)
        try:
            scheme = engine.set_quantize(value)
        except AdgenError as exc:
            return "⚠ " + localize_error(exc, lang)
        return text("quantize_set", lang, scheme=scheme)

    def free_memory(self, request: gr.Request | None = None) -> str:
        from adgen.memory import flush_memory

        if self.is_admin(request):
            flush_memory()
        return self.status(request=request)[1]

    def unload(self, request: gr.Request | None = None) -> str:
        engine = self.studio.slot.peek()
        if self.is_admin(request) and engine is not None:
            engine.unload()
        return self.status(request=request)[1]


STOPPED_LINES = {"write_copy": "writer_copy_stopped", "enhance": "writer_prompt_stopped"}  # else status_stopped


def button_updates(busy: bool, redo: list[bool] | None = None) -> list[dict]:
    """The job buttons while a job of the tab is queued or running (`busy`) or not, in the page's order: Generate,
    the three redo buttons, Write copy, Enhance prompt, Generate campaign, then the two Stops. Busy: the Generate
    buttons give way to Stop, the others are not clickable, so a tab runs one job at a time. A redo button is
    clickable only when it can act: `redo` says, per step (cutout, background, copy layer), whether the result
    shown has that step (none shown: all off)."""
    redo = list(redo or [False] * len(STEP_VIEWS))
    starts = [gr.update(visible=not busy, interactive=True)]
    redos = [gr.update(interactive=not busy and bool(can)) for can in redo]
    others = [gr.update(interactive=not busy) for _ in range(2)]
    return [*starts, *redos, *others, gr.update(visible=not busy, interactive=True), gr.update(visible=busy),
            gr.update(visible=busy)]


def redo_can_change(redo: str | None, form: AdForm) -> None:
    """Refuse a redo that would make the same ad again (a copy of the one shown): the cutout redone with no mask
    painted, or a new background for a packshot, whose backdrop is the same for every seed."""
    if redo == "cutout" and form.mask is None:
        raise InputError("mask", "needs a mask: paint the product white in the Product mask editor")
    if redo == "background" and form.background == "packshot":
        raise InputError("background", "a packshot's backdrop is the same for every seed: for another one, choose "
                                       "another packshot style or a painted background")


def redo_ready(*views) -> list[bool]:
    """Per step view (cutout, background, copy layer; file paths, "" or None for none): whether its redo can act.
    It needs the step shown, and a new background needs a background the model painted: a packshot's (a CPU step,
    its PNG says so) is the same for every seed, so New background would only make the ad shown again."""
    ready = [bool(view) for view in views]
    if len(views) == len(STEP_VIEWS) and ready[1]:
        try:
            ready[1] = read_chunk(views[1]).get("step") != "background"
        except (OSError, AdgenError):  # not ours to read: leave the button to the job's own check
            pass
    return ready


def writer_line(key: str, written, lang: str, **values) -> str:
    """One line about what the writer wrote (⚠ when nothing usable), saying so when the demo model wrote it."""
    line = ("" if written.usable else "⚠ ") + text(key, lang, **values)
    return f"{line} {text('writer_demo', lang)}" if written.demo else line


def scenes_note(written: tuple, lang: str) -> str:
    """The result's note: empty unless "Different scenes" got nothing usable, so the style's own scenes were used."""
    failed = next((w for w in written if not w.usable), None)
    return writer_line("writer_no_scenes", failed, lang) if failed is not None else ""


def failure(exc: BaseException, lang: str, stopped: str = "", kept: bool = True) -> str:
    """One line in the UI's language for a job that did not finish (stopped, bad input, or a bug: logged).

    `stopped`: the key of the line for a stopped job that is not a generation (the writer's: no steps to count);
    `kept`: earlier results are shown (a stop says they stay only then).
    """
    if isinstance(exc, GenerationStopped):
        if stopped:
            return text(stopped, lang)
        return f"{text('status_stopped' if kept else 'status_stopped_none', lang)} ({localize_error(exc, lang)})"
    if isinstance(exc, AdgenError):
        return "⚠ " + localize_error(exc, lang)
    log.error("generation failed", exc_info=exc)  # a bug: keep serving, say what happened, log the traceback
    # An OSError's text names a server path (the page is public): its reason only, the log has the rest; any other
    # text without server paths, addresses or process ids
    from adgen.monitor import scrub

    said = exc.strerror if isinstance(exc, OSError) and exc.strerror else scrub(str(exc))
    return "⚠ " + text("unexpected_error", lang, kind=exc.__class__.__name__, message=said)


def example_values(index: int, lang: str) -> tuple:
    """Example `index` in the page's language for the example fields (name, copy, features, then the other product
    fields cleared) and the example state."""
    example = EXAMPLES[lang_code(lang)][index]
    return (*example, "", "", "", "", "", list(example))


def forget_example(name: str, copy: str, features: str, example: list | None):
    """Another product name typed after an example: the example's copy and features go (edited ones stay)."""
    if not example or (name or "").strip() == example[0]:
        return gr.skip(), gr.skip(), gr.skip()
    return ("" if copy == example[1] else gr.skip()), ("" if features == example[2] else gr.skip()), None


def background_after_photo(has_photo: bool, chosen: bool, current: str, before: str | None, switched):
    """(background, background to restore): a photo that switched the background remembers the one before; removing
    the photo puts that one back, unless the user picked a background since."""
    if has_photo:
        if isinstance(switched, str) and switched != current:
            return switched, current
        return switched, before
    if before is not None and not chosen:
        return before, None
    return gr.skip(), None


def size_changed(width, height, ratio: str, lang: str):
    """(aspect, width, height, note) for a size typed or slid: "custom" unless it is the aspect's own size; a side
    that is no multiple of 16 is rounded, and said (the API refuses it instead)."""
    try:
        w, h = int(width), int(height)
    except (TypeError, ValueError):
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    rw, rh = (max(256, min(2048, (v + 8) // 16 * 16)) for v in (w, h))  # to the nearest, halves up
    aspect = gr.skip() if ASPECTS.get(ratio) == (rw, rh) else "custom"
    if (rw, rh) == (w, h):
        return aspect, gr.skip(), gr.skip(), gr.skip()
    return aspect, rw, rh, text("size_rounded", lang, width=rw, height=rh)


def named_zip(zip_path: str, product: str) -> str:
    """The campaign's ZIP under a name saying what it is: "<product>-<date>.zip" beside `campaign.zip`."""
    named = Path(zip_path).with_name(download_name(product or "campaign", None, ".zip"))
    if not named.exists():
        try:
            os.link(zip_path, named)
        except OSError:
            shutil.copyfile(zip_path, named)
    return str(named)


DOWNLOADS_KEPT = 64  # named download links kept (hard links: no extra space while the image itself is kept)


def named_download(entry: Entry, product: str | None = None) -> str:
    """The entry's PNG under a name saying what it is, "<product>-<date>-<seed>.png" (a link in
    outputs/downloads/<the entry's own file name>/); the PNG itself when no link can be made. Each image has its
    own folder: two images with one name (another style, same product, seed and day) never replace each other's
    link, so one session's download is never swapped for another's before Gradio copies it."""
    path = Path(entry.path)
    if product is None:
        try:
            product = read_params(path.read_bytes())["product"]["name"]
        except (OSError, AdgenError, KeyError, TypeError):
            product = ""
    downloads = path.parent / "downloads"
    folder = downloads / path.stem
    named = folder / download_name(product, entry.seed)
    for _ in range(3):  # again when another tab's pruning took this folder just after it was made
        try:
            folder.mkdir(parents=True, exist_ok=True)
            os.utime(folder)  # the newest asked for is the last pruned
            try:
                os.link(path, named)
            except FileExistsError:  # made before (or by another session just now): the same image by construction
                if not named.samefile(path):
                    named.unlink()
                    os.link(path, named)
        except OSError:  # pruned meanwhile, or no hard links here (the PNG itself, after the tries)
            continue
        prune_downloads(downloads)
        if named.exists():
            return str(named)
    return str(path)


def prune_downloads(downloads: Path) -> None:
    """Keep the `DOWNLOADS_KEPT` newest download folders. Another tab may prune at the same time: what it removed
    first is skipped, and a failure here never costs a download its name."""

    def age(entry: Path) -> float:
        try:
            return entry.stat().st_mtime
        except OSError:  # removed by another tab meanwhile
            return 0.0

    try:
        entries = list(downloads.iterdir())
    except OSError:
        return
    for stale in sorted(entries, key=age)[:-DOWNLOADS_KEPT]:
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                stale.unlink()


def _from_mcp(request) -> bool:
    """Whether a queue request is Gradio's MCP server calling its own app (it marks its client so)."""
    headers = getattr(request, "headers", None)
    return headers is not None and headers.get("x-gradio-user") == "mcp"


def queue_counts(queue, session: str) -> tuple[int, int]:
    """(GPU jobs waiting in the queue, `session`'s GPU jobs waiting or running)."""
    events = getattr(queue, "event_queue_per_concurrency_id", {}).get("gpu")
    waiting = list(getattr(events, "queue", []))
    running = [e for batch in list(getattr(queue, "active_jobs", [])) for e in batch or []
               if getattr(e.fn, "concurrency_id", None) == "gpu"]
    return len(waiting), sum(e.session_hash == session for e in waiting + running)


def gradio_files(demo: gr.Blocks) -> tuple[list[str], set[str]]:
    """(the files Gradio copied or received for `demo` (outputs shown, uploads), those it keeps for its own
    components). Files it tracks no longer on disk are forgotten."""
    files: list[str] = []
    for tracked in list(getattr(demo, "temp_file_sets", [])):
        for _ in range(3):  # a set another thread adds to meanwhile: read it again
            try:
                listed = list(tracked)
                break
            except RuntimeError:
                listed = []
        gone = {f for f in listed if not os.path.exists(f)}
        tracked.difference_update(gone)
        files += [f for f in listed if f not in gone]
    kept = {str(f) for block in list(getattr(demo, "blocks", {}).values()) for f in getattr(block, "keep_in_cache", ())}
    return files, kept


def queue_ahead(queue, session: str) -> list | None:
    """The GPU queue's waiting events before `session`'s ([]: next); None when it is not waiting."""
    events = getattr(queue, "event_queue_per_concurrency_id", {}).get("gpu")
    ahead = []
    for event in list(getattr(events, "queue", [])):
        if event.session_hash == session:
            return ahead
        ahead.append(event)
    return None


def work_of(images, width=1024, height=1024, steps=8) -> float:
    """`images` images of `width` x `height` at `steps` steps, counted as images of 1024x1024 at 8 steps (the time a
    generation takes grows with its pixels and steps, so one measured rate serves every size)."""
    return max(1, int(images)) * int(width) * int(height) / 1024**2 * max(1, int(steps)) / 8


def images_in(event, count, channels, variants, width=None, height=None, steps=None) -> float:
    """The images a waiting Gradio event asks for, from its inputs (`work_of`: counted at 1024x1024, 8 steps): a
    generation's `count` at its size and steps, a campaign's channels x `variants` (each about a megapixel); 1 for
    anything else (a writer's job)."""
    inputs = list(getattr(getattr(event, "fn", None), "inputs", None) or [])
    data = getattr(getattr(event, "data", None), "data", None) or []
    values = {id(block): value for block, value in zip(inputs, data, strict=False)}
    steps_of = values.get(id(steps)) or 8
    try:
        if id(channels) in values:
            return work_of(max(1, len(values[id(channels)] or [])) * max(1, int(values.get(id(variants)) or 1)),
                           steps=steps_of)
        return work_of(values.get(id(count)) or 1, values.get(id(width)) or 1024, values.get(id(height)) or 1024,
                       steps_of)
    except (TypeError, ValueError):
        return 1.0


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


class Page(gr.Blocks):
    """`gr.Blocks` whose typed API endpoints (`gr.api`) take a short positional array, as a raw REST call
    (`{"data": ["Aurora earbuds"]}`) or the JavaScript client sends it: the values left out are the function's
    defaults, and a required one left out is empty text, so the function names it ("product name: must not be
    empty", in the caller's language). Gradio itself refuses a short array with a bare `{"error": null}`."""

    # The MCP server's request bodies: the MCP library's default (4 MiB) answers a phone photo sent as a data: URL
    # (a 3.7 MB JPEG is ~5 MB of base64) with HTTP 413, which ends the client's session. Twice the upload limit
    # holds a 20 MB photo's base64 (26.7 MB); a photo between 20 MB and this gets the tool error naming the limit.
    MCP_MAX_BODY = 2 * MAX_IMAGE_BYTES

    @property
    def mcp_server_obj(self):
        return self.__dict__.get("_mcp_server_obj")

    @mcp_server_obj.setter
    def mcp_server_obj(self, server) -> None:
        """Gradio makes its MCP server at launch and sets it here: its transports get AdGen's body limit."""
        if server is not None:
            import functools

            from mcp.server.transport_security import RequestBodyLimitMiddleware

            manager = server.manager  # streamable HTTP (/gradio_api/mcp/): its body check wraps the handler
            manager.max_request_body_size = self.MCP_MAX_BODY
            manager.asgi_app = RequestBodyLimitMiddleware(manager.asgi_app.app, self.MCP_MAX_BODY)
            # the older SSE transport (/gradio_api/mcp/sse) is made when mounted, after this
            server.SseServerTransport = functools.partial(server.SseServerTransport,
                                                          max_request_body_size=self.MCP_MAX_BODY)
        self.__dict__["_mcp_server_obj"] = server

    def validate_inputs(self, block_fn, inputs: list) -> None:
        from gradio.components.api_component import Api

        if len(inputs) < len(block_fn.inputs) and all(isinstance(b, Api) for b in block_fn.inputs):
            params = [p for p in inspect.signature(block_fn.fn).parameters.values() if p.name != "request"]
            inputs.extend(("" if p.annotation in (str, "str") else None) if p.default is inspect.Parameter.empty
                          else p.default for p in params[len(inputs):len(block_fn.inputs)])
        super().validate_inputs(block_fn, inputs)


# Gradio's own clean-up (`delete_cache`): every hour, its copies older than a day go (all of them at shutdown). The
# size cap (`Handlers.tidy`, after each job) bounds them between those runs.
DELETE_CACHE = (3600, 86400)


def launch(demo: gr.Blocks, **kwargs):
    """`demo.queue().launch(...)` with the page's CSS and its Korean/English strings, and the server's limits: GPU jobs
    waiting and per session (`adgen.limits`, refused in the caller's language), sessions held, Gradio's files."""
    if getattr(demo, "delete_cache", None) is None:
        demo.delete_cache = DELETE_CACHE
    # Gradio's own limit counts every queued event (a photo's mask preview too) and answers in English: a backstop
    # above AdGen's GPU limit, which `admit` applies first in the caller's language.
    demo.queue(default_concurrency_limit=1, max_size=2 * queue_max())
    check_gradio(demo)
    admit(demo)
    kwargs.setdefault("state_session_capacity", max_sessions())
    return demo.launch(css=CSS, js=labels_js(), i18n=demo.i18n, **kwargs)


# Gradio's insides the limits, the queue place and the disk cap read (`admit`, `queue_counts`, `queue_ahead`,
# `gradio_files`): each reads them leniently, so a Gradio without one would fail open, silently. Checked at launch.
GRADIO_INSIDES = (("queue", "push", ("body", "request", "username")), ("queue", "event_queue_per_concurrency_id", ()),
                  ("queue", "active_jobs", ()), ("demo", "temp_file_sets", ()))


def check_gradio(demo: gr.Blocks) -> None:
    """One line, before the server starts, when this Gradio lacks what AdGen's limits and disk cap rely on."""
    owners = {"queue": demo._queue, "demo": demo}
    for owner, name, params in GRADIO_INSIDES:
        found = getattr(owners[owner], name, None)
        if found is None or (params and tuple(inspect.signature(found).parameters)[:len(params)] != params):
            raise SystemExit(f"error: gradio {gr.__version__} has no {owner}.{name}{params or ''} as AdGen's queue "
                             f"limits and disk cap use it: pip install -r requirements.txt (the Gradio AdGen is "
                             f"tested with)")


def admit(demo: gr.Blocks) -> None:
    """Refuse a GPU job before Gradio queues it when the queue is full or its session has its share (`Handlers.
    admission`): one line in the caller's language, as HTTP 400's detail, which the page shows (Gradio's own "queue
    full" is an English 503 the page replaces with "This application is currently busy")."""
    queue, handlers = demo._queue, getattr(demo, "handlers", None)
    push = queue.push
    if handlers is None or getattr(push, "admits", False):
        return

    async def admitted(body, request, username):
        fn = demo.fns.get(body.fn_index) if body.fn_index is not None else None
        if fn is not None and fn.concurrency_id == "gpu":
            said = handlers.admission(body.session_hash or "", request)
            if said is not None:
                return False, said, "error"
        return await push(body, request, username)

    admitted.admits = True
    queue.push = admitted


def on_gpu(fn, names: dict | None = None):
    """`@spaces.GPU` on Hugging Face ZeroGPU Spaces, for as long as the request needs (`adgen.zerogpu`); unchanged
    everywhere else. `names`: {component: field name} for a handler that takes its inputs as one dict."""
    try:
        import spaces
    except ImportError:
        return fn
    from adgen.zerogpu import named_values, request_sizes

    def sizes(args, kwargs):
        return request_sizes(named_values(fn, args, kwargs, names))

    def duration(*args, **kwargs) -> int:
        return GPU_DURATIONS.seconds(*sizes(args, kwargs))

    @functools.wraps(fn)
    def measured(*args, **kwargs):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        GPU_DURATIONS.observe(*sizes(args, kwargs), time.perf_counter() - start)
        return result

    return spaces.GPU(duration=duration)(measured)


def api_functions(h: Handlers):
    """The typed, documented endpoints for programs (and MCP tools): one per job."""

    def generate(name: str, category: str = "", features: str = "", audience: str = "", scene: str = "",
                 colors: str = "", copy: str = "", subcopy: str = "", photo: gr.FileData = None,  # noqa: RUF013
                 # (typed FileData, not `| None`: only then does Gradio's MCP server turn a client's URL into a file)
                 style: str = "photo", lora_scale: float | None = None, product_focus: bool = True, prompt: str = "",
                 seed: int | None = None, width: int = 1024, height: int = 1024, steps: int = 8, count: int = 1,
                 text_style: str = "extrude_3d", text_position: str = "auto", background: str = "inpaint",
                 request: gr.Request = None) -> dict:  # noqa: RUF013 - Gradio fills it
        """Make advertising images of a product with Z-Image-Turbo: a plain image, or with a product photo or
        ad copy, the three-step ad (background around the product, stylized copy, composite).

        Args:
            name: the product's name (Korean or English); the only required input
            category: the product's category, e.g. "drink"
            features: key features, comma-separated
            audience: target audience
            scene: scene or mood
            colors: brand colours
            copy: ad copy (headline) drawn on the image; makes it an ad
            subcopy: a smaller second line of copy
            photo: a product photo (PNG/JPEG/WebP/HEIC/AVIF; transparent, on a plain backdrop, or any backdrop with
                the segmentation model installed); makes it an ad
            style: a style preset name: photo, anime or semi_realistic
            lora_scale: the style LoRA's strength 0..2 (default: the style's)
            product_focus: keep the product the hero, no people or faces
            prompt: a full prompt replacing the built one ("" builds it)
            seed: 0..4294967295; none for a random one (reported)
            width: 256..2048, a multiple of 16
            height: 256..2048, a multiple of 16
            steps: denoising steps 1..50 (Z-Image-Turbo: 8)
            count: images 1..4; image i uses seed + i
            text_style: copy style: extrude_3d, gold, neon or outline
            text_position: copy position: auto, top, center or bottom
            background: with a photo: inpaint (repaint around it), t2i (new scene, composite) or packshot (no model)
        Returns:
            a summary with images (paths of the PNGs), seeds, cached, steps (of an ad), prompt, model, demo, seconds,
            warnings (e.g. the photo is enlarged too much for the size asked)
        """
        lang = lang_of_request(request)
        h.tidy()  # the uploads of API calls within the cap too
        try:
            photo_path = _path_of(photo)
        except AdgenError as exc:
            raise gr.Error(localize_error(exc, lang)) from None
        form = AdForm(name=name, category=category, features=features, audience=audience, scene=scene,
                      colors=colors, copy=copy, subcopy=subcopy, photo=photo_path, style=style,
                      lora_scale=lora_scale, product_focus=product_focus, prompt=prompt, seed=seed, width=width,
                      height=height, steps=steps, count=count, text_style=text_style, text_position=text_position,
                      background=background)
        try:
            with h.engine.jobs.open(session_of(request), gone=event_gone()) as job:
                result = h.studio.make(form, job=job)
            entries = h.studio.save(result)
        except AdgenError as exc:
            raise gr.Error(localize_error(exc, lang)) from None
        return {"images": [e.path for e in entries], "seeds": [e.seed for e in entries],
                "cached": [e.cached for e in entries], "steps": [e.steps for e in entries], "prompt": result.prompt,
                "model": result.model, "demo": result.demo, "seconds": round(result.seconds, 3),
                "warnings": list(result.warnings)}

    def write(name: str, category: str = "", features: str = "", audience: str = "", scene: str = "",
              colors: str = "", copy: str = "", style: str = "photo", product_focus: bool = True, kind: str = "copy",
              n: int = 3, seed: int | None = None, request: gr.Request = None) -> dict:  # noqa: RUF013 - Gradio fills it
        """Write for a product with the loaded model's own text encoder (no extra memory): ad-copy suggestions in
        the details' language, one detailed scene prompt for Z-Image-Turbo, or scene variations. Nothing invented:
        a number, price or certification not in the product details is removed. With the demo model the text is
        random, so its answers come back not usable (usable: false).

        Args:
            name: the product's name (Korean or English); the only required input
            category: the product's category, e.g. "drink"
            features: key features, comma-separated
            audience: target audience
            scene: scene or mood
            colors: brand colours
            copy: the current ad copy (a hint for the writer)
            style: a style preset name: photo, anime or semi_realistic (the prompt and scenes follow it)
            product_focus: keep the product the hero, no people or faces
            kind: copy (headline + sub-line suggestions), prompt (one English scene prompt) or variations (scenes)
            n: how many texts 1..8 (copy suggestions or scenes; a prompt is always one)
            seed: 0..4294967295; none for a random one (reported); the same inputs and seed write the same text
        Returns:
            job, texts (copy: "HEADLINE\\nSUB-LINE"), usable, reason (when not usable), model, demo, seed, seconds
        """
        lang = lang_of_request(request)
        form = AdForm(name=name, category=category, features=features, audience=audience, scene=scene,
                      colors=colors, copy=copy, style=style, product_focus=product_focus, seed=seed)
        try:
            with h.engine.jobs.open(session_of(request), gone=event_gone()) as job:
                written = h.studio.write(form, kind, n, job=job)
        except AdgenError as exc:
            raise gr.Error(localize_error(exc, lang)) from None
        return written.to_json()

    return [generate, write]


def _path_of(photo) -> str | None:
    """The uploaded photo's path: only a file Gradio received with this request, never a path on the server.

    Gradio passes a plain string (or a dict naming a path) through unchecked; reading it would let
    any caller turn a server file into "the product" and learn which paths exist.
    """
    if photo is None or photo == "":
        return None
    path = photo.get("path") if isinstance(photo, dict) else getattr(photo, "path", None)
    if path and utils.is_in_or_equal(path, utils.get_upload_folder()) and not Path(path).is_symlink():
        return str(path)
    raise InputError("product photo", "must be a file uploaded with the request (gradio_client: "
                                      "photo=handle_file(PATH)); a path on the server is never read")


@dataclasses.dataclass
class FormPanel:
    """The form column: the ad's fields by `AdForm` name (`w`) and the controls around them."""

    w: dict
    go: gr.Button
    stop: gr.Button
    message: gr.Markdown
    write_copy: gr.Button
    suggestions: gr.Radio
    writer_message: gr.Markdown
    brand_main: gr.ColorPicker
    brand_second: gr.ColorPicker
    use_colors: gr.Checkbox
    style_text: gr.Markdown
    enhance: gr.Button
    prompt_note: gr.Markdown
    random_seed: gr.Checkbox
    reuse: gr.Button
    aspect: gr.Radio
    png: gr.UploadButton
    examples: list  # a button per example (EXAMPLES, in the page's language)
    thumb: gr.Image  # the product photo as a picture


@dataclasses.dataclass
class ResultPanel:
    """The ad tab: the result, its info and download, its kept steps with their redo buttons, the history."""

    image: gr.Image
    info: gr.Markdown
    download: gr.File
    views: dict  # step name -> its image
    redo: dict  # step name -> its redo button
    gallery: gr.Gallery
    place: gr.Markdown  # this tab's place in the GPU queue while it waits


@dataclasses.dataclass
class CampaignPanel:
    """The campaign tab: channels x variants, its own Generate and Stop, the gallery and the ZIP."""

    channels: gr.CheckboxGroup
    variants: gr.Slider
    go: gr.Button
    stop: gr.Button
    message: gr.Markdown
    gallery: gr.Gallery
    zip: gr.DownloadButton
    place: gr.Markdown  # this tab's place in the GPU queue while it waits


@dataclasses.dataclass
class MemoryPanel:
    """The folded memory details, and (admin only, else None) the memory-mode and unload controls."""

    details: gr.Markdown
    mode: gr.Radio | None = None
    quantize: gr.Radio | None = None
    title: gr.Markdown | None = None
    free: gr.Button | None = None
    unload: gr.Button | None = None
    note: gr.Markdown | None = None


@dataclasses.dataclass
class PageState:
    """What the page keeps per tab (and the history, per browser)."""

    history: gr.BrowserState
    auto_prompt: gr.State
    last_seed: gr.State
    enhanced: gr.State  # the prompt the writer last put in the box: Generate records it as written
    edited: gr.State  # the user typed in the prompt box: keep their prompt, else it follows the form
    background_chosen: gr.State  # the user picked a background: a new photo never changes it
    background_before: gr.State  # the background before a photo switched it to a packshot: back when it goes
    example: gr.State  # the example row last filled in (name, copy, features), until another name is typed
    variation: gr.State  # the scene of image 1: "Load from image" restores image N's; a random seed resets it


def form_panel(h: Handlers, i18n: gr.I18n) -> FormPanel:
    """The form column: the few fields an ad needs and Generate first, the rest folded."""
    w: dict = {}  # the form's widgets by AdForm field name
    w["name"] = gr.Textbox(label=i18n("product_name"), placeholder=i18n("product_name_placeholder"),
                           max_length=MAX_FIELD_CHARS, elem_id="name")
    w["copy"] = gr.Textbox(label=i18n("ad_copy"), max_length=COPY_LIMITS["copy"], elem_id="copy")
    w["subcopy"] = gr.Textbox(label=i18n("subcopy"), max_length=COPY_LIMITS["subcopy"], elem_id="subcopy")
    w["style"] = gr.Radio([(p.label, n) for n, p in h.presets.items()], value=next(iter(h.presets)),
                          label=i18n("style"), elem_id="style")
    with gr.Row(equal_height=True):  # the photo as a picture, beside its file (HEIC too: the server decodes it)
        w["photo"] = gr.File(label=i18n("product_photo_optional"), file_types=UPLOAD_TYPES, type="filepath",
                             height=120, elem_id="photo", scale=3)
        thumb = gr.Image(label=i18n("product_photo"), height=120, interactive=False, visible=False, scale=1,
                         min_width=90, elem_id="photo-thumb", buttons=[])
    with gr.Row():
        go = gr.Button(i18n("generate"), variant="primary", elem_id="generate", scale=3)
        stop = gr.Button(i18n("stop"), variant="stop", elem_id="stop", visible=False, scale=1)
    message = gr.Markdown("", elem_id="message")
    # Under Generate, not under the copy boxes: Generate stays on a phone's first screen.
    write_copy = gr.Button(i18n("write_copy"), size="sm", elem_id="write-copy")
    suggestions = gr.Radio([], label=i18n("copy_suggestions"), visible=False, elem_id="copy-suggestions")
    writer_message = gr.Markdown("", elem_id="writer-message")
    with gr.Accordion(i18n("more_product"), open=False):
        w["category"] = gr.Textbox(label=i18n("category"), max_length=MAX_FIELD_CHARS)
        w["features"] = gr.Textbox(label=i18n("key_features"), placeholder=i18n("key_features_placeholder"),
                                   max_length=MAX_FIELD_CHARS)
        w["audience"] = gr.Textbox(label=i18n("target_audience"), max_length=MAX_FIELD_CHARS)
        w["scene"] = gr.Textbox(label=i18n("scene_mood"), max_length=MAX_FIELD_CHARS)
        w["colors"] = gr.Textbox(label=i18n("brand_colours"), max_length=MAX_FIELD_CHARS)
    with gr.Accordion(i18n("brand_kit"), open=False, elem_id="brand-kit"):
        w["brand"] = gr.Dropdown([("—", ""), *brand_choices()], value="", label=i18n("brand_preset"),
                                 elem_id="brand")
        w["logo"] = gr.File(label=i18n("brand_logo"), file_types=UPLOAD_TYPES, type="filepath", height=100,
                            elem_id="logo")
        with gr.Row():
            brand_main = gr.ColorPicker("#000000", label=i18n("brand_main_colour"), elem_id="brand-main")
            brand_second = gr.ColorPicker("#FFFFFF", label=i18n("brand_second_colour"), elem_id="brand-second")
        use_colors = gr.Checkbox(False, label=i18n("use_brand_colours"), info=i18n("use_brand_colours_info"),
                                 elem_id="use-brand-colours")
        w["font"] = gr.File(label=i18n("brand_font"), file_types=[".ttf", ".otf"], type="filepath", height=100,
                            elem_id="font")
    with gr.Accordion(i18n("advanced"), open=False, elem_id="advanced"), gr.Tabs():
        with gr.Tab(i18n("tab_style")):
            style_text = gr.Markdown()
            w["lora_scale"] = gr.Slider(0, 2, value=1.0, step=0.05, label=i18n("lora_scale"), visible=False)
            w["product_focus"] = gr.Checkbox(True, label=i18n("product_focus"))
            w["prompt"] = gr.Textbox(label=i18n("prompt"), info=i18n("prompt_info"), lines=5, elem_id="prompt")
            enhance = gr.Button(i18n("enhance_prompt"), size="sm", elem_id="enhance-prompt")
            prompt_note = gr.Markdown("", elem_id="prompt-note")
        with gr.Tab(i18n("tab_seed_size")):
            with gr.Row():
                # blank and locked while random; no minimum/maximum: the form's own check names the field in the
                # page's language (Gradio's refuses in English)
                w["seed"] = gr.Number(None, label=i18n("seed"), precision=0, interactive=False, elem_id="seed")
                random_seed = gr.Checkbox(True, label=i18n("random_seed"), elem_id="random-seed")
                reuse = gr.Button(i18n("reuse_seed"), size="sm")
            aspect = gr.Radio([*ASPECTS, "custom"], value="1:1", label=i18n("aspect_ratio"), elem_id="aspect")
            w["width"] = gr.Slider(256, 2048, value=1024, step=16, label=i18n("width"), elem_id="width")
            w["height"] = gr.Slider(256, 2048, value=1024, step=16, label=i18n("height"), elem_id="height")
            w["steps"] = gr.Slider(1, 50, value=8, step=1, label=i18n("steps"), elem_id="steps")
            w["count"] = gr.Slider(1, UI_MAX_COUNT, value=1, step=1, label=i18n("images"), elem_id="count")
            with gr.Row():
                w["same_scene"] = gr.Checkbox(False, label=i18n("same_scene"), info=i18n("same_scene_info"),
                                              elem_id="same-scene")
                w["different_scenes"] = gr.Checkbox(False, label=i18n("different_scenes"),
                                                    info=i18n("different_scenes_info"), elem_id="different-scenes")
        with gr.Tab(i18n("tab_ad_layout")):
            w["text_style"] = gr.Radio([(t.label, n) for n, t in h.text_styles.items()],
                                       value=next(iter(h.text_styles)), label=i18n("copy_style"))
            w["text_position"] = gr.Radio(list(POSITIONS), value="auto", label=i18n("copy_position"))
            w["background"] = gr.Radio([(i18n("background_inpaint"), "inpaint"), (i18n("background_t2i"), "t2i"),
                                        (i18n("background_packshot"), "packshot")], value="inpaint",
                                       label=i18n("background"), elem_id="background")
            w["packshot"] = gr.Radio([(i18n("packshot_gradient"), "gradient"), (i18n("packshot_color"), "color"),
                                      (i18n("packshot_white"), "white")], value="gradient",
                                     label=i18n("packshot_style"), visible=False, elem_id="packshot")
            with gr.Row():  # each wide enough for its label beside its number box, else it wraps to the next line
                w["place_x"] = gr.Slider(0, 1, value=0.5, step=0.01, label=i18n("product_x"), min_width=220,
                                         elem_id="place-x")
                w["place_y"] = gr.Slider(0, 1, value=0.6, step=0.01, label=i18n("product_y"), min_width=220)
                w["place_scale"] = gr.Slider(0.05, 1, value=0.45, step=0.01, label=i18n("product_height"),
                                             min_width=220)
            w["mask"] = gr.ImageEditor(label=i18n("product_mask"), type="pil", image_mode="RGBA",
                                       brush=gr.Brush(colors=["#FFFFFF"], default_size=24),
                                       eraser=gr.Eraser(default_size=24), sources=[], layers=False,
                                       elem_id="mask-editor")
    with gr.Row(elem_id="examples"):  # one tap fills name, copy and features (no wide table to scroll)
        gr.Markdown(i18n("examples"))
        examples = [gr.Button(i18n(f"example_{n}"), size="sm", min_width=60) for n in range(1, 4)]
    # Load from image: one tap opens the file picker (two taps in all on a phone, not folded in Advanced)
    png = gr.UploadButton(i18n("load_from_image"), file_types=[".png", ".jpg", ".jpeg"], size="sm",
                          elem_id="load-png")
    return FormPanel(w=w, go=go, stop=stop, message=message, write_copy=write_copy, suggestions=suggestions,
                     writer_message=writer_message, brand_main=brand_main, brand_second=brand_second,
                     use_colors=use_colors, style_text=style_text, enhance=enhance, prompt_note=prompt_note,
                     random_seed=random_seed, reuse=reuse, aspect=aspect, png=png, examples=examples, thumb=thumb)


# What the page's results offer in their corner: no "share" (Gradio's share works only on a Space, and elsewhere it
# says so in English), and never an upload: a result is read-only even where an event reads it back.
VIEW_BUTTONS = ["download", "fullscreen"]


def result_panel(i18n: gr.I18n) -> ResultPanel:
    """The ad tab: the result shown whole, its info, its kept steps (each redoable alone), the history."""
    place = gr.Markdown("", elem_id="place")  # this tab's place in the queue, where its result will show
    image = gr.Image(label=i18n("result"), format="png", interactive=False, height=520, elem_id="result",
                     buttons=VIEW_BUTTONS)
    info = gr.Markdown(elem_id="result-info")
    download = gr.File(label=i18n("download_png"), elem_id="download")
    views, redo = {}, {}
    with gr.Row():  # the ad's kept steps, each redoable alone
        for step, key, redo_key in (("cutout", "step_cutout", "redo_cutout"),
                                    ("background", "step_background", "new_background"),
                                    ("copy_layer", "step_copy_layer", "redo_copy")):
            with gr.Column(min_width=110):
                views[step] = gr.Image(label=i18n(key), format="png", interactive=False, height=150, type="filepath",
                                       buttons=VIEW_BUTTONS, elem_id=f"step-{step.split('_')[0]}",
                                       elem_classes=["checker"] if step == "copy_layer" else None)
                redo[step] = gr.Button(i18n(redo_key), size="sm", elem_id=redo_key.replace("_", "-"),
                                       interactive=False)  # clickable once a result with this step shows
    gallery = gr.Gallery(label=i18n("results"), format="png", columns=4, height="auto", object_fit="contain",
                         elem_id="gallery", allow_preview=False, interactive=False,
                         buttons=[*VIEW_BUTTONS, "download_all"])
    return ResultPanel(image=image, info=info, download=download, views=views, redo=redo, gallery=gallery,
                       place=place)


def campaign_panel(h: Handlers, i18n: gr.I18n) -> CampaignPanel:
    """The campaign tab: the form's ad in each chosen channel x variants."""
    gr.Markdown(i18n("campaign_intro"))
    channels = gr.CheckboxGroup([(choice_label(c, "en"), i) for i, c in h.channels.items()],  # grouped by platform
                                value=[i for i in CAMPAIGN_DEFAULTS["en"] if i in h.channels],
                                label=i18n("campaign_channels"), elem_id="campaign-channels")
    variants = gr.Slider(1, UI_MAX_VARIANTS, value=1, step=1, label=i18n("campaign_variants"),
                         info=i18n("campaign_variants_info"), elem_id="campaign-variants")
    with gr.Row():
        go = gr.Button(i18n("campaign_generate"), variant="primary", elem_id="campaign-generate", scale=3)
        stop = gr.Button(i18n("stop"), variant="stop", elem_id="campaign-stop", visible=False, scale=1)
    message = gr.Markdown("", elem_id="campaign-message")
    place = gr.Markdown("", elem_id="campaign-place")
    # the ZIP right with the campaign's result: under its message, above the gallery
    zip_button = gr.DownloadButton(i18n("download_zip"), visible=False, elem_id="campaign-zip", variant="primary")
    gallery = gr.Gallery(label=i18n("campaign_results"), format="png", columns=3, height="auto",
                         object_fit="contain", elem_id="campaign-gallery", interactive=False, buttons=VIEW_BUTTONS)
    return CampaignPanel(channels=channels, variants=variants, go=go, stop=stop, message=message, gallery=gallery,
                         zip=zip_button, place=place)


def memory_panel(i18n: gr.I18n, admin: bool) -> MemoryPanel:
    """The memory details, folded; the controls only for an admin (a local launch)."""
    with gr.Accordion(i18n("memory_details"), open=False):
        panel = MemoryPanel(details=gr.Markdown(elem_id="vram-panel"))
        if admin:
            panel.title = gr.Markdown(i18n("admin_controls"))
            with gr.Row():
                panel.mode = gr.Radio([(i18n(f"memory_mode_{m}"), m) for m in ("auto", "gpu", "offload", "lowvram")],
                                      value=os.environ.get("ADGEN_MEMORY") or "auto", label=i18n("memory_mode"),
                                      scale=3)
                panel.quantize = gr.Radio([(i18n("memory_mode_auto"), "auto"), (i18n("quantize_none"), "none"),
                                           ("fp8", "fp8"), ("int8", "int8")],
                                          value=os.environ.get("ADGEN_QUANTIZE") or "auto",
                                          label=i18n("quantize_mode"), scale=2)
                panel.free = gr.Button(i18n("free_memory"), size="sm")
                panel.unload = gr.Button(i18n("unload_model"), size="sm")
            panel.note = gr.Markdown()
    return panel


def page_state(secret: str) -> PageState:
    """The tab's state; the history is sealed with the installation's `secret`, so it is back after a restart."""
    return PageState(history=gr.BrowserState([], storage_key="adgen-history", secret=secret), auto_prompt=gr.State(""),
                     last_seed=gr.State(None), enhanced=gr.State(""), edited=gr.State(False),
                     background_chosen=gr.State(False), background_before=gr.State(None), example=gr.State(None),
                     variation=gr.State(0))


def build_demo(engine, outputs: Path | None = None, admin: bool = False, public: bool | None = None) -> gr.Blocks:
    """The whole UI, wired to `engine` (an Engine or Ray `Workers`, or a function making an Engine in the background).

    `admin`: show the memory-mode and unload controls (`main` decides: a local launch only).
    `public`: a public launch (default: not `admin`): the status shows no host names, process ids or server paths.
    The GPU queue runs as many events at once as the engine runs jobs (`parallel`: Ray workers; else one).
    """
    studio = Studio(engine if isinstance(engine, EngineSlot) else EngineSlot(engine), outputs or
                    cache_dir() / "outputs")
    h = Handlers(studio, admin, public)
    slots = getattr(engine, "parallel", 1)  # Ray workers run that many jobs at once; an engine (or its maker) one
    i18n = gr.I18n(**page_locales())
    with Page(title="AdGen") as demo:
        # the name and what it does, in one line (a heading would push Generate off a phone's first screen)
        gr.Markdown(i18n("app_intro"), elem_id="title")
        status = gr.Markdown(i18n("status_starting"), elem_id="status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=300):
                form = form_panel(h, i18n)
            with gr.Column(scale=6, min_width=300), gr.Tabs(elem_id="result-tabs"):
                with gr.Tab(i18n("tab_ad"), elem_id="tab-ad"):
                    result = result_panel(i18n)
                with gr.Tab(i18n("tab_campaign"), elem_id="tab-campaign"):
                    campaign = campaign_panel(h, i18n)
        memory = memory_panel(i18n, admin)
        state = page_state(installation_secret(cache_dir()))
        h.queue, h.slots = (lambda: getattr(demo, "_queue", None)), slots
        h.images_of = functools.partial(images_in, count=form.w["count"], channels=campaign.channels,
                                        variants=campaign.variants, width=form.w["width"], height=form.w["height"],
                                        steps=form.w["steps"])
        h.files = lambda: gradio_files(demo)
        wire(demo, h, slots, status, form, result, campaign, memory, state)
    demo.handlers = h  # for tests and embedding
    demo.i18n = i18n
    return demo


def wire(demo: gr.Blocks, h: Handlers, slots: int, status: gr.Markdown, form: FormPanel, res: ResultPanel,
         camp: CampaignPanel, memory: MemoryPanel, state: PageState) -> None:
    """Every event of the page, in one place (inside `demo`'s context)."""
    hidden = dict(api_visibility="private")
    w, message, history, last_seed = form.w, form.message, state.history, state.last_seed
    edited, enhanced, auto_prompt = state.edited, state.enhanced, state.auto_prompt

    # 1. the form as one typed AdForm, the handlers' named results as the page's outputs
    fields = {**w, "auto_prompt": auto_prompt, "enhanced_prompt": enhanced, "variation": state.variation}
    outputs = {"image": res.image, "info": res.info, "download": res.download, "gallery": res.gallery,
               "history": history, "seed": last_seed, "message": message, **res.views}

    def form_of(data: dict, seed: int | None | str = "form", with_mask: bool = True) -> AdForm:
        values = {name: data[widget] for name, widget in fields.items() if name in FORM_FIELDS}
        if not data[edited]:
            values["prompt"] = ""  # not typed by the user: build it (several previews may be in flight)
        values["mask"] = mask_png(data[w["mask"]]) if data.get(w["photo"]) and with_mask else None
        if values["mask"] is not None:
            check_mask_fits(data[w["photo"]], values["mask"])
        values["seed"] = (None if data[form.random_seed] else data[w["seed"]]) if seed == "form" else seed
        values["lora_scale"] = data[w["lora_scale"]]
        folder = utils.get_upload_folder()  # files come from the page's uploads only, never a server path
        for name, field in (("photo", "product photo"), ("logo", "logo"), ("font", "brand font")):
            values[name] = uploaded(values[name], field, folder)
        values["brand_colors"] = brand_colors_of(data[form.use_colors], data[form.brand_main], data[form.brand_second])
        return AdForm.of(values)

    def to_outputs(named: dict, redo: bool = False) -> dict:
        """The named results as outputs; `redo`: also each redo button, clickable when its step is shown."""
        shown = {outputs[k]: v for k, v in named.items() if k in outputs}
        if redo and "redo" in named:
            shown.update({res.redo[step]: gr.update(interactive=can) for step, can in zip(STEP_VIEWS, named["redo"],
                                                                                            strict=True)})
        return shown

    form_inputs = {*fields.values(), form.random_seed, edited, form.use_colors, form.brand_main, form.brand_second}
    inputs = {*form_inputs, history, last_seed}
    sizes_of = {w[name]: name for name in ("width", "height", "steps", "count")}  # ZeroGPU's duration (adgen.zerogpu)

    # 2. the jobs: Generate and the redos, Write copy and Enhance prompt, the campaign, and Stop
    def run(seed_of, redo: str | None = None):
        def handler(data: dict, request: gr.Request, progress=gr.Progress()):  # noqa: B008 - Gradio injects it
            try:
                ad = form_of(data, seed_of(data))
                redo_can_change(redo, ad)
            except AdgenError as exc:
                return {message: "⚠ " + localize_error(exc, lang_of_request(request))}
            return to_outputs(h.generate(ad, data[history], request, progress, redo=redo))
        return on_gpu(handler, sizes_of)

    # One job at a time per tab: while any job (Generate, a redo, Write copy, Enhance prompt, the campaign)
    # is queued or running, no other can start and Stop shows (both Stops: each ends whatever job runs); all
    # come back when it ends, however it ends (done, error, Stop). `running` names the job, for Stop's line.
    buttons = [form.go, res.redo["cutout"], res.redo["background"], res.redo["copy_layer"], form.write_copy,
               form.enhance, camp.go, form.stop, camp.stop]
    running = gr.State(None)
    notes = {"generate": message, "write_copy": form.writer_message, "enhance": form.prompt_note,
             "campaign": camp.message}

    def busy(job: str):
        return (lambda: (*button_updates(True), job, "")), None, [*buttons, running, notes[job]]

    views = [res.views[step] for step in STEP_VIEWS]  # what the result shows: which redo buttons can act
    # the job's copies exist; each redo button clickable when the result shown has its step
    idle = (lambda *shown: (h.tidy(), (*button_updates(False, redo_ready(*shown)), None))[1], views,
            [*buttons, running])

    def back_to_idle(job) -> None:
        """The buttons come back when `job` ends. Gradio 6.31's page runs a `.then` after a job whose inputs it
        refused (a number out of its range, its English toast) only as a `.failure`: both, or the tab stays busy."""
        job.then(*idle, queue=False, **hidden)
        job.failure(*idle, queue=False, **hidden)

    gpu = dict(concurrency_limit=slots, concurrency_id="gpu", api_visibility="private")
    out = list(outputs.values())
    runs = []
    for trigger, seed_of, redo in (
            (form.go, lambda d: "form", None),
            (res.redo["copy_layer"], lambda d: d[last_seed] if d[last_seed] is not None else "form", "copy_layer"),
            (res.redo["cutout"], lambda d: d[last_seed] if d[last_seed] is not None else "form", "cutout"),
            (res.redo["background"], lambda d: new_seed(), "background")):
        # Redo buttons pass their seed for that one run; "Random seed" stays as the user set it.
        trigger.click(None, js=BRING_INTO_VIEW % "#result")
        started = trigger.click(*busy("generate"), queue=False, **hidden)
        runs.append(started.then(run(seed_of, redo), inputs, out, show_progress_on=[res.image], **gpu))
        back_to_idle(runs[-1])
        runs[-1].then(None, js=SHOW_MESSAGE)

    # The writer: Write copy and Enhance prompt run as this tab's jobs on the same GPU queue, with the same Stop
    def writer_run(handler, note, shown_of):
        """The page's run of `handler` (h.write_copy or h.enhance) on the form: its message in `note`, what it wrote
        where `shown_of(named)` puts it; a form that does not check is its one line in `note`."""
        def run_writer(data: dict, request: gr.Request, progress=gr.Progress()):  # noqa: B008 - Gradio injects it
            try:
                ad = form_of(data, with_mask=False)
            except AdgenError as exc:
                return {note: "⚠ " + localize_error(exc, lang_of_request(request))}
            named = handler(ad, request, progress)
            return {note: named["message"], **shown_of(named)}
        return run_writer

    write_copy_run = writer_run(h.write_copy, form.writer_message, lambda named: {
        form.suggestions: gr.update(choices=named["suggestions"], value=None, visible=True)}
        if "suggestions" in named else {})
    enhance_run = writer_run(h.enhance, form.prompt_note, lambda named: {  # the box keeps it, still editable
        w["prompt"]: named["prompt"], enhanced: named["enhanced_prompt"], edited: True} if "prompt" in named else {})

    for trigger, job, fn, shows, box in (
            (form.write_copy, "write_copy", write_copy_run, [form.suggestions], w["copy"]),
            (form.enhance, "enhance", enhance_run, [w["prompt"], enhanced, edited], w["prompt"])):
        trigger.click(None, js=BRING_INTO_VIEW % f"#{box.elem_id}")
        started = trigger.click(*busy(job), queue=False, **hidden)
        # The box its progress shows on is an output too (left unchanged): Gradio marks a cancelled queued event's
        # progress components that are not its outputs as failed (a red "Error" after a queued Stop).
        outputs_of = list(dict.fromkeys([*shows, notes[job], box]))
        runs.append(started.then(on_gpu(fn), form_inputs, outputs_of, show_progress_on=[box], **gpu))
        back_to_idle(runs[-1])
    form.suggestions.input(h.use_copy, form.suggestions, [w["copy"], w["subcopy"]], queue=False, **hidden)
    # "Same scene" and "Different scenes" exclude each other: ticking one unticks the other
    for one, other in (("same_scene", "different_scenes"), ("different_scenes", "same_scene")):
        w[one].input(lambda on: False if on else gr.skip(), w[one], w[other], queue=False, **hidden)

    # The campaign: the same form, the chosen channels x variants, on the same GPU queue and Stop
    def campaign(data: dict, request: gr.Request, progress=gr.Progress()):  # noqa: B008 - Gradio injects it
        try:
            ad = form_of(data)
        except AdgenError as exc:
            return {camp.message: "⚠ " + localize_error(exc, lang_of_request(request))}
        named = h.campaign(ad, data[camp.channels], data[camp.variants], request, progress, bool(data[camp.gallery]))
        shown = {camp.message: named["message"]}
        if "zip" in named:
            shown.update({camp.gallery: named["gallery"], camp.zip: gr.update(value=named["zip"], visible=True)})
        return shown

    camp.go.click(None, js=BRING_INTO_VIEW % "#campaign-gallery")
    started = camp.go.click(*busy("campaign"), queue=False, **hidden)
    campaign_run = started.then(on_gpu(campaign, {camp.channels: "channels", camp.variants: "variants"}),
                                {*form_inputs, camp.channels, camp.variants, camp.gallery},
                                [camp.message, camp.gallery, camp.zip], show_progress_on=[camp.gallery], **gpu)
    back_to_idle(campaign_run)
    runs.append(campaign_run)

    def stop_ui(job: str | None, hist: list, campaign_shown, cutout, background, copy_layer, request: gr.Request):
        kept = bool(campaign_shown) if job == "campaign" else bool(hist)  # "earlier results kept" only if there are
        said = h.stop_ui(job, request, kept=kept, redo=redo_ready(cutout, background, copy_layer))
        return {notes.get(job, message): said["message"], running: None,
                **dict(zip(buttons, said["buttons"], strict=True))}

    for each in (form.stop, camp.stop):  # a cancelled event's own reply never reaches the page: Stop says it
        each.click(stop_ui, [running, history, camp.gallery, *views], [*buttons, running, *notes.values()],
                   queue=False, cancels=runs, **hidden)
    demo.unload(h.session_closed)

    # 3. the form's helpers: the prompt preview, examples, brand kit, counters, sizes, the photo, Load from image
    preview_inputs = form_inputs

    def preview(data: dict):
        if data[edited]:
            return gr.skip(), gr.skip()  # the user's own prompt stays until they empty the box
        try:
            ad = form_of(data, with_mask=False)
        except AdgenError:
            return gr.skip(), gr.skip()
        return h.preview(ad, "", "")

    w["prompt"].input(lambda value: bool((value or "").strip()), w["prompt"], edited, queue=False,
                      show_progress="hidden", **hidden)

    for widget in (*(w[name] for name in ("name", "category", "features", "audience", "scene", "colors", "copy",
                                          "subcopy", "style", "product_focus", "photo", "brand", "logo")),
                   form.use_colors, form.brand_main, form.brand_second):
        widget.change(preview, preview_inputs, [w["prompt"], auto_prompt], queue=False, show_progress="hidden",
                      **hidden)
    # An example sets every field it uses and clears the other product fields; typing another product name then
    # drops the example's copy and features (unless edited), so they never leak into the user's own prompt.
    example_fields = [w[k] for k in ("name", "copy", "features", "subcopy", "category", "audience", "scene", "colors")]
    for index, button in enumerate(form.examples):
        def fill(request: gr.Request, index=index):
            return example_values(index, lang_of_request(request))

        button.click(fill, None, [*example_fields, state.example], queue=False, **hidden)
    w["name"].change(forget_example, [w["name"], w["copy"], w["features"], state.example],
                    [w["copy"], w["features"], state.example], queue=False, show_progress="hidden", **hidden)
    # Brand kit: a kit's colours show in the pickers; picking a colour means using it
    w["brand"].change(h.brand_colours, w["brand"], [form.brand_main, form.brand_second], queue=False, **hidden)
    for picker in (form.brand_main, form.brand_second):
        picker.input(lambda: True, None, form.use_colors, queue=False, **hidden)
    # The packshot style shows only for a packshot background; a background the user picks stays theirs
    w["background"].change(lambda b: gr.update(visible=b == "packshot"), w["background"], w["packshot"],
                           queue=False, **hidden)
    w["background"].input(lambda: True, None, state.background_chosen, queue=False, **hidden)
    for name in COPY_LIMITS:  # a live character counter on the copy fields, in the UI's language
        def count(value: str, request: gr.Request, name=name):
            return h.counter(name, value, request)

        w[name].change(count, w[name], w[name], queue=False, show_progress="hidden", **hidden)
        demo.load(count, w[name], w[name], queue=False, show_progress="hidden", **hidden)
    w["style"].change(h.style_info, w["style"], [form.style_text, w["lora_scale"]], queue=False, **hidden)
    form.aspect.change(lambda r: ASPECTS.get(r, (gr.skip(), gr.skip())), form.aspect, [w["width"], w["height"]],
                       queue=False, **hidden)
    for side in (w["width"], w["height"]):  # a size of no listed aspect is "custom"; a typed size is rounded to 16
        def sized(width, height, ratio, request: gr.Request):
            return size_changed(width, height, ratio, lang_of_request(request))

        side.change(sized, [w["width"], w["height"], form.aspect], [form.aspect, w["width"], w["height"], message],
                    queue=False, show_progress="hidden", **hidden)
    form.random_seed.change(lambda r: gr.update(interactive=not r, value=None) if r else gr.update(interactive=True),
                            form.random_seed, w["seed"], queue=False, **hidden)
    form.reuse.click(lambda s: (s if s is not None else 0, False), last_seed, [w["seed"], form.random_seed],
                     queue=False, **hidden)
    form.random_seed.input(lambda on: 0 if on else gr.skip(), form.random_seed, state.variation, queue=False,
                           **hidden)
    # A photo that needs a painted mask says so beside Generate, where the user is looking; on the demo model
    # a packshot background is preselected (and said why)
    def photo_changed(photo, chosen: bool, current: str, before: str | None, request: gr.Request):
        editor, note, background = h.photo_changed(photo, chosen, request)
        background, before = background_after_photo(bool(photo), chosen, current, before, background)
        thumb = photo_thumbnail(photo) if photo else None  # the photo as a picture (None: not readable or none)
        if editor is not None:  # Gradio places the mask layer in a canvas of `canvas_size`: the photo's own size
            editor = gr.update(value=editor, canvas_size=editor["background"].size)
        return editor, note, background, before, gr.update(value=thumb, visible=thumb is not None)

    w["photo"].change(photo_changed, [w["photo"], state.background_chosen, w["background"], state.background_before],
                      [w["mask"], message, w["background"], state.background_before, form.thumb], **hidden)
    # a brand kit's files are checked when they arrive too, as the photo is
    def logo_changed(path: str | None, request: gr.Request):  # a usable file keeps the line there (the photo's note)
        return h.brand_file_changed("logo", path, request) or gr.skip()

    def font_changed(path: str | None, request: gr.Request):
        return h.brand_file_changed("font", path, request) or gr.skip()

    w["logo"].upload(logo_changed, w["logo"], message, **hidden)
    w["font"].upload(font_changed, w["font"], message, **hidden)

    def select(hist: list, evt: gr.SelectData, request: gr.Request):
        return to_outputs(h.select(hist, evt.index, request), redo=True)

    res.gallery.select(select, history, [res.image, res.info, res.download, *views, *res.redo.values()],
                       queue=False, **hidden)
    loaded = {**{k: v for k, v in w.items() if k not in ("photo", "mask", "logo", "font")},
              "auto_prompt": auto_prompt, "enhanced_prompt": enhanced, "prompt_edited": edited,
              "random_seed": form.random_seed, "aspect": form.aspect, "message": message,
              "variation": state.variation}

    def restore(file: str, request: gr.Request):
        return {loaded[k]: v for k, v in h.load_from_image(file, request).items() if k in loaded}

    form.png.upload(restore, form.png, list(loaded.values()), queue=False, **hidden)

    # 4. the status line and memory: refreshed outside the GPU queue (it only reads counters, never waits)
    timer = gr.Timer(1.5)
    # one request per tick: the status line and details, and a waiting tab's place, also where its result will show
    # (the status line is off-screen on a phone by then)
    def tick(width, height, count, request: gr.Request):
        place = h.place(session_of(request), lang_of_request(request))
        return (*h.status(width, height, count, request, place=place), place, place)

    timer.tick(tick, [w["width"], w["height"], w["count"]], [status, memory.details, res.place, camp.place],
               queue=False, show_progress="hidden", **hidden)
    if memory.mode is not None:
        memory.mode.change(h.set_memory_mode, memory.mode, memory.note, **{**gpu, "api_visibility": "private"})
        memory.quantize.change(h.set_quantize, memory.quantize, memory.note, **{**gpu, "api_visibility": "private"})
        memory.free.click(h.free_memory, None, memory.details, queue=False, **hidden)
        memory.unload.click(h.unload, None, memory.details, concurrency_limit=slots, concurrency_id="gpu", **hidden)

        def admin_shown(request: gr.Request):  # a visitor through a proxy sees no admin controls (nor may use them)
            return [gr.update(visible=h.is_admin(request))] * 5

        demo.load(admin_shown, None, [memory.title, memory.mode, memory.quantize, memory.free, memory.unload],
                  queue=False, **hidden)

    # 5. on load: the history back, the choices in the page's language, the prompt, the status; the API
    def restore_history(hist: list, request: gr.Request):
        return to_outputs(h.restore_history(hist, request), redo=True)

    demo.load(restore_history, history, [*out, *res.redo.values()], queue=False, **hidden)
    demo.load(h.style_info, w["style"], [form.style_text, w["lora_scale"]], queue=False, **hidden)
    demo.load(h.choices, None, [w["style"], w["text_style"], w["text_position"], form.aspect, camp.channels,
                                w["brand"]], queue=False, **hidden)
    demo.load(preview, preview_inputs, [w["prompt"], auto_prompt], queue=False, **hidden)
    demo.load(h.status, None, [status, memory.details], queue=False, show_progress="hidden", **hidden)
    for fn in api_functions(h):
        gr.api(on_gpu(fn), api_name=fn.__name__, concurrency_limit=slots, concurrency_id="gpu")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="AdGen web app")
    parser.add_argument("--model", help="auto (default), demo, synthetic (ZIT's full-size shapes, random weights), "
                        "a local folder or a Hugging Face repo id")
    parser.add_argument("--share", action="store_true", help="make a public gradio.live link (off by default)")
    parser.add_argument("--mcp", action="store_true", help="also serve the API as MCP tools at /gradio_api/mcp/ "
                        "(or GRADIO_MCP_SERVER=True)")
    add_runtime_flags(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS  # Pillow's decompression-bomb limit, for every decode
    auth = os.environ.get("ADGEN_AUTH")
    if auth and (":" not in auth or auth.startswith(":") or auth.endswith(":")):
        raise SystemExit("error: ADGEN_AUTH must look like user:password")
    # Gradio's own rule for its env var, applied here so the check below sees the flag and the variable alike.
    mcp = args.mcp or os.environ.get("GRADIO_MCP_SERVER", "False").lower() == "true"
    if mcp and auth:  # Gradio's MCP tools call the app through a client that has no login: every call would fail
        raise SystemExit("error: the MCP server (--mcp or GRADIO_MCP_SERVER=True) cannot be used with ADGEN_AUTH: "
                         "Gradio's MCP tools call the app without a login; unset one of them")
    server_name = os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    admin = admin_allowed(server_name, args.share)

    try:
        ray = worker_flags(args)
        from adgen.quantize import check

        check(args.quantize)  # a bad --quantize / $ADGEN_QUANTIZE is one line before the page starts
    except InputError as exc:
        raise SystemExit(f"error: --{exc}") from None

    page_up = threading.Event()

    def make_engine():  # in the background: torch and diffusers import after the page is up
        if ray is None:  # importing them meanwhile would hold the GIL and slow the server's start
            page_up.wait()
        from adgen.cache import default_cache
        from adgen.models import quiet_libraries

        quiet_libraries()
        engine = make_runtime_engine(args, cache=default_cache())
        log.info("model: %s (%s)", engine.source.label if ray is None else "on Ray workers", engine.device)
        engine.load_in_background(warmup=args.warmup)
        return engine

    # Ray workers are started before the page: the GPU queue's limit is their number (a few seconds).
    try:
        engine = make_engine() if ray is not None else make_engine
    except AdgenError as exc:
        raise SystemExit(f"error: {exc}") from None
    demo = build_demo(engine, admin=admin, public=is_public(server_name, args.share))
    launch(demo, share=args.share, auth=tuple(auth.split(":", 1)) if auth else None, max_file_size=MAX_IMAGE_BYTES,
           allowed_paths=[str(cache_dir() / "outputs")], server_name=server_name, mcp_server=mcp,
           prevent_thread_lock=True)
    page_up.set()
    demo.block_thread()


if __name__ == "__main__":
    main()
