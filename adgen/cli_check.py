"""`python -m adgen check FILE... --channel ID`: any image (AdGen's, or a seller's own photo) measured against a
platform's rules (rules.py), with the same report a campaign's files get; exit 1 when a rule fails."""

from __future__ import annotations

import argparse
from pathlib import Path

from .errors import InputError

MAX_CHECK_BYTES = 100 * 1024 * 1024  # far over any platform's limit: a larger file fails its byte rule unread


def add_check_parser(commands) -> None:
    check = commands.add_parser("check", help="measure image files against a channel's platform rules (size, format, "
                                              "bytes, white background, copy/logo, product fill); prints one JSON "
                                              "object; exit 1 when a rule fails")
    check.add_argument("files", nargs="+", metavar="FILE",
                       help="PNG or JPEG files (other formats fail the format rule)")
    check.add_argument("--channel", required=True, help="the channel whose rules apply (see `channels`)")


def cmd_check(args: argparse.Namespace) -> tuple[dict, int, list[str]]:
    """(the report, exit status, warning lines): each file's checks; a failed rule is a warning and exit 1."""
    from PIL import Image

    from .channels import get_channels, load_channels
    from .rules import check_image, failed

    channel = get_channels([args.channel], load_channels())[0]
    _heif_opener()
    datas = []
    for name in args.files:  # 1. every file read and decodable before any is judged
        path = Path(name)
        try:
            if path.stat().st_size > MAX_CHECK_BYTES:
                raise InputError("file", f"file is {path.stat().st_size / 2**20:.1f} MB; at most "
                                          f"{MAX_CHECK_BYTES // 2**20} MB allowed")
            data = path.read_bytes()
        except FileNotFoundError:
            raise InputError("file", f"file not found: {path}") from None
        except OSError as exc:
            raise InputError("file", f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            with Image.open(path) as image:
                image.load()  # a full decode: verify() passes a truncated JPEG
        except Exception:  # Pillow raises many kinds for a non-image
            raise InputError("file", f"{path} is not a readable image") from None
        datas.append((path, data))
    files, warnings = [], []
    for path, data in datas:  # 2. measured
        checks = check_image(data, channel.rules, channel.size)
        files.append({"file": str(path), "checks": [c.to_json() for c in checks], "passed": not failed(checks)})
        warnings += [f"{path.name}: {c.rule} {c.measured} (allowed: {c.allowed})" for c in failed(checks)]
    report = {"channel": channel.id, "files": files}
    return report, 1 if warnings else 0, warnings


def _heif_opener() -> None:
    """iPhone photos (HEIC) open too, to be judged (they fail a platform's JPG/PNG rule, with their size measured)."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return
    register_heif_opener()
