"""What a media file holds: streams, display size, rates, channel layout (PyAV)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from pixelsep_plugin.errors import MediaError


@dataclass(frozen=True)
class MediaInfo:
    """A media file's streams.

    width, height: the DISPLAY size in pixels, after rotation metadata (0 without video).
    rotation_degrees: counter-clockwise rotation applied for display (0, 90, 180 or 270), as FFmpeg
    and PyAV's ``VideoFrame.rotation`` report it.
    """

    path: Path
    duration_seconds: float
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    rotation_degrees: int = 0
    frame_rate: float = 0.0
    num_video_frames: int = 0
    sample_rate: int = 0
    num_channels: int = 0
    channel_layout: str = ""
    num_audio_samples: int = 0


def open_container(path: Path | str) -> av.container.InputContainer:
    """Open a file for reading, or raise MediaError with one line saying why not."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path} does not exist: check the path")
    if path.is_dir():
        raise MediaError(f"{path} is a directory, not a media file")
    try:
        return av.open(str(path), mode="r")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise MediaError(f"{path.name} is not a media file pixelsep can read ({reason})") from None


def normalised_rotation(degrees: float | None) -> int:
    """Nearest multiple of 90 in [0, 360) (display matrices can hold -90, 270.0001, ...)."""
    return int(round((degrees or 0) / 90.0)) % 4 * 90


def probe(path: Path | str) -> MediaInfo:
    """Read a file's stream information; raises MediaError when the file cannot be read at all."""
    path = Path(path)
    with open_container(path) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        durations = [container.duration / av.time_base] if container.duration else []
        for stream in (video, audio):
            if stream is not None and stream.duration and stream.time_base:
                durations.append(float(stream.duration * stream.time_base))
        duration = max(durations) if durations else 0.0
        info: dict = {
            "path": path,
            "duration_seconds": duration,
            "has_video": video is not None,
            "has_audio": audio is not None,
        }
        if video is not None:
            rotation = 0
            try:
                first = next(container.decode(video), None)
            except av.error.FFmpegError as error:
                raise MediaError(f"cannot decode the video of {path.name} ({str(error).splitlines()[0]})") from None
            if first is None:
                raise MediaError(f"the video stream of {path.name} has no frames")
            rotation = normalised_rotation(first.rotation)
            coded_w, coded_h = first.width, first.height
            width, height = (coded_h, coded_w) if rotation in (90, 270) else (coded_w, coded_h)
            rate = float(video.average_rate or video.guessed_rate or 0)
            frames = video.frames or int(round(duration * rate))
            info.update(width=width, height=height, rotation_degrees=rotation, frame_rate=rate, num_video_frames=frames)
        if audio is not None:
            rate = int(audio.rate or audio.codec_context.sample_rate or 0)
            if rate <= 0:
                raise MediaError(f"the audio stream of {path.name} has no sample rate")
            layout = audio.layout
            info.update(
                sample_rate=rate,
                num_channels=len(layout.channels),
                channel_layout=layout.name,
                num_audio_samples=int(round(duration * rate)),
            )
    return MediaInfo(**info)


def require_audio(info: MediaInfo) -> None:
    if not info.has_audio:
        raise MediaError(f"no audio stream in {info.path.name}: pixelsep needs a video with sound")


def require_video(info: MediaInfo) -> None:
    if not info.has_video:
        raise MediaError(f"no video stream in {info.path.name}: pixelsep needs a video to click in")
