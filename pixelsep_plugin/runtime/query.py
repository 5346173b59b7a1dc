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


def _window(centre: int, half: int, size: int) -> slice:
    return slice(max(0, centre - half), min(size, centre + half + 1))


def track_part(
    part: Part,
    features: np.ndarray,
    frame_times: np.ndarray,
    width: int,
    height: int,
    search_radius_cells: int = 1,
    point_reach_cells: int = 2,
) -> np.ndarray:
    """The part's K-vector in every sampled frame, following it as it moves.

    A part's K-vector is the element-wise maximum over its region of feature cells (the spatial
    max-pooling the nets were trained with): a box's cells, or for a point the square of cells
    within ``point_reach_cells`` of the clicked cell (clipped to the frame).

    features: (frames, K, h, w); frame_times: (frames,) seconds. Returns float32 (frames, K).
    """
    num_frames, k, h, w = features.shape
    sx, sy = w / width, h / height  # video pixels -> feature cells
    t = 0.0 if part.time_seconds is None else part.time_seconds
    anchor_frame = int(np.argmin(np.abs(frame_times - t)))
    if isinstance(part, Point):
        centre = (min(int(part.y * sy), h - 1), min(int(part.x * sx), w - 1))
        half = (point_reach_cells, point_reach_cells)
    else:
        rows, cols = _box_cells(part, sx, sy, h, w)
        centre = ((rows.start + rows.stop - 1) // 2, (cols.start + cols.stop - 1) // 2)
        half = (centre[0] - rows.start, centre[1] - cols.start)
        span = (rows.stop - rows.start, cols.stop - cols.start)

    def vector_at(frame: np.ndarray, r: int, c: int) -> np.ndarray:
        if isinstance(part, Point):
            region = frame[:, _window(r, half[0], h), _window(c, half[1], w)]
        else:
            r0, c0 = r - half[0], c - half[1]
            region = frame[:, r0 : r0 + span[0], c0 : c0 + span[1]]
        return region.reshape(k, -1).max(axis=1)

    vectors = np.zeros((num_frames, k), dtype=np.float32)
    anchor = vector_at(np.asarray(features[anchor_frame], dtype=np.float32), *centre)
    vectors[anchor_frame] = anchor
    unit_anchor = anchor / (np.linalg.norm(anchor) + 1e-8)

    for direction in (1, -1):
        r, c = centre
        i = anchor_frame + direction
        while 0 <= i < num_frames:
            frame = np.asarray(features[i], dtype=np.float32)
            best, best_score = (r, c), -np.inf
            for dr in range(-search_radius_cells, search_radius_cells + 1):
                for dc in range(-search_radius_cells, search_radius_cells + 1):
                    rr, cc = r + dr, c + dc
                    if not (0 <= rr < h and 0 <= cc < w):
                        continue
                    # a box must stay whole inside the frame
                    if isinstance(part, Box) and (
                        rr - half[0] < 0 or cc - half[1] < 0 or rr - half[0] + span[0] > h or cc - half[1] + span[1] > w
                    ):
                        continue
                    v = vector_at(frame, rr, cc)
                    score = float(v @ unit_anchor / (np.linalg.norm(v) + 1e-8))
                    # prefer staying put on ties, so a still performer is not dragged by noise
                    if score > best_score + 1e-6 or (abs(score - best_score) <= 1e-6 and (rr, cc) == (r, c)):
                        best, best_score = (rr, cc), score
            r, c = best
            vectors[i] = vector_at(frame, r, c)
            i += direction
    return vectors


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
