"""The analysis cache's size cap: listing, LRU eviction, locks, stale temporary folders, `pixelsep cache`."""

from __future__ import annotations

import gc
import json
import os
import time
from pathlib import Path

import pytest

from host_bridge.cli.main import main
from pixelsep_plugin.errors import InputError
from pixelsep_plugin.runtime import cache


def _entry(root: Path, key: str, num_bytes: int, used_ago: float, clip: str = "clip.mp4") -> Path:
    folder = root / key
    folder.mkdir(parents=True)
    (folder / "analysis.json").write_text(json.dumps({"clip": {"name": clip}, "model": {"id": "m"}}))
    (folder / "data.bin").write_bytes(b"\0" * num_bytes)
    cache.touch(folder)
    stamp = time.time() - used_ago
    os.utime(folder / cache.LAST_USED_FILE, (stamp, stamp))
    return folder


@pytest.mark.parametrize(
    "text, expected",
    [("500M", 500_000_000), ("2G", 2_000_000_000), ("1.5T", 1_500_000_000_000), ("800k", 800_000),
     ("123", 123), ("2GiB", 2 * 1024**3), ("10 MB", 10_000_000)],
)
def test_parse_size(text, expected):
    assert cache.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "big", "-1G", "2X", "1.2.3M"])
def test_parse_size_refuses_nonsense(text):
    with pytest.raises(InputError):
        cache.parse_size(text)


def test_default_cap_follows_the_environment(monkeypatch):
    monkeypatch.delenv(cache.MAX_ENV, raising=False)
    assert cache.default_max_bytes() == cache.DEFAULT_MAX_BYTES
    monkeypatch.setenv(cache.MAX_ENV, "3G")
    assert cache.default_max_bytes() == 3_000_000_000


def test_list_and_prune_least_recently_used_first(tmp_path):
    old = _entry(tmp_path, "old", 3000, used_ago=300)
    mid = _entry(tmp_path, "mid", 3000, used_ago=200)
    new = _entry(tmp_path, "new", 3000, used_ago=100)
    entries = cache.list_entries(tmp_path)
    assert [e.key for e in entries] == ["old", "mid", "new"]
    assert all(e.bytes > 3000 and e.clip_name == "clip.mp4" and e.model_id == "m" for e in entries)
    assert cache.total_bytes(tmp_path) == sum(e.bytes for e in entries)
    removed = cache.prune(tmp_path, max_bytes=7000)
    assert [e.key for e in removed] == ["old"]
    assert not old.exists() and mid.exists() and new.exists()
    cache.touch(mid)  # used again: now the newest
    removed = cache.prune(tmp_path, max_bytes=4000)
    assert [e.key for e in removed] == ["new"] and mid.exists()


def test_prune_keeps_entries_in_use_and_named(tmp_path):
    held = _entry(tmp_path, "held", 5000, used_ago=300)
    kept = _entry(tmp_path, "kept", 5000, used_ago=200)
    free = _entry(tmp_path, "free", 5000, used_ago=100)
    lock = cache.hold(held)
    try:
        assert [e.key for e in cache.list_entries(tmp_path) if e.in_use] == ["held"]
        removed = cache.prune(tmp_path, max_bytes=0, keep={"kept"})
        assert [e.key for e in removed] == ["free"]
        assert held.exists() and kept.exists() and not free.exists()
    finally:
        os.close(lock)
    assert [e.key for e in cache.clear(tmp_path)] == ["held", "kept"]
    assert cache.list_entries(tmp_path) == []


def test_stale_temporary_folders_are_removed_unless_locked(tmp_path):
    stale = tmp_path / ".abc.x1"
    locked = tmp_path / ".abc.x2"
    young = tmp_path / ".abc.x3"
    for folder in (stale, locked, young):
        folder.mkdir()
        (folder / "part.bin").write_bytes(b"1234")
    hour_ago = time.time() - 2 * cache.STALE_TEMP_SECONDS
    for folder in (stale, locked):
        os.utime(folder, (hour_ago, hour_ago))
    lock = cache.hold(locked, exclusive=True)
    try:
        os.utime(locked, (hour_ago, hour_ago))  # creating the lock file touched the folder
        removed = cache.remove_stale_temps(tmp_path)
    finally:
        os.close(lock)
    assert removed == [stale]
    assert not stale.exists() and locked.exists() and young.exists()


def test_analyze_applies_the_cap(small_model, clip_factory, tmp_path, monkeypatch):
    from pixelsep_plugin.api import Separator

    separator = Separator(small_model, threads=2, cache_root=tmp_path)
    monkeypatch.setenv(cache.MAX_ENV, "1")  # smaller than any entry: only what is in use survives
    first, _ = separator.analyze(clip_factory("cap-a.mp4", seconds=1.0))
    first_folder = first.folder
    second, _ = separator.analyze(clip_factory("cap-b.mp4", seconds=1.2))
    assert first_folder.exists() and second.folder.exists()  # the first is still open
    stamp = (second.folder / cache.LAST_USED_FILE).stat().st_mtime
    del first
    gc.collect()
    third, _ = separator.analyze(clip_factory("cap-c.mp4", seconds=1.4))
    assert not first_folder.exists()  # released, least recently used: evicted
    assert second.folder.exists() and third.folder.exists()
    time.sleep(0.01)
    again, from_cache = separator.analyze(clip_factory("cap-b.mp4", seconds=1.2))
    assert from_cache and (again.folder / cache.LAST_USED_FILE).stat().st_mtime > stamp


def test_cli_list_prune_clear(tmp_path, capsys):
    _entry(tmp_path, "k1", 4000, used_ago=300, clip="one.mp4")
    _entry(tmp_path, "k2", 4000, used_ago=100, clip="two.mp4")
    assert main(["cache", "list", "--cache-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("k2  two.mp4  m  ") and lines[1].startswith("k1  one.mp4  m  ")
    assert lines[-1].startswith("2 entries, 8.")
    assert main(["cache", "prune", "--max-size", "5K", "--cache-dir", str(tmp_path)]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert [e.key for e in cache.list_entries(tmp_path)] == ["k2"]
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 0
    assert cache.list_entries(tmp_path) == []


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["cache", "prune", "--cache-dir", str(tmp_path)]) == 1
    assert "needs --max-size" in capsys.readouterr().err
    assert main(["cache", "prune", "--max-size", "lots", "--cache-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "not understood" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit):
        main(["cache", "shrink"])
