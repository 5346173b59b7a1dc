"""The previewer's decisions, without Qt: what a click, a drag or a slider does to the recipe, the undo
history, the order in which playback chunks are rendered, the remix arithmetic, where each source's
marker stands in a frame and the heatmap's colours.

The edit is the engine's recipe (:mod:`pixelsep_plugin.recipe`), the same document every host reads
and writes: the window only shows it and calls :class:`Editor`'s methods, each of which validates
the new recipe before it replaces the old one (a refused edit changes nothing) and records an undo step.
Coordinates are the clip's display pixels (origin top-left); times are seconds on the clip's clock.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pixelsep_plugin import recipe as rcp
from pixelsep_plugin.errors import InputError
from pixelsep_plugin.recipe.document import MAX_PARTS, MAX_SOURCES

# Distinct colours for sources (RGB), readable on light and dark pictures with a dark outline.
SOURCE_COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 64, 64),
    (40, 200, 255),
    (255, 210, 0),
    (90, 230, 90),
    (255, 120, 230),
    (255, 150, 40),
    (160, 120, 255),
    (0, 230, 190),
)
GAIN_SLIDER_DB = (-60.0, 12.0)  # the volume slider's range in dB (Mute silences a source)
GAIN_SLIDER_STEPS_PER_DB = 2  # slider positions are half-decibels
CLICK_DRAG_PIXELS = 6  # a press and release closer than this (widget pixels) is a click, farther a box


def colour_for(index: int) -> tuple[int, int, int]:
    """The colour of the ``index``-th source (cycling through :data:`SOURCE_COLOURS`)."""
    return SOURCE_COLOURS[index % len(SOURCE_COLOURS)]


def slider_to_db(position: int) -> float:
    """A volume slider position (half-decibel steps) as a gain in dB."""
    return position / GAIN_SLIDER_STEPS_PER_DB


def db_to_slider(gain_db: float) -> int:
    """A gain in dB as the nearest volume slider position, clamped to the slider's range."""
    low, high = GAIN_SLIDER_DB
    return int(round(min(high, max(low, gain_db)) * GAIN_SLIDER_STEPS_PER_DB))


def format_db(gain_db: float, muted: bool = False) -> str:
    """'+3.0 dB', '-12.5 dB', 'muted'."""
    return "muted" if muted else f"{gain_db:+.1f} dB"


# ---------------------------------------------------------------------------------------------------
# The edit and its history


@dataclass
class Step:
    """One undoable edit: its label and the recipe and selection before and after it."""

    label: str
    before: rcp.Recipe
    after: rcp.Recipe
    selected_before: str | None
    selected_after: str | None
    merge_key: str | None = None  # consecutive steps with the same key (one slider drag) become one


@dataclass
class Editor:
    """The recipe being edited, the selected source and the undo/redo history.

    Every method that edits validates the result (raising :class:`InputError` in one line and changing
    nothing when it is refused) and records a :class:`Step`. ``revision`` grows with every change,
    undo and redo included, so views can tell when to refresh.
    """

    recipe: rcp.Recipe
    selected: str | None = None
    undo_steps: list[Step] = field(default_factory=list)
    redo_steps: list[Step] = field(default_factory=list)
    revision: int = 0

    # -- history -----------------------------------------------------------------------------------

    def _commit(self, label: str, new: rcp.Recipe, selected: str | None, merge_key: str | None = None) -> None:
        new.validate()
        before, selected_before = self.recipe, self.selected
        last = self.undo_steps[-1] if self.undo_steps else None
        if merge_key is not None and last is not None and last.merge_key == merge_key and not self.redo_steps:
            last.after, last.selected_after = copy.deepcopy(new), selected
        else:
            self.undo_steps.append(Step(label, copy.deepcopy(before), copy.deepcopy(new), selected_before, selected,
                                        merge_key))  # fmt: skip
        self.redo_steps.clear()
        self.recipe, self.selected = new, selected
        self.revision += 1

    def end_merge(self) -> None:
        """Close the current slider drag: the next gain change is a step of its own."""
        if self.undo_steps:
            self.undo_steps[-1].merge_key = None

    @property
    def can_undo(self) -> bool:
        return bool(self.undo_steps)

    @property
    def can_redo(self) -> bool:
        return bool(self.redo_steps)

    def undo_label(self) -> str:
        return self.undo_steps[-1].label if self.undo_steps else ""

    def redo_label(self) -> str:
        return self.redo_steps[-1].label if self.redo_steps else ""

    def undo(self) -> str | None:
        """Undo the last edit; returns its label (None when there is nothing to undo)."""
        if not self.undo_steps:
            return None
        step = self.undo_steps.pop()
        step.merge_key = None
        self.redo_steps.append(step)
        self.recipe, self.selected = copy.deepcopy(step.before), step.selected_before
        self.revision += 1
        return step.label

    def redo(self) -> str | None:
        """Redo the last undone edit; returns its label (None when there is nothing to redo)."""
        if not self.redo_steps:
            return None
        step = self.redo_steps.pop()
        self.undo_steps.append(step)
        self.recipe, self.selected = copy.deepcopy(step.after), step.selected_after
        self.revision += 1
        return step.label

    def _copy(self) -> rcp.Recipe:
        return copy.deepcopy(self.recipe)

    # -- edits ---------------------------------------------------------------------------------------

    def next_name(self) -> str:
        """The first free name of source1, source2, ... (case-insensitive, as the recipe compares)."""
        taken = {s.name.lower() for s in self.recipe.sources}
        return next(f"source{i}" for i in range(1, MAX_SOURCES + 2) if f"source{i}" not in taken)

    def click(
        self,
        x: float,
        y: float,
        time_seconds: float,
        x1: float | None = None,
        y1: float | None = None,
        add_part: bool = False,
    ) -> str:
        """A click at (x, y) (or a box to (x1, y1)) at ``time_seconds``: a new source there, or with
        ``add_part`` (Shift+click) one more part of the selected source. Returns the source's name."""
        clip = self.recipe.clip
        if x1 is not None and y1 is not None:
            x, y, x1, y1 = normalise_box(x, y, x1, y1, clip.width, clip.height)
        else:
            x, y, x1, y1 = *clamp_point(x, y, clip.width, clip.height), None, None
        time_seconds = min(max(0.0, float(time_seconds)), clip.duration_seconds)
        part = rcp.PartRef(x, y, time_seconds, x1, y1)
        recipe = self._copy()
        target = recipe.source(self.selected) if add_part and self.selected else None
        if target is not None:
            if len(target.parts) >= MAX_PARTS:
                raise InputError(f"{target.name} has {MAX_PARTS} parts already: start a new source instead")
            target.parts.append(part)
            self._commit(f"add a part to {target.name}", recipe, target.name)
            return target.name
        if len(recipe.sources) >= MAX_SOURCES:
            raise InputError(f"a recipe holds at most {MAX_SOURCES} sources: remove one first")
        name = self.next_name()
        recipe.sources.append(rcp.SourceEdit(name, [part]))
        self._commit(f"add {name}", recipe, name)
        return name

    def _target(self, recipe: rcp.Recipe, name: str) -> rcp.SourceEdit | rcp.ResidualEdit:
        if name == "residual":
            return recipe.residual
        source = recipe.source(name)
        if source is None:
            raise InputError(f"no source named {name!r}")
        return source

    def set_gain(self, name: str, gain_db: float, merge: bool = True) -> None:
        """Set a source's (or "residual"'s) gain in dB; with ``merge``, a run of changes to the same
        source (one slider drag) is one undo step until :meth:`end_merge`."""
        low, high = rcp.GAIN_DB_RANGE
        if not math.isfinite(gain_db):
            raise InputError(f"gain {gain_db} dB is not a number of decibels")
        recipe = self._copy()
        self._target(recipe, name).gain_db = float(min(high, max(low, gain_db)))
        self._commit(f"volume of {name}", recipe, self.selected if name == "residual" else name,
                     merge_key=f"gain:{name}" if merge else None)  # fmt: skip

    def set_mute(self, name: str, mute: bool) -> None:
        recipe = self._copy()
        self._target(recipe, name).mute = bool(mute)
        self._commit(f"{'mute' if mute else 'unmute'} {name}", recipe, self.selected)

    def set_solo(self, name: str, solo: bool) -> None:
        recipe = self._copy()
        target = self._target(recipe, name)
        if isinstance(target, rcp.ResidualEdit):
            raise InputError("the residual cannot be soloed: solo a source, or mute the others")
        target.solo = bool(solo)
        self._commit(f"{'solo' if solo else 'unsolo'} {name}", recipe, name)

    def rename(self, name: str, new_name: str) -> str:
        """Rename a source (the name is checked as the recipe checks it); returns the new name."""
        new_name = new_name.strip()
        if new_name == name:
            return name
        rcp.check_name(new_name)
        if any(s.name.lower() == new_name.lower() and s.name != name for s in self.recipe.sources):
            raise InputError(f"there is already a source named {new_name!r}: choose another name")
        recipe = self._copy()
        source = self._target(recipe, name)
        if isinstance(source, rcp.ResidualEdit):
            raise InputError("the residual keeps its name")
        source.name = new_name
        self._commit(f"rename {name} to {new_name}", recipe, new_name)
        return new_name

    def remove(self, name: str) -> None:
        recipe = self._copy()
        source = self._target(recipe, name)
        if isinstance(source, rcp.ResidualEdit):
            raise InputError("the residual cannot be removed: mute it instead")
        recipe.sources.remove(source)
        self._commit(f"remove {name}", recipe, recipe.sources[-1].name if recipe.sources else None)

    def select(self, name: str | None) -> None:
        """Select a source (not an undo step)."""
        if name is not None and self.recipe.source(name) is None:
            raise InputError(f"no source named {name!r}")
        self.selected = name
        self.revision += 1


def clamp_point(x: float, y: float, width: int, height: int) -> tuple[float, float]:
    """A point moved inside the frame: x in [0, width), y in [0, height)."""
    return float(min(max(0.0, x), width - 0.01)), float(min(max(0.0, y), height - 0.01))


def normalise_box(x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> tuple[float, ...]:
    """A dragged box (corners in any order) clipped to the frame, at least one pixel each way."""
    left, right = sorted((min(max(0.0, x0), width), min(max(0.0, x1), width)))
    top, bottom = sorted((min(max(0.0, y0), height), min(max(0.0, y1), height)))
    if right - left < 1.0 or bottom - top < 1.0:
        raise InputError("the box is empty: drag a larger rectangle, or click without dragging")
    return float(left), float(top), float(right), float(bottom)


def source_signature(recipe: rcp.Recipe) -> tuple:
    """What the stems depend on: each source's parts in order and the high-band setting (not names,
    gains, mutes or solos: those change the remix, not the stems)."""
    return (
        recipe.output.high_band,
        tuple(tuple((p.x, p.y, p.time_seconds, p.x1, p.y1) for p in s.parts) for s in recipe.sources),
    )


# ---------------------------------------------------------------------------------------------------
# Playback chunks and the remix


def chunk_count(num_samples: int, chunk_samples: int) -> int:
    return max(1, -(-num_samples // chunk_samples))


def chunk_bounds(index: int, chunk_samples: int, num_samples: int) -> tuple[int, int]:
    """Samples ``[a, b)`` of chunk ``index``."""
    a = index * chunk_samples
    return a, min(num_samples, a + chunk_samples)


def chunk_order(playhead_chunk: int, num_chunks: int, ahead: int, behind: int) -> list[int]:
    """The order in which chunks are rendered: the playhead's first, then ahead of it (what will be
    heard next), then a few behind it (for stepping back)."""
    first = min(max(0, playhead_chunk), num_chunks - 1)
    order = list(range(first, min(num_chunks, first + ahead + 1)))
    order += list(range(first - 1, max(-1, first - behind - 1), -1))
    return order


def remix_from_stems(
    original: np.ndarray, stems: np.ndarray, gains: Sequence[float], residual_gain: float
) -> np.ndarray:
    """The remix of one span: ``original + sum_i (g_i - 1) stem_i + (g_r - 1) residual`` with
    ``residual = original - sum_i stem_i``, i.e. ``g_r original + sum_i (g_i - g_r) stem_i``.

    original: float32 (channels, n); stems: float32 (sources, channels, n); gains: linear, one per
    source; residual_gain: linear. With every gain at 1 the result is ``original`` exactly."""
    out = np.array(original, dtype=np.float32, copy=True)
    if residual_gain != 1.0:
        out *= np.float32(residual_gain)
    for gain, stem in zip(gains, stems, strict=True):
        if gain != residual_gain:
            out += np.float32(gain - residual_gain) * stem
    return out


# ---------------------------------------------------------------------------------------------------
# Markers: where each part's tracked region is in every sampled frame


def track_positions(
    part: rcp.PartRef,
    features: np.ndarray,
    frame_times: np.ndarray,
    width: int,
    height: int,
    search_radius_cells: int = 1,
    point_reach_cells: int = 2,
    chunk_frames: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """Follow a part through the sampled frames with the engine's own tracker
    (:class:`pixelsep_plugin.runtime.query.PartTracker`, as a click does), keeping where it went.

    features: (frames, K, h, w); frame_times: (frames,) seconds. Returns (centres float32 (frames, 2):
    the clicked spot carried along with the tracked region, in video pixels (x, y); vectors float32
    (frames, K): the part's K-vector in each frame, equal to ``track_part``'s)."""
    from pixelsep_plugin.runtime.query import Box, PartTracker, Point

    num_frames, _, h, w = features.shape
    sx, sy = w / width, h / height
    engine_part = (
        Box(part.x, part.y, part.x1, part.y1, part.time_seconds) if part.is_box else Point(part.x, part.y, part.time_seconds)
    )
    tracker = PartTracker(engine_part, features, frame_times, width, height, search_radius_cells, point_reach_cells,
                          chunk_frames)  # fmt: skip
    vectors = np.array(tracker.vectors(0, num_frames), dtype=np.float32)
    cells = tracker.cells(0, num_frames)
    centre = tracker.anchor_cell
    # The clicked spot moves with its cell: its offset from the anchor cell's centre is kept.
    click = np.array([(part.x + part.x1) / 2, (part.y + part.y1) / 2] if part.is_box else [part.x, part.y])
    anchor_centre = np.array([(centre[1] + 0.5) / sx, (centre[0] + 0.5) / sy])
    centres = np.stack([(cells[:, 1] + 0.5) / sx, (cells[:, 0] + 0.5) / sy], axis=1) + (click - anchor_centre)
    centres = np.clip(centres, 0, [width - 1, height - 1])
    return centres.astype(np.float32), vectors


def position_at(centres: np.ndarray, frame_times: np.ndarray, time_seconds: float) -> tuple[float, float]:
    """A tracked part's position at ``time_seconds``: linear between the sampled frames around it."""
    if len(frame_times) == 1:
        return float(centres[0, 0]), float(centres[0, 1])
    x = float(np.interp(time_seconds, frame_times, centres[:, 0]))
    y = float(np.interp(time_seconds, frame_times, centres[:, 1]))
    return x, y


# ---------------------------------------------------------------------------------------------------
# The heatmap overlay

# A perceptual ramp (dark violet -> magenta -> orange -> pale yellow), like matplotlib's "inferno".
_HEAT_STOPS = np.array(
    [[20, 11, 52], [106, 23, 110], [188, 55, 84], [237, 105, 37], [251, 180, 26], [252, 255, 164]],
    dtype=np.float32,
)
HEAT_ALPHA = (0.35, 0.85)  # the overlay's opacity at the frame's least and most sounding cells
# The frame's level runs from this low to this high percentile of its cells: a lone outlier cell does
# not squash the performers' cells into the middle of the ramp.
HEAT_PERCENTILES = (10.0, 95.0)


def heat_rgba(energy: np.ndarray, width: int, height: int) -> np.ndarray:
    """An energy map (h, w) as an RGBA overlay (height, width, 4) uint8 for one frame.

    Normalised per frame (its cells' 10th to 95th percentile, clipped), so the sounding performers stand
    out whatever the map's absolute level; coloured with a dark-to-bright ramp whose opacity grows with the level,
    so that the bright end is opaque and the dark end lets the picture through: legible on light and
    dark pictures alike. A flat map (silence) is drawn at the low end."""
    from pixelsep_plugin.runtime.heatmap import upsample

    energy = np.asarray(energy, dtype=np.float32)
    low, high = (float(v) for v in np.percentile(energy, HEAT_PERCENTILES))
    level = np.clip((energy - low) / (high - low), 0, 1) if high - low > 1e-6 else np.zeros_like(energy)
    up = upsample(level, width, height)
    position = up * (len(_HEAT_STOPS) - 1)
    index = np.minimum(position.astype(int), len(_HEAT_STOPS) - 2)
    frac = (position - index)[..., None]
    colour = _HEAT_STOPS[index] * (1 - frac) + _HEAT_STOPS[index + 1] * frac
    alpha = HEAT_ALPHA[0] + (HEAT_ALPHA[1] - HEAT_ALPHA[0]) * up
    rgba = np.concatenate([colour, (alpha * 255.0)[..., None]], axis=-1)
    return np.ascontiguousarray(rgba.round().clip(0, 255).astype(np.uint8))


# ---------------------------------------------------------------------------------------------------
# Widget <-> video pixels


@dataclass(frozen=True)
class Viewport:
    """Where the picture is drawn in its widget: a rectangle (left, top, width, height) in widget pixels
    with the video's aspect ratio, centred (letterboxed)."""

    left: float
    top: float
    width: float
    height: float

    @classmethod
    def fit(cls, widget_width: float, widget_height: float, video_width: int, video_height: int) -> Viewport:
        scale = min(widget_width / video_width, widget_height / video_height)
        w, h = video_width * scale, video_height * scale
        return cls((widget_width - w) / 2, (widget_height - h) / 2, w, h)

    def to_video(self, x: float, y: float, video_width: int, video_height: int) -> tuple[float, float] | None:
        """Widget pixels -> video pixels; None outside the picture."""
        u, v = (x - self.left) / self.width, (y - self.top) / self.height
        if not (0 <= u < 1 and 0 <= v < 1):
            return None
        return u * video_width, v * video_height

    def to_widget(self, x: float, y: float, video_width: int, video_height: int) -> tuple[float, float]:
        return self.left + x / video_width * self.width, self.top + y / video_height * self.height
