"""Arrays on disk without pickle: raw little-endian files described by a JSON document.

An analysis is written array by array, appending as the clip streams through, so memory does not
grow with the clip's length; each file's sha256 is computed while it is written. Opening checks
sizes always and the sha256 on request (the analysis cache asks for it when a file's size or mtime
changed since its last check), so a truncated or corrupted entry is detected.
"""

from __future__ import annotations

import hashlib
import mmap
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class ArrayWriter:
    """Appends arrays of one dtype and trailing shape to ``folder/name``; the first axis grows."""

    def __init__(self, folder: Path, name: str, dtype: str, trailing_shape: tuple[int, ...]):
        self.path = folder / name
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.trailing_shape = tuple(int(n) for n in trailing_shape)
        self.length = 0
        self._hash = hashlib.sha256()
        self._file = open(self.path, "wb")

    def append(self, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=self.dtype)
        if values.shape[1:] != self.trailing_shape:
            raise ValueError(f"{self.path.name}: expected trailing shape {self.trailing_shape}, got {values.shape[1:]}")
        data = values.tobytes()
        self._file.write(data)
        self._hash.update(data)
        self.length += values.shape[0]

    def close(self) -> dict:
        """Close the file; returns its description for the JSON document."""
        self._file.close()
        return {
            "file": self.path.name,
            "dtype": self.dtype.str,
            "shape": [self.length, *self.trailing_shape],
            "sha256": self._hash.hexdigest(),
        }


def sha256_of_file(path: Path, block_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block_bytes):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class CorruptEntry(Exception):
    reason: str


def open_array(folder: Path, description: dict, verify: bool = True) -> np.ndarray:
    """Memory-map an array written by :class:`ArrayWriter`; raises CorruptEntry on any mismatch."""
    path = folder / description["file"]
    dtype = np.dtype(description["dtype"])
    shape = tuple(int(n) for n in description["shape"])
    expected_bytes = int(np.prod(shape)) * dtype.itemsize
    if not path.is_file():
        raise CorruptEntry(f"{path.name} is missing")
    if path.stat().st_size != expected_bytes:
        raise CorruptEntry(f"{path.name} has {path.stat().st_size} bytes, expected {expected_bytes}")
    if verify and sha256_of_file(path) != description["sha256"]:
        raise CorruptEntry(f"{path.name} fails its checksum")
    if expected_bytes == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=shape)


def read_rows(folder: Path, description: dict, row_start: int, row_stop: int) -> np.ndarray:
    """Rows ``[row_start, row_stop)`` (first axis) of an array written by :class:`ArrayWriter`, read
    with one positioned read into a fresh array, so that nothing of the file stays mapped.

    Returns an array of shape (row_stop - row_start, *trailing_shape) with the file's dtype; raises
    CorruptEntry when the file is shorter than its description says.
    """
    dtype = np.dtype(description["dtype"])
    shape = tuple(int(n) for n in description["shape"])
    if not 0 <= row_start <= row_stop <= shape[0]:
        raise ValueError(f"{description['file']}: rows {row_start}:{row_stop} outside 0:{shape[0]}")
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    count = (row_stop - row_start) * row_bytes
    out = np.empty((row_stop - row_start, *shape[1:]), dtype=dtype)
    if count == 0:
        return out
    buffer = memoryview(out.reshape(-1).view(np.uint8))
    fd = os.open(folder / description["file"], os.O_RDONLY)
    try:
        done = 0
        while done < count:
            n = os.preadv(fd, [buffer[done:]], row_start * row_bytes + done)
            if n == 0:
                raise CorruptEntry(f"{description['file']} ends before row {row_stop}")
            done += n
    finally:
        os.close(fd)
    return out


def release_pages(array: np.ndarray) -> None:
    """Drop the resident pages of a read-only memory map (they are read again from the file when
    touched), so that reading through a long map does not grow the process's memory."""
    handle = getattr(array, "_mmap", None)
    if isinstance(handle, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        handle.madvise(mmap.MADV_DONTNEED)


QUANT_LEVELS = 255  # uint8 codes 0..255


def quantize_u8(values: np.ndarray, reduce_axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Affine uint8 codes of ``values``, one (offset, step) pair per slice over ``reduce_axes``.

    Returns (codes uint8, same shape as ``values``; scales float32 (*kept shape, 2)) with
    ``values ~= offset + codes * step``: the error is at most step / 2 = (max - min) / 510 of its
    slice. A constant slice has step 0 and is exact.
    """
    values = np.asarray(values, dtype=np.float32)
    low = values.min(axis=reduce_axes, keepdims=True)
    high = values.max(axis=reduce_axes, keepdims=True)
    step = (high - low) / QUANT_LEVELS
    safe = np.where(step > 0, step, 1.0)
    codes = np.clip(np.rint((values - low) / safe), 0, QUANT_LEVELS).astype(np.uint8)
    scales = np.stack([np.squeeze(low, axis=reduce_axes), np.squeeze(step, axis=reduce_axes)], axis=-1)
    return codes, scales.astype(np.float32)


def dequantize_u8(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """float32 values from :func:`quantize_u8` output; ``scales`` (*kept shape, 2) broadcast over
    the trailing axes of ``codes`` that were reduced."""
    extra = codes.ndim - (scales.ndim - 1)
    low = scales[..., 0].reshape(scales.shape[:-1] + (1,) * extra)
    step = scales[..., 1].reshape(scales.shape[:-1] + (1,) * extra)
    return (low + codes.astype(np.float32) * step).astype(np.float32)
