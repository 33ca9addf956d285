"""The app's work without the UI: run a form, save what it made, keep a history the browser may hold.

`Studio` is what the Gradio shell and the typed API call: it runs an `AdForm` as a job of one
session, saves the PNGs under the outputs folder (named by content, capped like the result
cache), and turns history entries the browser sends back into entries naming only files it made.
A campaign (the form's ad in several channel sizes and variants) is written, with its manifest
and ZIP, under `outputs/campaigns/<hash>/`.
Pure of gradio; the engine may still be starting (`EngineSlot`), so the page is up before torch is.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from .cache import evict_lru, max_cache_bytes, write_atomic
from .form import AdForm
from .prompts import writes_scenes
from .request import AdRequest

if TYPE_CHECKING:  # torch loads in the background: the page must not wait for it
    from .ad import AdMaker
    from .engine import Engine, Picture, Result
    from .jobs import Job

MAX_HISTORY = 48
UI_MAX_VARIANTS = 4  # variants per channel from the page (the CLI allows 8)
# campaign folders kept under outputs/campaigns/ (at most this many, and within $ADGEN_CACHE_MAX_MB together), the
# least recently made removed first
MAX_CAMPAIGNS = 16
STEP_VIEWS = ("cutout", "background", "copy_layer")
# What the outputs folder holds: `adgen-SEED-HASH.png` and `adgen-SEED-HASH.STEP.png`, nothing else.
OUTPUT_NAME = re.compile(r"adgen-\d{1,10}-[0-9a-f]{12}(?:\.(?:cutout|mask|background|copy_layer))?\.png")


class EngineSlot:
    """The engine, made in the background (importing torch and diffusers takes seconds), or given ready."""

    def __init__(self, engine: Engine | Callable[[], Engine]):
        self._engine: Engine | None = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        if callable(engine) and not hasattr(engine, "generate"):
            threading.Thread(target=self._make, args=(engine,), name="adgen-engine", daemon=True).start()
        else:
            self._engine = engine  # type: ignore[assignment]
            self._ready.set()

    def _make(self, factory: Callable[[], Engine]) -> None:
        try:
            self._engine = factory()
        except BaseException as exc:  # shown by the panel and raised to the first request
            self._error = exc
        finally:
            self._ready.set()

    def peek(self) -> Engine | None:
        """The engine if it exists yet (the panel: never waits)."""
        return self._engine

    @property
    def error(self) -> BaseException | None:
        return self._error

    def get(self, timeout: float | None = 600) -> Engine:
        """The engine, waiting for it to be made."""
        if not self._ready.wait(timeout):
            from .errors import ModelError

            raise ModelError("model: AdGen is still starting; try again in a moment")
        if self._error is not None:
            # A fresh error each time: re-raising the stored one would append this call's frames (and their
            # locals, a request each) to its traceback on every request, for as long as the process runs.
            raise _fresh(self._error) from None
        return self._engine  # type: ignore[return-value]


def _fresh(error: BaseException) -> BaseException:
    """A new exception saying what `error` said (same class where it can be rebuilt), with no traceback."""
    try:
        fresh = copy.copy(error)
    except Exception:  # noqa: BLE001 - a class that cannot be rebuilt from its args
        fresh = None
    if type(fresh) is not type(error) or fresh is error:
        from .errors import ModelError

        fresh = ModelError(str(error))
    fresh.__traceback__ = fresh.__cause__ = fresh.__context__ = None
    return fresh


@dataclass(frozen=True)
class Entry:
    """One image the page shows: where its files are and how it was made (JSON-able for the browser)."""

    path: str
    seed: int
    size: str
    prompt: str
    seconds: float
    cached: bool
    model: str
    steps: dict[str, str] = field(default_factory=dict)  # step -> path
    step_cached: dict[str, bool] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"path": self.path, "seed": self.seed, "size": self.size, "prompt": self.prompt,
                "seconds": self.seconds, "cached": self.cached, "model": self.model, "steps": dict(self.steps),
                "step_cached": dict(self.step_cached)}


class Studio:
    """Runs forms on the engine and keeps their PNGs in the outputs folder."""

    def __init__(self, engine: Engine | EngineSlot | Callable[[], Engine], outputs: Path):
        self.slot = engine if isinstance(engine, EngineSlot) else EngineSlot(engine)
        self.outputs = Path(outputs)
        self._maker = None
        self.campaign_area: int | None = None  # backgrounds of a campaign: about this many pixels (None: 1 MP)

    @property
    def engine(self) -> Engine:
        return self.slot.get()

    def make(self, form: AdForm, job: Job | None = None, progress=None) -> Result:
        """What `form` asks for: the three-step ad, or a plain image, as `job`."""
        engine = self.engine
        work = form.job(engine.presets)
        with engine.jobs.open(job=job) as running:  # one Stop for the writer's scenes and the images
            work, written = self._scenes(engine, form, work, work.request.count if form.is_ad else work.count,
                                         running)
            if form.is_ad:
                result = self.maker(engine).make(work, progress=progress, job=running)
            else:
                result = engine.generate(work, progress=progress, job=running)
        return dataclasses.replace(result, written=written)

    @staticmethod
    def _scenes(engine: Engine, form: AdForm, work, n: int, job: Job):
        """`work` (an AdSpec or AdRequest) with `n` scenes written for it when the form asks for different scenes,
        and what was written (kept on the result: the page says when the style's own scenes were used instead)."""
        request = work if isinstance(work, AdRequest) else work.request
        if not form.different_scenes or not writes_scenes(request, getattr(work, "background", None)):
            return work, ()
        from .writer import with_scenes

        request, written = with_scenes(engine, request, n, job=job)
        return (request if isinstance(work, AdRequest) else dataclasses.replace(work, request=request)), (written,)

    def write(self, form: AdForm, kind: str, n: int = 3, job: Job | None = None, progress=None):
        """The writer's `kind` (copy, prompt, variations) for the form's product and style (`writer.Written`)."""
        from .writer import WriteRequest

        engine = self.engine
        request = WriteRequest(form.product(), job=kind, n=n, seed=form.seed, preset=form.style,
                               product_focus=bool(form.product_focus))
        return engine.write(request, progress, job=job)

    def enhance(self, form: AdForm, job: Job | None = None, progress=None):
        """(the prompt to put in the prompt box, or None when the answer was not usable; the `writer.Written`)."""
        from .writer import enhance

        engine = self.engine
        request, written = enhance(engine, form.request(engine.presets, read_photo=False), progress, job)
        return (request.prompt if request.enhanced else None), written

    def maker(self, engine: Engine) -> AdMaker:
        from .ad import AdMaker

        if self._maker is None or self._maker.engine is not engine:
            self._maker = AdMaker(engine)
        return self._maker

    def campaign(self, form: AdForm, channel_ids, variants: int = 1, job: Job | None = None,
                 progress=None) -> tuple[Result, str]:
        """The form's ad in every channel of `channel_ids` x `variants`, as `job`; (the result, its ZIP's path).

        The files, `manifest.json` and `campaign.zip` go to `outputs/campaigns/<hash of the files>/`.
        `progress(done, total)` moves per file and per denoising step; Stop ends the job before the next file
        too (a packshot campaign runs no model steps to stop at).
        """
        from .campaign import make_campaign, photo_channels, write_campaign
        from .channels import get_channels, load_channels
        from .errors import InputError
        from .request import check_int

        if not channel_ids:  # the page's own line: the boxes show labels, not the ids the CLI lists
            raise InputError("channels", "choose at least one channel")
        channels = get_channels(list(channel_ids), load_channels())
        variants = check_int("variants", variants, 1, UI_MAX_VARIANTS)
        engine = self.engine
        spec = form.ad_spec(engine.presets)  # every input checked before any work
        channels, left_out = photo_channels(spec, channels)
        steps = _PerFile(self.maker(engine), len(channels) * variants, progress)
        with engine.jobs.open(job=job) as running:
            spec, written = self._scenes(engine, form, spec, variants, running)
            result = make_campaign(steps, spec, channels, variants, progress=progress, job=running,
                                   area=self.campaign_area)
        result = dataclasses.replace(result, written=written, notes=left_out + result.notes)
        if progress is not None:
            progress(1, 1)
        digest = hashlib.sha256("".join(f"{p.channel}/{p.variant}:{hashlib.sha256(p.png).hexdigest()};"
                                        for p in result.images).encode()).hexdigest()[:12]
        root = self.outputs / "campaigns"
        out = root / digest
        report = write_campaign(result, spec, channels, out, zip_=True)
        os.utime(out)  # made again: the most recent
        _keep_newest(root, MAX_CAMPAIGNS, max_cache_bytes(), spare=out)
        return result, report["zip"]

    def save(self, result: Result) -> list[Entry]:
        """Write each image and its steps under the outputs folder (within the cap); their entries."""
        return [self._save(item, result) for item in result.images]

    def _save(self, item: Picture, result: Result) -> Entry:
        self.outputs.mkdir(parents=True, exist_ok=True)
        paths = {}
        for step, data in item.files.items():
            path = self.outputs / item.file_name(step)
            if path.exists():
                os.utime(path)  # shown again: the most recently used, so the last to be evicted
            else:
                write_atomic(path, data)
            paths[step] = str(path)
        # outputs/ is capped like the result cache; what was just saved stays, the page shows it
        evict_lru(self.outputs, "*", max_cache_bytes(), keep=[Path(p) for p in paths.values()])
        width, height = Image.open(io.BytesIO(item.png)).size
        final = paths.pop("final")
        # each image's own prompt: image N of a request has its own scene
        return Entry(final, item.seed, f"{width}x{height}", item.prompt or result.prompt, round(result.seconds, 2),
                     item.cached, result.model, paths, dict(item.step_cached))

    def checked(self, entries: object) -> list[Entry]:
        """History entries from the browser, keeping only those naming files AdGen made and still has.

        The browser's storage is the user's to edit: a tampered entry must never make the server
        serve a file outside the outputs folder, so every path is rebuilt from a checked name.
        """
        kept: list[Entry] = []
        for raw in entries if isinstance(entries, list) else []:
            entry = self._checked(raw)
            if entry is not None:
                kept.append(entry)
            if len(kept) == MAX_HISTORY:
                break
        return kept

    def _checked(self, raw: object) -> Entry | None:
        if not isinstance(raw, dict):
            return None
        final = self._own(raw.get("path"), step=None)
        if final is None:
            return None
        steps = {}
        for step, path in (raw.get("steps") or {}).items() if isinstance(raw.get("steps"), dict) else []:
            own = self._own(path, step)
            if own is not None:
                steps[step] = own
        text = lambda key, limit=4000: str(raw.get(key, ""))[:limit]  # noqa: E731 - shown as text, never run
        seed = raw.get("seed")
        return Entry(final, seed if isinstance(seed, int) and not isinstance(seed, bool) else 0, text("size", 20),
                     text("prompt"), float(raw["seconds"]) if isinstance(raw.get("seconds"), (int, float)) else 0.0,
                     raw.get("cached") is True, text("model", 200), steps,
                     {k: v is True for k, v in (raw.get("step_cached") or {}).items() if k in steps}
                     if isinstance(raw.get("step_cached"), dict) else {})

    def _own(self, path: object, step: str | None) -> str | None:
        """`path` rebuilt inside the outputs folder if its name is one AdGen writes and the file exists."""
        if not isinstance(path, str):
            return None
        name = Path(path).name
        if not OUTPUT_NAME.fullmatch(name) or (step is not None and not name.endswith(f".{step}.png")):
            return None
        if step is None and name.count(".") != 1:
            return None
        own = self.outputs / name
        return str(own) if own.is_file() else None


class _PerFile:
    """An `AdMaker` for `make_campaign` that reports each file as progress and ends a stopped job before the next."""

    def __init__(self, maker: AdMaker, files: int, progress=None):
        self.maker, self.engine, self.files, self.progress, self.done = maker, maker.engine, files, progress, 0
        self._lock = threading.Lock()  # with Ray workers a campaign's files run at once

    def make(self, spec, progress=None, use_cache: bool = True, job: Job | None = None) -> Result:
        from .errors import GenerationStopped

        with self._lock:
            if self.progress is not None:
                self.progress(self.done, self.files)
            if job is not None and job.stopped:  # make_campaign counts this as "after file N of all"
                raise GenerationStopped(0, 1, job.reason)
            self.done += 1
        return self.maker.make(spec, progress, use_cache, job)


CAMPAIGN_GRACE_SECONDS = 120  # a campaign folder this recent may be another tab's, still written or being shown


def _keep_newest(root: Path, keep: int, max_bytes: int, spare: Path) -> None:
    """Remove all but the `keep` most recently made folders under `root`, and the oldest of those until the folders
    total at most `max_bytes` (never `spare`, the one just made: the page shows it; nor a folder made in the last
    CAMPAIGN_GRACE_SECONDS: another tab may be writing it or fetching its files)."""
    from .cache import tree_bytes

    folders, now = [], time.time()
    for path in root.iterdir():
        try:
            if path.is_dir() and not path.is_symlink() and path != spare:
                folders.append((path.stat().st_mtime, path))
        except OSError:  # removed meanwhile
            continue
    total, full = tree_bytes(spare), False
    for n, (made, path) in enumerate(sorted(folders, reverse=True)):
        total += tree_bytes(path)
        full = full or n >= keep - 1 or total > max_bytes  # this one and every older one go
        if full and now - made > CAMPAIGN_GRACE_SECONDS:
            shutil.rmtree(path, ignore_errors=True)


def campaign_gallery(result: Result, zip_path: str, lang: str = "en") -> list[tuple[str, str]]:
    """A campaign's files grouped by channel (in the order chosen), variants in order, each captioned
    "Instagram story · 1080x1920 · v1 · ✓ Meta rules" in `lang` (✗ and the rules it fails, when it fails some)."""
    import json

    from .campaign import MANIFEST, file_name
    from .channels import load_channels
    from .i18n import label, text

    channels = load_channels()
    order = list(dict.fromkeys(p.channel for p in result.images))
    folder = Path(zip_path).parent
    try:  # the files as written: their names (PNG or JPEG) and their checks against the platform's rules
        written = {(e["channel"], e["variant"]): e for e in json.loads((folder / MANIFEST).read_text())["files"]}
    except (OSError, ValueError, KeyError):
        written = {}
    items = []
    for picture in sorted(result.images, key=lambda p: (order.index(p.channel), p.variant)):
        channel = channels.get(picture.channel)
        name = label(channel, lang) if channel else picture.channel
        size = f"{channel.width}x{channel.height}" if channel else ""
        entry = written.get((picture.channel, picture.variant), {})
        caption = text("campaign_caption", lang, channel=name, size=size, variant=picture.variant)
        if entry.get("checks"):
            caption += " · " + checks_caption(entry["checks"], channel, lang)
        items.append((str(folder / entry.get("file", file_name(picture.channel, picture.variant))), caption))
    return items


def checks_caption(checks: list[dict], channel, lang: str = "en") -> str:
    """"✓ Coupang rules" when every measured rule passes, else "✗ " and the rules failed, in `lang`."""
    from .i18n import lang_code, text

    failed = [c["rule"] for c in checks if c["passed"] is False]
    if failed:
        return text("campaign_checks_failed", lang, rules=", ".join(text(f"rule_{r}", lang) for r in failed))
    platform = (channel.platform_ko if lang_code(lang) == "ko" else channel.platform) if channel else ""
    return text("campaign_checks_passed", lang, platform=platform).strip()


def info_text(entry: Entry, lang: str = "en") -> str:
    """The result line under the image, in `lang`: seed, size, time, cache, model, steps kept, prompt."""
    from .demo_model import DEMO_LABEL
    from .i18n import text

    source = text("result_from_cache" if entry.cached else "result_generated", lang)
    model = text("model_demo", lang) if entry.model == DEMO_LABEL else entry.model
    line = text("result_info", lang, seed=entry.seed, size=entry.size, seconds=entry.seconds, source=source,
                model=model)
    if entry.step_cached:
        steps = ", ".join(text("step_kept" if kept else "step_new", lang, step=text(f"step_name_{name}", lang))
                          for name, kept in entry.step_cached.items())
        line += " · " + text("result_steps", lang, steps=steps)
    # the prompt only when a model used one (a packshot ad is made without the model)
    return line + "\n\n" + text("result_prompt", lang, prompt=entry.prompt) if entry.prompt else line


def gallery_of(history: list[Entry], lang: str = "en") -> list[tuple[str, str]]:
    """The history gallery: each image with its seed and size (and "cache" when it came from there)."""
    from .i18n import text

    return [(e.path, text("gallery_caption", lang, seed=e.seed, size=e.size)
             + (f" · {text('gallery_cached', lang)}" if e.cached else "")) for e in history]
