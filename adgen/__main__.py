"""The CLI: `python -m adgen generate|campaign|batch|write|channels|presets|memory|demo-model|download` (never imports
gradio)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from .cli_text import cli_lang, label, line, rule_warnings
from .errors import AdgenError, InputError, ModelError, PresetError
from .settings import add_runtime_flags

if TYPE_CHECKING:  # imported where used: `presets` and `--help` stay light
    from .ad import AdSpec
    from .request import AdRequest

# A field's CLI flag, so an error names what the user typed.
FLAGS = {
    "product name": "--product", "category": "--category", "key features": "--features",
    "target audience": "--audience", "scene/mood": "--scene", "brand colours": "--colors", "ad copy": "--copy",
    "preset": "--preset", "LoRA scale": "--lora-scale", "prompt": "--prompt", "seed": "--seed",
    "width": "--size (width)", "height": "--size (height)", "size": "--size", "aspect": "--aspect", "steps": "--steps",
    "count": "--count", "image": "--image", "product photo": "--image", "out": "--out", "sub-copy": "--subcopy",
    "text style": "--text-style", "text position": "--text-position", "background": "--background",
    "memory": "--memory", "dtype": "--dtype", "quantize": "--quantize", "workers": "--workers",
    "product mask": "--mask",
    "packshot": "--packshot",
    "brand": "--brand", "logo": "--logo", "brand hex colours": "--brand-colors", "brand font": "--font",
    "channels": "--channels", "variants": "--variants", "writer job": "--job", "text count": "--n",
    "same scene": "--same-scene", "GPU GB": "--gpu-gb",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        print(f"{line('error', message)} ({label('cli_see_help')})", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m adgen", description="AdGen: product ad images with Z-Image-Turbo.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    gen = commands.add_parser("generate", help="generate ad images; prints one JSON object")
    _product_flags(gen)
    gen.add_argument("--lora-scale", help="LoRA strength 0..2 (default: the preset's)")
    gen.add_argument("--prompt", help="use this prompt instead of the built one")
    gen.add_argument("--no-product-focus", action="store_true", help="allow people/faces; drop the product-hero clause")
    gen.add_argument("--enhance", action="store_true",
                     help="the writer writes a detailed prompt from the details (same seed, same prompt); the "
                          "template prompt stays in use when its answer is not usable")
    gen.add_argument("--write-scenes", action="store_true",
                     help="the writer writes one scene per image (--count) in place of the style's variations")
    size = gen.add_mutually_exclusive_group()
    size.add_argument("--size", help="WIDTHxHEIGHT, multiples of 16 from 256 to 2048 (default 1024x1024)")
    size.add_argument("--aspect", help="aspect preset: 1:1, 4:5, 3:4, 2:3, 9:16, 5:4, 4:3, 3:2, 16:9")
    gen.add_argument("--steps", help="denoising steps 1..50 (default 8, ZIT's)")
    gen.add_argument("--count", default="1",
                     help="images 1..8; image i uses seed + i and the style's scene variation i")
    _ad_flags(gen)
    gen.add_argument("--text-position", help="with copy: auto (default), top, center, bottom")
    gen.add_argument("--out", default="outputs", help="folder for the PNGs (default ./outputs)")
    _run_flags(gen)

    camp = commands.add_parser("campaign", help="one ad in several channel sizes and variants; prints one JSON object")
    _product_flags(camp)
    camp.add_argument("--write-scenes", action="store_true",
                      help="the writer writes one scene per variant in place of the style's variations")
    _campaign_flags(camp)
    batch = commands.add_parser("batch", help="one campaign per row of a CSV file; prints one JSON object")
    batch.add_argument("csv", metavar="SHEET",
                       help="a CSV (UTF-8, CP949 as Korean Excel saves it, or UTF-16; comma, semicolon or tab) or an "
                            ".xlsx file, one product a row; columns: " + ", ".join(CSV_COLUMNS) + " or their Korean "
                            "names (이름, 카테고리, 특징, 타깃, 장면, 색상, 문구, 보조 문구, 이미지); only name is "
                            "required; image: a path, relative to the sheet's folder")
    batch.add_argument("--sheet", help="with an .xlsx file: the worksheet's name (default: the first)")
    for flag, text in (("--preset", "style preset (see `presets`)"), ("--seed", "0..4294967295 (default: random)")):
        batch.add_argument(flag, default="photo" if flag == "--preset" else None, help=text)
    batch.add_argument("--same-scene", action="store_true", help="variants vary by seed only, not by scene")
    _campaign_flags(batch)

    write = commands.add_parser("write", help="ad copy, a scene prompt or scene variations from the loaded text "
                                             "encoder (no extra memory); prints one JSON object")
    _details_flags(write)
    write.add_argument("--job", required=True, choices=["copy", "prompt", "variations"],
                       help="copy: headline + sub-line suggestions in the details' language; prompt: one English "
                            "scene prompt; variations: distinct scenes")
    write.add_argument("--n", help="suggestions or scenes 1..8 (default 3; a prompt job writes one)")
    write.add_argument("--no-product-focus", action="store_true", help="allow people in prompts and scenes")
    _run_flags(write)

    from .cli_check import add_check_parser

    add_check_parser(commands)
    chans = commands.add_parser("channels", help="list the channel formats by platform (sizes, safe zones, rules)")
    chans.add_argument("--json", action="store_true")
    lst = commands.add_parser("presets", help="list the style presets")
    lst.add_argument("--json", action="store_true")
    demo = commands.add_parser("demo-model", help="write the embedded demo model to a folder (or, with --full-size, "
                                                  "ZIT's full architecture with random weights)")
    demo.add_argument("--out", help="a new or empty folder (required unless --full-size)")
    demo.add_argument("--full-size", action="store_true",
                      help="ZIT's real architecture with random weights (~20.5 GB in bf16): with --out, write it; "
                           "without, build it on --device and report (a smoke test)")
    demo.add_argument("--dry-run", action="store_true", help="with --full-size: print the parameter counts only")
    demo.add_argument("--device", default=None, help="with --full-size: where to build (default: cuda when available)")
    demo.add_argument("--dtype", choices=["bfloat16", "float32"],
                      help="with --full-size: the weights' dtype (default bfloat16, ZIT's)")
    mem = commands.add_parser("memory", help="each memory mode's forecast peak VRAM for a model, size and "
                                             "quantization, and which fit a card of N GB (nothing is loaded)")
    mem.add_argument("--model", help="auto (default), demo, synthetic, a local folder or a repo id; synthetic and "
                                     "Z-Image-Turbo give full-size ZIT's figures")
    mem.add_argument("--size", default="1024x1024", help="WIDTHxHEIGHT (default 1024x1024)")
    mem.add_argument("--quantize", default=None, help="auto (default: what auto picks on --gpu-gb), none, fp8, int8")
    mem.add_argument("--gpu-gb", default=None, help="a card's memory in GB, e.g. 24: which modes fit it")
    mem.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16",
                     help="the run dtype (default bfloat16, a GPU's)")
    mem.add_argument("--json", action="store_true")
    dl = commands.add_parser("download", help="fetch Z-Image-Turbo, the presets' hub LoRAs and the segmentation "
                                              "model (needs internet)")
    dl.add_argument("--repo", default=None, help="model repo (default Tongyi-MAI/Z-Image-Turbo)")
    dl.add_argument("--segment", action="store_true",
                    help="fetch only the segmentation model (BiRefNet ONNX, MIT): cuts products off any backdrop")
    return parser


def _product_flags(parser: argparse.ArgumentParser) -> None:
    _details_flags(parser)
    parser.add_argument("--same-scene", action="store_true",
                        help="images/variants vary by seed only (default: each uses the style's next scene variation)")
    parser.add_argument("--image", help="product photo (PNG/JPEG/WebP/HEIC/AVIF; transparent, a plain backdrop, "
                                        "or any backdrop with the segmentation model: see docs/photos.md)")
    parser.add_argument("--mask", help="with --image: your product mask instead of the automatic cutout, the photo's "
                                       "size or a scaled copy (an image; white = product, black = backdrop)")


def _details_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--product", required=True, help="product name (Korean or English)")
    parser.add_argument("--category", default="")
    parser.add_argument("--features", default="", help='key features, comma-separated: "a, b"')
    parser.add_argument("--audience", default="", help="target audience")
    parser.add_argument("--scene", default="", help="scene / mood")
    parser.add_argument("--colors", default="", help="brand colours in words (default: a brand's colours)")
    parser.add_argument("--copy", default="", help="ad copy (headline)")
    parser.add_argument("--preset", default="photo", help="style preset (see `presets`)")
    parser.add_argument("--seed", help="0..4294967295 (default: random, reported)")


def _ad_flags(parser: argparse.ArgumentParser) -> None:
    """The ad's layout and brand flags; they default to None, so a flag the user gave is told from a default."""
    parser.add_argument("--subcopy", help="ad copy's second, smaller line")
    parser.add_argument("--text-style", help="with copy: extrude_3d (default), gold, neon, outline")
    parser.add_argument("--background", help="with --image: inpaint (default: repaint around the product), t2i (a "
                                             "scene, composited) or packshot (no model: studio backdrop)")
    parser.add_argument("--packshot", help="with --background packshot: gradient (default), color or white")
    parser.add_argument("--brand", help="a brand kit in presets/brands (logo, colours, font)")
    parser.add_argument("--logo", help="brand logo (PNG/JPEG/WebP), placed in a corner clear of product and copy")
    parser.add_argument("--brand-colors", help='brand colours, hex: "#FF6600,#1A1A1A" (main first)')
    parser.add_argument("--font", help="brand font for the copy (TTF/OTF)")


def _run_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="auto (default), demo, synthetic (ZIT's full-size shapes, random weights), "
                        "a local folder or a Hugging Face repo id")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the result cache")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars (shown on stderr only when it is a terminal); warnings still print")
    add_runtime_flags(parser)


def _campaign_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--channels", required=True, help="channel ids, comma-separated (see `channels`)")
    parser.add_argument("--variants", default="1", help="variants 1..8 per channel: seed + v, scene variation v")
    _ad_flags(parser)
    parser.add_argument("--text-position", help="with copy: top (default) or bottom of the channel's layout")
    parser.add_argument("--out", required=True, help="folder for CHANNEL-vN.png and manifest.json")
    parser.add_argument("--zip", action="store_true", help="also write campaign.zip holding exactly those files")
    _run_flags(parser)


def cmd_generate(args: argparse.Namespace) -> dict:
    from .ad import AdMaker
    from .cache import write_atomic
    from .images import read_image_file
    from .request import AdRequest, Product, aspect_size, parse_size

    # 1. check every input before anything is loaded or written
    product = Product(name=args.product, category=args.category, features=args.features, audience=args.audience,
                      scene=args.scene, colors=args.colors, copy=args.copy)
    width = height = None
    if args.size:
        width, height = parse_size(args.size)
    elif args.aspect:
        width, height = aspect_size(args.aspect)
    image = read_image_file(args.image, "product photo") if args.image else None
    mask = _read_mask(args.mask, image) if args.mask else None
    request = AdRequest(product=product, preset=args.preset, lora_scale=args.lora_scale, prompt=args.prompt,
                        product_focus=not args.no_product_focus, seed=args.seed, width=width, height=height,
                        steps=args.steps, count=args.count, image=image, same_scene=args.same_scene)
    spec, warnings = _ad_spec(args, request, mask)
    _check_writer_flags(args)
    out = Path(args.out)
    _check_out(out)
    # 2. generate (the engine checks the preset and its LoRA before any work)
    engine = _engine(args)
    writer: dict = {}
    with _Bars(engine, show=not args.quiet and sys.stderr.isatty()) as bars:
        if args.warmup:
            engine.warmup()
        if args.enhance or args.write_scenes:
            request, writer, more = _written(engine, args, request, request.count, spec)
            warnings += more
            spec = dataclasses.replace(spec, request=request) if spec is not None else None
        if spec is None:
            result = engine.generate(request, progress=bars, use_cache=not args.no_cache)
        else:
            result = AdMaker(engine).make(spec, progress=bars, use_cache=not args.no_cache)
    # 3. write the PNGs (atomically; intermediates beside the final ad) and report
    report: dict = {"images": [], "seeds": [], "cached": []}
    try:
        out.mkdir(parents=True, exist_ok=True)
        for item in result.images:
            written = {}
            for step, data in item.files.items():
                write_atomic(out / item.file_name(step), data)
                written[step] = str(out / item.file_name(step))
            report["images"].append(written.pop("final"))
            report["seeds"].append(item.seed)
            report["cached"].append(item.cached)
            if spec is not None:
                report.setdefault("steps", []).append(written)
    except OSError as exc:  # checked before the work, but the disk can fill or change meanwhile
        raise InputError("out", f"cannot write to {out}: {exc.strerror or exc}") from None
    report.update(prompt=result.prompt, model=result.model, seconds=round(result.seconds, 3), **writer)
    if getattr(engine, "notice", ""):  # a fallback the engine took (quantization, download, ZeroGPU compile)
        warnings.append(engine.notice)
    for warning in [*warnings, *result.warnings]:  # only now: a run that fails says one thing, its error
        print(line("warning", warning), file=sys.stderr)
    return report


def _check_writer_flags(args: argparse.Namespace) -> None:
    """Writer flags that would contradict the others are refused before any work."""
    if getattr(args, "enhance", False) and args.prompt:
        raise InputError("prompt", "--enhance writes the prompt; give --prompt or --enhance, not both")
    if args.write_scenes and getattr(args, "prompt", None):
        raise InputError("prompt", "--write-scenes writes scenes for the built prompt, which --prompt replaces; "
                         "give one")
    if args.write_scenes and args.same_scene:
        raise InputError("same scene", "--same-scene keeps one scene, --write-scenes writes one per image; give one")


def _written(engine, args: argparse.Namespace, request: AdRequest, n: int,
             spec: AdSpec | None) -> tuple[AdRequest, dict, list[str]]:
    """`request` with the writer's prompt (--enhance) and scenes (--write-scenes); what was written; warnings."""
    from .prompts import writes_scenes
    from .writer import enhance, with_scenes

    if not writes_scenes(request, spec.background if spec is not None else None):  # --prompt with them is refused
        return request, {}, ["--enhance and --write-scenes do nothing with --background packshot (no model runs)"]
    report, warnings = {}, []
    for flag, job, wanted in (("--enhance", "prompt", getattr(args, "enhance", False)),
                              ("--write-scenes", "variations", getattr(args, "write_scenes", False))):
        if not wanted:
            continue
        use_cache = not args.no_cache
        request, written = enhance(engine, request, use_cache=use_cache) if job == "prompt" else \
            with_scenes(engine, request, n, use_cache=use_cache)
        report["seconds_writing"] = round(report.get("seconds_writing", 0) + written.seconds, 3)
        report[f"written_{job}"] = written.to_json()
        if not written.usable:
            warnings.append(f"{flag}: the writer {written.reason}"
                            + (" (the demo model's text is random)" if written.demo else "")
                            + ("; the template prompt stays in use" if job == "prompt" else
                               "; the style's own scene variations stay in use"))
    return request, report, warnings


@dataclasses.dataclass(frozen=True)
class _Layout:
    """The layout flags' files, read and checked once (a batch's rows share them): the brand and the copy styles."""

    brand: object  # Brand | None
    styles: dict


def _layout_of(args: argparse.Namespace) -> _Layout:
    from .brand import brand_of
    from .typography import check_text_style, load_text_styles

    if args.brand and (args.logo or args.font or args.brand_colors):
        raise InputError("brand", "give --brand NAME, or --logo/--brand-colors/--font for an ad hoc brand, not both")
    brand = brand_of(args.brand, args.logo, args.brand_colors, args.font)
    styles = load_text_styles()
    if args.text_style:
        check_text_style(args.text_style, styles)
    return _Layout(brand, styles)


def _ad_spec(args: argparse.Namespace, request: AdRequest, mask: bytes | None, campaign: bool = False,
             layout: _Layout | None = None) -> tuple[AdSpec | None, list[str]]:
    """The ad's layout from the flags (None for a plain image) and warnings for the flags that do nothing here.

    Every layout flag given is checked, used or not: a typo is an error even where it would be ignored.
    """
    from .ad import AdSpec
    from .typography import check_text_style

    layout = layout or _layout_of(args)
    brand, styles = layout.brand, layout.styles
    given = {name: value for name, value in (("subcopy", args.subcopy), ("text_style", args.text_style),
                                             ("text_position", args.text_position), ("background", args.background),
                                             ("packshot", args.packshot)) if value is not None}
    if brand is not None and brand.text_style and "text_style" not in given:
        given["text_style"] = check_text_style(brand.text_style, styles).name
    spec = AdSpec(request, **given, mask=mask, brand=brand)  # checks its fields; holds their defaults
    copy = bool(request.product.copy or spec.subcopy)
    warnings = [f"--{name.replace('_', '-')} has no effect without --copy or --subcopy"
                for name in ("text_style", "text_position") if name in given and not copy]
    if "background" in given and request.image is None:
        warnings.append("--background has no effect without --image")
    if "packshot" in given and spec.background != "packshot":
        warnings.append("--packshot has no effect without --background packshot")
    is_ad = campaign or copy or request.image is not None or brand is not None
    return (spec if is_ad else None), warnings


def _read_mask(path: str, photo: bytes | None) -> bytes:
    """The --mask file's bytes, refused unless it fits --image and marks some, but not all, of it as product."""
    from .images import decode_image, read_image_file

    if photo is None:
        raise InputError("product mask", "needs --image: it is the mask of the product photo")
    data = read_image_file(path, "product mask")
    mask, (width, height) = decode_image(data, "product mask"), decode_image(photo, "product photo").size
    # The cutout resizes the mask to the photo: a scaled copy is fine (up to rounding), another shape would stretch.
    if abs(mask.width * height - mask.height * width) > max(width, height):
        raise InputError("product mask", f"is {mask.width}x{mask.height} but the --image photo is {width}x{height}; "
                                         "the mask must have the photo's size (or be a scaled copy of it)")
    # Thresholded as the cutout does (compose.product_mask): an all-white mask would "cut out" the whole photo.
    low, high = mask.convert("L").point(lambda a: 255 if a >= 128 else 0).getextrema()
    if low == high:
        raise InputError("product mask", f"marks {'the whole photo' if low else 'nothing'} as product, no usable "
                                         "mask: paint the product white on black")
    return data


class _Bars:
    """Progress bars on stderr: model download/loading while the engine does it, then the denoising steps.

    Called as the generation's progress: (steps done, steps in all) over the whole request. The engine loads
    lazily (a run served from the cache never loads), so a thread watches its state rather than loading first.
    """

    def __init__(self, engine, show: bool, what: tuple[str, str] = ("cli_denoising", "cli_step")):
        self.engine, self.show, self.what = engine, show, (label(what[0]), label(what[1]))  # locale keys
        self._loading = self._steps = None
        self._loads, self._said_loading = getattr(engine, "loads", 0), False  # a load too quick to be seen polling
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="adgen-bars", daemon=True)

    def __enter__(self) -> _Bars:
        if self.show:
            self._watcher.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.show:
            self._done.set()
            self._watcher.join()
            for bar in (self._loading, self._steps):
                if bar is not None:
                    bar.close()

    def _watch(self) -> None:
        from tqdm import tqdm

        while not self._done.wait(0.1):
            download = self.engine.download
            downloading = download is not None and download.state == "downloading"
            with self._lock:
                if not (downloading or self.engine.state == "loading"):
                    if self._loading is not None:
                        self._loading.close()
                        self._loading = None
                    continue
                text = download.line() if downloading else label("cli_loading") + f" {self.engine.source.label}"
                if self._loading is None and self._steps is None:
                    self._loading = tqdm(desc=text, bar_format="{desc} {elapsed}", file=sys.stderr, **_screen())
                    self._said_loading = True
                elif self._loading is not None:
                    self._loading.set_description_str(text)  # redraws the elapsed time too

    def __call__(self, done: int, total: int) -> None:
        if not self.show:
            return
        from tqdm import tqdm

        with self._lock:
            if self._steps is None and not self._said_loading and getattr(self.engine, "loads", 0) > self._loads:
                self._loading = tqdm(desc=label("cli_loading") + f" {self.engine.source.label}",  # loaded between
                                     bar_format="{desc} {elapsed}", file=sys.stderr, **_screen())  # two looks
            if self._loading is not None:
                self._loading.close()
                self._loading = None
            if self._steps is None:
                self._steps = tqdm(total=total, desc=self.what[0], unit=self.what[1], file=sys.stderr, **_screen())
            self._steps.total = total
            self._steps.update(done - self._steps.n)


def _screen() -> dict:
    """tqdm's screen size: measured by tqdm, or 80x24 where the terminal reports 0x0 (tqdm would draw nothing)."""
    try:
        return {} if os.get_terminal_size(sys.stderr.fileno()).columns else {"ncols": 80, "nrows": 24}
    except (OSError, ValueError):
        return {"ncols": 80, "nrows": 24}


def _check_out(out: Path) -> None:
    """Refuse an output folder that can't be created or written, before any model work; creates nothing."""
    if out.exists():
        if not out.is_dir():
            raise InputError("out", f"{out} exists and is not a folder")
        if not os.access(out, os.W_OK | os.X_OK):
            raise InputError("out", f"{out} is not writable")
        return
    ancestor = next(parent for parent in out.absolute().parents if parent.exists())  # "/" always does
    if not ancestor.is_dir():
        raise InputError("out", f"cannot create {out}: {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError("out", f"cannot create {out}: {ancestor} is not writable")


CSV_COLUMNS = ("name", "category", "features", "audience", "scene", "colors", "copy", "subcopy", "image")
# Other header names a sheet may use (case, spaces and underscores ignored): Korean sheets name their columns so.
COLUMN_ALIASES = {
    "이름": "name", "제품명": "name", "상품명": "name", "product": "name", "productname": "name",
    "카테고리": "category", "분류": "category", "특징": "features", "주요특징": "features", "타깃": "audience",
    "타겟": "audience", "대상": "audience", "장면": "scene", "분위기": "scene", "장면/분위기": "scene",
    "색상": "colors", "브랜드색상": "colors", "colours": "colors", "문구": "copy", "광고문구": "copy", "카피": "copy",
    "보조문구": "subcopy", "서브문구": "subcopy", "이미지": "image", "사진": "image", "photo": "image",
}
# The column a field's error belongs to (the CSV's columns are named after the product flags).
COLUMNS = {"product name": "name", "category": "category", "key features": "features", "target audience": "audience",
           "scene/mood": "scene", "brand colours": "colors", "ad copy": "copy", "sub-copy": "subcopy",
           "product photo": "image", "product mask": "image"}


@dataclasses.dataclass(frozen=True)
class _CampaignInputs:
    """What a campaign's flags give every row, read and checked once: channels, variants and the layout's files."""

    channels: list
    variants: int
    layout: _Layout


def _campaign_inputs(args: argparse.Namespace) -> _CampaignInputs:
    from .campaign import check_variants
    from .channels import get_channels, load_channels

    channels = get_channels(args.channels, load_channels())
    return _CampaignInputs(channels, check_variants(args.variants), _layout_of(args))


def _campaign_of(args: argparse.Namespace, flags: _CampaignInputs, row: dict | None = None, base: Path | None = None):
    """(spec, warnings) of one campaign: the flags, with a CSV `row`'s product columns; every channel's needs met."""
    from .campaign import check_campaign
    from .images import read_image_file
    from .request import AdRequest, Product

    values = row if row is not None else {
        "name": args.product, "category": args.category, "features": args.features, "audience": args.audience,
        "scene": args.scene, "colors": args.colors, "copy": args.copy, "subcopy": args.subcopy, "image": args.image}
    product = Product(name=values.get("name") or "", category=values.get("category") or "",
                      features=values.get("features") or "", audience=values.get("audience") or "",
                      scene=values.get("scene") or "", colors=values.get("colors") or "", copy=values.get("copy") or "")
    image_path = values.get("image") or None
    if image_path and base is not None and not Path(image_path).is_absolute():
        image_path = str(base / image_path)
    image = read_image_file(image_path, "product photo") if image_path else None
    mask = _read_mask(args.mask, image) if getattr(args, "mask", None) else None
    request = AdRequest(product=product, preset=args.preset, seed=args.seed, image=image, same_scene=args.same_scene)
    layout = argparse.Namespace(**{**vars(args), "subcopy": values.get("subcopy") or args.subcopy})
    spec, warnings = _ad_spec(layout, request, mask, campaign=True, layout=flags.layout)
    check_campaign(spec, flags.channels, flags.variants)  # the campaign's one check: run_campaign trusts it
    return spec, warnings


_OPENED: list = []


def _engine(args: argparse.Namespace):
    """The engine the flags ask for: in this process, or Ray workers (`--workers N`, `--ray-address`)."""
    from .cache import default_cache
    from .models import quiet_libraries
    from .settings import make_engine

    quiet_libraries()
    engine = make_engine(args, cache=default_cache())
    if hasattr(engine, "close"):  # Ray workers: ended with the command (`main`), not left to the process's exit
        _OPENED.append(engine)
    return engine


def cmd_campaign(args: argparse.Namespace) -> tuple[dict, int]:
    import time

    from .ad import AdMaker
    from .campaign import run_campaign, write_campaign

    start = time.perf_counter()
    flags = _campaign_inputs(args)  # 1. every input checked before any work
    channels, variants = flags.channels, flags.variants
    spec, warnings = _campaign_of(args, flags)
    _check_writer_flags(args)
    out = Path(args.out)
    _check_out(out)
    engine = _engine(args)  # 2. make, 3. write
    writer: dict = {}
    with _Bars(engine, show=not args.quiet and sys.stderr.isatty()) as bars:
        if args.warmup:
            engine.warmup()
        if args.write_scenes:
            request, writer, more = _written(engine, args, spec.request, variants, spec)
            warnings += more
            spec = dataclasses.replace(spec, request=request)
        result = run_campaign(AdMaker(engine), spec, channels, variants, bars, use_cache=not args.no_cache)
    report = {**write_campaign(result, spec, channels, out, args.zip), **writer}
    # a file that fails its platform's rules: said, and exit 1 (never shipped silently)
    failed = rule_warnings(report["checks"], report.pop("notes"))
    for note in result.notes:  # once: why a marketplace's files have no copy (their platform's rules)
        print(line("note", note), file=sys.stderr)
    for warning in [*warnings, *result.warnings, *failed]:
        print(line("warning", warning), file=sys.stderr)
    return {**report, "seconds": round(time.perf_counter() - start, 3)}, 1 if failed else 0


class BatchFileError(AdgenError):
    """The CSV file itself can't be used (exit 2)."""


def read_batch(path: Path, sheet: str | None = None) -> list[tuple[int, dict]]:
    """The rows of a batch sheet (CSV in UTF-8/CP949/UTF-16, or .xlsx; sheets.py) as (row number as a spreadsheet
    shows it, values by column); header is row 1, in English or Korean (COLUMN_ALIASES)."""
    from .sheets import SheetError, read_sheet

    try:
        return read_sheet(path, CSV_COLUMNS, COLUMN_ALIASES, ("name",), sheet)
    except SheetError as exc:
        raise BatchFileError(str(exc)) from None


def cmd_batch(args: argparse.Namespace) -> tuple[dict, int]:
    """One campaign per CSV row into OUT/ROW-NAME/; a bad row is reported and skipped, the others finish."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from tqdm import tqdm

    from .ad import AdMaker
    from .campaign import run_campaign, slug, write_campaign
    from .settings import worker_flags

    start = time.perf_counter()
    path = Path(args.csv)
    rows = read_batch(path, args.sheet)
    flags = _campaign_inputs(args)  # the flags' own inputs and files: once, before any row (exit 2)
    out = Path(args.out)
    _check_out(out)
    made: dict = {}  # the engine and its AdMaker, made at the first row whose inputs are good
    notes: dict = {}  # the rows' notes, each said once for the whole batch
    lock = threading.Lock()

    def maker_() -> AdMaker:
        with lock:
            if "maker" not in made:
                made["maker"] = AdMaker(_engine(args))
            return made["maker"]

    def run(number: int, values: dict) -> tuple[dict | None, dict | None]:
        """(the row's report, None), or (None, its error) after saying it on stderr."""
        try:
            if "_extra" in values:
                raise InputError("row", f"has more cells than the header has columns ({len(values) - 1})")
            spec, _ = _campaign_of(args, flags, values, path.parent)
            result = run_campaign(maker_(), spec, flags.channels, flags.variants, use_cache=not args.no_cache)
            folder = out / f"row{number:03d}-{slug(spec.request.product.name)}"
            report = write_campaign(result, spec, flags.channels, folder, args.zip)
            report["warnings"] = rule_warnings(report["checks"], report.pop("notes"))  # files failing their rules
            with lock:
                notes.update(dict.fromkeys(result.notes))
            for warning in report["warnings"]:
                tqdm.write(line("warning", f"row {number}: {warning}"), file=sys.stderr)
            return {"row": number, "name": spec.request.product.name, **report}, None
        except InputError as exc:
            column = COLUMNS.get(exc.field)
            flag = FLAGS.get(exc.field, exc.field)
            where = f'row {number}, column "{column}"' if column else f"row {number}, {flag}"
            message = f"{where}: {str(exc).removeprefix(exc.field + ': ')}"
        except (AdgenError, OSError) as exc:
            message = f"row {number}: {exc}"
        tqdm.write(line("error", message), file=sys.stderr)
        return None, {"row": number, "error": message}

    # One pool: one row at a time in-process; with Ray workers (--workers, --ray-address) one row per worker.
    parallel = 1 if worker_flags(args) is None else maker_().engine.parallel
    # the bar only on a terminal: in a log file it would be a line per row of carriage returns
    with tqdm(total=len(rows), desc=label("cli_rows"), unit=label("cli_row"), file=sys.stderr,
              disable=args.quiet or not sys.stderr.isatty(), **_screen()) as bar, \
            ThreadPoolExecutor(max(parallel, 1), thread_name_prefix="adgen-batch") as pool:
        futures = [pool.submit(run, number, values) for number, values in rows]
        try:
            for _ in as_completed(futures):
                bar.update(1)
        except KeyboardInterrupt:  # Ctrl-C: rows in flight end at their next step, the others never start
            pool.shutdown(wait=False, cancel_futures=True)
            if "maker" in made:
                made["maker"].engine.jobs.stop_all()
            raise
        outcomes = [future.result() for future in futures]  # in row order
    for note in notes:
        print(line("note", note), file=sys.stderr)
    done = [report for report, _ in outcomes if report is not None]
    failed = [error for _, error in outcomes if error is not None]
    if failed:
        print(line("error", f"{len(failed)} of {len(rows)} rows failed: rows "
                            f"{', '.join(str(f['row']) for f in failed)}"), file=sys.stderr)
    report = {"rows": done, "failed": failed, "seconds": round(time.perf_counter() - start, 3)}
    return report, 1 if failed or any(row["warnings"] for row in done) else 0


def cmd_write(args: argparse.Namespace) -> tuple[dict, int]:
    """One writer job; exit 1 (with the JSON, "usable": false) when no usable text was written."""
    from .request import Product
    from .writer import WriteRequest

    product = Product(name=args.product, category=args.category, features=args.features, audience=args.audience,
                      scene=args.scene, colors=args.colors, copy=args.copy)
    request = WriteRequest(product, job=args.job, n=args.n, seed=args.seed, preset=args.preset,
                           product_focus=not args.no_product_focus)
    from .presets import get_preset, load_presets

    get_preset(load_presets(), request.preset)  # a bad style is said before the model loads (or Ray starts)
    engine = _engine(args)
    with _Bars(engine, show=not args.quiet and sys.stderr.isatty(), what=("cli_writing", "cli_token")) as bars:
        written = engine.write(request, progress=bars, use_cache=not args.no_cache)
    if not written.usable:
        print(line("warning", f"the writer {written.reason}" + (" (the demo model's text is random)"
                                                                 if written.demo else "")), file=sys.stderr)
    return written.to_json(), 0 if written.usable else 1


def cmd_channels(args: argparse.Namespace) -> dict | None:
    from .channels import by_platform, load_channels
    from .cli_text import rules_summary

    channels = load_channels()
    if args.json:
        return {c.id: {**c.model_dump(exclude={"id"}, by_alias=True), "generation_size": list(c.generation_size)}
                for c in channels.values()}
    lang = cli_lang()
    for platform, group in by_platform(channels).items():  # grouped by platform, in the channels' order
        print(group[0].platform_ko if lang == "ko" else platform)
        for c in group:
            safe = c.safe_zone
            zone = (f"safe t{safe.top:g} r{safe.right:g} b{safe.bottom:g} l{safe.left:g}"
                    if any((safe.top, safe.right, safe.bottom, safe.left)) else "")
            size = f"{c.width}x{c.height}"
            gen = "x".join(map(str, c.generation_size))
            label = c.label_ko if lang == "ko" else c.label
            print(f"  {c.id:24} {size:>9}  gen {gen:>9}  {label:30} {' '.join(filter(None, [zone, rules_summary(c)]))}")
    return None


def _cmd_check(args: argparse.Namespace) -> tuple[dict, int]:
    from .cli_check import cmd_check

    report, code, warnings = cmd_check(args)
    for warning in warnings:
        print(line("warning", warning), file=sys.stderr)
    return report, code


def cmd_presets(args: argparse.Namespace) -> dict | None:
    from .presets import load_presets

    presets = load_presets()
    if args.json:
        return {name: p.model_dump(exclude={"kind"}) for name, p in presets.items()}
    for p in presets.values():
        lora = f"LoRA {p.lora.file or p.lora.repo} x{p.lora.scale}" if p.lora else "no LoRA"
        print(f"{p.name:16} {p.label:16} {lora:34} {p.description}")
    return None


def cmd_demo_model(args: argparse.Namespace) -> dict:
    from .models import quiet_libraries

    # 1. check the flags before anything is built or written
    if not args.full_size:
        for flag, given in (("--dry-run", args.dry_run), ("--device", args.device), ("--dtype", args.dtype)):
            if given:
                raise InputError(flag, "only applies with --full-size")
        if not args.out:
            raise InputError("out", "is required: a new or empty folder for the demo model (or pass --full-size)")
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError("out", f"{out} must be a new or empty folder")
    if args.full_size and args.dry_run and out is not None:
        raise InputError("--dry-run", "writes nothing; drop --out or --dry-run")
    quiet_libraries()
    if not args.full_size:
        from .demo_model import build_demo_model

        build_demo_model(out)
        return {"model": str(out), "load_with": f"ZImagePipeline.from_pretrained({str(out)!r})"}
    # 2. the full-size synthetic ZIT: counted on meta, written to --out, or built on the device
    from . import synthetic

    if args.dry_run:
        return synthetic.parameter_counts()
    device, dtype = _full_size_device(args.device), args.dtype or "bfloat16"
    need, free = synthetic.footprint_full_size(dtype).weights, synthetic.free_memory(device)
    if free is not None and need > free:  # refused here rather than killed by the OOM killer halfway
        raise InputError("--device", f"the full-size model in {dtype} needs ~{need / 1e9:.1f} GB on {device}; "
                                     f"only {free / 1e9:.1f} GB is free")
    if out is not None:
        print(line("warning", f"writing ~{need / 1e9:.1f} GB ({dtype}) to {out}; building it needs as much memory "
                              f"on {device}"), file=sys.stderr)
        synthetic.save_full_size(out, dtype, device)
        return {"model": str(out), "label": synthetic.FULL_SIZE_LABEL, "parameters": synthetic.parameter_counts(),
                "load_with": f"ZImagePipeline.from_pretrained({str(out)!r})"}
    return synthetic.smoke_build(device, dtype)


def _full_size_device(name: str | None) -> str:
    """The --device for a full-size build: a valid torch device that exists here (default cuda when available)."""
    import torch

    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError("--device", f"must be cpu, cuda or cuda:N (got {name!r})") from None
    if device.type not in ("cpu", "cuda"):
        raise InputError("--device", f"must be cpu, cuda or cuda:N (got {name!r})")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device", f"{name} was asked for but this machine has no CUDA GPU; use cpu")
    return name


def cmd_memory(args: argparse.Namespace) -> dict | None:
    import torch

    from .models import quiet_libraries
    from .request import parse_size
    from .sizing import check_gb, report, text

    quiet_libraries()
    width, height = parse_size(args.size)
    figures = report(args.model, width, height, args.quantize, check_gb(args.gpu_gb), getattr(torch, args.dtype))
    if args.json:
        return figures
    print(text(figures))
    return None


def cmd_download(args: argparse.Namespace) -> dict:
    from .models import ZIT_REPO, Download, download_model, hub_lora
    from .presets import load_presets
    from .segment import download_segment_model

    if args.segment:
        return {"segment_model": str(download_segment_model())}
    repo = args.repo or ZIT_REPO
    path = download_model(repo, Download(repo, echo=True))  # progress bars on stderr
    loras = [str(hub_lora(p.lora.repo, p.lora.weight_name or "")) for p in load_presets().values()
             if p.lora and p.lora.repo]
    try:
        segment = str(download_segment_model())
    except ModelError as exc:  # the model and LoRAs are there: said, not lost
        print(line("warning", f"segment model: {exc}"), file=sys.stderr)
        segment = None
    return {"model": str(path), "loras": loras, "segment_model": segment}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = {"generate": cmd_generate, "presets": cmd_presets, "demo-model": cmd_demo_model,
               "download": cmd_download, "campaign": cmd_campaign, "batch": cmd_batch,
               "channels": cmd_channels, "write": cmd_write, "check": _cmd_check,
               "memory": cmd_memory}[args.command]
    code = 0
    try:
        if hasattr(args, "workers"):  # --workers is checked before any input is read or any model loads
            from .settings import worker_flags

            worker_flags(args)
        report = command(args)
        if isinstance(report, tuple):  # batch: (report, exit status)
            report, code = report
    except InputError as exc:
        flag = FLAGS.get(exc.field, exc.field)
        print(line("error", f"{flag}: {str(exc).removeprefix(exc.field + ': ')}"), file=sys.stderr)
        return 2
    except (PresetError, ModelError, BatchFileError) as exc:
        print(line("error", str(exc)), file=sys.stderr)
        return 2
    except AdgenError as exc:
        print(line("error", str(exc)), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(line("error", "interrupted"), file=sys.stderr)
        return 130
    finally:
        while _OPENED:
            _OPENED.pop().close()
    if report is not None:
        print(json.dumps(report, ensure_ascii=False))
    return code


if __name__ == "__main__":
    sys.exit(main())
