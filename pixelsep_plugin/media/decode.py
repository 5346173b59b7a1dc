"""Decoding with PyAV, streamed in blocks so that memory does not grow with the clip's length.

This module and :mod:`.encode` are the one place that deals with codecs, sample rates and frame
times. Any decoding failure raises :class:`MediaError`; nothing is ever filled with zeros.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np

from pixelsep_plugin.errors import MediaError
from pixelsep_plugin.media.probe import normalised_rotation, open_container, probe, require_audio, require_video

# Options that make H.264/HEVC decoding faster at no cost to frames the nets see at 160-224 px.
FAST_DECODE_OPTIONS = {"skip_loop_filter": "all", "flags2": "fast"}


def _decode_error(path: Path, error: Exception) -> MediaError:
    return MediaError(f"decoding {path.name} failed ({str(error).splitlines()[0]}): the file may be damaged")


def _iter_resampled(path: Path, resampler_args: dict, block_samples: int) -> Iterator[np.ndarray]:
    """Audio frames of the first audio stream through an AudioResampler, regrouped into blocks."""
    resampler = av.AudioResampler(**resampler_args)
    pending: list[np.ndarray] = []
    held = 0
    with open_container(path) as container:
        if not container.streams.audio:
            raise MediaError(f"no audio stream in {path.name}: pixelsep needs a video with sound")
        stream = container.streams.audio[0]
        try:
            frames = container.decode(stream)
            while True:
                frame = next(frames, None)
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray()
                    if out.format.is_packed:  # (1, n * channels) interleaved -> (channels, n)
                        chunk = chunk.reshape(-1, len(out.layout.channels)).T
                    pending.append(chunk.astype(np.float32, copy=False))
                    held += chunk.shape[-1]
                    while held >= block_samples:
                        joined = np.concatenate(pending, axis=-1)
                        yield joined[:, :block_samples]
                        rest = joined[:, block_samples:]
                        pending, held = [rest], rest.shape[-1]
                if frame is None:
                    break
        except av.error.FFmpegError as error:
            raise _decode_error(path, error) from None
    if held:
        yield np.concatenate(pending, axis=-1)


def iter_audio_blocks(path: Path | str, block_samples: int = 262_144) -> Iterator[np.ndarray]:
    """The first audio stream at its own rate and channel layout.

    Yields float32 (channels, n) blocks, each ``block_samples`` long but the last.
    """
    info = probe(path)
    require_audio(info)
    with open_container(path) as container:
        layout = container.streams.audio[0].layout.name
    yield from _iter_resampled(
        Path(path), {"format": "fltp", "layout": layout, "rate": info.sample_rate}, block_samples
    )


def read_audio(path: Path | str) -> tuple[np.ndarray, int]:
    """The whole audio: float32 (channels, samples) and its sample rate (for short clips and tests)."""
    info = probe(path)
    blocks = list(iter_audio_blocks(path))
    if not blocks:
        return np.zeros((info.num_channels, 0), dtype=np.float32), info.sample_rate
    return np.concatenate(blocks, axis=-1), info.sample_rate


def iter_analysis_audio(
    path: Path | str, sample_rate: int = 11025, block_samples: int = 65_536
) -> Iterator[np.ndarray]:
    """The audio downmixed to mono and resampled to ``sample_rate`` (FFmpeg's resampler).

    Yields float32 (n,) blocks. The total length is the native length times
    ``sample_rate / native_rate``, within the resampler's rounding (a sample or two).
    """
    for block in _iter_resampled(Path(path), {"format": "flt", "layout": "mono", "rate": sample_rate}, block_samples):
        yield block[0]


def read_analysis_audio(path: Path | str, sample_rate: int = 11025) -> np.ndarray:
    blocks = list(iter_analysis_audio(path, sample_rate))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


def frame_size_for(width: int, height: int, short_side: int, multiple: int = 16) -> tuple[int, int]:
    """(width, height) keeping the aspect with the short side ``short_side``, both multiples of ``multiple``."""
    scale = short_side / min(width, height)

    def snap(n: float) -> int:
        return max(multiple, int(round(n / multiple)) * multiple)

    return snap(width * scale), snap(height * scale)


def _keyframe_times(path: Path) -> tuple[list[float], float]:
    """Presentation times (s) of the video's keyframes, read from packets without decoding."""
    times = []
    with open_container(path) as container:
        stream = container.streams.video[0]
        base = float(stream.time_base)
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        for packet in container.demux(stream):
            if packet.is_keyframe and packet.pts is not None:
                times.append(packet.pts * base - start)
    return sorted(times), start


def plan_frame_decoding(path: Path | str, frames_per_second: float) -> str:
    """ "keyframes" when every sample time has a keyframe at most half an interval before it, else "all".

    Short-GOP and all-intra footage (one keyframe per second or more often) is then sampled from
    keyframes alone, which skips decoding every other frame.
    """
    info = probe(path)
    require_video(info)
    keys, _ = _keyframe_times(Path(path))
    if not keys:
        return "all"
    interval = 1.0 / frames_per_second
    sample_times = np.arange(0.0, info.duration_seconds, interval)
    index = np.searchsorted(keys, sample_times + 1e-6, side="right") - 1
    if np.any(index < 0):
        return "all"
    lag = sample_times - np.asarray(keys)[index]
    return "keyframes" if np.all(lag <= interval / 2 + 1e-6) else "all"


def _to_rgb(frame: av.VideoFrame, display_size: tuple[int, int] | None) -> np.ndarray:
    """A decoded frame as display-oriented RGB uint8 (H, W, 3), resized to ``display_size`` (w, h)."""
    rotation = normalised_rotation(frame.rotation)
    if display_size is None:
        coded = (frame.width, frame.height)
    else:
        coded = display_size if rotation in (0, 180) else (display_size[1], display_size[0])
    rgb = frame.reformat(width=coded[0], height=coded[1], format="rgb24", interpolation="AREA").to_ndarray()
    if rotation:
        rgb = np.ascontiguousarray(np.rot90(rgb, k=rotation // 90))
    return rgb


def iter_sampled_frames(
    path: Path | str,
    frames_per_second: float,
    short_side: int,
    multiple: int = 16,
    progress: Callable[[float, float], None] | None = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """Frames at times ``i / frames_per_second`` (while before the end), display-oriented and resized.

    Each sample is the last frame shown at or before its time (the first frame for time 0), resized
    with its aspect kept to :func:`frame_size_for` ``(short_side, multiple)``. Only sampled frames are
    converted; with :func:`plan_frame_decoding` "keyframes" only keyframes are decoded.
    Yields (time_seconds, rgb uint8 (H, W, 3)). ``progress(done_seconds, total_seconds)``.
    """
    path = Path(path)
    if frames_per_second <= 0:
        raise ValueError("frames_per_second must be positive")
    info = probe(path)
    require_video(info)
    size = frame_size_for(info.width, info.height, short_side, multiple)
    mode = plan_frame_decoding(path, frames_per_second)
    interval = 1.0 / frames_per_second
    total = info.duration_seconds
    count = max(1, int(np.ceil(total / interval - 1e-9)))
    next_index = 0
    previous = None
    with open_container(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.options = dict(FAST_DECODE_OPTIONS)
        if mode == "keyframes":
            stream.codec_context.skip_frame = "NONKEY"
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = frame.pts * float(stream.time_base) - start
                while next_index < count and t > next_index * interval + 1e-6:
                    chosen = previous if previous is not None else frame
                    yield next_index * interval, _to_rgb(chosen, size)
                    next_index += 1
                    if progress is not None:
                        progress(min(next_index * interval, total), total)
                if next_index >= count:
                    break
                previous = frame
        except av.error.FFmpegError as error:
            raise _decode_error(path, error) from None
    if previous is None:
        raise MediaError(f"no video frame could be decoded from {path.name}")
    while next_index < count:
        yield next_index * interval, _to_rgb(previous, size)
        next_index += 1
    if progress is not None:
        progress(total, total)


def read_frame(path: Path | str, time_seconds: float) -> np.ndarray:
    """The frame shown at ``time_seconds``, display-oriented, at full size: RGB uint8 (H, W, 3)."""
    path = Path(path)
    info = probe(path)
    require_video(info)
    with open_container(path) as container:
        stream = container.streams.video[0]
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        target = time_seconds + start
        try:
            container.seek(int(target / float(stream.time_base)), stream=stream, backward=True, any_frame=False)
            chosen = None
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                if chosen is not None and frame.pts * float(stream.time_base) > target + 1e-6:
                    break
                chosen = frame
        except av.error.FFmpegError as error:
            raise _decode_error(path, error) from None
    if chosen is None:
        raise MediaError(f"no video frame at {time_seconds:g} s in {path.name}")
    return _to_rgb(chosen, None)


def read_png(path: Path | str) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3)."""
    with open_container(path) as container:
        try:
            frame = next(container.decode(video=0))
        except (av.error.FFmpegError, StopIteration):
            raise MediaError(f"{Path(path).name} is not an image pixelsep can read") from None
        return frame.to_ndarray(format="rgb24")
