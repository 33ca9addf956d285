"""Which model to load (real ZIT when present, else the embedded demo) and its fingerprint.

On a machine with a CUDA GPU, `auto` downloads ZIT when it is not cached (a fresh GPU Space must
serve ZIT, not noise); on a CPU it stays with the demo model. A download that fails falls back to
the demo model *visibly*: the engine says why in the panel and the log.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .demo_model import DEMO_LABEL, ensure_demo_model, is_demo_model
from .errors import ModelError, first_line
from .paths import cache_dir

log = logging.getLogger("adgen.models")
ZIT_REPO = "Tongyi-MAI/Z-Image-Turbo"
SYNTHETIC = "synthetic"  # the full-size synthetic ZIT (adgen/synthetic.py): real shapes, random weights
# Weight files that unpickle (and so can run code) when loaded: AdGen never loads them.
PICKLED = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
# Not needed to run the pipeline: pickled twins of the safetensors, other frameworks' weights.
DOWNLOAD_IGNORE = [f"*{suffix}" for suffix in PICKLED] + ["*.msgpack", "*.h5", "*.onnx", "*.onnx_data"]
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_FULL_HASH_LIMIT = 64 * 1024 * 1024  # hash whole files up to this; larger ones by size + ends
_lora_hashes: dict[tuple[str, int, int], str] = {}

HOW_TO_GET_WEIGHTS = (
    f"run `python -m adgen download` on a machine with internet (about 33 GB into the Hugging Face cache), "
    f"or copy a downloaded {ZIT_REPO} folder here and pass --model PATH; `--model demo` runs the embedded demo model"
)


@dataclass(frozen=True)
class ModelSource:
    """A resolved model: a local folder to load, or a repo id for from_pretrained to download."""

    spec: str
    label: str
    path: Path | None
    repo_id: str | None = None
    fallback: bool = False  # `auto` on a GPU: if the download fails, run the demo model (and say so)
    synthetic: bool = False  # built in memory at full size with random weights (no folder)

    @property
    def is_demo(self) -> bool:
        return self.synthetic or (self.path is not None and is_demo_model(self.path))


def resolve_model(spec: str | Path | None = None, cache: Path | None = None, download: bool = False) -> ModelSource:
    """`auto` (default; $ADGEN_MODEL), `demo`, `synthetic`, a local folder, or a Hugging Face repo id.

    `download`: `auto` may fetch ZIT when it is not cached (the engine passes True on a CUDA GPU).
    """
    spec = str(spec or os.environ.get("ADGEN_MODEL") or "auto").strip()
    cache = cache or cache_dir()
    if spec == SYNTHETIC:
        from .synthetic import FULL_SIZE_LABEL

        return ModelSource(spec, FULL_SIZE_LABEL, None, synthetic=True)
    if spec in ("auto", "demo"):
        local = cached_snapshot(ZIT_REPO) if spec == "auto" else None
        if local:
            return ModelSource(spec, ZIT_REPO, local)
        if spec == "auto" and download:
            return ModelSource(spec, ZIT_REPO, None, repo_id=ZIT_REPO, fallback=True)
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
        # the same files the download fetched: a snapshot without the repo's pickles is complete
        path = Path(snapshot_download(repo_id, local_files_only=True, ignore_patterns=DOWNLOAD_IGNORE))
    except Exception:  # not cached (LocalEntryNotFoundError and friends)
        return None
    return path if (path / "model_index.json").is_file() else None


class Download:
    """Progress of a model download, read lock-free by the panel: bytes done and in all, and a state line."""

    def __init__(self, repo_id: str, echo: bool = False):
        self.repo_id, self.done, self.total, self.state = repo_id, 0, 0, "waiting"
        self.echo = echo  # also draw the usual progress bars on stderr (the CLI's `download`)
        self._logged = -1

    def line(self) -> str:
        if self.state != "downloading":
            return f"download of {self.repo_id}: {self.state}"
        if self.total:
            return f"downloading {self.repo_id}: {self.done / 1e9:.1f} of {self.total / 1e9:.1f} GB " \
                   f"({100 * self.done / self.total:.0f}%)"
        return f"downloading {self.repo_id}: {self.done / 1e9:.1f} GB so far"

    def tqdm_class(self):
        """A tqdm that reports byte progress bars into this object (and the log every 10%), and prints nothing."""
        from tqdm.auto import tqdm

        owner = self

        class Tracker(tqdm):
            def __init__(self, *args, **kwargs):
                self._devnull = None
                if not owner.echo:
                    kwargs["disable"] = False
                    kwargs["file"] = self._devnull = open(os.devnull, "w")  # noqa: SIM115 - closed with the bar
                super().__init__(*args, **kwargs)
                self._bytes = kwargs.get("unit") == "B"

            def update(self, n=1):
                result = super().update(n)
                if self._bytes:
                    owner.report(int(self.n), int(self.total or 0))
                return result

            def close(self):
                super().close()
                if self._devnull is not None:
                    self._devnull.close()

        return Tracker

    def report(self, done: int, total: int) -> None:
        self.done, self.total = max(self.done, done), max(self.total, total)
        tenth = int(10 * self.done / self.total) if self.total else -1
        if tenth != self._logged:
            self._logged = tenth
            log.info("%s", self.line())


def download_model(repo_id: str, progress: Download | None = None) -> Path:
    """Fetch the pipeline's safetensors and configs (network); a clear ModelError offline."""
    from huggingface_hub import snapshot_download

    progress = progress or Download(repo_id)
    progress.state = "downloading"
    try:
        path = Path(snapshot_download(repo_id, ignore_patterns=DOWNLOAD_IGNORE, tqdm_class=progress.tqdm_class()))
    except Exception as exc:
        progress.state = "failed"
        log.warning("download of %s failed: %r", repo_id, exc)  # the class and details go to the log only
        detail = first_line(exc, 160) if str(exc).strip() else "no network"
        raise ModelError(f"model: cannot download {repo_id} ({detail}); {HOW_TO_GET_WEIGHTS}") from None
    progress.state = "done"
    log.info("downloaded %s to %s", repo_id, path)
    return path


def check_safetensors_only(folder: Path) -> None:
    """Refuse a pipeline folder whose component would load from a pickle (AdGen loads only .safetensors)."""
    for component in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if component.name == "loras":
            continue
        files = [p for p in component.iterdir() if p.is_file()]
        pickled = [p.name for p in files if p.suffix in PICKLED]
        if pickled and not any(p.suffix == ".safetensors" for p in files):
            raise ModelError(f"model: {component.name}/{pickled[0]} is a pickled weight file; AdGen loads only "
                             ".safetensors (a pickle can run code when loaded). Convert it (e.g. `save_pretrained("
                             "..., safe_serialization=True)`) or use the safetensors release of the model")


def fingerprint(folder: Path | None) -> str:
    """A hash of a pipeline folder's configs and weights, so a changed model never hits old cache entries.

    Files in the Hugging Face cache are links to blobs named by their content hash: that name is used.
    Other files are hashed whole up to 64 MB, larger ones by size, mtime and their first and last MB.
    """
    if folder is None:  # the synthetic model: its builder's version and seed decide its weights
        from .synthetic import SYNTHETIC_VERSION

        return hashlib.sha256(f"adgen-synthetic-zit:{SYNTHETIC_VERSION}".encode()).hexdigest()
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
    # diffusers imports torchao (--quantize) when it is installed: its optional CUDA kernels' load failures on a
    # CPU machine, and torch's notes on the enums torchao registers, are warnings nobody can act on.
    import logging

    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
