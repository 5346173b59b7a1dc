"""Log-frequency warp between the linear STFT bins and the nets' log-frequency bins (numpy).

All three maps are linear interpolations along the frequency axis, held as index/weight pairs
(:class:`Interp`) so they can be applied by gathering (fast, no dense matrix) or turned into a
dense matrix (``Interp.matrix``) for the torch twin used in training.

- :func:`warp` linear bins (``n_fft // 2 + 1``) -> log bins (``log_freq_bins``)
- :func:`unwarp` log bins -> linear bins
- :func:`log_bins_for_frequencies` log bins -> any list of frequencies in Hz (used to carry masks
  onto the STFT of the audio at its own sample rate)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pixelsep_plugin.config import AudioFrontEndConfig


@dataclass(frozen=True)
class Interp:
    """out[..., i, :] = (1 - weight[i]) * x[..., lower[i], :] + weight[i] * x[..., lower[i] + 1, :]."""

    lower: np.ndarray  # int64, (out_bins,)
    weight: np.ndarray  # float32, (out_bins,)
    in_bins: int

    @classmethod
    def at_positions(cls, positions: np.ndarray, in_bins: int) -> Interp:
        pos = np.clip(np.asarray(positions, dtype=np.float64), 0.0, in_bins - 1)
        lower = np.minimum(np.floor(pos).astype(np.int64), in_bins - 2)
        return cls(lower=lower, weight=(pos - lower).astype(np.float32), in_bins=in_bins)

    def __call__(self, x: np.ndarray, axis: int = -2) -> np.ndarray:
        """Interpolate ``x`` along ``axis`` (default: the frequency axis of (..., freq, time))."""
        lo = np.take(x, self.lower, axis=axis)
        hi = np.take(x, self.lower + 1, axis=axis)
        shape = [1] * x.ndim
        shape[axis] = -1
        w = self.weight.reshape(shape)
        return lo + (hi - lo) * w

    def matrix(self) -> np.ndarray:
        """Dense (out_bins, in_bins) float32 matrix of the same map."""
        m = np.zeros((self.lower.size, self.in_bins), dtype=np.float32)
        rows = np.arange(self.lower.size)
        m[rows, self.lower] = 1.0 - self.weight
        m[rows, self.lower + 1] += self.weight
        return m


def _log_position_of_linear(linear_pos: np.ndarray, cfg: AudioFrontEndConfig) -> np.ndarray:
    """Fractional log-bin index of fractional linear-bin positions (inverse of the warp's curve)."""
    frac = np.asarray(linear_pos, dtype=np.float64) / (cfg.linear_freq_bins - 1)
    return (cfg.log_freq_bins - 1) * np.log1p(frac * (cfg.warp_base - 1)) / np.log(cfg.warp_base)


@lru_cache(maxsize=8)
def warp(cfg: AudioFrontEndConfig) -> Interp:
    """Linear STFT bins -> log-frequency bins."""
    j = np.arange(cfg.log_freq_bins, dtype=np.float64) / (cfg.log_freq_bins - 1)
    linear_pos = (np.power(cfg.warp_base, j) - 1) / (cfg.warp_base - 1) * (cfg.linear_freq_bins - 1)
    return Interp.at_positions(linear_pos, cfg.linear_freq_bins)


@lru_cache(maxsize=8)
def unwarp(cfg: AudioFrontEndConfig) -> Interp:
    """Log-frequency bins -> linear STFT bins."""
    positions = _log_position_of_linear(np.arange(cfg.linear_freq_bins), cfg)
    return Interp.at_positions(positions, cfg.log_freq_bins)


def log_bins_for_frequencies(frequencies_hz: np.ndarray, cfg: AudioFrontEndConfig) -> Interp:
    """Log-frequency bins -> values at ``frequencies_hz`` (clamped to the analysis band)."""
    bin_hz = cfg.sample_rate / cfg.n_fft
    linear_pos = np.clip(np.asarray(frequencies_hz, dtype=np.float64) / bin_hz, 0, cfg.linear_freq_bins - 1)
    return Interp.at_positions(_log_position_of_linear(linear_pos, cfg), cfg.log_freq_bins)


def log_magnitude(linear_magnitude: np.ndarray, cfg: AudioFrontEndConfig, eps: float = 1e-10) -> np.ndarray:
    """The audio net's input: log of the warped magnitude.

    linear_magnitude: (..., linear_freq_bins, columns) -> float32 (..., log_freq_bins, columns).
    """
    return np.log(warp(cfg)(linear_magnitude).astype(np.float32) + eps)
