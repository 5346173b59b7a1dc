"""Where the sound comes from: for each feature cell, the share of the mixture's energy its mask keeps.

At time ``t`` the sampled frame nearest ``t`` gives every cell's K-vector; each one is turned into a
mask for the analysis window around ``t`` exactly as a click there would be, and the cell's value is
``sum(mask * |X|^2) / sum(|X|^2)`` over that window, in [0, 1]. A cell that would separate most of
the sound is bright. Where the window is digital silence (or nearly: its total power below
:data:`SILENT_WINDOW_POWER`) there is no energy to share and the map is zero everywhere.
"""

from __future__ import annotations

import numpy as np

from pixelsep_plugin.errors import InputError
from pixelsep_plugin.modelstore import ModelPackage
from pixelsep_plugin.runtime.analysis import Analysis

# Total power of an analysis window (the warped |X|^2 summed over its bins and columns) below which it
# counts as silence: a -110 dBFS sine over a whole window has about this much; digital silence has 1e-15.
SILENT_WINDOW_POWER = 1e-6


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def energy_map(analysis: Analysis, package: ModelPackage, time_seconds: float) -> np.ndarray:
    """Energy share per feature cell at ``time_seconds``: float32 (h, w) in [0, 1]."""
    if not 0 <= time_seconds <= analysis.duration_seconds:
        raise InputError(f"time {time_seconds:g} s is outside the clip: it lasts {analysis.duration_seconds:.2f} s")
    plan = analysis.plan
    column = time_seconds / analysis.column_seconds
    centres = plan.starts + plan.window / 2
    window = int(np.argmin(np.abs(centres - column)))
    frame = int(np.argmin(np.abs(analysis.frame_times - time_seconds)))
    features = np.asarray(analysis.features[frame], dtype=np.float32)  # (K, h, w)
    k, h, w = features.shape
    comps = analysis.read_components(window).reshape(k, -1)
    power = np.exp(2.0 * analysis.read_log_magnitude(window)).reshape(-1)
    if float(power.sum()) < SILENT_WINDOW_POWER:
        return np.zeros((h, w), dtype=np.float32)
    vectors = features.reshape(k, h * w).T * package.alpha  # (cells, K)
    masks = _sigmoid(vectors @ comps + package.beta)  # (cells, F*T)
    share = masks @ power / float(power.sum())
    return share.reshape(h, w).astype(np.float32)


MIN_SPAN = 0.1


def upsample(grid: np.ndarray, width: int, height: int) -> np.ndarray:
    """A map on the feature cells (h, w), upsampled bilinearly to (height, width) pixels (cell centres
    at pixel centres, edges held)."""
    h, w = grid.shape
    ys = np.clip((np.arange(height) + 0.5) * h / height - 0.5, 0, h - 1)
    xs = np.clip((np.arange(width) + 0.5) * w / width - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    ay, ax = (ys - y0)[:, None], (xs - x0)[None, :]
    return (grid[y0][:, x0] * (1 - ax) + grid[y0][:, x1] * ax) * (1 - ay) + (
        grid[y1][:, x0] * (1 - ax) + grid[y1][:, x1] * ax
    ) * ay


def heat_layer(energy: np.ndarray, width: int, height: int, opacity: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """An energy map (h, w) in [0, 1], upsampled bilinearly to (height, width), as a colour layer:
    (colour float (height, width, 3) in [0, 255], alpha float (height, width, 1) in [0, opacity])."""
    up = upsample(energy, width, height)
    # Stretch the map's own range, but never more than a 0.1 span of energy share, so that a flat
    # map (an untrained model, silence) stays flat instead of showing its noise as structure.
    span = max(float(up.max() - up.min()), MIN_SPAN)
    level = (up - up.min()) / span
    return _heat_colours(level), (opacity * level)[..., None]


def overlay(frame_rgb: np.ndarray, energy: np.ndarray, opacity: float = 0.6) -> np.ndarray:
    """Blend an energy map (h, w) in [0, 1], upsampled bilinearly, over a frame (H, W, 3) uint8."""
    height, width = frame_rgb.shape[:2]
    colour, alpha = heat_layer(energy, width, height, opacity)
    return (frame_rgb * (1 - alpha) + colour * alpha).clip(0, 255).astype(np.uint8)


def _heat_colours(level: np.ndarray) -> np.ndarray:
    """Black -> red -> yellow -> white ramp for values in [0, 1]: float (..., 3) in [0, 255]."""
    r = np.clip(level * 3.0, 0, 1)
    g = np.clip(level * 3.0 - 1.0, 0, 1)
    b = np.clip(level * 3.0 - 2.0, 0, 1)
    return np.stack([r, g, b], axis=-1) * 255.0
