"""The CLI's progress bar: redraws in place on a terminal, plain lines in a log."""

from __future__ import annotations

import io

import pytest

from host_bridge.cli import progress as progress_module
from host_bridge.cli.progress import ProgressBar


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", clock)
    return clock


def drive(bar: ProgressBar, clock: Clock, stages=("audio", "video"), steps: int = 40) -> None:
    clock.now += 1.5  # past the quiet first second
    for stage in stages:
        for i in range(steps + 1):
            clock.now += 0.2
            bar.update(stage, i, steps)
    bar.close()


def test_log_gets_plain_lines_without_carriage_returns(clock):
    log = io.StringIO()
    drive(ProgressBar("analysing", stream=log), clock)
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    # each stage: its start (0%) and its four quarters
    assert [line.split(" (")[0] for line in lines] == [
        f"analysing {stage}: {pct}%" for stage in ("audio", "video") for pct in (0, 25, 50, 75, 100)
    ]


def test_terminal_redraws_in_place_and_ends_the_line(clock):
    tty = Terminal()
    drive(ProgressBar("analysing", stream=tty), clock, stages=("audio",), steps=10)
    text = tty.getvalue()
    assert text.count("\r") == 11 and text.endswith("\n") and text.count("\n") == 1
    assert "100.0%" in text


def test_quick_work_and_quiet_mode_write_nothing(clock):
    log = io.StringIO()
    bar = ProgressBar("analysing", stream=log)
    bar.update("audio", 1, 2)  # within the first second
    bar.close()
    quiet = io.StringIO()
    drive(ProgressBar("analysing", enabled=False, stream=quiet), clock)
    assert log.getvalue() == "" and quiet.getvalue() == ""
