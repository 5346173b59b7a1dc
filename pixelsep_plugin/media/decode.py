"""Decoding with PyAV, streamed in blocks so that memory does not grow with the clip's length.

This module and :mod:`.encode` are the one place that deals with codecs, sample rates and time
bases. Any decoding failure raises :class:`MediaError` with one line; nothing is ever zero-filled.

Time: seconds from the start of the audio stream (from the start of the video stream when there is
no audio), so audio sample ``i`` is at ``i / sample_rate`` and frame times use the same clock
(see :func:`.probe.time_origin_seconds`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import av.container
import numpy as np

from pixelsep_plugin.errors import InputError, MediaError
from pixelsep_plugin.media.probe import (
    audio_stream,
    first_line,
    open_input,
    probe,
    require_audio,
    require_video,
    time_origin_seconds,
    video_stream,
)

# Decoder options for sampled frames: no deblocking and non-bit-exact shortcuts (H.264/HEVC), about
# a third less decoding time; invisible once frames are scaled down to the nets' 160-224 px.
FAST_DECODE_OPTIONS = {"skip_loop_filter": "all", "flags2": "fast"}
# FFmpeg's choice of threads (frame threads for H.264/HEVC): measured on 2 cores, twice as fast as
# slice threads on single-slice files (x264's default, most footage) and level on sliced ones.
VIDEO_THREAD_TYPE = "AUTO"
# A frame counts as "at or before t" when its time is at most t + this (containers such as Matroska
# round times to whole milliseconds).
TIME_TOLERANCE_SECONDS = 1e-3
# Scaler for the sampled frames: area averaging (no aliasing when shrinking 1080p to ~160 px).
RESIZE_INTERPOLATION = "AREA"
# Long-GOP footage: a sample time within this many seconds of a keyframe takes that keyframe, and a
# GOP is decoded only up to the last frame a sample still needs (GOPs taken as closed). None (the
# default): keyframes only when every sample has one within half a sample interval, otherwise each
# sample is exactly the frame shown at its time. 5.0 decodes 44x less of a 250-frame-GOP 1080p clip
# for -0.05 dB median SDR on the evaluation set (benchmarks/analysis_levers.py), but a sample is
# then up to 5 s stale, which the evaluation's mostly still performers cannot measure.
KEYFRAME_REUSE_SECONDS: float | None = None

Progress = Callable[[float, float], None]


def _decode_error(path: Path, error: BaseException) -> MediaError:
    return MediaError(f"decoding {path.name} failed ({first_line(error)}): the file may be damaged")


def _decoded_frames(path: Path, container: av.container.InputContainer, stream: av.stream.Stream) -> Iterator:
    """Every decoded frame of ``stream`` (the decoder is flushed by the empty packet demux ends with)."""
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets, None)
            if packet is None:
                return
            frames = packet.decode()
        except (av.error.FFmpegError, ValueError) as error:
            raise _decode_error(path, error) from None
        yield from frames


class _BlockAssembler:
    """Regroups (channels, n) pieces into float32 (channels, block) blocks; the last may be shorter."""

    def __init__(self, num_channels: int, block: int) -> None:
        self.num_channels, self.block = num_channels, block
        self.buffer = np.empty((num_channels, block), dtype=np.float32)
        self.filled = 0

    def push(self, piece: np.ndarray) -> Iterator[np.ndarray]:
        """Add ``piece`` (channels, n); yield each block it completes (new arrays, never reused)."""
        start = 0
        while start < piece.shape[1]:
            take = min(self.block - self.filled, piece.shape[1] - start)
            self.buffer[:, self.filled : self.filled + take] = piece[:, start : start + take]
            self.filled += take
            start += take
            if self.filled == self.block:
                full, self.buffer, self.filled = self.buffer, np.empty_like(self.buffer), 0
                yield full

    def rest(self) -> Iterator[np.ndarray]:
        """The partial last block, if any."""
        if self.filled:
            yield self.buffer[:, : self.filled].copy()
            self.filled = 0


def _iter_converted_audio(
    path: Path | str,
    block_samples: int,
    make_resampler: Callable[[av.audio.stream.AudioStream], av.AudioResampler],
    num_channels: Callable[[av.audio.stream.AudioStream], int],
) -> Iterator[np.ndarray]:
    """The first audio stream through an AudioResampler, as float32 (channels, block_samples) blocks."""
    path = Path(path)
    if block_samples < 1:
        raise InputError(f"block_samples must be positive, got {block_samples}")
    with open_input(path) as container:
        stream = audio_stream(container)
        if stream is None:
            raise MediaError(f"no audio stream in {path.name}: pixelsep needs a video with sound")
        resampler = make_resampler(stream)
        blocks = _BlockAssembler(num_channels(stream), block_samples)
        frames = _decoded_frames(path, container, stream)
        while True:
            frame = next(frames, None)  # None once the decoder is drained: then flush the resampler
            try:
                converted = resampler.resample(frame)
            except (av.error.FFmpegError, ValueError) as error:
                raise _decode_error(path, error) from None
            for out in converted:
                if out is not None:
                    yield from blocks.push(out.to_ndarray().reshape(blocks.num_channels, -1))
            if frame is None:
                break
    yield from blocks.rest()


def iter_audio_blocks(path: Path | str, block_samples: int = 262_144) -> Iterator[np.ndarray]:
    """The first audio stream at its native sample rate and channel layout (those :func:`probe` reports).

    Yields float32 (channels, block_samples) blocks, the last one shorter; full scale is [-1, 1].
    The resampler only converts the sample format to float planar ('fltp'); it is a pass-through
    for codecs that decode to float planar already (AAC, Opus, MP3, Vorbis).
    """

    def make(stream: av.audio.stream.AudioStream) -> av.AudioResampler:
        return av.AudioResampler(format="fltp", layout=stream.layout, rate=stream.rate)

    yield from _iter_converted_audio(path, block_samples, make, lambda stream: len(stream.layout.channels))


def read_audio(path: Path | str) -> tuple[np.ndarray, int]:
    """The whole native audio: float32 (channels, samples) and the sample rate in Hz (short clips, tests)."""
    info = probe(path)
    require_audio(info)
    blocks = list(iter_audio_blocks(path))
    if not blocks:
        return np.zeros((info.num_channels, 0), dtype=np.float32), info.sample_rate
    return np.concatenate(blocks, axis=1), info.sample_rate


def iter_analysis_audio(
    path: Path | str, sample_rate: int = 11025, block_samples: int = 65_536
) -> Iterator[np.ndarray]:
    """The audio downmixed to mono and resampled to ``sample_rate`` Hz by FFmpeg (libswresample).

    Yields float32 (block_samples,) blocks, the last one shorter. The downmix is FFmpeg's default
    matrix, not normalised: stereo -> (L + R) / sqrt(2); 5.1 -> C + (L + R) / sqrt(2) + (SL + SR) / 2,
    without the LFE. The total length is ``native_samples * sample_rate / native_rate``
    to within one sample: the resampler is flushed at the end, so its filter delay costs no samples.
    """
    if sample_rate <= 0:
        raise InputError(f"sample_rate must be positive, got {sample_rate}")

    def make(stream: av.audio.stream.AudioStream) -> av.AudioResampler:
        return av.AudioResampler(format="flt", layout="mono", rate=sample_rate)

    for block in _iter_converted_audio(path, block_samples, make, lambda stream: 1):
        yield block[0]


def read_analysis_audio(path: Path | str, sample_rate: int = 11025) -> np.ndarray:
    """The whole analysis audio: float32 (samples,) mono at ``sample_rate`` Hz."""
    blocks = list(iter_analysis_audio(path, sample_rate))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


# ---------------------------------------------------------------------------------------------------
# Video


def frame_size_for(width: int, height: int, short_side: int, multiple: int = 16) -> tuple[int, int]:
    """(width, height) in pixels with the aspect of ``width`` x ``height`` and the short side ``short_side``.

    Both sides are rounded to the nearest multiple of ``multiple`` (at least ``multiple``), e.g.
    1920x1080 at 160 -> (288, 160); 1080x1920 -> (160, 288); 640x480 at 224 -> (304, 224).
    """
    if width <= 0 or height <= 0:
        raise InputError(f"frame size must be positive, got {width}x{height}")
    if short_side <= 0 or multiple <= 0:
        raise InputError(f"short_side and multiple must be positive, got {short_side} and {multiple}")
    scale = short_side / min(width, height)

    def snap(n: float) -> int:
        return max(multiple, int(math.floor(n / multiple + 0.5)) * multiple)

    return snap(width * scale), snap(height * scale)


def _sample_times(duration: float, frames_per_second: float) -> np.ndarray:
    """float64 (n,) seconds: i / frames_per_second for i = 0, 1, ... while below ``duration``."""
    count = max(0, math.ceil(duration * frames_per_second - 1e-9))
    return np.arange(count, dtype=np.float64) / frames_per_second


@dataclass(frozen=True)
class _FramePlan:
    """Which decoded frame each sample time takes.

    mode: "keyframes" (only keyframes are decoded; each sample takes the keyframe nearest its
        time) or "all" (each sample takes the last frame at or before its time).
    times: float64 (n,) sample times in seconds.
    chosen_pts: int64 (n,) pts (stream time base) of the frame for each sample; None when some packets
        have no pts, and frames are then matched by their times as they are decoded.
    discard_pts: pts of packets that no sample needs, not even as a reference (a GOP's frames after
        the last one a sample takes): not decoded at all.
    """

    mode: str
    times: np.ndarray
    chosen_pts: np.ndarray | None
    discard_pts: frozenset[int] = frozenset()


def _reuse_keyframes(
    order: list[tuple[int, bool]],
    keys: np.ndarray,
    key_seconds: np.ndarray,
    times: np.ndarray,
    chosen: np.ndarray,
    reuse_seconds: float,
) -> tuple[np.ndarray, frozenset[int]]:
    """``chosen`` with samples within ``reuse_seconds`` of a keyframe moved onto it, and the packets
    (pts) then needed by no sample: in each GOP (decode order), those after the last needed one."""
    after = np.clip(np.searchsorted(key_seconds, times), 0, keys.size - 1)
    before = np.clip(after - 1, 0, keys.size - 1)
    nearest = np.where(
        np.abs(key_seconds[before] - times) <= np.abs(key_seconds[after] - times), before, after
    )
    near = np.abs(key_seconds[nearest] - times) <= reuse_seconds
    chosen = np.where(near, keys[nearest], chosen)
    needed = set(chosen[~near].tolist())
    discard: set[int] = set()
    gop: list[int] = []
    last_needed = -1
    for pts, is_key in [*order, (0, True)]:
        if is_key:
            discard.update(gop[last_needed + 1 :])
            gop, last_needed = [], -1
        else:
            gop.append(pts)
            if pts in needed:
                last_needed = len(gop) - 1
    return chosen, frozenset(discard)


def _plan(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    frames_per_second: float,
    duration: float,
) -> _FramePlan:
    """Read the video packets without decoding them and decide how to decode (see :func:`plan_frame_decoding`)."""
    base = float(stream.time_base)
    origin = time_origin_seconds(container)
    pts: list[int] = []
    keys: list[int] = []
    order: list[tuple[int, bool]] = []  # (pts, keyframe) in decode order
    missing = False
    for packet in container.demux(stream):
        if packet.size == 0:  # the empty packet that ends the demuxing
            continue
        if packet.pts is None:
            missing = True
        elif not packet.is_discard:
            pts.append(packet.pts)
            order.append((packet.pts, bool(packet.is_keyframe)))
            if packet.is_keyframe:
                keys.append(packet.pts)
    if duration <= 0 and pts:
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        duration = max(pts) * base - origin + 1.0 / rate
    times = _sample_times(duration, frames_per_second)
    if missing or not pts:
        return _FramePlan("all", times, None)
    ordered = np.unique(np.asarray(pts, dtype=np.int64))
    seconds = ordered * base - origin
    keys_ordered = np.unique(np.asarray(keys, dtype=np.int64))
    key_seconds = keys_ordered * base - origin
    half = 0.5 / frames_per_second + TIME_TOLERANCE_SECONDS
    if keys_ordered.size and times.size:
        after = np.clip(np.searchsorted(key_seconds, times), 0, key_seconds.size - 1)
        before = np.clip(after - 1, 0, key_seconds.size - 1)
        nearest = np.where(
            np.abs(key_seconds[before] - times) <= np.abs(key_seconds[after] - times), before, after
        )
        if np.all(np.abs(key_seconds[nearest] - times) <= half):
            return _FramePlan("keyframes", times, keys_ordered[nearest])
    last = np.clip(np.searchsorted(seconds, times + TIME_TOLERANCE_SECONDS, side="right") - 1, 0, None)
    chosen = ordered[last]
    if KEYFRAME_REUSE_SECONDS is not None and keys_ordered.size and times.size:
        chosen, discard = _reuse_keyframes(
            order, keys_ordered, key_seconds, times, chosen, KEYFRAME_REUSE_SECONDS
        )
        return _FramePlan("all", times, chosen, discard)
    return _FramePlan("all", times, chosen)


def plan_frame_decoding(path: Path | str, frames_per_second: float) -> str:
    """How :func:`iter_sampled_frames` decodes ``path`` at ``frames_per_second``: "keyframes" or "all".

    The video packets are read without decoding (cheap). "keyframes" when every sample time has a
    keyframe within half a sample interval: then only keyframes are decoded (``skip_frame="NONKEY"``)
    and each sample is the keyframe nearest its time (so it may be up to half an interval off; with
    one keyframe per second and 1 fps sampling it is exact). Otherwise "all": every frame a later
    frame depends on is decoded, and so is each sampled frame; frames that are neither (non-reference
    B-frames) are skipped (``skip_frame="NONREF"`` for just those packets), which is exact.
    """
    if frames_per_second <= 0:
        raise InputError(f"frames_per_second must be positive, got {frames_per_second}")
    info = probe(path)
    require_video(info)
    with open_input(path) as container:
        stream = video_stream(container)
        return _plan(container, stream, frames_per_second, info.duration_seconds).mode


def _display_rgb(frame: av.VideoFrame, size: tuple[int, int], rotation: int) -> np.ndarray:
    """``frame`` as RGB uint8 (size[1], size[0], 3) in display orientation (``rotation`` clockwise)."""
    width, height = size if rotation in (0, 180) else (size[1], size[0])
    rgb = frame.reformat(
        width=width, height=height, format="rgb24", interpolation=RESIZE_INTERPOLATION
    ).to_ndarray()
    if rotation:
        rgb = np.ascontiguousarray(np.rot90(rgb, k=-(rotation // 90)))  # np.rot90 turns counter-clockwise
    return rgb


def _open_video_decoder(
    container: av.container.InputContainer, skip_frame: str
) -> av.video.stream.VideoStream:
    stream = video_stream(container)
    stream.thread_type = VIDEO_THREAD_TYPE
    stream.codec_context.options = dict(FAST_DECODE_OPTIONS)
    stream.codec_context.skip_frame = skip_frame
    return stream


def _frames_by_plan(
    path: Path, container: av.container.InputContainer, plan: _FramePlan
) -> Iterator[tuple[int, av.VideoFrame]]:
    """(sample index, frame) for every sample, in order, decoding as little as ``plan`` allows."""
    chosen = plan.chosen_pts
    assert chosen is not None
    stream = _open_video_decoder(container, "NONKEY" if plan.mode == "keyframes" else "DEFAULT")
    codec = stream.codec_context
    wanted = set(chosen.tolist())
    discard = plan.discard_pts
    count = len(chosen)
    index = 0
    previous = None
    packets = container.demux(stream)
    while index < count:
        try:
            packet = next(packets, None)
            if packet is None:
                break
            if plan.mode == "all" and packet.size:
                if packet.pts in wanted:
                    codec.skip_frame = "DEFAULT"
                else:
                    codec.skip_frame = "NONKEY" if packet.pts in discard else "NONREF"
            frames = codec.decode(packet)
        except (av.error.FFmpegError, ValueError) as error:
            raise _decode_error(path, error) from None
        for frame in frames:
            if frame.pts is None:
                continue
            while index < count and chosen[index] < frame.pts:  # its frame never came out: the one before
                yield index, previous if previous is not None else frame
                index += 1
            while index < count and chosen[index] == frame.pts:
                yield index, frame
                index += 1
            previous = frame
    if previous is None:
        raise MediaError(f"no video frame could be decoded from {path.name}: the file may be damaged")
    while index < count:
        yield index, previous
        index += 1


def _frames_by_time(
    path: Path, container: av.container.InputContainer, plan: _FramePlan
) -> Iterator[tuple[int, av.VideoFrame]]:
    """(sample index, frame) by frame times, for streams whose packets lack pts (every frame is decoded).

    A frame without pts is taken to follow the one before by one frame interval.
    """
    stream = _open_video_decoder(container, "DEFAULT")
    base = float(stream.time_base)
    origin = time_origin_seconds(container)
    step = 1.0 / float(stream.average_rate or stream.guessed_rate or 25)
    times = plan.times
    index = 0
    previous = None
    time = -step
    for frame in _decoded_frames(path, container, stream):
        time = frame.pts * base - origin if frame.pts is not None else time + step
        while index < len(times) and time > times[index] + TIME_TOLERANCE_SECONDS:
            yield index, previous if previous is not None else frame
            index += 1
        if index >= len(times):
            break
        previous = frame
    if previous is None:
        raise MediaError(f"no video frame could be decoded from {path.name}: the file may be damaged")
    while index < len(times):
        yield index, previous
        index += 1


def iter_sampled_frames(
    path: Path | str,
    frames_per_second: float,
    short_side: int,
    multiple: int = 16,
    progress: Progress | None = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """Frames sampled at times ``i / frames_per_second`` (i = 0, 1, ... while below the clip's duration).

    Each sample is the last frame shown at or before its time (the first frame for times before it);
    with :func:`plan_frame_decoding` "keyframes", the keyframe nearest its time. Frames are turned to
    display orientation (rotation metadata) and resized, aspect kept, to
    :func:`frame_size_for` ``(display_width, display_height, short_side, multiple)``.
    Only the sampled frames are converted to RGB.
    Yields (time_seconds, rgb uint8 (H, W, 3)). ``progress(done_seconds, total_seconds)`` is called
    after each sample.
    """
    path = Path(path)
    if frames_per_second <= 0:
        raise InputError(f"frames_per_second must be positive, got {frames_per_second}")
    info = probe(path)
    require_video(info)
    size = frame_size_for(info.width, info.height, short_side, multiple)
    total = info.duration_seconds
    with open_input(path) as container:
        plan = _plan(container, video_stream(container), frames_per_second, total)
    total = max(total, float(plan.times[-1]) if plan.times.size else 0.0)
    with open_input(path) as container:
        frames = _frames_by_plan if plan.chosen_pts is not None else _frames_by_time
        for index, frame in frames(path, container, plan):
            yield float(plan.times[index]), _display_rgb(frame, size, info.rotation_degrees)
            if progress is not None:
                progress(min(total, (index + 1) / frames_per_second), total)


def read_frame(path: Path | str, time_seconds: float) -> np.ndarray:
    """The frame shown at ``time_seconds``, display-oriented, at the display size: RGB uint8 (H, W, 3)."""
    path = Path(path)
    info = probe(path)
    require_video(info)
    if not 0.0 <= time_seconds <= max(info.duration_seconds, 0.0):
        raise InputError(
            f"time {time_seconds:g} s is outside {path.name} (0 to {info.duration_seconds:.3f} s)"
        )
    with open_input(path) as container:
        stream = video_stream(container)
        base = float(stream.time_base)
        origin = time_origin_seconds(container)
        chosen = None
        try:
            container.seek(int((time_seconds + origin) / base), stream=stream, backward=True, any_frame=False)
        except av.error.FFmpegError as error:
            raise _decode_error(path, error) from None
        for frame in _decoded_frames(path, container, stream):
            if frame.pts is None:
                continue
            if chosen is not None and frame.pts * base - origin > time_seconds + TIME_TOLERANCE_SECONDS:
                break
            chosen = frame
    if chosen is None:
        raise MediaError(f"no video frame at {time_seconds:g} s in {path.name}: the file may be damaged")
    return _display_rgb(chosen, (info.width, info.height), info.rotation_degrees)


def read_png(path: Path | str) -> np.ndarray:
    """An image file (PNG, JPEG, ...) as RGB uint8 (H, W, 3)."""
    path = Path(path)
    with open_input(path) as container:
        try:
            frame = next(container.decode(video=0))
        except (av.error.FFmpegError, StopIteration, IndexError, ValueError):
            raise MediaError(f"{path.name} is not an image pixelsep can read: give a PNG file") from None
        return frame.to_ndarray(format="rgb24")
