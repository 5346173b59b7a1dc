"""The analysis cache on disk: its entries, their size, and a size cap kept by evicting the least
recently used.

Layout: ``<root>/<key>/`` per analysis (see :func:`.analysis.cache_key`) with ``analysis.json``
and its arrays; ``<root>/.<key>.<random>/`` while an analysis is being written. Two small files in
each folder serve this module:

- ``.lock``: an open :class:`Analysis` holds a shared ``flock`` on it (a writer an exclusive one),
  so eviction, ``clear`` and the removal of stale temporary folders skip entries in use, across
  processes;
- ``.last-used``: its mtime is when the entry was last opened (the eviction order).

The cap: ``max_bytes`` given to :func:`.analysis.analyze`, else ``$PIXELSEP_CACHE_MAX`` (a size
such as ``500M`` or ``20G``), else :data:`DEFAULT_MAX_BYTES`; it is applied after each new analysis.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pixelsep_plugin.errors import InputError

try:
    import fcntl
except ImportError:  # Windows: no flock; entries in use are then not told apart from others
    fcntl = None  # type: ignore[assignment]

DEFAULT_MAX_BYTES = 20 * 1000**3
MAX_ENV = "PIXELSEP_CACHE_MAX"
LOCK_FILE = ".lock"
LAST_USED_FILE = ".last-used"
BOOKKEEPING_FILES = frozenset({LOCK_FILE, LAST_USED_FILE})
STALE_TEMP_SECONDS = 60.0  # a temporary folder older than this and not locked was left by a killed run

_UNITS = {"": 1, "B": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}


def parse_size(text: str) -> int:
    """Bytes from ``"500M"``, ``"2G"``, ``"1.5T"``, ``"800K"`` or a plain number (decimal units;
    a trailing ``B``/``iB`` is allowed: ``2GiB`` counts 1024**3)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(I?B?)\s*", str(text).upper())
    if not match:
        raise InputError(f"size {text!r} is not understood: give bytes or a number with K, M, G or T (e.g. 500M, 2G)")
    number, unit, suffix = match.groups()
    base = 1024 ** "KMGT".index(unit) * 1024 if unit and suffix.startswith("I") else _UNITS[unit]
    return int(float(number) * base)


def format_size(num_bytes: int) -> str:
    """``1234567`` -> ``"1.2 MB"`` (decimal units)."""
    value = float(num_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def default_max_bytes() -> int:
    """The cap: ``$PIXELSEP_CACHE_MAX`` when set, else :data:`DEFAULT_MAX_BYTES`."""
    text = os.environ.get(MAX_ENV)
    return parse_size(text) if text else DEFAULT_MAX_BYTES


@dataclass(frozen=True)
class CacheEntry:
    """One analysis in the cache. bytes: on disk; last_used: seconds since the epoch."""

    key: str
    path: Path
    clip_name: str
    model_id: str
    bytes: int
    last_used: float
    in_use: bool


def folder_bytes(folder: Path) -> int:
    """Bytes of the files directly in ``folder`` (entries are flat)."""
    total = 0
    for path in folder.iterdir():
        try:
            if path.is_file():
                total += path.stat().st_size
        except OSError:
            continue
    return total


def hold(folder: Path, exclusive: bool = False) -> int:
    """Open ``folder/.lock`` and take a shared (``exclusive``: exclusive) flock on it, waiting for
    it; returns the descriptor: the lock lasts until it is closed."""
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def key_lock(root: Path, key: str, on_wait: Callable[[], object] | None = None) -> Iterator[None]:
    """Hold ``root/.<key>.lock`` exclusively: one process at a time checks, makes or replaces the
    entry ``key``; ``on_wait()`` is called once when another process holds it (then this one waits)."""
    fd = os.open(root / f".{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait()
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def share(fd: int) -> None:
    """Turn the exclusive lock held through ``fd`` (see :func:`hold`) into a shared one."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_SH)


def touch(folder: Path) -> None:
    """Stamp ``folder`` as used now."""
    stamp = folder / LAST_USED_FILE
    try:
        stamp.touch()
        os.utime(stamp)
    except OSError:
        pass  # a read-only cache still works; its order is then the entries' age


def _in_use(folder: Path) -> bool:
    """Whether some process holds ``folder``'s lock (an open analysis or a writer)."""
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDWR)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _remove_unless_used(folder: Path) -> bool:
    """Remove ``folder`` when nobody holds its lock (the lock is held while removing); True if removed."""
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return False
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    try:
        shutil.rmtree(folder, ignore_errors=True)
    finally:
        os.close(fd)
    return not folder.exists()


def _last_used(folder: Path) -> float:
    for path in (folder / LAST_USED_FILE, folder / "analysis.json", folder):
        try:
            return path.stat().st_mtime
        except OSError:
            continue
    return 0.0


def list_entries(root: Path) -> list[CacheEntry]:
    """Every analysis entry under ``root`` (not the temporary folders), least recently used first."""
    if not root.is_dir():
        return []
    entries = []
    for folder in root.iterdir():
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        try:
            meta = json.loads((folder / "analysis.json").read_text())
        except (OSError, ValueError):
            meta = {}
        clip = meta.get("clip") if isinstance(meta.get("clip"), dict) else {}
        model = meta.get("model") if isinstance(meta.get("model"), dict) else {}
        entries.append(
            CacheEntry(
                key=folder.name,
                path=folder,
                clip_name=str(clip.get("name", "?")),
                model_id=str(model.get("id", "?")),
                bytes=folder_bytes(folder),
                last_used=_last_used(folder),
                in_use=_in_use(folder),
            )
        )
    entries.sort(key=lambda e: (e.last_used, e.key))
    return entries


def total_bytes(root: Path) -> int:
    """Bytes of every entry under ``root``."""
    return sum(entry.bytes for entry in list_entries(root))


def remove_stale_temps(root: Path, older_than_seconds: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Remove temporary folders (``.<key>.*``) left by killed runs: older than ``older_than_seconds``
    and not locked by a running analysis. Returns the folders removed."""
    removed = []
    if not root.is_dir():
        return removed
    now = time.time()
    for folder in root.iterdir():
        if not (folder.name.startswith(".") and folder.is_dir()):
            continue
        try:
            age = now - folder.stat().st_mtime
        except OSError:
            continue
        if age > older_than_seconds and _remove_unless_used(folder):
            removed.append(folder)
    return removed


def prune(root: Path, max_bytes: int | None = None, keep: Iterable[str] = ()) -> list[CacheEntry]:
    """Evict entries, least recently used first, until the cache holds at most ``max_bytes``
    (None: :func:`default_max_bytes`); entries named in ``keep`` and entries in use stay. Stale
    temporary folders are removed first. Returns the entries removed."""
    limit = default_max_bytes() if max_bytes is None else int(max_bytes)
    if limit < 0:
        raise InputError(f"the cache size cap must be at least 0 bytes, got {limit}")
    remove_stale_temps(root)
    entries = list_entries(root)
    total = sum(entry.bytes for entry in entries)
    kept = set(keep)
    removed = []
    for entry in entries:
        if total <= limit:
            break
        if entry.key in kept or entry.in_use:
            continue
        if _remove_unless_used(entry.path):
            total -= entry.bytes
            removed.append(entry)
    return removed


def clear(root: Path) -> list[CacheEntry]:
    """Remove every entry not in use (and stale temporary folders). Returns the entries removed."""
    return prune(root, max_bytes=0)
