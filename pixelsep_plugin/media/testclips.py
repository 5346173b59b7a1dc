"""Small synthetic clips for tests, benchmarks and the example: real files, written with PyAV.

The picture is a textured background with a red rectangle in the left third and a blue one in the
right third, each bobbing gently; the sound is a 440 Hz tone for the left one and a 660 Hz tone for
the right one (in every channel), unless ``audio`` is given.
"""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np

from pixelsep_plugin.errors import InputError
from pixelsep_plugin.media.encode import DEFAULT_LAYOUTS, _temp_beside

VIDEO_CODECS = {".mp4": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9"}
AUDIO_CODECS = {".mp4": "aac", ".mov": "aac", ".mkv": "aac", ".webm": "libopus"}


def tone_pair(seconds: float, sample_rate: int, num_channels: int) -> np.ndarray:
    """float32 (channels, n): 440 Hz and 660 Hz at -16 dBFS each, in every channel."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    mono = 0.16 * np.sin(2 * np.pi * 440 * t) + 0.16 * np.sin(2 * np.pi * 660 * t)
    return np.tile(mono.astype(np.float32), (num_channels, 1))


def _background(width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    cell = max(8, min(width, height) // 12)
    checker = ((xx // cell + yy // cell) % 2) * 40 + 60
    gradient = (xx * 80 // max(1, width - 1)).astype(np.int64)
    return np.stack([checker + gradient // 2, checker + 20, checker + gradient], axis=-1).clip(0, 255).astype(np.uint8)


def make_test_clip(
    path: Path | str,
    seconds: float,
    width: int = 320,
    height: int = 240,
    fps: int = 30,
    sample_rate: int = 44100,
    channel_layout: str = "stereo",
    rotation_degrees: int = 0,
    with_video: bool = True,
    with_audio: bool = True,
    keyframe_interval: int | None = None,
    audio: np.ndarray | None = None,
    grain: float = 0.0,
) -> Path:
    """Write a clip; the container and codecs follow the extension (h264 + AAC, or VP9 + Opus for .webm).

    rotation_degrees: counter-clockwise display rotation stored as metadata (the pixels are coded
    unrotated: a player shows them rotated). keyframe_interval: GOP length in frames (x264's own
    default when None). audio: float32 (channels, n) at ``sample_rate`` instead of the tones.
    grain: standard deviation (8-bit levels) of per-frame noise, for a bitrate like real footage's.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_CODECS:
        raise InputError(f"test clips are .mp4, .mov, .mkv or .webm, not {path.name}")
    if suffix == ".webm" and sample_rate != 48000:
        raise InputError("Opus in .webm needs sample_rate=48000")
    layout = av.AudioLayout(channel_layout)
    if audio is None:
        audio = tone_pair(seconds, sample_rate, len(layout.channels))
    temp = _temp_beside(path)
    try:
        with av.open(str(temp), mode="w", format={".mov": "mov", ".mkv": "matroska"}.get(suffix)) as out:
            vstream = astream = None
            if with_video:
                vstream = out.add_stream(VIDEO_CODECS[suffix], rate=fps)
                vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
                options = (
                    {"preset": "veryfast", "crf": "23"}
                    if suffix != ".webm"
                    else {"deadline": "realtime", "cpu-used": "8", "crf": "32", "b": "0"}
                )
                if keyframe_interval:
                    options["g"] = str(keyframe_interval)
                    options["keyint_min"] = str(keyframe_interval)
                    if suffix != ".webm":
                        options["x264-params"] = f"keyint={keyframe_interval}:min-keyint={keyframe_interval}:scenecut=0"
                vstream.options = options
                if rotation_degrees:
                    vstream.set_display_rotation(rotation_degrees)
            if with_audio:
                astream = out.add_stream(AUDIO_CODECS[suffix], rate=sample_rate, layout=layout)
            if vstream is not None:
                background = _background(width, height)
                rng = np.random.default_rng(0)
                noise = [rng.normal(0.0, grain, (height, width, 1)).astype(np.int16) for _ in range(7 if grain else 0)]
                rect_w, rect_h = max(4, width // 6), max(4, height // 3)
                for i in range(int(round(seconds * fps))):
                    image = background.copy()
                    bob = int(round(np.sin(i / fps * 2 * np.pi * 0.5) * height / 20))
                    top = height // 2 - rect_h // 2 + bob
                    left_x = width // 6 - rect_w // 2
                    right_x = 5 * width // 6 - rect_w // 2
                    image[top : top + rect_h, left_x : left_x + rect_w] = (220, 30, 30)
                    image[top - bob * 2 : top - bob * 2 + rect_h, right_x : right_x + rect_w] = (30, 60, 220)
                    if noise:
                        image = (image + noise[i % len(noise)]).clip(0, 255).astype(np.uint8)
                    frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                    frame.pts = i
                    for packet in vstream.encode(frame):
                        out.mux(packet)
                for packet in vstream.encode(None):
                    out.mux(packet)
            if astream is not None:
                step = 4096
                for start in range(0, audio.shape[1], step):
                    chunk = np.ascontiguousarray(audio[:, start : start + step], dtype=np.float32)
                    frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
                    frame.sample_rate, frame.pts = sample_rate, start
                    for packet in astream.encode(frame):
                        out.mux(packet)
                for packet in astream.encode(None):
                    out.mux(packet)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


__all__ = ["DEFAULT_LAYOUTS", "make_test_clip", "tone_pair"]
