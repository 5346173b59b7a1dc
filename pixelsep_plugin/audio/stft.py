"""Short-time Fourier transform in numpy, with exact inverse and block-wise (streaming) use.

Framing convention (the same as ``torch.stft(center=True, pad_mode="constant")``): frame ``j`` is
centred on sample ``j * hop_length`` and covers samples
``[j * hop_length - n_fft // 2, j * hop_length - n_fft // 2 + n_fft)``; samples outside the signal
are zeros. A signal of ``length`` samples has ``length // hop_length + 1`` frames.

The inverse divides the windowed overlap-add by the summed squared window at each sample, so
``istft(stft(x)) == x`` for any hop that leaves no sample uncovered (float32 round-off only).
Because every frame depends only on its own samples, a long signal can be processed in blocks of
frames with results identical to the whole-signal transform (see :meth:`Stft.frames` and
:meth:`Stft.overlap_add`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache, cached_property
from types import ModuleType

import numpy as np


@cache
def _fft() -> ModuleType:
    """scipy's pocketfft (2 to 5 times numpy's forward speed on float32 frames, same results to 1e-7),
    imported at the first transform rather than with this module (the import takes about 0.25 s);
    numpy's FFT where scipy is missing (Blender's Python)."""
    try:
        from scipy import fft
    except ImportError:
        return np.fft
    return fft


def hann_window(n_fft: int) -> np.ndarray:
    """Periodic Hann window of ``n_fft`` samples (``torch.hann_window(n_fft)``), float32."""
    n = np.arange(n_fft, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / n_fft)).astype(np.float32)


@dataclass(frozen=True)
class Stft:
    n_fft: int
    hop_length: int

    def __post_init__(self) -> None:
        if self.hop_length <= 0 or self.hop_length > self.n_fft // 2:
            raise ValueError("hop_length must be in (0, n_fft // 2] so that every sample is covered")

    @cached_property
    def window(self) -> np.ndarray:
        return hann_window(self.n_fft)

    @property
    def freq_bins(self) -> int:
        return self.n_fft // 2 + 1

    def num_frames(self, length: int) -> int:
        return length // self.hop_length + 1

    def frame_span(self, frame_start: int, frame_stop: int) -> tuple[int, int]:
        """Sample range ``[first, stop)`` covered by frames ``[frame_start, frame_stop)``."""
        first = frame_start * self.hop_length - self.n_fft // 2
        return first, (frame_stop - 1) * self.hop_length - self.n_fft // 2 + self.n_fft

    def frames_touching(self, sample_start: int, sample_stop: int, length: int) -> tuple[int, int]:
        """Frames ``[j0, j1)`` (clipped to the signal's frames) whose support meets the samples."""
        half = self.n_fft // 2
        # frame j touches sample s when j*hop - half <= s < j*hop - half + n_fft
        j0 = max(0, -(-(sample_start - self.n_fft + 1 + half) // self.hop_length))
        j1 = min(self.num_frames(length), (sample_stop - 1 + half) // self.hop_length + 1)
        return j0, j1

    def frames(
        self,
        x: np.ndarray,
        frame_start: int = 0,
        frame_stop: int | None = None,
        offset: int = 0,
        length: int | None = None,
    ) -> np.ndarray:
        """STFT frames ``[frame_start, frame_stop)`` of a signal.

        x: real, shape (..., n): samples ``[offset, offset + n)`` of a signal of ``length`` samples
        (default: ``x`` is the whole signal). ``x`` must hold every sample of the requested frames
        that lies inside the signal; samples outside ``[0, length)`` are zeros.
        Returns complex64, shape (..., freq_bins, frames).
        """
        if length is None:
            length = offset + x.shape[-1]
        if frame_stop is None:
            frame_stop = self.num_frames(length)
        first, stop = self.frame_span(frame_start, frame_stop)
        a, b = max(0, first), min(length, stop)
        if a < offset or b > offset + x.shape[-1]:
            raise ValueError("the samples given do not cover the requested frames")
        seg = np.asarray(x[..., a - offset : b - offset], dtype=np.float32)
        lead, tail = a - first, stop - b
        if lead or tail:
            seg = np.pad(seg, [(0, 0)] * (seg.ndim - 1) + [(lead, tail)])
        windows = np.lib.stride_tricks.sliding_window_view(seg, self.n_fft, axis=-1)[..., :: self.hop_length, :]
        spec = _fft().rfft(windows * self.window, axis=-1).astype(np.complex64, copy=False)
        return np.swapaxes(spec, -1, -2)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Whole-signal STFT. x: shape (..., length) -> complex64 (..., freq_bins, frames)."""
        return self.frames(x)

    def _window_sum(self, num_frames: int) -> np.ndarray:
        """Summed squared window over ``num_frames`` consecutive frames, float32 ((num + pieces - 1) * hop,)."""
        hop = self.hop_length
        pieces = -(-self.n_fft // hop)
        wsq = np.zeros(pieces * hop, dtype=np.float32)
        wsq[: self.n_fft] = self.window**2
        wsum = np.zeros((num_frames + pieces - 1) * hop, dtype=np.float32)
        for k, piece in enumerate(wsq.reshape(pieces, hop)):
            wsum[k * hop : (k + num_frames) * hop].reshape(num_frames, hop)[:] += piece
        return wsum

    def overlap_add(
        self, spec: np.ndarray, frame_start: int, sample_start: int, sample_stop: int, length: int
    ) -> np.ndarray:
        """Inverse of the frames ``[frame_start, frame_start + spec.shape[-1])`` on ``[sample_start, sample_stop)``.

        The frames must include every frame of the ``length``-sample signal that touches the output
        range (see :meth:`frames_touching`); then the result equals the whole-signal inverse there.
        spec: complex, shape (..., freq_bins, frames). Returns float32, shape (..., sample_stop - sample_start).
        """
        num = spec.shape[-1]
        j0, j1 = self.frames_touching(sample_start, sample_stop, length)
        if frame_start > j0 or frame_start + num < j1:
            raise ValueError("overlap_add needs every frame that touches the output range")
        hop, n_fft = self.hop_length, self.n_fft
        pieces = -(-n_fft // hop)
        time = _fft().irfft(np.swapaxes(spec, -1, -2), n=n_fft, axis=-1).astype(np.float32, copy=False)
        time *= self.window
        if pieces * hop != n_fft:
            time = np.concatenate([time, np.zeros(time.shape[:-1] + (pieces * hop - n_fft,), np.float32)], axis=-1)
        time = time.reshape(time.shape[:-1] + (pieces, hop))
        lead_shape = spec.shape[:-2]
        out = np.zeros(lead_shape + ((num + pieces - 1) * hop,), dtype=np.float32)
        for k in range(pieces):
            out[..., k * hop : (k + num) * hop].reshape(lead_shape + (num, hop))[:] += time[..., k, :]
        wsum = self._window_sum(num)
        first = frame_start * hop - n_fft // 2
        a, b = sample_start - first, sample_stop - first
        if a < 0 or b > out.shape[-1]:
            raise ValueError("overlap_add output range is outside the frames given")
        return out[..., a:b] / np.maximum(wsum[a:b], 1e-8)

    def inverse(self, spec: np.ndarray, length: int) -> np.ndarray:
        """Whole-signal inverse: complex (..., freq_bins, frames) -> float32 (..., length)."""
        return self.overlap_add(spec, 0, 0, length, length)


def analysis_stft(n_fft: int, hop_length: int) -> Stft:
    return Stft(n_fft=n_fft, hop_length=hop_length)


def source_stft_size(sample_rate: int, frames_per_window: int = 4) -> tuple[int, int]:
    """(n_fft, hop_length) of the STFT used on audio at its own ``sample_rate``.

    The window lasts about as long as the analysis window (1022 samples at 11025 Hz, 93 ms) and is a
    power of two in size for speed; the hop is ``1 / frames_per_window`` of it (a quarter by default).
    """
    if frames_per_window not in (2, 4, 8):
        raise ValueError(f"frames_per_window must be 2, 4 or 8, not {frames_per_window}")
    ratio = max(1, round(sample_rate / 11025))
    n_fft = 1024 << (ratio.bit_length() - 1)  # 1024 times the largest power of two <= ratio
    return n_fft, n_fft // frames_per_window


def iter_stft_frames(stft: Stft, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """STFT of a signal that arrives in blocks, yielded as soon as frames can be computed.

    blocks: iterable of float32 arrays (..., n) whose concatenation is the signal. Yields complex64
    arrays (..., freq_bins, frames) whose concatenation equals ``stft(signal)``; memory holds about
    one block plus one window of samples.
    """
    hop, half = stft.hop_length, stft.n_fft // 2
    buffer: np.ndarray | None = None
    buffer_start = 0  # global index of buffer[..., 0]
    next_frame = 0
    received = 0
    for block in blocks:
        block = np.asarray(block, dtype=np.float32)
        buffer = block if buffer is None else np.concatenate([buffer, block], axis=-1)
        received += block.shape[-1]
        # frames whose last sample has arrived: j * hop - half + n_fft <= received
        ready = (received + half - stft.n_fft) // hop + 1
        if ready > next_frame:
            yield stft.frames(buffer, next_frame, ready, offset=buffer_start, length=received)
            next_frame = ready
            keep_from = max(0, next_frame * hop - half)
            buffer = buffer[..., keep_from - buffer_start :]
            buffer_start = keep_from
    if buffer is None:
        return
    total = stft.num_frames(received)
    if total > next_frame:
        yield stft.frames(buffer, next_frame, total, offset=buffer_start, length=received)
