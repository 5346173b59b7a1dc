"""Writing audio and images with PyAV: atomically (temp file, then rename), never over a source."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

from pixelsep_plugin.errors import InputError, MediaError

# WAV keeps float32 samples exactly (no clipping, stems + residual == original in the files);
# FLAC has no float samples, so it holds 24-bit integers.
AUDIO_CODECS = {".wav": ("wav", "pcm_f32le", "flt"), ".flac": ("flac", "flac", "s32")}
DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def _check_destination(path: Path, protect: Sequence[Path]) -> None:
    for source in protect:
        if Path(source).exists() and path.exists() and path.resolve() == Path(source).resolve():
            raise InputError(f"refusing to write {path.name}: it is the source clip, which pixelsep never changes")


def _temp_beside(path: Path) -> Path:
    """An empty temp file next to ``path``, with the permissions a new file normally gets."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)
    return Path(name)


class AudioWriter:
    """Streams float32 (channels, n) blocks into a WAV (32-bit float) or FLAC (24-bit) file.

    The file appears at ``path`` only when :meth:`close` succeeds; :meth:`abort` removes the partial
    temp file. Refuses a ``path`` that is one of ``protect`` (the source clip).
    """

    def __init__(
        self,
        path: Path | str,
        sample_rate: int,
        channel_layout: str | None = None,
        num_channels: int | None = None,
        protect: Sequence[Path] = (),
    ):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in AUDIO_CODECS:
            raise InputError(f"cannot write {self.path.name}: audio files must end in .wav or .flac")
        _check_destination(self.path, protect)
        if channel_layout is None:
            if num_channels not in DEFAULT_LAYOUTS:
                raise InputError(f"no channel layout for {num_channels} channels: give channel_layout")
            channel_layout = DEFAULT_LAYOUTS[num_channels]
        self.container_format, codec, self.sample_format = AUDIO_CODECS[suffix]
        self.sample_rate = int(sample_rate)
        self.layout = av.AudioLayout(channel_layout)
        self.num_channels = len(self.layout.channels)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._temp = _temp_beside(self.path)
        try:
            self._container = av.open(str(self._temp), mode="w", format=self.container_format)
            self._stream = self._container.add_stream(codec, rate=self.sample_rate, layout=self.layout)
            self._stream.format = self.sample_format
        except av.error.FFmpegError as error:
            self._temp.unlink(missing_ok=True)
            raise MediaError(f"cannot write {self.path.name} ({str(error).splitlines()[0]})") from None
        except BaseException:
            self._temp.unlink(missing_ok=True)
            raise
        self._pts = 0
        self._closed = False

    def write(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 2 or samples.shape[0] != self.num_channels:
            raise ValueError(f"expected ({self.num_channels}, n) samples, got {samples.shape}")
        if samples.shape[1] == 0:
            return
        if self.sample_format == "flt":
            packed = samples.T.reshape(1, -1)
        else:  # 24-bit in the top bits of s32
            scaled = np.clip(np.round(samples * 8_388_608.0), -8_388_608, 8_388_607).astype(np.int32) << 8
            packed = scaled.T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(packed), format=self.sample_format, layout=self.layout)
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts
        self._pts += samples.shape[1]
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> Path:
        if self._closed:
            return self.path
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            os.replace(self._temp, self.path)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        return self.path

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._container.close()
        except Exception:  # the file is being thrown away; its container may be half-written
            pass
        self._temp.unlink(missing_ok=True)

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def write_audio(
    path: Path | str,
    samples: np.ndarray,
    sample_rate: int,
    channel_layout: str | None = None,
    protect: Sequence[Path] = (),
) -> Path:
    """Write float32 (channels, n) samples to ``.wav`` or ``.flac``, atomically."""
    samples = np.asarray(samples, dtype=np.float32)
    with AudioWriter(path, sample_rate, channel_layout, num_channels=samples.shape[0], protect=protect) as writer:
        for start in range(0, samples.shape[1], 1 << 16):
            writer.write(samples[:, start : start + (1 << 16)])
    return Path(path)


def write_png(path: Path | str, rgb: np.ndarray) -> Path:
    """Write an RGB uint8 (H, W, 3) image as PNG, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = rgb.shape[1], rgb.shape[0], "rgb24"
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb, dtype=np.uint8), format="rgb24")
    data = b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode(None)])
    temp = _temp_beside(path)
    try:
        temp.write_bytes(data)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path
