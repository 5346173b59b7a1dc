"""Pictures for the previewer: the frame shown at any time, decoded forward while playing and by a
seek when scrubbing, through the engine's media layer (:mod:`pixelsep_plugin.media`, PyAV)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from pixelsep_plugin.errors import MediaError
from pixelsep_plugin.media import probe, require_video
from pixelsep_plugin.media.probe import first_line, open_input, time_origin_seconds, video_stream

PREVIEW_LONG_SIDE = 960  # frames are decoded at most this large (the widget scales them)
FORWARD_DECODE_SECONDS = 2.0  # a later time closer than this is reached by decoding on, not seeking


def preview_size(width: int, height: int, long_side: int = PREVIEW_LONG_SIDE) -> tuple[int, int]:
    """The display size scaled down (aspect kept, even sizes) so that its long side is at most ``long_side``."""
    scale = min(1.0, long_side / max(width, height))
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


class FrameReader:
    """The frame shown at a time, display-oriented, RGB uint8 (height, width, 3) at :attr:`size`.

    Keeps one decoder open: a time a little after the last frame decodes on from there, any other
    time seeks to the keyframe before it. Not thread-safe: use it from one thread."""

    def __init__(self, path: Path | str, long_side: int = PREVIEW_LONG_SIDE):
        self.path = Path(path)
        info = probe(self.path)
        require_video(info)
        self.info = info
        self.size = preview_size(info.width, info.height, long_side)  # (width, height) displayed
        self.rotation = info.rotation_degrees
        self.frame_seconds = 1.0 / info.frame_rate if info.frame_rate > 0 else 1 / 25
        self._container = open_input(self.path)
        self._stream = video_stream(self._container)
        self._stream.thread_type = "AUTO"
        self._base = float(self._stream.time_base)
        self._origin = time_origin_seconds(self._container)
        self._frames = None
        self._current: tuple[float, np.ndarray] | None = None  # (time, rgb) of the frame last shown
        self._pending: tuple[float, av.VideoFrame] | None = None  # the frame decoded after it

    def close(self) -> None:
        self._container.close()

    def _rgb(self, frame: av.VideoFrame) -> np.ndarray:
        width, height = self.size if self.rotation in (0, 180) else self.size[::-1]
        rgb = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
        if self.rotation:
            rgb = np.ascontiguousarray(np.rot90(rgb, k=-(self.rotation // 90)))
        return rgb

    def _seek(self, seconds: float) -> None:
        try:
            self._container.seek(int((seconds + self._origin) / self._base), stream=self._stream, backward=True)
        except av.error.FFmpegError as error:
            raise MediaError(
                f"cannot seek in {self.path.name} ({first_line(error)}): the file may be damaged"
            ) from None
        self._frames = self._container.decode(self._stream)
        self._current, self._pending = None, None

    def _next(self) -> tuple[float, av.VideoFrame] | None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            return pending
        try:
            for frame in self._frames:
                if frame.pts is not None:
                    return frame.pts * self._base - self._origin, frame
        except av.error.FFmpegError as error:
            raise MediaError(f"cannot decode {self.path.name} ({first_line(error)}): the file may be damaged") from None
        return None

    def frame_at(self, seconds: float) -> np.ndarray:
        """The frame shown at ``seconds`` (the last one that starts at or before it)."""
        tolerance = 1e-3
        current = self._current
        if current is not None and current[0] <= seconds + tolerance:
            if self._pending is not None and self._pending[0] > seconds + tolerance:
                return current[1]  # still the same frame
        if (
            self._frames is None
            or current is None
            or seconds + tolerance < current[0]
            or (seconds - current[0] > FORWARD_DECODE_SECONDS)
        ):
            self._seek(seconds)
        chosen: tuple[float, av.VideoFrame] | None = None
        while True:
            item = self._next()
            if item is None:
                break
            if item[0] > seconds + tolerance and (chosen is not None or current is not None):
                self._pending = item
                break
            chosen = item
        if chosen is None:
            if current is not None:
                return current[1]
            raise MediaError(f"no video frame at {seconds:g} s in {self.path.name}: the file may be damaged")
        self._current = (chosen[0], self._rgb(chosen[1]))
        return self._current[1]
