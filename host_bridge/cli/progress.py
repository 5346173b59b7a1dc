"""A small progress bar on stderr for long work (no dependency).

On a terminal the bar is redrawn in place (``\\r``). When stderr is not a terminal (a log file, a
pipe, a CI job), nothing is redrawn: one plain line is written when a stage starts and at each
quarter of it, so a log stays readable.
"""

from __future__ import annotations

import sys
import time

QUARTERS = (0.25, 0.5, 0.75, 1.0)


class ProgressBar:
    """``update(stage, done, total)`` redraws at most 10 times a second; ``close()`` ends the line.

    Nothing is drawn during the first second, so quick work stays quiet.
    """

    def __init__(self, label: str, enabled: bool = True, stream=None, width: int = 30):
        self.label, self.enabled, self.width = label, enabled, width
        self.stream = stream or sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.interactive = bool(isatty and isatty())
        self.started = time.monotonic()
        self.last_draw = 0.0
        self.drawn = False
        self._stage: str | None = None
        self._logged = 0.0  # the largest quarter already logged for the current stage

    def update(self, stage: str, done: float, total: float) -> None:
        now = time.monotonic()
        if stage == "wait":  # the engine waits for another process (the same clip being analysed): say so now
            if self.enabled:
                self.stream.write(f"{self.label}: waiting for another pixelsep that is analysing this clip\n")
                self.stream.flush()
            return
        if not self.enabled or now - self.started < 1.0:
            return
        fraction = 0.0 if total <= 0 else min(1.0, max(0.0, done / total))
        if not self.interactive:
            self._log(stage, fraction, now)
            return
        if now - self.last_draw < 0.1:
            return
        self.last_draw = now
        filled = int(round(fraction * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{self.label} {stage:<5} [{bar}] {fraction * 100:5.1f}% {now - self.started:6.1f} s")
        self.stream.flush()
        self.drawn = True

    def _log(self, stage: str, fraction: float, now: float) -> None:
        """One line when a stage starts and when it passes each quarter (no redraws)."""
        if stage != self._stage:
            self._stage, self._logged = stage, 0.0
            reached = max((q for q in QUARTERS if q <= fraction), default=0.0)
        else:
            reached = max((q for q in QUARTERS if self._logged < q <= fraction), default=None)
            if reached is None:
                return
        self._logged = reached
        self.stream.write(f"{self.label} {stage}: {fraction * 100:.0f}% ({now - self.started:.1f} s)\n")
        self.stream.flush()

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
