"""What a media file holds: its streams, display size and rotation, rates and channel layout (PyAV).

Only the first audio stream and the first video stream that is not an attached picture (cover art)
are ever used; :mod:`.decode` picks them with the same helpers.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.stream

from pixelsep_plugin.errors import InputError, MediaError


@dataclass(frozen=True)
class MediaInfo:
    """A media file's streams, as :func:`probe` reads them.

    path: the file.
    duration_seconds: the container's duration (s), else the longest stream's.
    has_video, has_audio: whether a (decodable) video / audio stream exists.
    width, height: the DISPLAY size in pixels: the coded size with the sample aspect ratio and the
        rotation metadata applied (a portrait phone video coded 1920x1080 is 1080x1920); 0 without video.
    rotation_degrees: the CLOCKWISE rotation a player applies for display: 0, 90, 180 or 270.
    frame_rate: average frames per second (0.0 without video).
    frame_rate_fraction: the same rate exactly, as FFmpeg keeps it: "30000/1001", "25/1" ("" without video).
    num_video_frames: frame count from the container, else duration * frame_rate (an estimate).
    sample_rate: the audio's native rate in Hz (0 without audio).
    num_channels: audio channels (0 without audio).
    channel_layout: FFmpeg's name for the layout, e.g. "mono", "stereo", "5.1" ("" without audio).
    num_audio_samples: samples per channel at the native rate, estimated from the stream's duration;
        the decoded count can differ by a codec frame or so.
    audio_offset_seconds: where the audio stream starts on the picture's clock: its start time minus
        the video stream's (2.0 when the sound starts 2 s after the first picture; 0.0 unless both exist).
    """

    path: Path
    duration_seconds: float
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    rotation_degrees: int = 0
    frame_rate: float = 0.0
    frame_rate_fraction: str = ""
    num_video_frames: int = 0
    sample_rate: int = 0
    num_channels: int = 0
    channel_layout: str = ""
    num_audio_samples: int = 0
    audio_offset_seconds: float = 0.0


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (FFmpeg messages can span lines)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _file_kind(path: Path) -> str:
    """What kind of special file ``path`` is, in words."""
    mode = path.stat().st_mode
    for test, name in (
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "a special file"


def open_input(path: Path | str) -> av.container.InputContainer:
    """Open ``path`` for reading, or raise MediaError with one line saying why not."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path} does not exist: check the path")
    if path.is_dir():
        raise MediaError(f"{path} is a directory: give a video file")
    if not path.is_file():  # a FIFO, socket or device would block or never end
        raise MediaError(f"{path} is not a regular file ({_file_kind(path)}): give a video file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path.name} is empty (0 bytes): give a video file")
    try:
        return av.open(str(path), mode="r")
    except PermissionError:
        raise MediaError(f"cannot read {path.name} (permission denied): check the file's permissions") from None
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as error:
        reason = getattr(error, "strerror", None) or first_line(error)
        raise MediaError(f"{path.name} is not a media file pixelsep can read ({reason}): give a video file") from None


def video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    """The first video stream that is a real picture sequence (not cover art), or None."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def audio_stream(container: av.container.InputContainer) -> av.audio.stream.AudioStream | None:
    """The first audio stream, or None."""
    return container.streams.audio[0] if container.streams.audio else None


def default_layout(num_channels: int) -> str:
    """FFmpeg's default layout name for a channel count: 1 mono, 2 stereo, 6 "5.1", 8 "7.1", ..."""
    if num_channels < 1:
        raise InputError(f"audio needs at least one channel, got {num_channels}")
    return av.AudioLayout(f"{num_channels}c").name


def layout_name(layout: av.AudioLayout) -> str:
    """FFmpeg's name for ``layout``; a layout of unnamed channels (plain WAV headers say only "2 channels")
    is given the default layout for its channel count, as FFmpeg itself guesses."""
    if all(channel.name == "NONE" for channel in layout.channels):
        return default_layout(len(layout.channels))
    return layout.name


def clockwise_rotation(frame_rotation: float | None) -> int:
    """The clockwise display rotation (0, 90, 180, 270) from ``VideoFrame.rotation``.

    ``VideoFrame.rotation`` is FFmpeg's ``av_display_rotation_get``: the counter-clockwise angle in
    [-180, 180] (e.g. -90 for a phone's portrait video, which players turn 90 degrees clockwise).
    It is snapped to the nearest multiple of 90 (display matrices can hold 89.99...); flips are ignored.
    """
    return int(round(-(frame_rotation or 0.0) / 90.0)) % 4 * 90


def stream_origin_seconds(stream: av.stream.Stream | None) -> float:
    """The stream's start time in seconds (0.0 when unknown)."""
    if stream is None or stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


def time_origin_seconds(container: av.container.InputContainer) -> float:
    """Time 0 of the project, in container seconds: the start of the audio stream, else of the video.

    Audio sample ``i`` (as :mod:`.decode` yields it) is then at time ``i / sample_rate`` and every
    frame time is measured from the same point, so pictures and sound stay in step even when the
    streams start at different times.
    """
    audio = audio_stream(container)
    return stream_origin_seconds(audio if audio is not None else video_stream(container))


def _duration_seconds(container: av.container.InputContainer, streams: list[av.stream.Stream]) -> float:
    if container.duration:
        return container.duration / av.time_base
    durations = [float(s.duration * s.time_base) for s in streams if s.duration and s.time_base]
    return max(durations, default=0.0)


def _video_fields(path: Path, container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> dict:
    """Display size and rotation from the first decoded frame (PyAV shows the display matrix only there)."""
    frame = None
    try:
        for packet in container.demux(stream):
            frame = next(iter(packet.decode()), None)
            if frame is not None:
                break
    except (av.error.FFmpegError, ValueError) as error:
        raise MediaError(
            f"cannot decode the video of {path.name} ({first_line(error)}): the file may be damaged"
        ) from None
    if frame is None:
        raise MediaError(f"the video stream of {path.name} has no picture: the file may be damaged")
    rotation = clockwise_rotation(frame.rotation)
    width, height = frame.width, frame.height
    aspect = stream.sample_aspect_ratio
    if aspect is not None and aspect > 0 and aspect != 1:
        width = max(1, int(round(width * Fraction(aspect))))
    if rotation in (90, 270):
        width, height = height, width
    exact = stream.average_rate or stream.guessed_rate or stream.base_rate or 0
    return {
        "width": width,
        "height": height,
        "rotation_degrees": rotation,
        "frame_rate": float(exact),
        "frame_rate_fraction": f"{exact.numerator}/{exact.denominator}" if exact else "",
    }


def probe(path: Path | str) -> MediaInfo:
    """Read a file's stream information.

    Raises MediaError (one line) when the file is missing, is a directory, is not a media file, or
    its video cannot be decoded at all. A missing stream is not an error here: see
    :func:`require_audio` and :func:`require_video`.
    """
    path = Path(path)
    with open_input(path) as container:
        video = video_stream(container)
        audio = audio_stream(container)
        if audio is not None and audio.codec_context is None:
            raise MediaError(f"cannot decode the audio of {path.name}: its codec is not supported")
        if video is not None and video.codec_context is None:
            raise MediaError(f"cannot decode the video of {path.name}: its codec is not supported")
        streams = [s for s in (video, audio) if s is not None]
        duration = _duration_seconds(container, streams)
        fields: dict = {}
        if audio is not None:
            rate = int(audio.rate or audio.codec_context.sample_rate or 0)
            if rate <= 0:
                raise MediaError(f"the audio stream of {path.name} has no sample rate: the file may be damaged")
            audio_seconds = float(audio.duration * audio.time_base) if audio.duration and audio.time_base else duration
            fields.update(
                sample_rate=rate,
                num_channels=len(audio.layout.channels),
                channel_layout=layout_name(audio.layout),
                num_audio_samples=int(round(audio_seconds * rate)),
            )
        if video is not None:
            fields.update(_video_fields(path, container, video))
            fields["num_video_frames"] = int(video.frames or round(duration * fields["frame_rate"]))
        if video is not None and audio is not None:
            fields["audio_offset_seconds"] = stream_origin_seconds(audio) - stream_origin_seconds(video)
    return MediaInfo(
        path=path,
        duration_seconds=duration,
        has_video=video is not None,
        has_audio=audio is not None,
        **fields,
    )


def require_audio(info: MediaInfo) -> None:
    """Raise MediaError unless the file has an audio stream."""
    if not info.has_audio:
        raise MediaError(f"no audio stream in {info.path.name}: pixelsep needs a video with sound")


def require_video(info: MediaInfo) -> None:
    """Raise MediaError unless the file has a video stream."""
    if not info.has_video:
        raise MediaError(f"no video stream in {info.path.name}: pixelsep needs a video to click in")
