"""A look-ahead peak limiter for streamed audio (numpy alone, as in Blender's Python): peaks above a ceiling are
brought under it with a smooth gain, every other sample passes untouched.

For each sample ``n`` the gain it needs is ``r[n] = min(1, ceiling / max_channels |x[n]|)``. The
gain applied is a moving average (over ``lookahead + 1`` samples) of the running minimum of ``r``
over the last ``2 * lookahead + hold`` samples, and the output is delayed by ``lookahead`` samples.
Every term of that average includes the sample being output, so the output never exceeds the
ceiling; the gain ramps down over ``lookahead`` samples before a peak and back up after ``hold``.
Where no sample within reach exceeds the ceiling the gain is exactly 1.0, so quiet passages are
bit-identical to the input. The stream as a whole comes out as long as it went in and aligned
with it: the first call returns ``lookahead`` samples fewer, :meth:`PeakLimiter.finish` the rest.
"""

from __future__ import annotations

import numpy as np


def running_min(values: np.ndarray, width: int) -> np.ndarray:
    """Minimum of every ``width`` consecutive values: out[i] = min(values[i : i + width]), len(values) - width + 1
    of them, in O(n) (van Herk / Gil-Werman: prefix minima within blocks of ``width`` and suffix minima)."""
    n = values.size - width + 1
    if n <= 0:
        return values[:0].copy()
    blocks = -(-values.size // width)
    padded = np.full(blocks * width, np.inf, dtype=np.float64)
    padded[: values.size] = values
    shaped = padded.reshape(blocks, width)
    prefix = np.minimum.accumulate(shaped, axis=1).ravel()
    suffix = np.minimum.accumulate(shaped[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.minimum(suffix[:n], prefix[width - 1 : width - 1 + n]).astype(values.dtype)


def running_mean(values: np.ndarray, width: int) -> np.ndarray:
    """Mean of every ``width`` consecutive values (float64 sums): len(values) - width + 1 of them."""
    sums = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    return (sums[width:] - sums[:-width]) / width


class PeakLimiter:
    """Streams float32 (channels, n) blocks; see the module docstring.

    ceiling: linear peak ceiling (e.g. ``10 ** (-1 / 20)`` for -1 dBFS). lookahead_seconds: the
    attack ramp and the delay. hold_seconds: how long the gain stays down after a peak.
    """

    def __init__(
        self,
        sample_rate: int,
        num_channels: int,
        ceiling: float,
        lookahead_seconds: float = 0.005,
        hold_seconds: float = 0.05,
    ) -> None:
        if not 0 < ceiling <= 1.0:
            raise ValueError(f"ceiling must be in (0, 1], not {ceiling}")
        self.ceiling = float(ceiling)
        self.lookahead = max(1, int(round(lookahead_seconds * sample_rate)))
        self.min_span = 2 * self.lookahead + max(0, int(round(hold_seconds * sample_rate))) + 1
        self._needs = np.ones(self.min_span - 1 + self.lookahead, dtype=np.float32)  # r of past samples
        self._delayed = np.zeros((num_channels, self.lookahead), dtype=np.float32)  # the last inputs
        self._to_drop = self.lookahead
        self._count_in = 0
        self._count_out = 0
        self.peak_in = 0.0  # the largest |sample| seen
        self.min_gain = 1.0  # the deepest gain reduction applied

    def _run(self, block: np.ndarray) -> np.ndarray:
        n = block.shape[1]
        peak = np.abs(block).max(axis=0) if n else np.zeros(0, dtype=np.float32)
        if n:
            self.peak_in = max(self.peak_in, float(peak.max()))
        needs = np.minimum(1.0, self.ceiling / np.maximum(peak, 1e-30)).astype(np.float32)
        history = np.concatenate([self._needs, needs])
        # the minimum over the window ending at each sample, for the last n + lookahead samples
        held = running_min(history, self.min_span)
        if held.size and held.min() == 1.0:
            gain = np.ones(n, dtype=np.float32)
        else:  # the average of the last lookahead + 1 of those; rounding never lifts it above a needed gain
            gain = np.minimum(running_mean(held, self.lookahead + 1), 1.0).astype(np.float32)
            gain = np.minimum(gain, held[self.lookahead :])
        self._needs = history[-(self.min_span - 1 + self.lookahead) :]
        delayed = np.concatenate([self._delayed, block], axis=1)
        out = delayed[:, :n] * gain if n else delayed[:, :0]
        if n:
            self.min_gain = min(self.min_gain, float(gain.min()))
        self._delayed = delayed[:, n:]
        return out

    def process(self, block: np.ndarray) -> np.ndarray:
        """Limit the next float32 (channels, n) block; returns the samples ready (delayed by the look-ahead)."""
        block = np.asarray(block, dtype=np.float32)
        self._count_in += block.shape[1]
        return self._emit(self._run(block))

    def finish(self) -> np.ndarray:
        """The samples still held back, so that as many samples came out as went in."""
        channels = self._delayed.shape[0]
        out = self._emit(self._run(np.zeros((channels, self.lookahead), dtype=np.float32)))
        return out[:, : max(0, self._count_in - (self._count_out - out.shape[1]))]

    def _emit(self, out: np.ndarray) -> np.ndarray:
        drop = min(self._to_drop, out.shape[1])  # the first look-ahead samples out are the silence before the stream
        self._to_drop -= drop
        out = out[:, drop:]
        self._count_out += out.shape[1]
        return out

    def gain_reduction_db(self) -> float:
        """The deepest gain reduction so far in dB (0.0 when the limiter never acted)."""
        return float(-20.0 * np.log10(max(self.min_gain, 1e-12)))
