"""From a click in Blender's sequencer preview to the movie's own pixels, and back (no bpy here).

Blender places a movie strip's image in the preview like this (units: render pixels of the
scene's resolution, origin at the centre of the frame, y up; that is the space
``region.view2d.region_to_view`` gives in the preview):

1. the image is centred on the origin at its own size (``w`` x ``h``);
2. it is scaled by ``scale`` and rotated by ``rotation`` (radians, counter-clockwise) about its
   pivot, the point ``origin`` (fractions of the image, (0.5, 0.5) its centre);
3. it is moved by ``offset``;
4. flipping mirrors the result about the frame's centre, and the preview stretches x by the
   render's pixel aspect (``pixel_aspect_x / pixel_aspect_y``).

Crop hides the image's borders (``left``, ``right``, ``bottom``, ``top`` in image pixels) without
moving what stays. :func:`view_to_movie` inverts the chain and answers ``None`` for a click that
misses the visible image. Movie pixels have their origin at the top-left corner, y down, like every
pixel coordinate in pixelsep; when the engine's frame size differs from the strip's image size
(the engine reads the display size) the point is scaled to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

EDGE_TOLERANCE = 1e-9  # a click this close to the image's edge (relative to its size) is on it


@dataclass(frozen=True)
class StripPlacement:
    """Everything that decides where a movie strip's pixels appear in the preview."""

    image_width: int  # the strip's image size in pixels (Blender's orig_width / orig_height)
    image_height: int
    offset_x: float = 0.0  # render pixels
    offset_y: float = 0.0
    scale_x: float = 1.0
    scale_y: float = 1.0
    rotation: float = 0.0  # radians, counter-clockwise
    origin_x: float = 0.5  # the pivot, as fractions of the image (0, 0: bottom-left)
    origin_y: float = 0.5
    crop_left: int = 0  # image pixels hidden at each border
    crop_right: int = 0
    crop_bottom: int = 0
    crop_top: int = 0
    flip_x: bool = False
    flip_y: bool = False
    pixel_aspect: float = 1.0  # the render's pixel_aspect_x / pixel_aspect_y

    def __post_init__(self) -> None:
        if self.image_width <= 0 or self.image_height <= 0:
            raise ValueError(f"image size must be positive, not {self.image_width}x{self.image_height}")
        if self.scale_x == 0 or self.scale_y == 0:
            raise ValueError("the strip is scaled to nothing (scale 0): no click can land on it")
        if self.pixel_aspect <= 0:
            raise ValueError(f"pixel aspect must be positive, not {self.pixel_aspect}")


def _pivot(p: StripPlacement) -> tuple[float, float]:
    return (p.origin_x - 0.5) * p.image_width, (p.origin_y - 0.5) * p.image_height


def movie_to_view(p: StripPlacement, x: float, y: float) -> tuple[float, float]:
    """Image pixel (x right, y down, origin top-left) -> preview view coordinates."""
    cx, cy = x - p.image_width / 2, p.image_height / 2 - y  # centred, y up
    px, py = _pivot(p)
    dx, dy = (cx - px) * p.scale_x, (cy - py) * p.scale_y
    cos, sin = math.cos(p.rotation), math.sin(p.rotation)
    vx = px + p.offset_x + cos * dx - sin * dy
    vy = py + p.offset_y + sin * dx + cos * dy
    if p.flip_x:
        vx = -vx
    if p.flip_y:
        vy = -vy
    return vx * p.pixel_aspect, vy


def view_to_movie(
    p: StripPlacement, view_x: float, view_y: float, frame_size: tuple[int, int] | None = None
) -> tuple[float, float] | None:
    """Preview view coordinates -> the movie pixel under them, or ``None`` outside the visible image.

    ``frame_size`` (width, height): the engine's frame size, when it differs from the strip's
    image size; the point is scaled to it.
    """
    vx, vy = view_x / p.pixel_aspect, view_y
    if p.flip_x:
        vx = -vx
    if p.flip_y:
        vy = -vy
    px, py = _pivot(p)
    ux, uy = vx - px - p.offset_x, vy - py - p.offset_y
    cos, sin = math.cos(p.rotation), math.sin(p.rotation)
    dx, dy = cos * ux + sin * uy, -sin * ux + cos * uy  # rotate back
    cx, cy = px + dx / p.scale_x, py + dy / p.scale_y
    x, y = cx + p.image_width / 2, p.image_height / 2 - cy
    left, right = p.crop_left, p.image_width - p.crop_right
    top, bottom = p.crop_top, p.image_height - p.crop_bottom
    eps = EDGE_TOLERANCE * max(p.image_width, p.image_height)  # rounding of the transform at the very edge
    if not (left - eps <= x <= right + eps and top - eps <= y <= bottom + eps):
        return None
    x, y = min(max(x, left), right), min(max(y, top), bottom)
    if frame_size is not None and frame_size != (p.image_width, p.image_height):
        x, y = x * frame_size[0] / p.image_width, y * frame_size[1] / p.image_height
    return x, y


def visible_quad(p: StripPlacement) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """The visible (cropped) image as four corners for drawing over it: ((view x, view y),
    (texture u, v)) for bottom-left, bottom-right, top-right, top-left, with texture (0, 0) at the
    image's bottom-left corner."""
    w, h = p.image_width, p.image_height
    left, right = p.crop_left, w - p.crop_right
    top, bottom = p.crop_top, h - p.crop_bottom  # image rows, y down
    corners = [(left, bottom), (right, bottom), (right, top), (left, top)]
    return [(movie_to_view(p, x, y), (x / w, 1.0 - y / h)) for x, y in corners]
