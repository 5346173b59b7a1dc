"""Queries: where a user pointed, in the video's own pixel space (origin top-left, x right, y down).

A :class:`Source` is one stem: a name and one or more parts, each a :class:`Point` or a
:class:`Box` at a time in seconds (``None``: the first frame). Parts of one source are united:
its mask is the largest of its parts' masks.

How a performer who moves is followed: the part's K-vector is read where the user clicked, in the
sampled frame nearest the click's time, as the element-wise maximum over a region of feature cells
(the cells inside a box; for a point, the cells within ``point_reach_cells`` of the clicked one),
the spatial max-pooling the nets were trained with. From there the part is tracked frame by
frame, forwards and backwards: in each next sampled frame its region moves, by at most
``search_radius_cells``, to where its K-vector is most similar (cosine) to the clicked one. Each analysis window then uses the
element-wise maximum of the tracked K-vectors of the frames inside it (the temporal max-pooling the
nets were trained with), so the source keeps sounding like the clicked performer wherever it goes.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from pixelsep_plugin.errors import InputError


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    time_seconds: float | None = None


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float
    time_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.x1 <= self.x0 or self.y1 <= self.y0:
            raise InputError(
                f"box {self.x0:g},{self.y0:g},{self.x1:g},{self.y1:g} is empty: give X0,Y0,X1,Y1 with X0<X1, Y0<Y1"
            )


Part = Point | Box


@dataclass(frozen=True)
class Source:
    name: str
    parts: tuple[Part, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.parts:
            raise InputError(f"source {self.name!r} has no point or box")


def _parse_numbers(text: str, count: int, what: str, example: str) -> tuple[list[float], float | None]:
    spec, _, at = text.partition("@")
    try:
        numbers = [float(v) for v in spec.split(",")]
        time_seconds = float(at) if at else None
    except ValueError:
        raise InputError(f"cannot read {what} {text!r}: write it like {example}") from None
    if len(numbers) != count or not all(np.isfinite(numbers)):
        raise InputError(f"cannot read {what} {text!r}: write it like {example}")
    return numbers, time_seconds


def parse_point(text: str) -> Point:
    """'X,Y' or 'X,Y@T' (pixels, seconds)."""
    (x, y), t = _parse_numbers(text, 2, "point", "640,360 or 640,360@12.5")
    return Point(x, y, t)


def parse_box(text: str) -> Box:
    """'X0,Y0,X1,Y1' or 'X0,Y0,X1,Y1@T' (pixels, seconds)."""
    (x0, y0, x1, y1), t = _parse_numbers(text, 4, "box", "100,80,400,600 or 100,80,400,600@3")
    return Box(x0, y0, x1, y1, t)


def check_part(part: Part, width: int, height: int, duration_seconds: float) -> None:
    """Raise InputError (one line) when a part lies outside the frame or its time outside the clip."""
    corners = [(part.x, part.y)] if isinstance(part, Point) else [(part.x0, part.y0), (part.x1, part.y1)]
    for x, y in corners:
        inside = 0 <= x <= width and 0 <= y <= height if isinstance(part, Box) else 0 <= x < width and 0 <= y < height
        if not inside:
            raise InputError(
                f"point {x:g},{y:g} is outside the {width}x{height} frame: x must be in [0, {width}), y in [0, {height})"
            )
    t = part.time_seconds
    if t is not None and not 0 <= t <= duration_seconds:
        raise InputError(f"time {t:g} s is outside the clip: it lasts {duration_seconds:.2f} s")


def _box_cells(box: Box, sx: float, sy: float, h: int, w: int) -> tuple[slice, slice]:
    """The feature cells whose centres lie in the box (at least the cell under its centre)."""
    c0, c1 = box.x0 * sx - 0.5, box.x1 * sx - 0.5
    r0, r1 = box.y0 * sy - 0.5, box.y1 * sy - 0.5
    cols = (int(np.clip(np.ceil(c0), 0, w - 1)), int(np.clip(np.floor(c1), 0, w - 1)))
    rows = (int(np.clip(np.ceil(r0), 0, h - 1)), int(np.clip(np.floor(r1), 0, h - 1)))
    if cols[1] < cols[0]:  # a box narrower than a cell: the cell under its centre
        cols = (int(np.clip(round((c0 + c1) / 2), 0, w - 1)),) * 2
    if rows[1] < rows[0]:
        rows = (int(np.clip(round((r0 + r1) / 2), 0, h - 1)),) * 2
    return slice(rows[0], rows[1] + 1), slice(cols[0], cols[1] + 1)


def _sliding_max(x: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Max over ``size`` consecutive entries along ``axis`` (output shorter by ``size - 1``)."""
    n = x.shape[axis] - size + 1

    def part(shift: int) -> np.ndarray:
        index = [slice(None)] * x.ndim
        index[axis] = slice(shift, shift + n)
        return x[tuple(index)]

    out = part(0).copy()
    for shift in range(1, size):  # a few element-wise maxima: far faster than reducing a strided view
        np.maximum(out, part(shift), out=out)
    return out


class PartTracker:
    """Follows one part through the sampled frames, lazily and memoised.

    The part's K-vector is read in the sampled frame nearest its time (the anchor); tracking then
    runs frame by frame away from the anchor, forwards and backwards, only as far as has been asked
    (:meth:`vectors`), and remembers what it found, so asking again, or for frames nearer the
    anchor, costs nothing. The result does not depend on the order of the requests: frame ``i``'s
    vector is always the one found by walking from the anchor to ``i``.

    Each step looks at the part's region centred on each cell within ``search_radius_cells`` of its
    last place (in row-major order) and moves to the one whose K-vector is most similar (cosine) to
    the anchor's, staying put on ties (within 1e-6) so that a still performer is not dragged by
    noise. Region vectors and similarities are computed for a chunk of frames at once (every cell
    of every frame, vectorised); only the walk itself, a few comparisons per frame, is sequential.

    features: (frames, K, h, w) (any float dtype, read in chunks of ``chunk_frames`` frames aligned
    to multiples of it); frame_times: (frames,) seconds, ascending. ``pooled_cache``: a dict shared
    by the trackers of one clip, so that parts with the same region shape (e.g. points) pool each
    chunk once (see :func:`track_together`); it keeps the last few chunks.
    """

    def __init__(
        self,
        part: Part,
        features: np.ndarray,
        frame_times: np.ndarray,
        width: int,
        height: int,
        search_radius_cells: int = 1,
        point_reach_cells: int = 2,
        chunk_frames: int = 512,
        pooled_cache: OrderedDict | None = None,
    ):
        self.features = features
        self.pooled_cache = pooled_cache
        self.frame_times = np.asarray(frame_times, dtype=np.float64)
        self.num_frames, self.k, self.h, self.w = features.shape
        self.radius = int(search_radius_cells)
        self.chunk_frames = max(1, int(chunk_frames))
        h, w = self.h, self.w
        sx, sy = w / width, h / height  # video pixels -> feature cells
        t = 0.0 if part.time_seconds is None else part.time_seconds
        self.anchor_frame = int(np.argmin(np.abs(self.frame_times - t)))
        if isinstance(part, Point):
            centre = (min(int(part.y * sy), h - 1), min(int(part.x * sx), w - 1))
            reach = int(point_reach_cells)
            self._region = ("point", reach, reach)
        else:
            rows, cols = _box_cells(part, sx, sy, h, w)
            centre = ((rows.start + rows.stop - 1) // 2, (cols.start + cols.stop - 1) // 2)
            half = (centre[0] - rows.start, centre[1] - cols.start)
            self._region = ("box", half, (rows.stop - rows.start, cols.stop - cols.start))
        self._vectors = np.zeros((self.num_frames, self.k), dtype=np.float32)
        self._cells = np.zeros((self.num_frames, 2), dtype=np.int64)  # (row, col) of the region's centre
        self.anchor_cell = centre
        pooled, _ = self._pooled(self.anchor_frame, self.anchor_frame + 1)
        anchor = pooled[0, :, centre[0], centre[1]].copy()
        self._vectors[self.anchor_frame] = anchor
        self._cells[self.anchor_frame] = centre
        self._unit_anchor = anchor / (np.linalg.norm(anchor) + 1e-8)
        # frames [lo, hi) are tracked; the part's cell in frames lo and hi - 1
        self._lo, self._hi = self.anchor_frame, self.anchor_frame + 1
        self._cell_lo = self._cell_hi = centre

    def _pooled(self, frame_start: int, frame_stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Region K-vectors centred on every cell, float32 (n, K, h, w), and where a region may sit
        (bool (h, w): a box must stay whole inside the frame; a point's region is clipped to it).
        The frames lie inside one aligned chunk; with a shared cache the whole chunk is pooled once."""
        if self.pooled_cache is None:
            return self._pool(frame_start, frame_stop)
        chunk = frame_start // self.chunk_frames
        key = (self._region, chunk)
        if key in self.pooled_cache:
            self.pooled_cache.move_to_end(key)
        else:
            first = chunk * self.chunk_frames
            self.pooled_cache[key] = self._pool(first, min(self.num_frames, first + self.chunk_frames))
            while len(self.pooled_cache) > 4:
                self.pooled_cache.popitem(last=False)
        pooled, valid = self.pooled_cache[key]
        offset = chunk * self.chunk_frames
        return pooled[frame_start - offset : frame_stop - offset], valid

    def _pool(self, frame_start: int, frame_stop: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_pooled` computed for frames ``[frame_start, frame_stop)``."""
        x = np.asarray(self.features[frame_start:frame_stop], dtype=np.float32)
        kind, a, b = self._region
        h, w = self.h, self.w
        if kind == "point":
            if a:  # pad with -inf so the max over a clipped square is the max over its cells in the frame
                x = np.pad(x, [(0, 0), (0, 0), (a, a), (a, a)], constant_values=-np.inf)
            pooled = _sliding_max(_sliding_max(x, 2 * a + 1, 2), 2 * a + 1, 3)
            return np.ascontiguousarray(pooled), np.ones((h, w), dtype=bool)
        (half_r, half_c), (span_r, span_c) = a, b
        inner = _sliding_max(_sliding_max(x, span_r, 2), span_c, 3)  # region whose top-left is each cell
        pooled = np.full(x.shape[:2] + (h, w), -np.inf, dtype=np.float32)
        pooled[:, :, half_r : half_r + inner.shape[2], half_c : half_c + inner.shape[3]] = inner
        valid = np.zeros((h, w), dtype=bool)
        valid[half_r : half_r + inner.shape[2], half_c : half_c + inner.shape[3]] = True
        return pooled, valid

    def _scores(self, pooled: np.ndarray, valid: np.ndarray) -> list:
        """Cosine similarity of each cell's region to the anchor: nested lists [frame][row][col] of
        float (-inf where the region may not sit)."""
        safe = np.where(valid, pooled, 0.0)
        dots = np.einsum("nkhw,k->nhw", safe, self._unit_anchor)
        norms = np.sqrt(np.einsum("nkhw,nkhw->nhw", safe, safe))
        return np.where(valid, dots / (norms + 1e-8), -np.inf).tolist()

    def _walk(self, frame_start: int, frame_stop: int, cell: tuple[int, int], forward: bool) -> tuple[int, int]:
        """Track through frames ``[frame_start, frame_stop)`` from ``cell`` (the part's (row, col) in
        the frame before, or after when going backwards); returns its cell in the last frame walked."""
        pooled, valid = self._pooled(frame_start, frame_stop)
        scores = self._scores(pooled, valid)
        h, w, radius = self.h, self.w, self.radius
        offsets = [(dr, dc) for dr in range(-radius, radius + 1) for dc in range(-radius, radius + 1)]
        count = frame_stop - frame_start
        rows = np.empty(count, dtype=np.int64)
        cols = np.empty(count, dtype=np.int64)
        r, c = cell
        for i in range(count) if forward else range(count - 1, -1, -1):
            frame = scores[i]
            best, best_score = (r, c), -np.inf
            for dr, dc in offsets:
                rr, cc = r + dr, c + dc
                if not (0 <= rr < h and 0 <= cc < w):
                    continue
                score = frame[rr][cc]
                if score == -np.inf:  # a box must stay whole inside the frame
                    continue
                # prefer staying put on ties, so a still performer is not dragged by noise
                if score > best_score + 1e-6 or (abs(score - best_score) <= 1e-6 and dr == 0 and dc == 0):
                    best, best_score = (rr, cc), score
            r, c = best
            rows[i], cols[i] = r, c
        self._vectors[frame_start:frame_stop] = pooled[np.arange(count), :, rows, cols]
        self._cells[frame_start:frame_stop, 0], self._cells[frame_start:frame_stop, 1] = rows, cols
        return r, c

    def step(self, frame_start: int, frame_stop: int) -> bool:
        """Track one chunk further towards frames ``[frame_start, frame_stop)``; False when they are
        all tracked already."""
        frame_start, frame_stop = max(0, frame_start), min(self.num_frames, frame_stop)
        chunk = self.chunk_frames
        if self._hi < frame_stop:
            stop = min(frame_stop, (self._hi // chunk + 1) * chunk)
            self._cell_hi = self._walk(self._hi, stop, self._cell_hi, forward=True)
            self._hi = stop
            return True
        if self._lo > frame_start:
            start = max(frame_start, (self._lo - 1) // chunk * chunk)
            self._cell_lo = self._walk(start, self._lo, self._cell_lo, forward=False)
            self._lo = start
            return True
        return False

    def vectors(self, frame_start: int, frame_stop: int) -> np.ndarray:
        """The part's K-vectors in sampled frames ``[frame_start, frame_stop)``: float32 (n, K)."""
        while self.step(frame_start, frame_stop):
            pass
        return self._vectors[max(0, frame_start) : min(self.num_frames, frame_stop)]

    def cells(self, frame_start: int, frame_stop: int) -> np.ndarray:
        """The feature cell (row, col) the part's region is centred on in sampled frames
        ``[frame_start, frame_stop)``: int64 (n, 2) (a host draws its marker there)."""
        while self.step(frame_start, frame_stop):
            pass
        return self._cells[max(0, frame_start) : min(self.num_frames, frame_stop)]

    @property
    def tracked_frames(self) -> int:
        """How many sampled frames have been tracked so far."""
        return self._hi - self._lo

    def frames_in(self, time_start: float, time_stop: float) -> tuple[int, int]:
        """Sampled frames ``[i0, i1)`` whose vectors make the window ``[time_start, time_stop)``
        seconds: the frames inside it, else the frame nearest its middle."""
        i0, i1 = np.searchsorted(self.frame_times, [time_start, time_stop], side="left")
        if i1 > i0:
            return int(i0), int(i1)
        i = _nearest_frame(self.frame_times, (time_start + time_stop) / 2)
        return i, i + 1

    def window_vector(self, time_start: float, time_stop: float) -> np.ndarray:
        """The max over the sampled frames in ``[time_start, time_stop)`` seconds (the nearest frame
        to its middle if none): float32 (K,)."""
        return self.vectors(*self.frames_in(time_start, time_stop)).max(axis=0)


def track_together(trackers: list[PartTracker], frame_start: int, frame_stop: int) -> None:
    """Track every part over frames ``[frame_start, frame_stop)``, a chunk at a time in turn, so
    that trackers sharing a ``pooled_cache`` pool each chunk once."""
    moving = list(trackers)
    while moving:
        moving = [tracker for tracker in moving if tracker.step(frame_start, frame_stop)]


def _nearest_frame(frame_times: np.ndarray, t: float) -> int:
    """Index of the frame nearest ``t`` (the first one on a tie), frame_times ascending."""
    i = int(np.searchsorted(frame_times, t, side="left"))
    if i == 0:
        return 0
    if i == frame_times.size or abs(frame_times[i - 1] - t) <= abs(frame_times[i] - t):
        return i - 1
    return i


def track_part(
    part: Part,
    features: np.ndarray,
    frame_times: np.ndarray,
    width: int,
    height: int,
    search_radius_cells: int = 1,
    point_reach_cells: int = 2,
) -> np.ndarray:
    """The part's K-vector in every sampled frame, following it as it moves (see :class:`PartTracker`).

    A part's K-vector is the element-wise maximum over its region of feature cells (the spatial
    max-pooling the nets were trained with): a box's cells, or for a point the square of cells
    within ``point_reach_cells`` of the clicked cell (clipped to the frame).

    features: (frames, K, h, w); frame_times: (frames,) seconds. Returns float32 (frames, K).
    """
    tracker = PartTracker(part, features, frame_times, width, height, search_radius_cells, point_reach_cells)
    return tracker.vectors(0, features.shape[0]).copy()


def window_vectors(
    frame_vectors: np.ndarray,
    frame_times: np.ndarray,
    window_starts: np.ndarray,
    window_columns: int,
    column_seconds: float,
) -> np.ndarray:
    """Per-window K-vectors: the max over the sampled frames inside each window (nearest frame if none).

    frame_vectors (frames, K) -> float32 (windows, K).
    """
    out = np.zeros((window_starts.size, frame_vectors.shape[1]), dtype=np.float32)
    for i, start in enumerate(window_starts):
        t0, t1 = start * column_seconds, (start + window_columns) * column_seconds
        inside = (frame_times >= t0) & (frame_times < t1)
        if inside.any():
            out[i] = frame_vectors[inside].max(axis=0)
        else:
            out[i] = frame_vectors[int(np.argmin(np.abs(frame_times - (t0 + t1) / 2)))]
    return out
