"""Analyse a clip once: the expensive, click-independent half of PixelPlayer.

One pass over the clip computes, and writes to disk as it goes:

- ``components`` (windows, K, F, T) float16: the audio U-Net's K component maps of each analysis
  window (T = ``chunks.window_columns`` STFT columns of 23.2 ms, F = 256 log-frequency bins);
- ``log_magnitude`` (windows, F, T) float16: the net's input, for heatmaps;
- ``features`` (frames, K, h, w) float16: the video net's per-pixel features of frames sampled at
  ``chunks.frames_per_second``, with their times in ``frame_times`` (seconds);
- ``audio`` (samples, channels) float32: the clip's audio at its own rate and channel layout, so
  that rendering a stem never decodes the clip again.

Any later query (see :mod:`pixelsep_plugin.runtime.separate`) reads the audio and the components
through bounded positioned reads (:meth:`Analysis.read_audio`, :meth:`Analysis.read_components`),
so rendering keeps no more of them resident than the blocks in flight.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from pixelsep_plugin import media
from pixelsep_plugin.audio.stft import Stft, iter_stft_frames
from pixelsep_plugin.audio.warp import log_magnitude
from pixelsep_plugin.config import ModelConfig
from pixelsep_plugin.errors import Cancelled
from pixelsep_plugin.modelstore import ModelPackage
from pixelsep_plugin.runtime.chunking import WindowCutter, WindowPlan
from pixelsep_plugin.runtime.sessions import OnnxNets
from pixelsep_plugin.runtime.store import (
    ArrayWriter,
    CorruptEntry,
    open_array,
    read_rows,
    release_pages,
    sha256_of_file,
)

FORMAT = "pixelsep-analysis"
FORMAT_VERSION = 1
SILENCE_LOG = float(np.log(1e-10))  # the log-magnitude of silence, used to pad short clips

# progress(stage, done, total): stage is "read" (the clip's audio), "audio" (the audio net) or
# "video" (the video net); done and total are in seconds of the clip
Progress = Callable[[str, float, float], None]
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class Analysis:
    """A clip's analysis, opened from its folder. Arrays are read-only memory maps."""

    folder: Path
    meta: dict

    @classmethod
    def open(cls, folder: Path, verify: bool = True) -> Analysis:
        """Open and check an analysis folder; raises CorruptEntry when anything is off."""
        try:
            meta = json.loads((folder / "analysis.json").read_text())
        except (OSError, ValueError) as error:
            raise CorruptEntry(f"analysis.json unreadable: {error}") from error
        if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
            raise CorruptEntry("not a pixelsep analysis of this version")
        analysis = cls(folder=folder, meta=meta)
        for name in meta["arrays"]:
            analysis.arrays[name] = open_array(folder, meta["arrays"][name], verify=verify)
        return analysis

    @cached_property
    def arrays(self) -> dict[str, np.ndarray]:
        return {}

    @property
    def components(self) -> np.ndarray:
        return self.arrays["components"]

    @property
    def log_magnitude(self) -> np.ndarray:
        return self.arrays["log_magnitude"]

    @property
    def features(self) -> np.ndarray:
        return self.arrays["features"]

    @property
    def frame_times(self) -> np.ndarray:
        return self.arrays["frame_times"]

    @property
    def audio(self) -> np.ndarray:
        """The clip's own audio, float32 (channels, samples) (a transposed view of the file)."""
        return self.arrays["audio"].T

    def read_audio(self, sample_start: int, sample_stop: int) -> np.ndarray:
        """Samples ``[sample_start, sample_stop)`` of the clip's audio, float32 (channels, n), read
        from the file into a fresh array (memory bounded by the span, whatever the clip's length)."""
        rows = read_rows(self.folder, self.meta["arrays"]["audio"], sample_start, sample_stop)
        return np.ascontiguousarray(rows.T, dtype=np.float32)

    def read_components(self, window: int) -> np.ndarray:
        """The audio components of analysis window ``window``, float16 (K, F, T), read from the file."""
        return read_rows(self.folder, self.meta["arrays"]["components"], window, window + 1)[0]

    def release_pages(self) -> None:
        """Drop the resident pages of every memory-mapped array (see :func:`.store.release_pages`)."""
        for array in self.arrays.values():
            release_pages(array)

    @property
    def width(self) -> int:
        return int(self.meta["media"]["width"])

    @property
    def height(self) -> int:
        return int(self.meta["media"]["height"])

    @property
    def duration_seconds(self) -> float:
        return float(self.meta["media"]["duration_seconds"])

    @property
    def sample_rate(self) -> int:
        return int(self.meta["media"]["sample_rate"])

    @property
    def channel_layout(self) -> str:
        return str(self.meta["media"]["channel_layout"])

    @property
    def num_columns(self) -> int:
        return int(self.meta["analysis"]["num_columns"])

    @property
    def column_seconds(self) -> float:
        a = self.meta["analysis"]
        return a["hop_length"] / a["sample_rate"]

    @cached_property
    def plan(self) -> WindowPlan:
        a = self.meta["analysis"]
        return WindowPlan(self.num_columns, a["window_columns"], a["overlap_columns"])


def clip_digest(path: Path) -> str:
    """sha256 of the clip's bytes: the cache key of its analysis."""
    return sha256_of_file(path)


FINGERPRINT_EDGE_BYTES = 1 << 20
CHECKED_FILE = "checked.json"  # in a cache entry: what was last verified, and the clip that maps to it


def clip_fingerprint(path: Path) -> dict:
    """A cheap identity of the clip's file: size, mtime (ns), inode and the sha256 of its first and
    last MiB. An unchanged file keeps it; rewriting or touching the file changes it."""
    stat = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(FINGERPRINT_EDGE_BYTES))
        if stat.st_size > 2 * FINGERPRINT_EDGE_BYTES:
            handle.seek(stat.st_size - FINGERPRINT_EDGE_BYTES)
        digest.update(handle.read())
    return {
        "bytes": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "inode": stat.st_ino,
        "edges_sha256": digest.hexdigest(),
    }


def _file_stats(folder: Path) -> dict[str, list[int]]:
    """(size, mtime ns) of every file of an entry but the record itself."""
    stats = {}
    for path in sorted(folder.iterdir()):
        if path.name != CHECKED_FILE and path.is_file():
            stat = path.stat()
            stats[path.name] = [stat.st_size, stat.st_mtime_ns]
    return stats


def _read_checked(entry: Path) -> dict | None:
    try:
        record = json.loads((entry / CHECKED_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _write_checked(entry: Path, fingerprint: dict, clip_sha256: str) -> None:
    """Record that the entry's files, as they are now, passed their checksums, and which clip file maps here."""
    record = {"clip": {**fingerprint, "sha256": clip_sha256}, "files": _file_stats(entry)}
    temp = entry / f".{CHECKED_FILE}.{os.getpid()}"
    temp.write_text(json.dumps(record))
    os.replace(temp, entry / CHECKED_FILE)


def known_clip_digest(root: Path, package: ModelPackage, fingerprint: dict) -> str | None:
    """The sha256 of a clip whose file has ``fingerprint``, remembered by a cache entry of ``package``
    (None when no entry knows this exact file: hash it)."""
    suffix = cache_key("", package)
    if not root.is_dir():
        return None
    for entry in root.iterdir():
        if not entry.name.endswith(suffix) or entry.name.startswith("."):
            continue
        record = _read_checked(entry)
        clip = record.get("clip") if record else None
        if isinstance(clip, dict) and {k: clip.get(k) for k in fingerprint} == fingerprint:
            sha256 = clip.get("sha256")
            if isinstance(sha256, str) and entry.name == cache_key(sha256, package):
                return sha256
    return None


def clip_identity(clip: Path, package: ModelPackage, root: Path, use_cache: bool = True) -> tuple[str, dict]:
    """(sha256, fingerprint) of ``clip``: the sha256 remembered by a cache entry of ``package`` for a file
    with this exact fingerprint, else the file hashed."""
    fingerprint = clip_fingerprint(clip)
    digest = (known_clip_digest(root, package, fingerprint) if use_cache else None) or clip_digest(clip)
    return digest, fingerprint


def open_entry(entry: Path, fingerprint: dict, clip_sha256: str, verify: bool = False) -> Analysis:
    """Open a cache entry, hashing its files only when they changed since they were last verified
    (size or mtime differ) or when ``verify``; raises CorruptEntry as :meth:`Analysis.open`."""
    record = _read_checked(entry)
    unchanged = record is not None and record.get("files") == _file_stats(entry)
    analysis = Analysis.open(entry, verify=verify or not unchanged)
    if not unchanged or record.get("clip") != {**fingerprint, "sha256": clip_sha256}:
        _write_checked(entry, fingerprint, clip_sha256)
    return analysis


def _batched(items, size: int):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_analysis(
    clip: Path,
    info: media.MediaInfo,
    package: ModelPackage,
    nets: OnnxNets,
    folder: Path,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    clip_sha256: str | None = None,
    batch_windows: int = 4,
    batch_frames: int = 8,
) -> None:
    """Analyse ``clip`` into the (new, empty) ``folder``. See the module docstring for the arrays."""
    cfg: ModelConfig = package.config
    front = cfg.audio
    chunks = cfg.chunks
    k = cfg.num_components
    started = time.perf_counter()

    def check_cancel() -> None:
        if cancel is not None and cancel():
            raise Cancelled("analysis cancelled")

    # The clip's own audio, kept so that stems never decode the clip again.
    audio_writer = ArrayWriter(folder, "audio.f32", "float32", (info.num_channels,))
    read_samples = 0
    for block in media.iter_audio_blocks(clip):
        audio_writer.append(block.T)
        read_samples += block.shape[-1]
        if progress is not None:
            done = min(read_samples / info.sample_rate, info.duration_seconds)
            progress("read", done, info.duration_seconds)
        check_cancel()
    audio_desc = audio_writer.close()

    # Analysis audio -> STFT columns -> windows -> audio net.
    stft = Stft(front.n_fft, front.hop_length)
    cutter = WindowCutter(chunks.window_columns, chunks.overlap_columns, front.log_freq_bins, SILENCE_LOG)
    comp_writer = ArrayWriter(folder, "components.f16", "float16", (k, front.log_freq_bins, chunks.window_columns))
    logmag_writer = ArrayWriter(folder, "log_magnitude.f16", "float16", (front.log_freq_bins, chunks.window_columns))
    starts: list[int] = []
    pending: list[tuple[int, np.ndarray]] = []
    analysis_samples = 0

    def flush(force: bool = False) -> None:
        while pending and (force or len(pending) >= batch_windows):
            batch = pending[:batch_windows]
            del pending[:batch_windows]
            stack = np.stack([piece for _, piece in batch])[:, None]
            comp_writer.append(nets.audio(stack).astype(np.float16))
            logmag_writer.append(stack[:, 0].astype(np.float16))
            starts.extend(start for start, _ in batch)

    def analysis_blocks():
        nonlocal analysis_samples
        for block in media.iter_analysis_audio(clip, sample_rate=front.sample_rate):
            analysis_samples += block.shape[-1]
            if progress is not None:
                progress(
                    "audio", min(analysis_samples / front.sample_rate, info.duration_seconds), info.duration_seconds
                )
            yield block

    for frames in iter_stft_frames(stft, analysis_blocks()):
        pending.extend(cutter.push(log_magnitude(np.abs(frames), front)))
        flush()
        check_cancel()
    num_columns = stft.num_frames(analysis_samples)
    pending.extend(cutter.finish(num_columns))
    flush(force=True)
    components_desc = comp_writer.close()
    logmag_desc = logmag_writer.close()
    if starts != WindowPlan(num_columns, chunks.window_columns, chunks.overlap_columns).starts.tolist():
        raise AssertionError("the analysis windows do not follow their plan")

    # Video frames -> video net.
    feature_writer: ArrayWriter | None = None
    frame_times: list[float] = []
    frame_shape = (0, 0)

    def video_progress(done: float, total: float) -> None:
        if progress is not None:
            progress("video", done, total)

    sampled = media.iter_sampled_frames(
        clip, chunks.frames_per_second, cfg.video_net.frame_size, progress=video_progress
    )
    for batch in _batched(sampled, batch_frames):
        pixels = np.stack([rgb for _, rgb in batch]).astype(np.float32) / 255.0
        frame_shape = pixels.shape[1:3]
        features = nets.video(pixels.transpose(0, 3, 1, 2))
        if feature_writer is None:
            feature_writer = ArrayWriter(folder, "features.f16", "float16", features.shape[1:])
        feature_writer.append(features.astype(np.float16))
        frame_times.extend(t for t, _ in batch)
        check_cancel()
    if feature_writer is None:
        raise media.MediaError(f"no video frames could be decoded from {clip.name}")
    features_desc = feature_writer.close()

    small = {
        "window_starts": np.asarray(starts, dtype=np.int64),
        "frame_times": np.asarray(frame_times, dtype=np.float64),
    }
    arrays = {
        "audio": audio_desc,
        "components": components_desc,
        "log_magnitude": logmag_desc,
        "features": features_desc,
    }
    for name, values in small.items():
        writer = ArrayWriter(folder, f"{name}.{values.dtype.name}", values.dtype.str, values.shape[1:])
        writer.append(values)
        arrays[name] = writer.close()

    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "clip": {"name": clip.name, "sha256": clip_sha256, "bytes": clip.stat().st_size},
        "model": {"id": package.model_id, "checksum": package.checksum},
        "media": {
            "width": info.width,
            "height": info.height,
            "duration_seconds": info.duration_seconds,
            "sample_rate": info.sample_rate,
            "num_channels": info.num_channels,
            "channel_layout": info.channel_layout,
            "num_samples": audio_desc["shape"][0],
        },
        "analysis": {
            "sample_rate": front.sample_rate,
            "hop_length": front.hop_length,
            "num_columns": num_columns,
            "window_columns": chunks.window_columns,
            "overlap_columns": chunks.overlap_columns,
            "frames_per_second": chunks.frames_per_second,
            "frame_height": int(frame_shape[0]),
            "frame_width": int(frame_shape[1]),
            "seconds": round(time.perf_counter() - started, 3),
        },
        "arrays": arrays,
    }
    (folder / "analysis.json").write_text(json.dumps(meta, indent=1))


def default_cache_root() -> Path:
    """``$PIXELSEP_CACHE``, else ``$XDG_CACHE_HOME/pixelsep``, else ``~/.cache/pixelsep``."""
    if os.environ.get("PIXELSEP_CACHE"):
        return Path(os.environ["PIXELSEP_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pixelsep"


def cache_key(clip_sha256: str, package: ModelPackage) -> str:
    return f"{clip_sha256[:24]}-{package.model_id}-{package.checksum[:12]}"


def analyze(
    clip: Path | str,
    package: ModelPackage,
    nets: OnnxNets,
    cache_root: Path | None = None,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    use_cache: bool = True,
    verify: bool = False,
) -> tuple[Analysis, bool]:
    """Analysis of ``clip``, from the cache when a valid entry exists. Returns (analysis, from_cache).

    The cache key is the clip's sha256. An unchanged clip file (same :func:`clip_fingerprint`) is
    not read again: its sha256 is remembered in the entry. A cached entry's files are hashed again
    only when their size or mtime changed since they were last verified, or with ``verify``.
    Without ``use_cache`` the analysis goes to a temporary folder that is removed when the returned
    :class:`Analysis` is garbage-collected (or at exit).
    """
    clip = Path(clip)
    info = media.probe(clip)
    media.require_audio(info)
    media.require_video(info)
    root = cache_root or default_cache_root()
    digest, fingerprint = clip_identity(clip, package, root, use_cache)
    entry = root / cache_key(digest, package)
    if use_cache and entry.exists():
        try:
            return open_entry(entry, fingerprint, digest, verify=verify), True
        except CorruptEntry:
            shutil.rmtree(entry, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=root))
    try:
        run_analysis(clip, info, package, nets, work, progress, cancel, clip_sha256=digest)
        if not use_cache:
            analysis = Analysis.open(work, verify=False)
            weakref.finalize(analysis, shutil.rmtree, work, True)
            return analysis, False
        _write_checked(work, fingerprint, digest)  # hashed as it was written
        shutil.rmtree(entry, ignore_errors=True)
        os.replace(work, entry)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Analysis.open(entry, verify=False), False
