"""Drawing the synthetic performers: an instrument picture that moves with its own notes, on a background.

Each performer's picture is its instrument in one style (:mod:`.pictures`), drawn per frame scaled by its
loudness, kicked (a small jump and tilt) at each note onset, swaying slowly, with a per-clip size,
place, mirror and brightness. Backgrounds are scikit-image's bundled photos (slowly panning),
colour gradients or smooth noise, with random brightness and tint. Every drawn picture's bounding
box is recorded per frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageEnhance

PHOTOS = (
    "astronaut", "brick", "camera", "cat", "chelsea", "coffee", "coins", "colorwheel", "grass",
    "gravel", "moon", "page", "rocket", "text", "hubble_deep_field", "immunohistochemistry", "retina",
    "clock",
)  # fmt: skip


@lru_cache(maxsize=32)
def _photo(name: str) -> np.ndarray:
    from skimage import data  # imported here: only the generator needs scikit-image

    image = np.asarray(getattr(data, name)())
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3].astype(np.uint8))


class Background:
    """A clip's background; :meth:`frame` gives RGB uint8 (H, W, 3) for a frame index."""

    def __init__(self, width: int, height: int, num_frames: int, rng: np.random.Generator) -> None:
        self.width, self.height = width, height
        kind = str(rng.choice(["photo", "gradient", "noise", "flat"], p=[0.6, 0.2, 0.12, 0.08]))
        self.kind = kind
        gain = float(rng.uniform(0.55, 1.15))
        tint = rng.uniform(0.85, 1.15, size=3)
        self.pan = None
        if kind == "photo":
            self.name = str(rng.choice(PHOTOS))
            photo = _photo(self.name)
            # scale so the frame fits with room to pan, then pick a start and an end crop
            scale = max(width / photo.shape[1], height / photo.shape[0]) * float(rng.uniform(1.05, 1.6))
            size = (max(width + 2, int(photo.shape[1] * scale)), max(height + 2, int(photo.shape[0] * scale)))
            big = np.asarray(Image.fromarray(photo).resize(size, Image.BILINEAR)).astype(np.float32)
            if rng.random() < 0.5:
                big = big[:, ::-1]
            self.image = np.clip(big * gain * tint, 0, 255).astype(np.uint8)
            x0, y0 = rng.integers(0, size[0] - width + 1), rng.integers(0, size[1] - height + 1)
            x1, y1 = rng.integers(0, size[0] - width + 1), rng.integers(0, size[1] - height + 1)
            moving = rng.random() < 0.5
            self.pan = (x0, y0, x1 if moving else x0, y1 if moving else y0, max(1, num_frames - 1))
        elif kind == "gradient":
            self.name = "gradient"
            a, b = rng.uniform(0, 255, size=3), rng.uniform(0, 255, size=3)
            angle = rng.uniform(0, 2 * np.pi)
            yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
            ramp = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
            ramp = (ramp - ramp.min()) / max(1e-6, float(np.ptp(ramp)))
            self.image = np.clip((a + (b - a) * ramp[..., None]) * gain, 0, 255).astype(np.uint8)
        elif kind == "noise":
            self.name = "noise"
            coarse = rng.uniform(0, 255, size=(int(rng.integers(3, 12)), int(rng.integers(3, 12)), 3))
            smooth = Image.fromarray(coarse.astype(np.uint8)).resize((width, height), Image.BICUBIC)
            fine = rng.normal(0, float(rng.uniform(0, 20)), size=(height, width, 3))
            self.image = np.clip(np.asarray(smooth, dtype=np.float32) * gain + fine, 0, 255).astype(np.uint8)
        else:
            self.name = "flat"
            colour = rng.uniform(0, 255, size=3)
            self.image = np.broadcast_to(colour.astype(np.uint8), (height, width, 3)).copy()

    def frame(self, index: int) -> np.ndarray:
        if self.pan is None:
            return self.image
        x0, y0, x1, y1, last = self.pan
        f = index / last
        x, y = int(round(x0 + (x1 - x0) * f)), int(round(y0 + (y1 - y0) * f))
        return self.image[y : y + self.height, x : x + self.width]


@dataclass
class Placement:
    """Where and how big a performer is drawn (centre and height in pixels), and its look."""

    cx: float
    cy: float
    height: float
    mirror: bool
    brightness: float
    sway_degrees: float
    sway_hz: float
    phase: float
    tilt_degrees: float = 0.0  # a fixed lean of the picture
    saturation: float = 1.0
    blur: float = 0.0  # Gaussian blur radius in pixels (out of focus)


def _pulses(onsets: np.ndarray, velocities: np.ndarray, fps: float, num_frames: int) -> np.ndarray:
    """Per frame: sum of exponentially decaying kicks (time constant 0.12 s) at note onsets, in [0, 1]."""
    out = np.zeros(num_frames)
    if onsets.size == 0:
        return out
    times = np.arange(num_frames) / fps
    for onset, velocity in zip(onsets, velocities, strict=True):
        first = int(np.ceil(onset * fps))
        if first >= num_frames:
            continue
        dt = times[first : first + int(fps)] - onset
        out[first : first + dt.size] += (velocity / 127.0) * np.exp(-dt / 0.12)
    return np.clip(out, 0.0, 1.0)


class PerformerDrawing:
    """One performer's picture over time; :meth:`draw` puts frame ``i`` on an image and returns its box."""

    def __init__(
        self,
        picture: Image.Image,
        placement: Placement,
        loudness: np.ndarray,
        onsets: np.ndarray,
        velocities: np.ndarray,
        fps: float,
    ) -> None:
        """``picture``: the instrument in its style, RGBA (see :func:`.pictures.picture`)."""
        if placement.mirror:
            picture = picture.transpose(Image.FLIP_LEFT_RIGHT)
        if placement.brightness != 1.0:
            alpha = picture.getchannel("A")
            picture = ImageEnhance.Brightness(picture.convert("RGB")).enhance(placement.brightness).convert("RGBA")
            picture.putalpha(alpha)
        if placement.saturation != 1.0:
            alpha = picture.getchannel("A")
            picture = ImageEnhance.Color(picture.convert("RGB")).enhance(placement.saturation).convert("RGBA")
            picture.putalpha(alpha)
        if placement.blur > 0:
            from PIL import ImageFilter

            picture = picture.filter(ImageFilter.GaussianBlur(placement.blur))
        self.picture = picture
        self.placement = placement
        self.fps = fps
        self.loudness = loudness
        self.pulse = _pulses(onsets, velocities, fps, loudness.size)

    def draw(self, canvas: Image.Image, index: int) -> tuple[list[int], list[int]]:
        """Draw frame ``index``; returns the picture's box [x0, y0, x1, y1] and a point on it
        [x, y] (the opaque pixel nearest the box's centre: where a user would click)."""
        p = self.placement
        t = index / self.fps
        kick = self.pulse[index]
        scale = 1.0 + 0.12 * self.loudness[index] + 0.06 * kick
        angle = p.tilt_degrees + p.sway_degrees * np.sin(2 * np.pi * p.sway_hz * t + p.phase) + 7.0 * kick * (1 if p.mirror else -1)
        height = max(4, int(round(p.height * scale)))
        width = max(4, int(round(height * self.picture.width / self.picture.height)))
        image = self.picture.resize((width, height), Image.BILINEAR).rotate(
            float(angle), resample=Image.BILINEAR, expand=True
        )
        cx = p.cx + 0.03 * p.height * np.sin(2 * np.pi * 0.13 * t + p.phase)
        cy = p.cy - 0.10 * p.height * kick
        x0, y0 = int(round(cx - image.width / 2)), int(round(cy - image.height / 2))
        canvas.alpha_composite(image, (max(0, x0), max(0, y0)), (max(0, -x0), max(0, -y0)))
        visible = image.getbbox() or (0, 0, image.width, image.height)
        box = [x0 + visible[0], y0 + visible[1], x0 + visible[2], y0 + visible[3]]
        box = [
            int(np.clip(box[0], 0, canvas.width)),
            int(np.clip(box[1], 0, canvas.height)),
            int(np.clip(box[2], 0, canvas.width)),
            int(np.clip(box[3], 0, canvas.height)),
        ]
        ys, xs = np.nonzero(np.asarray(image.getchannel("A")) > 128)
        xs, ys = xs + x0, ys + y0
        inside = (xs >= 0) & (xs < canvas.width) & (ys >= 0) & (ys < canvas.height)
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        if inside.any():
            xs, ys = xs[inside], ys[inside]
            nearest = int(np.argmin((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2))
            point = [int(xs[nearest]), int(ys[nearest])]
        else:
            point = [int(min(centre[0], canvas.width - 1)), int(min(centre[1], canvas.height - 1))]
        return box, point


def place_performers(count: int, width: int, height: int, rng: np.random.Generator) -> list[Placement]:
    """Placements side by side in ``count`` equal slots (one performer anywhere for ``count == 1``)."""
    placements = []
    for slot in range(count):
        if count == 1:
            h = float(rng.uniform(0.3, 0.62)) * height
            margin_x, margin_y = 0.62 * h, 0.62 * h
            cx = float(rng.uniform(margin_x, max(margin_x + 1, width - margin_x)))
        else:
            slot_width = width / count
            h = min(float(rng.uniform(0.3, 0.5)) * height, 0.72 * slot_width)
            margin_y = 0.62 * h
            cx = (slot + 0.5) * slot_width + float(rng.uniform(-0.1, 0.1)) * slot_width
        cy = float(rng.uniform(margin_y, max(margin_y + 1, height - margin_y)))
        placements.append(
            Placement(
                cx=cx,
                cy=cy,
                height=h,
                mirror=bool(rng.random() < 0.5),
                brightness=float(rng.uniform(0.7, 1.25)),
                sway_degrees=float(rng.uniform(0, 10)),
                sway_hz=float(rng.uniform(0.15, 0.8)),
                phase=float(rng.uniform(0, 2 * np.pi)),
                tilt_degrees=float(rng.normal(0, 8)),
                saturation=float(rng.uniform(0.6, 1.3)),
                blur=float(rng.uniform(0.5, 2.0)) if rng.random() < 0.2 else 0.0,
            )
        )
    return placements
