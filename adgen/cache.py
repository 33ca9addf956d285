"""Content-addressed result cache on disk.

An entry is one PNG at `ROOT/ab/abcdef....png`, named by its key (see `request.image_key`), or for the
writer's texts one JSON file `ROOT/ab/abcdef....json` carrying its key.
Writes are atomic (temp file in the same folder, fsync, rename), so a crash leaves either the
whole entry or none; a reader also checks every entry (PNG CRCs and the key embedded in it)
and deletes, never serves, one that fails. Size is capped by evicting least recently used
entries (a hit refreshes the entry's mtime).
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from stat import S_ISREG

from PIL import Image

from .metadata import read_chunk

log = logging.getLogger("adgen.cache")
_KEY = re.compile(r"[0-9a-f]{64}")
TMP_PREFIX = ".tmp-"
STALE_TMP_SECONDS = 3600


class ResultCache:
    """PNG results by key, at most `max_bytes` on disk."""

    def __init__(self, root: Path | str, max_bytes: int = 2 * 1024**3):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._last_warning = ""

    def path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"cache key must be 64 hex digits (got {key!r})")
        return self.root / key[:2] / f"{key}.png"

    def get(self, key: str) -> bytes | None:
        """The entry's bytes if present and intact; a damaged entry is deleted and None returned."""
        path = self.path(key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if not self._intact(data, key):
            path.unlink(missing_ok=True)
            return None
        try:
            os.utime(path)  # least-recently-used order
        except OSError:
            pass
        return data

    def put(self, key: str, data: bytes) -> Path | None:
        """Store `data` under `key` atomically; returns the entry's path (None when the disk refused it).

        A failed write (a full disk, a broken cache folder) is one warning: the result still reaches the user,
        and the cache keeps serving the entries it has.
        """
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data)
            self.evict()
        except OSError as exc:
            self._warn(exc)
            return None
        return path

    def _warn(self, exc: OSError) -> None:
        """One log line for a write the disk refused (not one per image: a full disk refuses every write)."""
        reason = exc.strerror or exc.__class__.__name__
        if reason != self._last_warning:
            self._last_warning = reason
            log.warning("result cache: could not store an entry under %s (%s); results are served without "
                        "caching", self.root, reason)

    def json_path(self, key: str) -> Path:
        return self.path(key).with_suffix(".json")

    def get_json(self, key: str) -> dict | None:
        """A JSON entry (the writer's texts) if present and intact (parses, carries its key); else None."""
        path = self.json_path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError:
            return None
        except ValueError:  # truncated or damaged: deleted, never served
            path.unlink(missing_ok=True)
            return None
        if not isinstance(data, dict) or data.get("key") != key:
            path.unlink(missing_ok=True)
            return None
        try:
            os.utime(path)
        except OSError:
            pass
        return data

    def put_json(self, key: str, value: dict) -> Path | None:
        """Store a JSON entry (which must carry `key` under "key") atomically."""
        if value.get("key") != key:
            raise ValueError("a JSON cache entry must carry its own key under 'key'")
        path = self.json_path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(value, ensure_ascii=False, sort_keys=True).encode())
            self.evict()
        except OSError as exc:  # as for `put`: the texts still reach the user
            self._warn(exc)
            return None
        return path

    def evict(self) -> int:
        """Delete least recently used entries (and stale temp files) until within the cap; returns bytes freed."""
        with self._lock:
            return evict_lru(self.root, "*/*", self.max_bytes)

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for pattern in ("*/*.png", "*/*.json") for p in self.root.glob(pattern))

    @staticmethod
    def _intact(data: bytes, key: str) -> bool:
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.verify()  # chunk CRCs and the IEND marker: catches truncation and bit rot
            return read_chunk(data).get("key") == key
        except Exception:  # any decoding failure means "not intact"
            return False


def evict_lru(root: Path, pattern: str, max_bytes: int, keep: Iterable[Path] = ()) -> int:
    """Delete the least recently used files matching `pattern` under `root` until they total at most `max_bytes`.

    Temp files of `write_atomic` are never counted, and deleted only when stale (left by a killed
    writer). Files in `keep` (e.g. the ones just saved for the user) are spared even over the cap.
    Returns the bytes freed.
    """
    return evict_files(root.glob(pattern), max_bytes, keep)


def evict_files(paths: Iterable[Path | str], max_bytes: int, keep: Iterable[Path | str] = (),
                empty_folders: bool = False) -> int:
    """Delete the least recently used of `paths` (by mtime) until the rest total at most `max_bytes`; the bytes freed.

    What `evict_lru` does for one folder, for any set of files (e.g. the copies Gradio made for the page).
    `empty_folders`: a folder a deletion leaves empty goes too (Gradio keeps each copy in a folder of its own).
    """
    entries, total, now, spared = [], 0, time.time(), {Path(p) for p in keep}
    for path in dict.fromkeys(map(Path, paths)):  # once each (Gradio tracks a file shown twice in two sets)
        try:
            info = path.stat()
        except OSError:  # deleted meanwhile, e.g. by another process evicting
            continue
        if not S_ISREG(info.st_mode):
            continue
        if path.name.startswith(TMP_PREFIX):
            if now - info.st_mtime > STALE_TMP_SECONDS:  # left by a killed writer
                path.unlink(missing_ok=True)
            continue
        total += info.st_size
        if path not in spared:
            entries.append((info.st_mtime, info.st_size, path))
    freed = 0
    for _, size, path in sorted(entries):
        if total - freed <= max_bytes:
            break
        try:
            path.unlink(missing_ok=True)
        except OSError:  # not ours to delete (a folder shared with another user), or read-only: the next one
            continue
        freed += size
        if empty_folders:
            try:
                path.parent.rmdir()  # only when empty
            except OSError:
                pass
    return freed


def tree_bytes(root: Path) -> int:
    """The bytes of the files under `root` (0 when it is missing)."""
    total = 0
    for path in Path(root).rglob("*"):
        try:
            info = path.stat()
        except OSError:
            continue
        if S_ISREG(info.st_mode):
            total += info.st_size
    return total


def max_cache_bytes() -> int:
    """The cap on each of AdGen's folders (result cache, saved outputs): $ADGEN_CACHE_MAX_MB, default 2048."""
    from .request import check_int

    megabytes = check_int("ADGEN_CACHE_MAX_MB", os.environ.get("ADGEN_CACHE_MAX_MB", "2048"), 1, 10**7)
    return megabytes * 1024 * 1024


def default_cache() -> ResultCache:
    """The cache at $ADGEN_CACHE_DIR/results, capped by $ADGEN_CACHE_MAX_MB (default 2048)."""
    from .paths import cache_dir

    return ResultCache(cache_dir() / "results", max_bytes=max_cache_bytes())


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file, or the whole new one, never a part."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX)
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would make saved images private to this user
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
