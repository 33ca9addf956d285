"""Which model to load (real ZIT when present, else the embedded demo) and its fingerprint."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from .demo_model import DEMO_LABEL, ensure_demo_model, is_demo_model
from .errors import ModelError

ZIT_REPO = "Tongyi-MAI/Z-Image-Turbo"
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_FULL_HASH_LIMIT = 64 * 1024 * 1024  # hash whole files up to this; larger ones by size + ends
_lora_hashes: dict[tuple[str, int, int], str] = {}

HOW_TO_GET_WEIGHTS = (
    f"run `python -m adgen download` on a machine with internet (about 33 GB into the Hugging Face cache), "
    f"or copy a downloaded {ZIT_REPO} folder here and pass --model PATH; `--model demo` runs the embedded demo model"
)


def cache_dir() -> Path:
    """AdGen's cache folder: $ADGEN_CACHE_DIR, else the user cache dir."""
    return Path(os.environ.get("ADGEN_CACHE_DIR") or platformdirs.user_cache_dir("adgen")).expanduser()


@dataclass(frozen=True)
class ModelSource:
    """A resolved model: a local folder to load, or a repo id for from_pretrained to download."""

    spec: str
    label: str
    path: Path | None
    repo_id: str | None = None

    @property
    def is_demo(self) -> bool:
        return self.path is not None and is_demo_model(self.path)


def resolve_model(spec: str | Path | None = None, cache: Path | None = None) -> ModelSource:
    """`auto` (default; $ADGEN_MODEL), `demo`, a local folder, or a Hugging Face repo id."""
    spec = str(spec or os.environ.get("ADGEN_MODEL") or "auto").strip()
    cache = cache or cache_dir()
    if spec in ("auto", "demo"):
        local = cached_snapshot(ZIT_REPO) if spec == "auto" else None
        if local:
            return ModelSource(spec, ZIT_REPO, local)
        return ModelSource(spec, DEMO_LABEL, ensure_demo_model(cache))
    path = Path(spec).expanduser()
    if path.exists() or spec.startswith((".", "/", "~")):
        if not (path / "model_index.json").is_file():
            raise ModelError(f"model: {spec} is not a diffusers pipeline folder (no model_index.json in it)")
        return ModelSource(spec, DEMO_LABEL if is_demo_model(path) else str(path), path.resolve())
    if not _REPO_ID.fullmatch(spec):
        raise ModelError(f"model: {spec!r} is neither 'auto', 'demo', a local folder nor a repo id like {ZIT_REPO}")
    local = cached_snapshot(spec)
    return ModelSource(spec, spec, local, repo_id=None if local else spec)


def cached_snapshot(repo_id: str) -> Path | None:
    """The local snapshot of `repo_id` in the Hugging Face cache, never downloading; None if absent."""
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached (LocalEntryNotFoundError and friends)
        return None
    return path if (path / "model_index.json").is_file() else None


def download_model(repo_id: str) -> Path:
    """Fetch the files `from_pretrained` needs (network); a clear ModelError offline."""
    from diffusers import DiffusionPipeline

    try:
        return Path(DiffusionPipeline.download(repo_id))
    except Exception as exc:
        raise ModelError(f"model: cannot download {repo_id} ({exc.__class__.__name__}); {HOW_TO_GET_WEIGHTS}") from None


def fingerprint(folder: Path) -> str:
    """A hash of a pipeline folder's configs and weights, so a changed model never hits old cache entries.

    Files in the Hugging Face cache are links to blobs named by their content hash: that name is used.
    Other files are hashed whole up to 64 MB, larger ones by size, mtime and their first and last MB.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and _counts(p.relative_to(folder))):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + _file_id(path).encode() + b"\n")
    return digest.hexdigest()


def _counts(relative: Path) -> bool:
    return not any(part.startswith(".") for part in relative.parts) and relative.parts[0] != "loras" \
        and relative.suffix != ".md"


def _file_id(path: Path) -> str:
    if path.is_symlink():
        target = Path(os.readlink(path))
        if target.parent.name == "blobs":
            return "blob:" + target.name
    stat = path.stat()
    if stat.st_size <= _FULL_HASH_LIMIT:
        return "sha256:" + _sha256(path)
    digest = hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
        handle.seek(-(1 << 20), os.SEEK_END)
        digest.update(handle.read(1 << 20))
    return "sampled:" + digest.hexdigest()


def lora_fingerprint(path: Path) -> str:
    """sha256 of a LoRA file, remembered per (path, size, mtime)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _lora_hashes:
        _lora_hashes[key] = _sha256(path)
    return _lora_hashes[key]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hub_lora(repo: str, weight_name: str) -> Path:
    """A hub LoRA file from the local cache, downloading it only when missing."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo, weight_name, local_files_only=True))
    except Exception:
        pass
    try:
        return Path(hf_hub_download(repo, weight_name))
    except Exception as exc:
        raise ModelError(f"lora: cannot get {weight_name} from {repo} ({exc.__class__.__name__}); "
                         "run `python -m adgen download` where there is network") from None


def quiet_libraries() -> None:
    """Silence diffusers/transformers progress bars and advice; for entry points (CLI, app), not import."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for module in (diffusers_logging, transformers_logging):
        module.set_verbosity_error()
        module.disable_progress_bar()
