"""Analyse a clip once: the expensive, click-independent half of PixelPlayer.

One pass over the clip computes, and writes to disk as it goes (format version 2):

- ``components`` (windows, K, F, T) uint8 with ``component_scales`` (windows, K, 2) float32: the
  audio U-Net's K component maps of each analysis window (T = ``chunks.window_columns`` STFT
  columns of 23.2 ms, F = 256 log-frequency bins), quantised with one affine (offset, step) per
  window and component: ``value = offset + code * step``, error at most step / 2 = range / 510;
- ``log_magnitude`` (windows, F, T) uint8 with ``log_magnitude_scales`` (windows, F, 2): the net's
  input, for heatmaps, quantised per window and frequency row;
- ``features`` (frames, K, h, w) float16: the video net's per-pixel features of frames sampled at
  ``chunks.frames_per_second``, with their times in ``frame_times`` (seconds);
- the clip's audio at its own rate and channel layout: by default NOT stored. ``audio_checksums``
  (a CRC-32 per block of ``AUDIO_BLOCK_SAMPLES`` samples) and ``audio_frames`` (each decoded
  frame's pts and first sample) let :mod:`pixelsep_plugin.media.span` decode any span again from
  the clip, exactly (checked block by block). When the clip's frames do not map to sample
  positions, or its codec does not decode exactly after a seek (tried at a few places while
  analysing), ``audio`` (samples, channels) float32 is stored as before (with
  ``$PIXELSEP_CACHE_AUDIO=decode``, only in the first case). ``analysis.json``'s ``audio`` record
  says which ("storage": "decoded" or "stored", and why).

An hour of 44.1 kHz stereo takes 0.92 GB when the audio is decoded again (3.1 GB with float16 maps
and the audio in format version 1); a stored audio adds its float32 samples, 1.27 GB per hour of
44.1 kHz stereo. See ``benchmarks/cache_size.py``.

Any later query (see :mod:`pixelsep_plugin.runtime.separate`) reads the audio and the components
through bounded reads (:meth:`Analysis.read_audio`, :meth:`Analysis.read_components`,
:meth:`Analysis.read_log_magnitude`), so rendering keeps no more of them resident than the blocks
in flight. An :class:`Analysis` opened by :func:`analyze` knows its clip (path and fingerprint) and
fails with one line when the audio is needed and the clip is gone or changed. The cache's size cap
and eviction are in :mod:`pixelsep_plugin.runtime.cache`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import queue
import shutil
import tempfile
import threading
import time
import warnings
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
from pixelsep_plugin.errors import CacheWarning, Cancelled, InputError, MediaError
from pixelsep_plugin.media.encode import WRITE_ERRNOS, write_error
from pixelsep_plugin.media.span import AudioScan, AudioSpanReader, scan_audio
from pixelsep_plugin.modelstore import ModelPackage
from pixelsep_plugin.runtime import cache
from pixelsep_plugin.runtime.chunking import WindowCutter, WindowPlan
from pixelsep_plugin.runtime.sessions import OnnxNets
from pixelsep_plugin.runtime.store import (
    ArrayWriter,
    CorruptEntry,
    dequantize_u8,
    open_array,
    quantize_u8,
    read_rows,
    release_pages,
    sha256_of_file,
)

FORMAT = "pixelsep-analysis"
FORMAT_VERSION = 2
AUDIO_BLOCK_SAMPLES = 1 << 16  # samples per checksummed block of the clip's audio
# Blocks whose decoding after a seek is tried while analysing (fractions of the clip), to decide
# whether the clip's audio can be decoded again exactly instead of being stored.
SEEK_PROBES = (0.25, 0.5, 0.75, 1.0)
# "auto": store the audio of a clip that does not decode exactly after a seek; "decode": keep no
# audio whenever the frames' pts are usable, and decode such clips from the start for each span
# that does not follow the previous read (smaller entries, slower span renders late in long clips).
AUDIO_POLICY_ENV = "PIXELSEP_CACHE_AUDIO"
SILENCE_LOG = float(np.log(1e-10))  # the log-magnitude of silence, used to pad short clips

# progress(stage, done, total): stage is "read" (the clip's audio), "audio" (the audio net) or
# "video" (the video net); done and total are in seconds of the clip. "wait" (0, 0), once: another
# process is analysing the same clip into the same cache, and this one waits to open its entry.
Progress = Callable[[str, float, float], None]
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class Analysis:
    """A clip's analysis, opened from its folder. Arrays are read-only memory maps."""

    folder: Path
    meta: dict
    clip: Path | None = None  # the analysed clip: where the audio is decoded from when it is not stored
    clip_fingerprint: dict | None = None  # the clip's :func:`clip_fingerprint` when it was opened

    @classmethod
    def open(
        cls, folder: Path, verify: bool = True, clip: Path | None = None, clip_fingerprint: dict | None = None
    ) -> Analysis:
        """Open and check an analysis folder; raises CorruptEntry when anything is off."""
        try:
            meta = json.loads((folder / "analysis.json").read_text())
        except (OSError, ValueError) as error:
            raise CorruptEntry(f"analysis.json unreadable: {error}") from error
        if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
            raise CorruptEntry("not a pixelsep analysis of this version")
        analysis = cls(folder=folder, meta=meta, clip=clip, clip_fingerprint=clip_fingerprint)
        for name in meta["arrays"]:
            analysis.arrays[name] = open_array(folder, meta["arrays"][name], verify=verify)
        return analysis

    @cached_property
    def arrays(self) -> dict[str, np.ndarray]:
        return {}

    @property
    def components(self) -> np.ndarray:
        """Every window's components, float32 (windows, K, F, T), dequantised in memory (short
        clips and tests; renders read one window at a time with :meth:`read_components`)."""
        return dequantize_u8(np.asarray(self.arrays["components"]), np.asarray(self.arrays["component_scales"]))

    @property
    def log_magnitude(self) -> np.ndarray:
        """Every window's log-magnitude, float32 (windows, F, T), dequantised in memory (short clips, tests)."""
        return dequantize_u8(np.asarray(self.arrays["log_magnitude"]), np.asarray(self.arrays["log_magnitude_scales"]))

    @property
    def features(self) -> np.ndarray:
        return self.arrays["features"]

    @property
    def frame_times(self) -> np.ndarray:
        return self.arrays["frame_times"]

    @property
    def audio(self) -> np.ndarray:
        """The clip's whole audio, float32 (channels, samples), read into memory (short clips, tests;
        renders read spans with :meth:`read_audio`)."""
        return self.read_audio(0, self.num_samples)

    @property
    def num_channels(self) -> int:
        """Channels of the clip's own audio."""
        return int(self.meta["media"]["num_channels"])

    @property
    def num_samples(self) -> int:
        """Samples per channel of the clip's own audio (at :attr:`sample_rate`)."""
        return int(self.meta["media"]["num_samples"])

    @property
    def audio_stored(self) -> bool:
        """Whether the entry holds the clip's audio (else it is decoded from the clip, exactly)."""
        return self.meta["audio"]["storage"] == "stored"

    def read_audio(self, sample_start: int, sample_stop: int) -> np.ndarray:
        """Samples ``[sample_start, sample_stop)`` of the clip's audio, float32 (channels, n), equal to
        the same samples of :func:`pixelsep_plugin.media.iter_audio_blocks`. Read from the entry when it
        stores the audio, else decoded from the clip (see :mod:`pixelsep_plugin.media.span`); memory
        is bounded by the span, whatever the clip's length. Raises MediaError when the clip is needed
        and gone or changed."""
        if self.audio_stored:
            rows = read_rows(self.folder, self.meta["arrays"]["audio"], sample_start, sample_stop)
            return np.ascontiguousarray(rows.T, dtype=np.float32)
        return self._span_reader().read(sample_start, sample_stop)

    def _span_reader(self) -> AudioSpanReader:
        with _READER_LOCK:
            reader = self.__dict__.get("_reader")
            if reader is None:
                seek = bool(self.meta["audio"].get("seeks_exact", True))
                reader = AudioSpanReader(self._checked_clip(), self._audio_scan(), seek=seek)
                self.__dict__["_reader"] = reader
            return reader

    def _checked_clip(self) -> Path:
        """The clip, checked to be the file that was analysed (one-line errors otherwise)."""
        name = self.meta["clip"]["name"]
        if self.clip is None:
            raise InputError(f"the analysis of {name} keeps no audio: open it through analyze() with the clip")
        if not self.clip.is_file():
            raise MediaError(f"{self.clip} is gone: its audio is read from it; restore the clip or analyse it again")
        fingerprint = clip_fingerprint(self.clip)
        if self.clip_fingerprint is not None and fingerprint != self.clip_fingerprint:
            raise MediaError(f"{self.clip.name} changed since it was analysed: analyse it again")
        return self.clip

    def _audio_scan(self) -> AudioScan:
        a = self.meta["audio"]
        frames = np.asarray(self.arrays["audio_frames"])
        return AudioScan(
            num_samples=self.num_samples,
            num_channels=self.num_channels,
            sample_rate=self.sample_rate,
            block_samples=int(a["block_samples"]),
            checksums=np.asarray(self.arrays["audio_checksums"]),
            frame_pts=np.ascontiguousarray(frames[:, 0]),
            frame_positions=np.ascontiguousarray(frames[:, 1]),
            pts_consistent=True,
            integer_format=bool(a["integer_format"]),
            codec=str(a["codec"]),
        )

    def read_components(self, window: int) -> np.ndarray:
        """The audio components of analysis window ``window``, float32 (K, F, T), read from the file
        and dequantised."""
        codes = read_rows(self.folder, self.meta["arrays"]["components"], window, window + 1)[0]
        scales = read_rows(self.folder, self.meta["arrays"]["component_scales"], window, window + 1)[0]
        return dequantize_u8(codes, scales)

    def read_log_magnitude(self, window: int) -> np.ndarray:
        """The audio net's input (log-magnitude) of window ``window``, float32 (F, T), dequantised."""
        codes = read_rows(self.folder, self.meta["arrays"]["log_magnitude"], window, window + 1)[0]
        scales = read_rows(self.folder, self.meta["arrays"]["log_magnitude_scales"], window, window + 1)[0]
        return dequantize_u8(codes, scales)

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


_READER_LOCK = threading.Lock()


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
        if path.name != CHECKED_FILE and path.name not in cache.BOOKKEEPING_FILES and path.is_file():
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


def open_entry(
    entry: Path, fingerprint: dict, clip_sha256: str, verify: bool = False, clip: Path | None = None
) -> Analysis:
    """Open a cache entry, hashing its files only when they changed since they were last verified
    (size or mtime differ) or when ``verify``; raises CorruptEntry as :meth:`Analysis.open`."""
    record = _read_checked(entry)
    unchanged = record is not None and record.get("files") == _file_stats(entry)
    analysis = Analysis.open(entry, verify=verify or not unchanged, clip=clip, clip_fingerprint=fingerprint)
    if not unchanged or record.get("clip") != {**fingerprint, "sha256": clip_sha256}:
        _write_checked(entry, fingerprint, clip_sha256)
    return analysis


def audio_policy() -> str:
    """``$PIXELSEP_CACHE_AUDIO``: "auto" (the default) or "decode" (see AUDIO_POLICY_ENV)."""
    policy = os.environ.get(AUDIO_POLICY_ENV) or "auto"
    if policy not in ("auto", "decode"):
        raise InputError(f"${AUDIO_POLICY_ENV} must be 'auto' or 'decode', not {policy!r}")
    return policy


def _audio_storage(clip: Path, scan: AudioScan, folder: Path) -> tuple[dict, dict]:
    """Decide whether an entry stores the clip's audio: (the "audio" record of analysis.json, the
    descriptions of the small arrays that let the audio be decoded again and checked).

    "decoded": the clip's audio frames map to sample positions by their pts and blocks spread over
    the clip decode exactly after a seek, so the entry keeps only checksums and the frame map.
    "stored": the float32 samples are kept in the entry, as the reason says. With
    ``$PIXELSEP_CACHE_AUDIO=decode`` a clip that does not decode exactly after a seek is "decoded"
    too, with "seeks_exact": false: its spans are decoded from the start of the clip.
    """
    record = {
        "codec": scan.codec,
        "block_samples": scan.block_samples,
        "integer_format": scan.integer_format,
    }
    arrays = {}
    writer = ArrayWriter(folder, "audio_checksums.u32", "uint32", ())
    writer.append(scan.checksums)
    arrays["audio_checksums"] = writer.close()
    if not scan.pts_consistent:
        return {**record, "storage": "stored", "reason": "frame pts do not give sample positions"}, arrays
    blocks = sorted({min(len(scan.checksums) - 1, int(f * len(scan.checksums))) for f in SEEK_PROBES})
    with AudioSpanReader(clip, scan) as reader:
        exact = reader.seeks_exactly(blocks)
    if not exact and audio_policy() == "auto":
        return {**record, "storage": "stored", "reason": f"{scan.codec} does not decode exactly after a seek"}, arrays
    writer = ArrayWriter(folder, "audio_frames.i64", "int64", (2,))
    writer.append(np.stack([scan.frame_pts, scan.frame_positions], axis=1))
    arrays["audio_frames"] = writer.close()
    reason = "decoded again from the clip and checked block by block"
    if not exact:
        reason += f"; {scan.codec} does not decode exactly after a seek: spans are decoded from the start"
    return {**record, "storage": "decoded", "seeks_exact": exact, "reason": reason}, arrays


class _FramePrefetch:
    """The sampled video frames, decoded in a background thread while the audio is analysed (PyAV and
    FFmpeg release the GIL while decoding), handed over through a bounded queue."""

    _END = object()

    def __init__(self, clip: Path, frames_per_second: float, short_side: int, capacity: int = 64) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=capacity)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(clip, frames_per_second, short_side), name="pixelsep-frames", daemon=True
        )
        self._thread.start()

    def _run(self, clip: Path, frames_per_second: float, short_side: int) -> None:
        try:
            for item in media.iter_sampled_frames(clip, frames_per_second, short_side):
                if not self._put(item):
                    return
            self._put(self._END)
        except BaseException as error:  # handed to the consumer, which raises it
            self._put(error)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def take(self, wait: bool) -> list | None:
        """The frames decoded so far ((time, rgb) pairs; with ``wait``, at least one, or every one left
        when the clip ends); None once every frame was taken."""
        items = []
        while True:
            try:
                item = self._queue.get(block=wait and not items, timeout=None)
            except queue.Empty:
                return items
            if item is self._END:
                self._queue.put(item)  # keep the end visible to later calls
                return items or None
            if isinstance(item, BaseException):
                raise item
            items.append(item)
            if wait and len(items) >= self._queue.maxsize:
                return items

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()


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
    """Analyse ``clip`` into the (new, empty) ``folder``. See the module docstring for the arrays.

    The sampled video frames are decoded in a background thread from the start, and go through the
    video net between the audio net's batches, so decoding the picture overlaps the audio's work."""
    chunks = package.config.chunks
    started = time.perf_counter()

    def check_cancel() -> None:
        if cancel is not None and cancel():
            raise Cancelled("analysis cancelled")

    frames = _FramePrefetch(clip, chunks.frames_per_second, package.config.video_net.frame_size)
    try:
        return _run_analysis(
            clip, info, package, nets, folder, progress, check_cancel, clip_sha256, batch_windows, batch_frames,
            frames, started,
        )  # fmt: skip
    finally:
        frames.close()


def _run_analysis(
    clip: Path,
    info: media.MediaInfo,
    package: ModelPackage,
    nets: OnnxNets,
    folder: Path,
    progress: Progress | None,
    check_cancel: Callable[[], None],
    clip_sha256: str | None,
    batch_windows: int,
    batch_frames: int,
    frames: _FramePrefetch,
    started: float,
) -> None:
    cfg: ModelConfig = package.config
    front = cfg.audio
    chunks = cfg.chunks
    k = cfg.num_components

    # The clip's own audio: checksummed block by block and written out; the copy is dropped at the
    # end when the clip can give the same samples back after a seek (see media.span).
    audio_writer = ArrayWriter(folder, "audio.f32", "float32", (info.num_channels,))
    read_samples = 0
    scan: AudioScan | None = None
    for piece in scan_audio(clip, AUDIO_BLOCK_SAMPLES):
        if isinstance(piece, AudioScan):
            scan = piece
            break
        audio_writer.append(piece.T)
        read_samples += piece.shape[-1]
        if progress is not None:
            done = min(read_samples / info.sample_rate, info.duration_seconds)
            progress("read", done, info.duration_seconds)
        check_cancel()
    audio_desc = audio_writer.close()
    assert scan is not None
    audio_meta, audio_arrays = _audio_storage(clip, scan, folder)

    # Analysis audio -> STFT columns -> windows -> audio net.
    stft = Stft(front.n_fft, front.hop_length)
    cutter = WindowCutter(chunks.window_columns, chunks.overlap_columns, front.log_freq_bins, SILENCE_LOG)
    comp_writer = ArrayWriter(folder, "components.u8", "uint8", (k, front.log_freq_bins, chunks.window_columns))
    comp_scales = ArrayWriter(folder, "component_scales.f32", "float32", (k, 2))
    logmag_writer = ArrayWriter(folder, "log_magnitude.u8", "uint8", (front.log_freq_bins, chunks.window_columns))
    logmag_scales = ArrayWriter(folder, "log_magnitude_scales.f32", "float32", (front.log_freq_bins, 2))
    starts: list[int] = []
    pending: list[tuple[int, np.ndarray]] = []
    analysis_samples = 0

    def flush(force: bool = False) -> None:
        while pending and (force or len(pending) >= batch_windows):
            batch = pending[:batch_windows]
            del pending[:batch_windows]
            stack = np.stack([piece for _, piece in batch])[:, None]
            codes, scales = quantize_u8(nets.audio(stack), (2, 3))  # per (window, component)
            comp_writer.append(codes)
            comp_scales.append(scales)
            codes, scales = quantize_u8(stack[:, 0], (2,))  # per (window, frequency row)
            logmag_writer.append(codes)
            logmag_scales.append(scales)
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

    # Video frames -> video net, as the frames arrive from the decoding thread.
    feature_writer: ArrayWriter | None = None
    frame_times: list[float] = []
    frame_shape = (0, 0)
    waiting: list[tuple[float, np.ndarray]] = []

    def run_video(items: list[tuple[float, np.ndarray]], force: bool = False) -> None:
        nonlocal feature_writer, frame_shape
        waiting.extend(items)
        while waiting and (force or len(waiting) >= batch_frames):
            batch = waiting[:batch_frames]
            del waiting[:batch_frames]
            pixels = np.stack([rgb for _, rgb in batch]).astype(np.float32) / 255.0
            frame_shape = pixels.shape[1:3]
            features = nets.video(pixels.transpose(0, 3, 1, 2))
            if feature_writer is None:
                feature_writer = ArrayWriter(folder, "features.f16", "float16", features.shape[1:])
            feature_writer.append(features.astype(np.float16))
            frame_times.extend(t for t, _ in batch)

    for stft_frames in iter_stft_frames(stft, analysis_blocks()):
        pending.extend(cutter.push(log_magnitude(np.abs(stft_frames), front)))
        flush()
        run_video(frames.take(wait=False) or [])
        check_cancel()
    num_columns = stft.num_frames(analysis_samples)
    pending.extend(cutter.finish(num_columns))
    flush(force=True)
    components_desc = comp_writer.close()
    logmag_desc = logmag_writer.close()
    quant_descs = {"component_scales": comp_scales.close(), "log_magnitude_scales": logmag_scales.close()}
    if starts != WindowPlan(num_columns, chunks.window_columns, chunks.overlap_columns).starts.tolist():
        raise AssertionError("the analysis windows do not follow their plan")

    # The rest of the video.
    total_frames = max(1, math.ceil(info.duration_seconds * chunks.frames_per_second - 1e-9))
    while (items := frames.take(wait=True)) is not None:
        run_video(items)
        if progress is not None:
            done = min(len(frame_times) + len(waiting), total_frames) / chunks.frames_per_second
            progress("video", done, total_frames / chunks.frames_per_second)
        check_cancel()
    run_video([], force=True)
    if feature_writer is None:
        raise media.MediaError(f"no video frames could be decoded from {clip.name}")
    features_desc = feature_writer.close()

    small = {
        "window_starts": np.asarray(starts, dtype=np.int64),
        "frame_times": np.asarray(frame_times, dtype=np.float64),
    }
    arrays = {
        "components": components_desc,
        "log_magnitude": logmag_desc,
        **quant_descs,
        "features": features_desc,
        **audio_arrays,
    }
    if audio_meta["storage"] == "stored":
        arrays["audio"] = audio_desc
    else:
        (folder / audio_desc["file"]).unlink()
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
        "audio": audio_meta,
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
    max_cache_bytes: int | None = None,
) -> tuple[Analysis, bool]:
    """Analysis of ``clip``, from the cache when a valid entry exists. Returns (analysis, from_cache).

    The cache key is the clip's sha256. An unchanged clip file (same :func:`clip_fingerprint`) is
    not read again: its sha256 is remembered in the entry. A cached entry's files are hashed again
    only when their size or mtime changed since they were last verified, or with ``verify``.
    Without ``use_cache`` the analysis goes to a temporary folder that is removed when the returned
    :class:`Analysis` is garbage-collected (or at exit). After a new analysis the cache is pruned to
    ``max_cache_bytes`` (None: :func:`.cache.default_max_bytes`), least recently used first, never
    evicting this entry or one in use (see :mod:`pixelsep_plugin.runtime.cache`). The returned
    analysis holds its entry (a shared lock) while it lives, and reads the audio from ``clip`` when
    the entry does not store it.
    """
    clip = Path(clip)
    audio_policy()  # a bad setting is reported before any work
    info = media.probe(clip)
    media.require_audio(info)
    media.require_video(info)
    root = cache_root or default_cache_root()
    digest, fingerprint = clip_identity(clip, package, root, use_cache)
    entry = root / cache_key(digest, package)
    if not use_cache:
        return _analyse_into(entry, clip, info, package, nets, progress, cancel, digest, fingerprint, False, None)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise write_error(root / "the analysis", error) from None
    cache.remove_stale_temps(root)
    # One process per clip and model analyses at a time; the others wait, then open its entry.
    with cache.key_lock(root, entry.name, on_wait=lambda: progress and progress("wait", 0.0, 0.0)):
        if entry.exists():
            lock = _try_hold(entry)
            if lock is not None:
                try:
                    analysis = open_entry(entry, fingerprint, digest, verify=verify, clip=clip)
                except CorruptEntry as damage:
                    os.close(lock)
                    warnings.warn(
                        CacheWarning(
                            f"the cached analysis of {clip.name} is damaged ({damage.reason}): analysing it again"
                        ),
                        stacklevel=2,
                    )
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    cache.touch(entry)
                    return _holding(analysis, lock), True
        return _analyse_into(
            entry, clip, info, package, nets, progress, cancel, digest, fingerprint, True, max_cache_bytes
        )


def _analyse_into(
    entry: Path,
    clip: Path,
    info: media.MediaInfo,
    package: ModelPackage,
    nets: OnnxNets,
    progress: Progress | None,
    cancel: CancelCheck | None,
    digest: str,
    fingerprint: dict,
    use_cache: bool,
    max_cache_bytes: int | None,
) -> tuple[Analysis, bool]:
    """Run the analysis in a temporary folder beside ``entry`` and move it into place (``use_cache``)
    or keep it as a temporary analysis removed with the returned object."""
    root = entry.parent
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise write_error(root / "the analysis", error) from None
    try:
        work = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=root))
        lock = cache.hold(work, exclusive=True)  # a temporary folder in use is never taken for stale
    except OSError as error:
        raise write_error(root / "the analysis", error) from None
    try:
        run_analysis(clip, info, package, nets, work, progress, cancel, clip_sha256=digest)
        if not use_cache:
            analysis = Analysis.open(work, verify=False, clip=clip, clip_fingerprint=fingerprint)
            weakref.finalize(analysis, shutil.rmtree, work, True)
            cache.share(lock)
            return _holding(analysis, lock), False
        _write_checked(work, fingerprint, digest)  # hashed as it was written
        cache.touch(work)
        shutil.rmtree(entry, ignore_errors=True)
        os.replace(work, entry)
        cache.share(lock)  # the lock file moved with the folder: now the entry's
    except OSError as error:
        shutil.rmtree(work, ignore_errors=True)
        os.close(lock)
        if error.errno in WRITE_ERRNOS:
            raise write_error(root / "the analysis", error) from None
        raise
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        os.close(lock)
        raise
    analysis = _holding(Analysis.open(entry, verify=False, clip=clip, clip_fingerprint=fingerprint), lock)
    cache.prune(root, max_cache_bytes, keep={entry.name})
    return analysis, False


def _try_hold(entry: Path) -> int | None:
    """A shared lock on an existing entry (None when it vanished meanwhile)."""
    try:
        return cache.hold(entry)
    except FileNotFoundError:
        return None


def _holding(analysis: Analysis, lock: int) -> Analysis:
    """Tie the lock descriptor ``lock`` to ``analysis``: released when it is garbage-collected."""
    analysis.__dict__["_lock"] = lock
    weakref.finalize(analysis, os.close, lock)
    return analysis
