"""A small progress bar on stderr for long work (no dependency)."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """``update(stage, done, total)`` redraws at most 10 times a second; ``close()`` ends the line.

    Nothing is drawn during the first second, so quick work stays quiet.
    """

    def __init__(self, label: str, enabled: bool = True, stream=None, width: int = 30):
        self.label, self.enabled, self.width = label, enabled, width
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.last_draw = 0.0
        self.drawn = False

    def update(self, stage: str, done: float, total: float) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.started < 1.0 or now - self.last_draw < 0.1:
            return
        self.last_draw = now
        fraction = 0.0 if total <= 0 else min(1.0, max(0.0, done / total))
        filled = int(round(fraction * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{self.label} {stage:<5} [{bar}] {fraction * 100:5.1f}% {now - self.started:6.1f} s")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
