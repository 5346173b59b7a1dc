"""The stand-in a click plays until its stems are rendered: a WAV as long as the stem, silent but for
the span around the playhead (numpy only, no bpy).

A sound strip in Blender's sequencer plays a file from the strip's start and is as long as that
file, so the stand-in has the stem's own length: the strip is made (or keeps) the geometry it will
have, and the whole stem later swaps in as the strip's sound without moving or trimming anything.
Only the span is written; the rest of the file is a hole that the file system fills with zeros
(sparse where it supports that), so writing costs the span, not the clip. 16-bit PCM: a preview,
half the size of float samples on file systems without holes.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

WAV_HEADER_BYTES = 44
MAX_RIFF_BYTES = 0xFFFFFFFF


def span_wav_bytes(num_samples: int, num_channels: int) -> int:
    """Size in bytes of a 16-bit stand-in of ``num_samples`` frames of ``num_channels`` channels."""
    return WAV_HEADER_BYTES + 2 * num_samples * num_channels


def write_span_wav(path: Path, samples: np.ndarray, sample_start: int, num_samples: int, sample_rate: int) -> Path:
    """Write ``path``: a 16-bit WAV of ``num_samples`` frames whose frames
    ``[sample_start, sample_start + n)`` are ``samples`` (float, (channels, n), clipped to full scale)
    and whose other frames are zeros. Written to a temporary name and renamed into place.

    Raises ValueError when the span does not fit in the stem or the file would pass the WAV
    format's 4 GiB limit.
    """
    samples = np.asarray(samples)
    if samples.ndim != 2 or samples.shape[0] < 1:
        raise ValueError("samples must be (channels, n)")
    channels, n = samples.shape
    if sample_start < 0 or sample_start + n > num_samples:
        raise ValueError(f"samples {sample_start}:{sample_start + n} are not inside a stem of {num_samples}")
    total = span_wav_bytes(num_samples, channels)
    if total - 8 > MAX_RIFF_BYTES:
        raise ValueError(f"a {num_samples}-sample, {channels}-channel stand-in would pass the WAV size limit")
    data_bytes = total - WAV_HEADER_BYTES
    header = b"RIFF" + struct.pack("<I", total - 8) + b"WAVE"
    header += b"fmt " + struct.pack(
        "<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * channels * 2, channels * 2, 16
    )
    header += b"data" + struct.pack("<I", data_bytes)
    # full scale is 32768 (as readers divide by it), the largest positive code 32767
    pcm = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32768.0), -32768, 32767).astype("<i2").T.copy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with open(temp, "wb") as handle:
            handle.write(header)
            handle.seek(WAV_HEADER_BYTES + 2 * channels * sample_start)
            handle.write(pcm.tobytes())
            handle.truncate(total)  # the rest: a hole that reads as zeros
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path
