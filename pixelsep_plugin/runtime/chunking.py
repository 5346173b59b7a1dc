"""Overlapping analysis windows over a clip's STFT columns, and their weighted blending.

A clip of ``num_columns`` columns is covered by windows of ``window`` columns that start every
``window - overlap`` columns; the last window is moved back to end with the clip (so every window is
full of real audio), and a clip shorter than one window gets a single window, padded at the end.
Inside an overlap, each window's weight ramps linearly towards its edge, so blended values
cross-fade from one window to the next; the weights are normalised by their sum, which is positive
for every column (checked), so a column that only one window covers takes that window's value.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class WindowPlan:
    num_columns: int
    window: int
    overlap: int

    def __post_init__(self) -> None:
        if self.num_columns <= 0:
            raise ValueError("num_columns must be positive")
        if not 0 <= self.overlap < self.window:
            raise ValueError("overlap must be in [0, window)")

    @cached_property
    def starts(self) -> np.ndarray:
        """First column of each window, int64 (num_windows,)."""
        hop = self.window - self.overlap
        last = max(0, self.num_columns - self.window)
        starts = list(range(0, last + 1, hop))
        if starts[-1] != last:
            starts.append(last)
        return np.asarray(starts, dtype=np.int64)

    @property
    def num_windows(self) -> int:
        return int(self.starts.size)

    @cached_property
    def taper(self) -> np.ndarray:
        """Weight of each column inside a window, float32 (window,), linear ramps over the overlap."""
        w = np.ones(self.window, dtype=np.float32)
        if self.overlap:
            ramp = (np.arange(self.overlap, dtype=np.float32) + 0.5) / self.overlap
            w[: self.overlap] = ramp
            w[-self.overlap :] = ramp[::-1]
        return w

    def windows_overlapping(self, column_start: int, column_stop: int) -> np.ndarray:
        """Indices of the windows that meet columns ``[column_start, column_stop)``."""
        ends = self.starts + self.window
        return np.nonzero((self.starts < column_stop) & (ends > column_start))[0]

    @cached_property
    def weight_sum(self) -> np.ndarray:
        """Total weight per column, float32 (num_columns,); positive everywhere."""
        total = np.zeros(self.num_columns + self.window, dtype=np.float32)
        for s in self.starts:
            total[s : s + self.window] += self.taper
        total = total[: self.num_columns]
        assert np.all(total > 0), "every column must be covered by a window"
        return total


def blend(
    plan: WindowPlan,
    window_values,
    column_start: int = 0,
    column_stop: int | None = None,
) -> np.ndarray:
    """Blend per-window values into columns ``[column_start, column_stop)``.

    window_values: callable ``index -> array (..., window)`` giving window ``index``'s values (so that
    only the windows meeting the range are computed). Returns float32 (..., column_stop - column_start).
    """
    if column_stop is None:
        column_stop = plan.num_columns
    out = None
    for i in plan.windows_overlapping(column_start, column_stop):
        start = int(plan.starts[i])
        values = np.asarray(window_values(int(i)), dtype=np.float32)
        a, b = max(column_start, start), min(column_stop, start + plan.window)
        contribution = values[..., a - start : b - start] * plan.taper[a - start : b - start]
        if out is None:
            out = np.zeros(values.shape[:-1] + (column_stop - column_start,), dtype=np.float32)
        out[..., a - column_start : b - column_start] += contribution
    if out is None:
        raise ValueError("no window covers the requested columns")
    return out / plan.weight_sum[column_start:column_stop]


class WindowCutter:
    """Turns a stream of log-magnitude columns into the windows of a :class:`WindowPlan`.

    The plan's windows start every ``hop`` columns, plus a last one aligned with the clip's end;
    the number of columns is only known at the end of the stream, so the last ``window`` columns are
    kept until then.
    """

    def __init__(self, window: int, overlap: int, freq_bins: int, pad_value: float):
        self.window, self.hop = window, window - overlap
        self.pad_value = pad_value  # fills the end of a window longer than the whole clip
        self.columns = np.zeros((freq_bins, 0), dtype=np.float32)
        self.columns_start = 0  # global index of self.columns[:, 0]
        self.next_start = 0
        self.emitted: list[int] = []

    def push(self, columns: np.ndarray):
        self.columns = np.concatenate([self.columns, columns], axis=1)
        end = self.columns_start + self.columns.shape[1]
        while self.next_start + self.window <= end:
            a = self.next_start - self.columns_start
            yield self.next_start, self.columns[:, a : a + self.window]
            self.emitted.append(self.next_start)
            self.next_start += self.hop
        keep_from = min(self.next_start, max(0, end - self.window))
        self.columns = self.columns[:, keep_from - self.columns_start :]
        self.columns_start = keep_from

    def finish(self, num_columns: int):
        plan = WindowPlan(num_columns, self.window, self.window - self.hop)
        for start in plan.starts:
            if int(start) in self.emitted:
                continue
            a = int(start) - self.columns_start
            piece = self.columns[:, a : a + self.window]
            if piece.shape[1] < self.window:
                pad = np.full((piece.shape[0], self.window - piece.shape[1]), self.pad_value, np.float32)
                piece = np.concatenate([piece, pad], axis=1)
            self.emitted.append(int(start))
            yield int(start), piece
