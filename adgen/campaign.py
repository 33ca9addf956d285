"""A campaign: one ad in every channel's exact size, in N variants, written with a manifest and a ZIP.

Variant v of every channel uses seed + v and the preset's scene variation v, so channels whose
generation sizes match share one background (the engine's cache): a 6-channel campaign runs the
model once per generation size and variant, not once per file. A copy change re-runs no
background at all (the background's key has no copy in it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from .ad import PACKSHOTS, AdMaker, AdSpec
from .cache import write_atomic
from .channels import Channel, generation_size
from .deliver import Delivered, deliver
from .engine import Progress, Result
from .errors import GenerationStopped, InputError
from .jobs import Job
from .metadata import read_chunk
from .presets import get_preset
from .prompts import settings_for
from .request import MAX_SEED, MAX_VARIATIONS

MAX_VARIANTS = 8
MANIFEST = "manifest.json"
ZIP_NAME = "campaign.zip"


def check_variants(value: object) -> int:
    from .request import check_int

    return check_int("variants", value, 1, MAX_VARIANTS)


def make_campaign(maker: AdMaker, spec: AdSpec, channels: list[Channel], variants: int = 1,
                  progress: Progress | None = None, use_cache: bool = True, job: Job | None = None,
                  area: int | None = None) -> Result:
    """Every channel x variant of the ad `spec` (its request's size is ignored: each channel's is used).

    Backgrounds are generated at `generation_size` (about `area` pixels, default one megapixel).

    One `Result`: its pictures in variant-then-channel order, each naming its channel and variant.
    `job` owns Stop across the whole campaign.
    """
    return run_campaign(maker, spec, channels, check_campaign(spec, channels, variants), progress, use_cache, job,
                        area)


def check_campaign(spec: AdSpec, channels: list[Channel], variants: object) -> int:
    """A campaign's inputs, before any work: at least one channel, the variants, every channel's needs met;
    returns the variants."""
    if not channels:
        raise InputError("channels", "choose at least one channel")
    variants = check_variants(variants)
    check_channels(spec, channels)
    return variants


def run_campaign(maker: AdMaker, spec: AdSpec, channels: list[Channel], variants: int,
                 progress: Progress | None = None, use_cache: bool = True, job: Job | None = None,
                 area: int | None = None) -> Result:
    """`make_campaign` on inputs `check_campaign` passed (the CLI checks them before it starts the model)."""
    start = time.perf_counter()
    base = spec.request.resolved()  # one seed for the whole campaign
    runs = [(v, channel) for v in range(variants) for channel in channels]
    # Files sharing a background (same variant, same generation size) run in order, so the first one makes it
    # and the others find it in the cache; with Ray workers (`engine.parallel` > 1) the groups run at once.
    groups: dict[tuple, list[int]] = {}
    for n, (v, channel) in enumerate(runs):
        groups.setdefault((v, generation_size(channel.width, channel.height, area)), []).append(n)
    steps: dict[int, tuple[int, int]] = {}
    lock = threading.Lock()

    # each file's background runs this many steps (none when it comes from the cache, or for a packshot)
    per = settings_for(base, get_preset(maker.engine.presets, base.preset)).steps

    def report(n: int, done: int) -> None:
        with lock:
            steps[n] = (done, per)
            if progress:
                progress(sum(d for d, _ in steps.values()), len(runs) * per)

    def make(n: int, running: Job):
        v, channel = runs[n]
        width, height = generation_size(channel.width, channel.height, area)
        request = dataclasses.replace(base, seed=(base.seed + v) % (MAX_SEED + 1), count=1, width=width,
                                      height=height, variation=(base.variation + v) % MAX_VARIATIONS)
        result = maker.make(dataclasses.replace(variant_spec(spec, v), request=request, channel=channel),
                            lambda d, t: report(n, d), use_cache, running)
        report(n, per)  # done: a file whose background came from the cache (or a packshot's) moved no steps
        return result.settings, dataclasses.replace(result.images[0], channel=channel.id, variant=v + 1)

    made: dict[int, tuple] = {}

    def make_group(ns: list[int], running: Job) -> None:
        for n in ns:
            running.check(0, 0)  # a failure or a Stop elsewhere ends the group here (a packshot checks no steps)
            made[n] = make(n, running)

    with maker.engine.jobs.open(job=job) as running:
        # One pool for every engine: one thread in-process (the groups one after another), one per Ray worker.
        parallel = max(1, min(maker.engine.parallel, len(groups)))
        with ThreadPoolExecutor(parallel, thread_name_prefix="adgen-campaign") as pool:
            futures = [pool.submit(make_group, ns, running) for ns in groups.values()]
            try:
                for future in as_completed(futures):
                    if future.exception() is not None and not running.stopped:  # the other files end too
                        running.stop("stopped because another file of the campaign failed")
            except KeyboardInterrupt:  # Ctrl-C: the files in flight end at their next step, the rest never start
                running.stop("stopped by the operator")
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        errors = [f.exception() for f in futures if f.exception() is not None]
        failed = next((e for e in errors if not isinstance(e, GenerationStopped)), None)
        if failed is not None:  # the failure itself, not the Stops it caused in the other files
            raise failed
        if errors:  # steps over the whole campaign, as the progress counts them, and the files finished
            done = sum(d for d, _ in steps.values())
            if not done and not made:
                raise GenerationStopped(reason=errors[0].reason)  # before it started
            raise GenerationStopped(done, len(runs) * per, errors[0].reason, files=(len(made), len(runs)))
    pictures = [made[n][1] for n in range(len(runs))]
    return Result(tuple(pictures), made[0][0], maker.engine.source.label, maker.engine.source.is_demo,
                  time.perf_counter() - start, notes=no_copy_note(spec, channels))


def no_copy_note(spec: AdSpec, channels: list[Channel]) -> tuple[str, ...]:
    """The line, said once, on why the files of channels whose platform allows no text on a main image (Coupang,
    Naver) carry the ad's copy and logo nowhere; none when the ad has neither, or no such channel is in it."""
    bare = [c.label for c in channels if not c.copy]
    drawn = spec.request.product.copy or spec.subcopy or (spec.brand is not None and spec.brand.logo is not None)
    if not bare or not drawn:
        return ()
    return (f"no copy or logo on {', '.join(bare)}: the platform's rules allow no text or logo on a main image",)


def check_channels(spec: AdSpec, channels: list[Channel]) -> None:
    """Every channel's needs, before any work: a pure white channel shows the product, so it needs the photo."""
    for channel in channels:
        if spec.request.image is None and channel.background == "white":
            raise InputError("channels", f"{channel.label} has a pure white background around the product: it needs "
                                         f"a product photo; add one or leave {channel.label} out")  # Korean: its label


def photo_channels(spec: AdSpec, channels: list[Channel]) -> tuple[list[Channel], tuple[str, ...]]:
    """For the page, whose defaults include marketplaces' white main images: without a product photo, the chosen
    channels that can be made and the note naming those left out (a pure white channel shows the product photo).
    When every chosen channel needs the photo, all stay, and `check_channels` refuses as for the CLI."""
    white = [c for c in channels if c.background == "white"]
    if spec.request.image is not None or not white or len(white) == len(channels):
        return channels, ()
    left = ", ".join(c.label for c in white)  # Korean: their labels
    return ([c for c in channels if c.background != "white"],
            (f"left out {left}: a pure white background shows the product photo, and there is none; add a photo to "
             "include every chosen channel",))


def variant_spec(spec: AdSpec, v: int) -> AdSpec:
    """Variant `v` (0-based) of the ad. A model background varies by seed and scene; a packshot has neither,
    so its variants vary the layout instead: the copy above or below the product, and the backdrop's style
    (the chosen one first, then the others), so A/B variants never come out identical."""
    if spec.background != "packshot" or v == 0:
        return spec
    styles = [spec.packshot] + [s for s in PACKSHOTS if s != spec.packshot]
    return dataclasses.replace(spec, packshot=styles[v % len(styles)],
                               text_position="bottom" if v % 2 else "top")


def slug(text: str, limit: int = 40) -> str:
    """A folder-safe short form of a product name (letters and digits of any script kept): "탄산수-Citrus"."""
    import re
    import unicodedata

    text = unicodedata.normalize("NFC", text)
    return re.sub(r"[^\w]+", "-", text).strip("-_")[:limit].strip("-_") or "product"


def file_name(channel: str, variant: int, extension: str = "png") -> str:
    return f"{channel}-v{variant}.{extension}"


def delivered(result: Result, channels: list[Channel]) -> list[Delivered]:
    """Each file as its channel's platform takes it (PNG or a fitted JPEG) with its checks (deliver.py)."""
    by_id = {c.id: c for c in channels}
    return [deliver(p.png, by_id[p.channel].rules, by_id[p.channel].size) for p in result.images]


def manifest_of(result: Result, spec: AdSpec, channels: list[Channel], files: list[Delivered] | None = None) -> dict:
    """What the campaign holds: the product and brand, then per file its channel, size, seed, variation, prompt,
    format, bytes, sha256, whether it came from the cache, AdGen's parameters and its checks against the rules."""
    sizes = {c.id: [c.width, c.height] for c in channels}
    files = files if files is not None else delivered(result, channels)
    return {
        "product": dataclasses.asdict(spec.request.product),
        "subcopy": spec.subcopy,
        "brand": spec.brand.summary() if spec.brand else None,
        "background": "packshot" if spec.background == "packshot" else spec.background,
        "model": result.model,
        "demo_model": result.demo,
        "files": [{
            "file": file_name(p.channel, p.variant, d.extension), "channel": p.channel, "size": sizes[p.channel],
            "variant": p.variant, "seed": p.seed, "variation": p.variation, "prompt": p.prompt,
            "format": d.format, "quality": d.quality, "bytes": len(d.data),
            "sha256": hashlib.sha256(d.data).hexdigest(), "cached": p.cached, "warnings": list(p.warnings),
            "checks": [c.to_json() for c in d.checks], "note": d.note, "params": read_chunk(p.png),
        } for p, d in zip(result.images, files, strict=True)],
        "warnings": list(result.warnings),
        "notes": list(result.notes),
    }


def write_campaign(result: Result, spec: AdSpec, channels: list[Channel], out: Path, zip_: bool = False) -> dict:
    """The files into `out` (each written whole or not at all), `manifest.json`, and with `zip_` one ZIP of them.

    Returns the CLI's report: files, manifest, zip (None without `zip_`), checks (file -> its checks against the
    channel's rules) and notes (file -> why it could not be made to fit); seconds is added by the caller.
    """
    files = delivered(result, channels)
    manifest = manifest_of(result, spec, channels, files)
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
    try:
        out.mkdir(parents=True, exist_ok=True)
        named = {entry["file"]: d.data for d, entry in zip(files, manifest["files"], strict=True)}
        for name, data in named.items():
            write_atomic(out / name, data)
        write_atomic(out / MANIFEST, manifest_bytes)
        archive = None
        if zip_:
            archive = out / ZIP_NAME
            write_atomic(archive, zip_bytes({**named, MANIFEST: manifest_bytes}))
    except OSError as exc:
        raise InputError("out", f"cannot write to {out}: {exc.strerror or exc}") from None
    return {"files": [str(out / name) for name in named], "manifest": str(out / MANIFEST),
            "zip": str(archive) if archive else None,
            "checks": {entry["file"]: entry["checks"] for entry in manifest["files"]},
            "notes": {entry["file"]: entry["note"] for entry in manifest["files"] if entry["note"]}}


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A ZIP of `files` (name -> bytes), stored (PNGs are compressed already), with a fixed date: same files,
    same ZIP."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()
