"""Writing audio, images and synthetic test clips with PyAV, atomically and never over a source.

Every file is written to a hidden temp file in the destination's folder and moved into place with
``os.replace`` only when complete; on any error the temp file is removed and the destination is left
as it was.

Audio files:

- ``.wav``: 32-bit float PCM (``pcm_f32le``; RF64 past 4 GiB). Float keeps every sample exactly, so
  a file reads back bit for bit, and stems whose peaks exceed 1.0 are not clipped.
- ``.flac``: 24-bit integers (FLAC has no float samples): samples are clipped to [-1, 1 - 2**-23]
  and rounded to steps of 2**-23; when any were clipped, closing the file warns
  (:class:`~pixelsep_plugin.errors.ClippingWarning`, one line with the count and the peak).
- ``.mp3`` (LAME, 160 kbit/s per channel up to 320), ``.m4a`` (AAC, 96 kbit/s per channel) and
  ``.opus`` (Opus in Ogg, 64 kbit/s per channel): lossy, at the source's rate except Opus, which
  only runs at 48 kHz (and 24, 16, 12, 8 kHz): other rates are resampled to 48 kHz. Their decoders
  clip at full scale, so peaks above 1.0 should be limited first.
"""

from __future__ import annotations

import errno
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np

from pixelsep_plugin.errors import ClippingWarning, InputError, MediaError
from pixelsep_plugin.media.probe import default_layout, first_line

# suffix -> (muxer, codec, sample format the samples are handed over in)
AUDIO_FILE_CODECS = {
    ".wav": ("wav", "pcm_f32le", "flt"),
    ".flac": ("flac", "flac", "s32"),
    ".mp3": ("mp3", "libmp3lame", "flt"),
    ".m4a": ("ipod", "aac", "flt"),
    ".opus": ("ogg", "libopus", "flt"),
}
LOSSLESS_SUFFIXES = (".wav", ".flac")
OPUS_RATES = (48000, 24000, 16000, 12000, 8000)
FLAC_SCALE = float(1 << 23)  # 24-bit FLAC: one step is 2**-23


def _parse_layout(channel_layout: str) -> av.AudioLayout:
    try:
        return av.AudioLayout(channel_layout)
    except (ValueError, av.error.FFmpegError):
        raise InputError(
            f"unknown channel layout {channel_layout!r}: use an FFmpeg name like 'stereo' or '5.1'"
        ) from None


def check_not_protected(path: Path, protect: Sequence[Path | str]) -> None:
    """Raise InputError when ``path`` is (or links to) one of the ``protect`` files."""
    for source in protect:
        source = Path(source)
        same = path.exists() and source.exists() and os.path.samefile(path, source)
        if same or path.resolve() == source.resolve():
            raise InputError(
                f"refusing to write {path.name}: it is the source clip, which pixelsep never changes; "
                "choose another output path"
            )


WRITE_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
}


def write_error(path: Path, error: OSError) -> MediaError:
    """One line for an OSError met while writing ``path`` (full disk, no permission, read-only...)."""
    reason = WRITE_ERRNOS.get(error.errno or 0) or error.strerror or first_line(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        advice = "free some space or choose another folder"
    elif error.errno in WRITE_ERRNOS:
        advice = "choose a folder you can write to"
    else:
        advice = "check the folder"
    return MediaError(f"cannot write {path.name} in {path.parent} ({reason}): {advice}")


def _new_temp_beside(path: Path) -> Path:
    """Create an empty hidden file next to ``path`` (same suffix; permissions as a new file gets)."""
    if path.is_dir():
        raise InputError(f"{path} is a folder: give a file name to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise MediaError(
            f"cannot write {path.name}: {path.parent} is a file, not a folder: choose a folder you can write to"
        ) from None
    except OSError as error:
        raise write_error(path, error) from None
    for _ in range(100):
        temp = path.with_name(f".{path.stem}.{os.urandom(4).hex()}.tmp{path.suffix}")
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        except OSError as error:
            raise write_error(path, error) from None
        return temp
    raise MediaError(f"cannot create a temporary file in {path.parent}: check the folder")


@contextmanager
def atomic_destination(path: Path | str, protect: Sequence[Path | str] = ()) -> Iterator[Path]:
    """Yield a temp path to write; on success it replaces ``path``, on error it is removed.

    An OSError while writing (full disk, permissions) becomes one MediaError line.
    """
    path = Path(path)
    check_not_protected(path, protect)
    temp = _new_temp_beside(path)
    try:
        try:
            yield temp
            os.replace(temp, path)
        except OSError as error:
            if error.errno in WRITE_ERRNOS:
                raise write_error(path, error) from None
            raise
    finally:
        temp.unlink(missing_ok=True)


class AudioWriter:
    """Streams float32 (channels, n) blocks into an audio file: see the module docstring for the formats.

    The file appears at ``path`` only when :meth:`close` succeeds (also on leaving a ``with`` block
    normally); :meth:`abort` (or an exception in the block) removes the partial temp file.
    ``channel_layout`` defaults to :func:`default_layout` of ``num_channels``. Refuses (InputError)
    a ``path`` that is one of ``protect`` (the source clip).
    """

    def __init__(
        self,
        path: Path | str,
        sample_rate: int,
        channel_layout: str | None = None,
        num_channels: int | None = None,
        protect: Sequence[Path | str] = (),
    ) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in AUDIO_FILE_CODECS:
            raise InputError(f"cannot write {self.path.name}: audio files end in {', '.join(AUDIO_FILE_CODECS)}")
        if int(sample_rate) <= 0:
            raise InputError(f"sample rate must be positive, got {sample_rate}")
        if channel_layout is None:
            if num_channels is None:
                raise InputError("give channel_layout or num_channels for the audio file")
            channel_layout = default_layout(num_channels)
        self.layout = _parse_layout(channel_layout)
        self.num_channels = len(self.layout.channels)
        if num_channels is not None and num_channels != self.num_channels:
            raise InputError(f"channel layout {channel_layout!r} has {self.num_channels} channels, not {num_channels}")
        self.sample_rate = int(sample_rate)
        muxer, codec, self.sample_format = AUDIO_FILE_CODECS[suffix]
        check_not_protected(self.path, protect)
        self._temp = _new_temp_beside(self.path)
        self._closed = False
        self._pts = 0
        self.clipped_samples = 0  # FLAC: samples beyond full scale (|x| > 1) that were clipped
        self.peak = 0.0  # the largest |sample| among them
        try:
            options = {"rf64": "auto"} if muxer == "wav" else {}
            self._container = av.open(str(self._temp), mode="w", format=muxer, options=options)
            rate = self.sample_rate
            if codec == "libopus" and rate not in OPUS_RATES:
                rate = OPUS_RATES[0]  # frames are resampled on their way into the encoder
            self._stream = self._container.add_stream(codec, rate=rate, layout=self.layout)
            if suffix in LOSSLESS_SUFFIXES:
                self._stream.format = self.sample_format
            else:  # the encoder takes its own sample format; frames are converted on the way in
                per_channel = LOSSY_BITS_PER_CHANNEL[codec]
                self._stream.bit_rate = min(per_channel * self.num_channels, LOSSY_MAX_BITS.get(codec, 1 << 30))
        except av.error.FFmpegError as error:
            self._temp.unlink(missing_ok=True)
            raise MediaError(f"cannot write {self.path.name} ({first_line(error)}): check the folder") from None
        except BaseException:
            self._temp.unlink(missing_ok=True)
            raise

    def write(self, samples: np.ndarray) -> None:
        """Append float32 (channels, n) samples (full scale is [-1, 1])."""
        if self._closed:
            raise InputError(f"{self.path.name} is already closed")
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 2 or samples.shape[0] != self.num_channels:
            raise InputError(f"audio for {self.path.name} must be ({self.num_channels}, n), got {samples.shape}")
        if samples.shape[1] == 0:
            return
        if not np.isfinite(samples).all():
            raise InputError(f"audio for {self.path.name} contains NaN or infinity")
        if self.sample_format == "flt":
            interleaved = samples.T.reshape(1, -1)
        else:  # 24-bit values in the top bits of s32, as FFmpeg's FLAC encoder takes them
            over = np.count_nonzero(np.abs(samples) > 1.0)  # (1.0 itself becomes 1 - 2**-23: one step)
            if over:
                self.clipped_samples += int(over)
                self.peak = max(self.peak, float(np.abs(samples).max()))
            steps = np.clip(np.round(samples * FLAC_SCALE), -FLAC_SCALE, FLAC_SCALE - 1).astype(np.int32)
            interleaved = (steps << 8).T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(interleaved), format=self.sample_format, layout=self.layout
        )
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts
        self._pts += samples.shape[1]
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except av.error.FFmpegError as error:
            self.abort()
            raise self._failure(error) from None

    def close(self) -> Path:
        """Finish the file and move it into place; returns its path."""
        if self._closed:
            return self.path
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            os.replace(self._temp, self.path)
        except av.error.FFmpegError as error:
            self.abort()
            raise self._failure(error) from None
        except OSError as error:
            self.abort()
            if error.errno in WRITE_ERRNOS:
                raise write_error(self.path, error) from None
            raise
        except BaseException:
            self.abort()
            raise
        self._closed = True
        if self.clipped_samples:
            warnings.warn(
                ClippingWarning(
                    f"{self.path.name}: {self.clipped_samples} samples above full scale (peak "
                    f"{20 * np.log10(self.peak):+.1f} dBFS) were clipped, as FLAC cannot hold them; write WAV "
                    "(float) to keep them, or lower the gain"
                ),
                stacklevel=2,
            )
        return self.path

    def _failure(self, error: Exception) -> MediaError:
        if isinstance(error, OSError) and error.errno in WRITE_ERRNOS:
            return write_error(self.path, error)
        return MediaError(f"writing {self.path.name} failed ({first_line(error)}): check the disk")

    def abort(self) -> None:
        """Throw the partial file away (the destination is left untouched)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._container.close()
        except Exception:  # the file is being discarded; its container may be half-written
            pass
        self._temp.unlink(missing_ok=True)

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


@contextmanager
def audio_writers(
    paths: dict[str, Path],
    sample_rate: int,
    channel_layout: str,
    protect: Sequence[Path | str] = (),
) -> Iterator[dict[str, AudioWriter]]:
    """Several :class:`AudioWriter` at once, by name: all files appear when the block ends normally,
    none of them (and no temp file) when it raises."""
    writers: dict[str, AudioWriter] = {}
    try:
        for name, path in paths.items():
            writers[name] = AudioWriter(path, sample_rate, channel_layout, protect=protect)
        yield writers
        for writer in writers.values():
            writer.close()
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise


def write_audio(
    path: Path | str,
    samples: np.ndarray,
    sample_rate: int,
    channel_layout: str | None = None,
    protect: Sequence[Path | str] = (),
) -> Path:
    """Write float32 (channels, n) samples at ``sample_rate`` Hz to ``.wav`` or ``.flac``, atomically.

    ``channel_layout`` defaults to :func:`default_layout` for the channel count. Refuses (InputError)
    to write over any file in ``protect``. Returns the path written.
    """
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 2:
        raise InputError(f"audio must be (channels, n), got shape {samples.shape}")
    block = 1 << 16
    with AudioWriter(path, sample_rate, channel_layout, num_channels=samples.shape[0], protect=protect) as writer:
        for start in range(0, samples.shape[1], block):
            writer.write(samples[:, start : start + block])
    return Path(path)


def write_png(path: Path | str, rgb: np.ndarray, protect: Sequence[Path | str] = ()) -> Path:
    """Write an RGB uint8 (H, W, 3) image as PNG, atomically."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InputError(f"an image must be (height, width, 3), got shape {rgb.shape}")
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = rgb.shape[1], rgb.shape[0], "rgb24"
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    data = b"".join(bytes(packet) for packet in [*codec.encode(frame), *codec.encode(None)])
    with atomic_destination(path, protect) as temp:
        temp.write_bytes(data)
    return Path(path)


# ---------------------------------------------------------------------------------------------------
# Synthetic test clips

CLIP_FORMATS = {  # suffix -> (muxer, video codec, default audio codec)
    ".mp4": ("mp4", "libx264", "aac"),
    ".mov": ("mov", "libx264", "aac"),
    ".mkv": ("matroska", "libx264", "aac"),
    ".webm": ("webm", "libvpx-vp9", "libopus"),
}
# bit/s per channel for the lossy codecs (FFmpeg's AAC default, 128 kbit/s for all channels, starves 5.1)
LOSSY_BITS_PER_CHANNEL = {"aac": 96_000, "libopus": 64_000, "libmp3lame": 160_000}
LOSSY_MAX_BITS = {"libmp3lame": 320_000}
RED = (220, 30, 30)
BLUE = (30, 60, 220)


def tone_pair(seconds: float, sample_rate: int, num_channels: int) -> np.ndarray:
    """float32 (channels, n), n = round(seconds * sample_rate): 440 Hz + 660 Hz (0.16 each) in every channel."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    mono = 0.16 * np.sin(2 * np.pi * 440.0 * t) + 0.16 * np.sin(2 * np.pi * 660.0 * t)
    return np.tile(mono.astype(np.float32), (num_channels, 1))


def _to_yuv420(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3), H and W even -> yuv420p planes stacked as uint8 (H * 3 // 2, W) (FFmpeg's conversion)."""
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuv420p").to_ndarray()


def _colour_yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """(Y, U, V) of a solid RGB colour."""
    planes = _to_yuv420(np.full((2, 2, 3), rgb, dtype=np.uint8))
    return int(planes[0, 0]), int(planes[2, 0]), int(planes[2, 1])


def _textured_background(width: int, height: int) -> np.ndarray:
    """RGB uint8 (height, width, 3): a grey checkerboard with a horizontal colour gradient."""
    yy, xx = np.mgrid[0:height, 0:width]
    cell = max(8, min(width, height) // 12)
    checker = ((xx // cell + yy // cell) % 2) * 40 + 60
    gradient = xx * 80 // max(1, width - 1)
    rgb = np.stack([checker + gradient // 2, checker + 20, checker + gradient], axis=-1)
    return rgb.clip(0, 255).astype(np.uint8)


class _PictureMaker:
    """Frames of the test picture, drawn straight into yuv420p planes (no per-frame colour conversion).

    Red rectangle centred at x = W/6, blue at x = 5W/6, both at mid height, bobbing in opposite
    directions by up to H/20 at 0.5 Hz. ``grain``: std (8-bit levels) of luma noise, cycling 7 patterns.
    Sizes and positions are even so that each rectangle covers whole chroma samples.
    """

    def __init__(self, width: int, height: int, fps: float, grain: float) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.background = _to_yuv420(_textured_background(width, height))  # (H * 3 // 2, W)
        self.buffer = np.empty_like(self.background)
        self.red, self.blue = _colour_yuv(RED), _colour_yuv(BLUE)
        self.rect_w = max(2, width // 6 // 2 * 2)
        self.rect_h = max(2, height // 3 // 2 * 2)
        rng = np.random.default_rng(0)
        count = 7 if grain > 0 else 0
        self.noise = [rng.normal(0.0, grain, (height, width)).round().astype(np.int16) for _ in range(count)]
        self.luma = self.background[:height].astype(np.int16)
        self.noisy = np.empty_like(self.luma)

    def _draw(self, x: int, y: int, colour: tuple[int, int, int]) -> None:
        h, w = self.height, self.width
        y0, y1, x0, x1 = max(0, y), min(h, y + self.rect_h), max(0, x), min(w, x + self.rect_w)
        if y1 <= y0 or x1 <= x0:
            return
        self.buffer[y0:y1, x0:x1] = colour[0]
        chroma = self.buffer[h:].reshape(2, h // 2, w // 2)  # the U plane, then the V plane
        chroma[0, y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = colour[1]
        chroma[1, y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = colour[2]

    def frame(self, index: int) -> av.VideoFrame:
        """Frame ``index`` (time ``index / fps``) as a yuv420p VideoFrame."""
        w, h = self.width, self.height
        np.copyto(self.buffer, self.background)
        if self.noise:
            np.add(self.luma, self.noise[index % len(self.noise)], out=self.noisy)
            np.clip(self.noisy, 0, 255, out=self.noisy)
            self.buffer[:h] = self.noisy
        bob = int(round(np.sin(2 * np.pi * 0.5 * index / self.fps) * h / 40)) * 2
        top = (h // 2 - self.rect_h // 2) // 2 * 2
        self._draw((w // 6 - self.rect_w // 2) // 2 * 2, top + bob, self.red)
        self._draw((5 * w // 6 - self.rect_w // 2) // 2 * 2, top - bob, self.blue)
        return av.VideoFrame.from_ndarray(self.buffer, format="yuv420p")


def _video_options(codec: str, keyframe_interval: int | None) -> dict[str, str]:
    if codec == "libx264":
        options = {"preset": "veryfast", "crf": "23"}
        if keyframe_interval:
            k = keyframe_interval
            options.update(g=str(k), keyint_min=str(k), **{"x264-params": f"keyint={k}:min-keyint={k}:scenecut=0"})
    else:  # libvpx-vp9, constant quality, as fast as it goes
        options = {"deadline": "realtime", "cpu-used": "8", "crf": "32", "b": "0", "row-mt": "1"}
        if keyframe_interval:
            options.update(g=str(keyframe_interval), keyint_min=str(keyframe_interval))
    return options


def _encode_audio(
    container: av.container.OutputContainer,
    stream: av.audio.stream.AudioStream,
    samples: np.ndarray,
    start: int,
    stop: int,
) -> None:
    """Encode samples[:, start:stop] (float32, planar) with pts ``start``; ``start == stop`` does nothing."""
    if stop <= start:
        return
    chunk = np.ascontiguousarray(samples[:, start:stop])
    frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=stream.layout)
    frame.sample_rate = stream.rate
    frame.pts = start
    for packet in stream.encode(frame):
        container.mux(packet)


def _flush(container: av.container.OutputContainer, stream: av.stream.Stream | None) -> None:
    if stream is not None:
        for packet in stream.encode(None):
            container.mux(packet)


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
    audio_codec: str | None = None,
    grain: float = 0.0,
) -> Path:
    """Write a synthetic clip for tests and benchmarks; the container and codecs follow the suffix.

    .mp4/.mov/.mkv: H.264 (libx264, preset veryfast, crf 23, yuv420p) + AAC; .webm: VP9 (libvpx-vp9,
    realtime, cpu-used 8) + Opus, which needs ``sample_rate=48000`` (others are refused).
    Picture (``width`` x ``height`` coded pixels, both even, ``round(seconds * fps)`` frames): a textured
    background, a red rectangle in the left third and a blue one in the right third, bobbing gently.
    rotation_degrees: CLOCKWISE display rotation stored as metadata (0, 90, 180, 270); the pixels are
        coded unrotated and players turn them (a 90 clip shows the red rectangle at the top).
    keyframe_interval: GOP length in frames (None: the encoder's default, 250 for x264).
    audio: float32 (channels, n) at ``sample_rate`` to write instead of :func:`tone_pair` (440 Hz +
        660 Hz in every channel); its channel count must match ``channel_layout``.
    audio_codec: another audio encoder, e.g. "flac" in .mkv for lossless tests (FLAC keeps 24 bits).
    grain: std of per-frame luma noise (8-bit levels), for a bitrate like real footage's.
    Written atomically. Returns ``path``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CLIP_FORMATS:
        raise InputError(f"test clips are .mp4, .mov, .mkv or .webm, not {path.name}")
    muxer, video_codec, default_audio_codec = CLIP_FORMATS[suffix]
    audio_codec = audio_codec or default_audio_codec
    if not (with_video or with_audio):
        raise InputError("a test clip needs video, audio or both")
    if seconds <= 0 or fps <= 0:
        raise InputError(f"seconds and fps must be positive, got {seconds} and {fps}")
    if with_video and (width < 16 or height < 16 or width % 2 or height % 2):
        raise InputError(f"test clip size must be even and at least 16x16, got {width}x{height}")
    if rotation_degrees not in (0, 90, 180, 270):
        raise InputError(f"rotation_degrees must be 0, 90, 180 or 270, got {rotation_degrees}")
    if with_audio and audio_codec == "libopus" and sample_rate != 48000:
        raise InputError(f"Opus audio (in .webm) needs sample_rate=48000, got {sample_rate}")
    layout = _parse_layout(channel_layout)
    if audio is None:
        audio = tone_pair(seconds, sample_rate, len(layout.channels))
    num_frames = int(round(seconds * fps))
    pictures = _PictureMaker(width, height, fps, grain) if with_video else None
    frames = (pictures.frame(index) for index in range(num_frames)) if pictures is not None else None
    return write_clip(
        path,
        frames,
        fps=fps,
        width=width,
        height=height,
        audio=audio if with_audio else None,
        sample_rate=sample_rate,
        channel_layout=channel_layout,
        rotation_degrees=rotation_degrees,
        keyframe_interval=keyframe_interval,
        audio_codec=audio_codec,
    )


def write_clip(
    path: Path | str,
    frames: Iterable[np.ndarray | av.VideoFrame] | None,
    fps: int,
    width: int,
    height: int,
    audio: np.ndarray | None,
    sample_rate: int = 44100,
    channel_layout: str = "stereo",
    rotation_degrees: int = 0,
    keyframe_interval: int | None = None,
    audio_codec: str | None = None,
    crf: int | None = None,
) -> Path:
    """Encode ``frames`` (RGB uint8 (height, width, 3) arrays or yuv420p VideoFrames) and ``audio``.

    The container and codecs follow the suffix as in :func:`make_test_clip`; ``audio`` is float32
    (channels, n) at ``sample_rate``, or None for a clip without an audio stream;
    ``frames`` None writes audio only. Audio is interleaved with the video frame by frame. ``crf``
    overrides the H.264/VP9 quality. Written atomically. Returns ``path``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CLIP_FORMATS:
        raise InputError(f"clips are written as .mp4, .mov, .mkv or .webm, not {path.name}")
    muxer, video_codec, default_audio_codec = CLIP_FORMATS[suffix]
    audio_codec = audio_codec or default_audio_codec
    layout = _parse_layout(channel_layout)
    if audio is not None:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 2 or audio.shape[0] != len(layout.channels):
            raise InputError(f"audio must be ({len(layout.channels)}, n) for {channel_layout!r}, got {audio.shape}")
    with atomic_destination(path) as temp:
        try:
            with av.open(str(temp), mode="w", format=muxer) as container:
                vstream = astream = None
                if frames is not None:
                    vstream = container.add_stream(video_codec, rate=fps)
                    vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
                    options = _video_options(video_codec, keyframe_interval)
                    if crf is not None:
                        options["crf"] = str(crf)
                    vstream.options = options
                    # PyAV's default (SLICE) makes x264 cut every frame into slices; x264's own default
                    # (frame threads, one slice per frame) is what real footage looks like to a decoder.
                    vstream.thread_type = "FRAME"
                    if rotation_degrees:  # PyAV takes counter-clockwise degrees
                        vstream.set_display_rotation(-rotation_degrees)
                if audio is not None:
                    astream = container.add_stream(audio_codec, rate=sample_rate, layout=layout)
                    if audio_codec == "flac":
                        astream.format = "s32"  # FFmpeg then writes 24-bit FLAC
                    elif audio_codec in LOSSY_BITS_PER_CHANNEL:
                        astream.bit_rate = LOSSY_BITS_PER_CHANNEL[audio_codec] * len(layout.channels)
                written = 0
                if vstream is not None:
                    for index, picture in enumerate(frames):
                        if isinstance(picture, np.ndarray):
                            if picture.shape != (height, width, 3):
                                raise InputError(f"frame {index} is {picture.shape}, not ({height}, {width}, 3)")
                            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
                        picture.pts = index
                        for packet in vstream.encode(picture):
                            container.mux(packet)
                        if astream is not None:  # interleave: audio up to the end of this frame
                            upto = min(audio.shape[1], int(round((index + 1) * sample_rate / fps)))
                            _encode_audio(container, astream, audio, written, upto)
                            written = max(written, upto)
                    _flush(container, vstream)
                if astream is not None:
                    for start in range(written, audio.shape[1], 4096):
                        _encode_audio(container, astream, audio, start, min(start + 4096, audio.shape[1]))
                    _flush(container, astream)
        except av.error.FFmpegError as error:
            raise MediaError(f"cannot write {path.name} ({first_line(error)})") from None
    return path
