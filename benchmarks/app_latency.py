"""How soon the previewer's remix reflects a click or a volume slider, on a short and a long clip.

Runs the real window offscreen (QT_QPA_PLATFORM=offscreen, no sound device needed): opens each clip
(analysing it once), waits for the background renderer's warm-up, then at random playhead times

- clicks a random spot of the picture with the mouse (QTest) and times from the click to the moment
  the stems of the chunk under the playhead are rendered for the new edit (``buffer_ready``): the
  click-to-buffer latency. Every third click, the three clicks are undone (also timed, as "undo");
- moves a source's volume slider and times from the move to the remix buffer at the playhead being
  mixed with the new gain: the slider-to-buffer latency.

Between edits it waits a random 0.2-0.6 s, so the renderer is usually busy with chunks ahead of the
playhead when an edit arrives (as when a user plays and clicks). Writes JSON with min/median/max.

    python benchmarks/app_latency.py --out benchmarks/results/app_latency.json \
        [--long-minutes 10] [--clicks 30] [--sliders 30]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def spread(values: list[float]) -> dict:
    ms = [v * 1000 for v in values]
    quartiles = statistics.quantiles(ms, n=4) if len(ms) > 1 else [ms[0]] * 3
    return {"n": len(ms), "min_ms": round(min(ms), 1), "q1_ms": round(quartiles[0], 1),
            "median_ms": round(statistics.median(ms), 1), "q3_ms": round(quartiles[2], 1),
            "max_ms": round(max(ms), 1), "within_150_ms": sum(v <= 150 for v in ms)}  # fmt: skip


def measure(clip: Path, cache_root: Path, clicks: int, sliders: int, seed: int) -> dict:
    from PyQt6.QtCore import QPoint, QSettings, Qt
    from PyQt6.QtTest import QTest
    from PyQt6.QtWidgets import QApplication

    from host_bridge.app import model
    from host_bridge.app.window import MainWindow

    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as folder:
        settings = QSettings(str(Path(folder) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings, cache_root=cache_root, sound=False)
        window.resize(1200, 720)
        window.show()
        results: list[tuple[str, float]] = []
        window.buffer_ready.connect(lambda kind, seconds: results.append((kind, seconds)))

        def wait(condition, seconds: float) -> None:
            deadline = time.perf_counter() + seconds
            while not condition():
                if time.perf_counter() > deadline:
                    raise TimeoutError("timed out: " + window.last_error)
                app.processEvents()
                time.sleep(0.001)

        def idle(seconds: float) -> None:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                app.processEvents()
                time.sleep(0.002)

        started = time.perf_counter()
        window.open_path(clip)
        wait(lambda: window.session is not None or bool(window.last_error), 3600)
        if window.session is None:
            raise RuntimeError(window.last_error)
        open_seconds = time.perf_counter() - started
        wait(lambda: window.renderer.warmed.is_set(), 60)
        duration = window.duration
        width, height = window.view.video_size
        latencies: dict[str, list[float]] = {"click": [], "undo": [], "slider": []}
        for i in range(clicks):
            window.seek(float(rng.uniform(0, duration - 0.5)))
            idle(float(rng.uniform(0.2, 0.6)))
            x, y = rng.uniform(0.05, 0.95) * width, rng.uniform(0.05, 0.95) * height
            wx, wy = window.view.viewport().to_widget(x, y, width, height)
            count = len(results)
            QTest.mouseClick(window.view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                             QPoint(round(wx), round(wy)))  # fmt: skip
            wait(lambda count=count: len(results) > count, 30)
            kind, seconds = results[-1]
            latencies[kind].append(seconds)
            if i % 3 == 2:
                for _ in range(3):
                    idle(float(rng.uniform(0.2, 0.6)))
                    count = len(results)
                    window.undo()
                    wait(lambda count=count: len(results) > count, 30)
                    latencies["undo"].append(results[-1][1])
        # sliders: two sources, move their volumes
        for x, y in ((0.3, 0.3), (0.7, 0.6)):
            count = len(results)
            window.editor.click(x * width, y * height, window.position)  # (not timed)
            window._apply("setup", time.perf_counter())
            wait(lambda count=count: len(results) > count, 30)
        for i in range(sliders):
            window.seek(float(rng.uniform(0, duration - 0.5)))
            idle(float(rng.uniform(0.2, 0.6)))
            slider = window.table.cellWidget(i % 2, 2)
            count = len(results)
            slider.setValue(model.db_to_slider(float(rng.uniform(-40, 6))))
            wait(lambda count=count: len(results) > count, 30)
            latencies["slider"].append(results[-1][1])
        window.close()
    return {
        "clip": clip.name,
        "duration_seconds": round(duration, 2),
        "open_seconds": round(open_seconds, 2),
        "chunk_seconds": round(window.session.chunk_samples / window.session.sample_rate, 3)
        if window.session
        else None,
        "click_to_buffer": spread(latencies["click"]),
        "undo_to_buffer": spread(latencies["undo"]),
        "slider_to_buffer": spread(latencies["slider"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "app_latency.json")
    parser.add_argument(
        "--long-minutes", type=float, default=10.0, help="length of the generated long clip (0: skip it)"
    )
    parser.add_argument("--clicks", type=int, default=30)
    parser.add_argument("--sliders", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from pixelsep_plugin import media

    report = {
        "what": "seconds from a click (or a slider move) in the previewer to the remix buffer at the playhead "
        "holding the new edit; the window runs offscreen with the shipped model",
        "command": "python benchmarks/app_latency.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "clips": [],
    }
    with tempfile.TemporaryDirectory() as folder:
        cache_root = Path(folder) / "cache"
        clips = [REPO / "examples" / "duet.mp4"]
        if args.long_minutes > 0:
            long_clip = Path(folder) / f"long-{args.long_minutes:g}min.mp4"
            started = time.perf_counter()
            media.make_test_clip(long_clip, args.long_minutes * 60, width=480, height=360, fps=24)
            print(f"made {long_clip.name} in {time.perf_counter() - started:.0f} s", flush=True)
            clips.append(long_clip)
        for clip in clips:
            result = measure(clip, cache_root, args.clicks, args.sliders, args.seed)
            print(json.dumps(result), flush=True)
            report["clips"].append(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
