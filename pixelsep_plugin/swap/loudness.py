"""Integrated loudness after ITU-R BS.1770-4 (LUFS), for matching a swapped instrument to its stem.

pixelsep's own measurement, with numpy and scipy: each channel is K-weighted (a high shelf of
about +4 dB above 1.7 kHz for the head, then a high-pass near 38 Hz), mean squares are taken over
400 ms blocks every 100 ms, blocks below -70 LUFS are gated out, then blocks more than 10 LU below
the loudness of the rest, and what remains is averaged: ``-0.691 + 10 log10(sum_c mean z_c)``.
The K-weighting filters are designed for any sample rate from their analogue parameters; at
48 kHz they give the coefficients printed in the recommendation (``tests/test_swap.py`` checks both
those and the recommendation's test: a full-scale 997 Hz sine in one channel reads -3.01 LUFS).
Every channel weighs 1 (exact for mono and stereo; surround channels would weigh 1.41).
"""

from __future__ import annotations

import math

import numpy as np

# the K-weighting's analogue parameters (centre/corner frequency in Hz, gain in dB, quality factor)
SHELF_HZ, SHELF_GAIN_DB, SHELF_Q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
HIGHPASS_HZ, HIGHPASS_Q = 38.13547087602444, 0.5003270373238773
BLOCK_SECONDS = 0.4
STEP_SECONDS = 0.1
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0


def k_weighting(sample_rate: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The two K-weighting biquads at ``sample_rate``: ((b, a) of the shelf, (b, a) of the high-pass), a[0] = 1.

    Both are bilinear transforms (pre-warped at their corner) of second-order analogue sections; the
    shelf's mid-band gain is its high-band gain to the power 0.4996667741545416, as in the derivation
    of the recommendation's coefficients."""
    k = math.tan(math.pi * SHELF_HZ / sample_rate)
    high_gain = 10 ** (SHELF_GAIN_DB / 20)
    band_gain = high_gain**0.4996667741545416
    norm = 1 + k / SHELF_Q + k * k
    shelf_b = np.array([high_gain + band_gain * k / SHELF_Q + k * k, 2 * (k * k - high_gain),
                        high_gain - band_gain * k / SHELF_Q + k * k]) / norm  # fmt: skip
    shelf_a = np.array([norm, 2 * (k * k - 1), 1 - k / SHELF_Q + k * k]) / norm
    k = math.tan(math.pi * HIGHPASS_HZ / sample_rate)
    norm = 1 + k / HIGHPASS_Q + k * k
    # the recommendation's high-pass numerator is (1, -2, 1), unnormalised
    high_a = np.array([norm, 2 * (k * k - 1), 1 - k / HIGHPASS_Q + k * k]) / norm
    return (shelf_b, shelf_a), (np.array([1.0, -2.0, 1.0]), high_a)


def block_loudness(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Loudness (LUFS) of each 400 ms block, 100 ms apart, of float (channels, n) audio; one block for
    audio shorter than 400 ms; -inf for silent blocks. Shape (blocks,)."""
    from scipy.signal import lfilter

    audio = np.atleast_2d(np.asarray(audio, dtype=np.float64))
    (b1, a1), (b2, a2) = k_weighting(sample_rate)
    weighted = lfilter(b2, a2, lfilter(b1, a1, audio, axis=-1), axis=-1)
    n = weighted.shape[-1]
    if n == 0:
        return np.full(0, -np.inf)
    block = int(round(BLOCK_SECONDS * sample_rate))
    step = int(round(STEP_SECONDS * sample_rate))
    starts = np.arange(0, n - block + 1, step) if n >= block else np.zeros(1, dtype=int)
    length = min(block, n)
    cumulative = np.concatenate([np.zeros((weighted.shape[0], 1)), np.cumsum(weighted**2, axis=-1)], axis=-1)
    power = (cumulative[:, starts + length] - cumulative[:, starts]).sum(axis=0) / length  # summed over channels
    with np.errstate(divide="ignore"):
        return -0.691 + 10 * np.log10(power)


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """Gated integrated loudness in LUFS of float (channels, n) or (n,) audio; -inf when nothing passes the gates."""
    loudness = block_loudness(audio, sample_rate)
    kept = loudness[loudness > ABSOLUTE_GATE_LUFS]
    if kept.size == 0:
        return -math.inf
    relative = -0.691 + 10 * math.log10(float(np.mean(10 ** ((kept + 0.691) / 10)))) + RELATIVE_GATE_LU
    kept = kept[kept > relative]
    return float(-0.691 + 10 * math.log10(float(np.mean(10 ** ((kept + 0.691) / 10)))))
