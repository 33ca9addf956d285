"""The result cache: atomic entries, damaged entries never served, least recently used evicted."""

import os
import time

import pytest

from adgen.cache import TMP_PREFIX, ResultCache, evict_lru, write_atomic

from test_metadata import raw_png

KEYS = [f"{i:064x}" for i in range(1, 6)]


def entry(key: str) -> bytes:
    return raw_png({"key": key, "adgen": 1})


def test_put_then_get(tmp_path):
    cache = ResultCache(tmp_path)
    data = entry(KEYS[0])
    path = cache.put(KEYS[0], data)
    assert path == tmp_path / KEYS[0][:2] / f"{KEYS[0]}.png"
    assert cache.get(KEYS[0]) == data
    assert cache.get(KEYS[1]) is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated (a killed writer without atomic rename)
        lambda data: data[:60] + bytes([data[60] ^ 0xFF]) + data[61:],  # a flipped byte
        lambda data: b"",
    ],
)
def test_a_damaged_entry_is_deleted_not_served(tmp_path, damage):
    cache = ResultCache(tmp_path)
    path = cache.put(KEYS[0], entry(KEYS[0]))
    path.write_bytes(damage(path.read_bytes()))
    assert cache.get(KEYS[0]) is None
    assert not path.exists()


def test_an_entry_under_the_wrong_key_is_not_served(tmp_path):
    cache = ResultCache(tmp_path)
    cache.put(KEYS[0], entry(KEYS[1]))  # e.g. a file copied by hand
    assert cache.get(KEYS[0]) is None


def test_least_recently_used_entries_are_evicted(tmp_path):
    one = len(entry(KEYS[0]))
    cache = ResultCache(tmp_path, max_bytes=int(one * 3.5))
    for i, key in enumerate(KEYS[:3]):
        cache.put(key, entry(key))
        os.utime(cache.path(key), (1000 + i, 1000 + i))  # deterministic ages: 0 oldest
    assert cache.get(KEYS[0]) is not None  # a hit makes it the most recent
    cache.put(KEYS[3], entry(KEYS[3]))
    assert cache.path(KEYS[1]).exists() is False  # the least recently used went
    assert all(cache.path(k).exists() for k in (KEYS[0], KEYS[2], KEYS[3]))
    assert cache.size_bytes() <= cache.max_bytes


def test_stale_temp_files_from_a_killed_writer_are_cleaned(tmp_path):
    cache = ResultCache(tmp_path)
    cache.put(KEYS[0], entry(KEYS[0]))
    stale = tmp_path / KEYS[0][:2] / f"{TMP_PREFIX}abc"
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200,) * 2)
    fresh = tmp_path / KEYS[0][:2] / f"{TMP_PREFIX}def"
    fresh.write_bytes(b"being written")
    cache.evict()
    assert not stale.exists() and fresh.exists()


def test_evict_lru_caps_any_folder_oldest_first_sparing_kept_files(tmp_path):
    for i in range(5):
        (tmp_path / f"adgen-{i}.png").write_bytes(bytes(100))
        os.utime(tmp_path / f"adgen-{i}.png", (1000 + i, 1000 + i))
    (tmp_path / "sub").mkdir()  # not a file: never counted or touched
    stale = tmp_path / f"{TMP_PREFIX}old"
    stale.write_bytes(bytes(1000))
    os.utime(stale, (time.time() - 7200,) * 2)
    freed = evict_lru(tmp_path, "*", 250, keep=[tmp_path / "adgen-0.png"])  # the oldest, but just shown
    assert freed == 300 and not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adgen-0.png", "adgen-4.png", "sub"]


def test_write_atomic_leaves_no_temp_file_on_failure(tmp_path):
    target = tmp_path / "out.png"
    with pytest.raises(TypeError):
        write_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_bad_keys_are_refused(tmp_path):
    with pytest.raises(ValueError, match="64 hex digits"):
        ResultCache(tmp_path).path("../../etc/passwd")


def test_a_cache_the_disk_refuses_is_one_warning_and_keeps_serving(tmp_path, caplog):
    (tmp_path / "results").write_bytes(b"a file where the cache folder should be")
    broken = ResultCache(tmp_path / "results")
    with caplog.at_level("WARNING", logger="adgen.cache"):
        assert broken.put(KEYS[0], entry(KEYS[0])) is None
        assert broken.put(KEYS[1], entry(KEYS[1])) is None
        assert broken.put_json(KEYS[2], {"key": KEYS[2]}) is None
    assert broken.get(KEYS[0]) is None and broken.get_json(KEYS[2]) is None
    assert len(caplog.records) == 1 and "Not a directory" in caplog.records[0].getMessage()  # one line, not one each
    full = ResultCache(tmp_path / "full")
    full.put(KEYS[3], entry(KEYS[3]))  # stored before the disk filled up
    other = "ff" * 32
    (tmp_path / "full" / other[:2]).write_bytes(b"")  # a broken sub-folder: this entry cannot be written
    assert full.put(other, entry(other)) is None
    assert full.get(KEYS[3]) == entry(KEYS[3])  # what it has is still served
