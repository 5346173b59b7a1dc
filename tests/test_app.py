"""The previewer's window, offscreen (pytest-qt): open the example duet, click its performers, move
sliders, mute, solo, undo and redo, export, reopen the recipe; the event loop keeps turning while a
clip is analysed; errors are one sentence."""

from __future__ import annotations

import os
import time
from pathlib import Path

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before Qt starts; these tests never open a real window

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PyQt6.QtWidgets", reason="the app extra: pip install 'pixelsep[app]'")
pytest.importorskip("pytestqt", reason="pytest-qt (the dev extra)")

from PyQt6.QtCore import QPoint, QSettings, Qt, QTimer  # noqa: E402
from PyQt6.QtTest import QTest  # noqa: E402

from host_bridge.app import model  # noqa: E402
from host_bridge.app.window import MainWindow  # noqa: E402
from pixelsep_plugin import media  # noqa: E402
from pixelsep_plugin import recipe as rcp  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DUET = REPO / "examples" / "duet.mp4"
# Where the example's sidecar (examples/duet.json) has the long drum and the accordion at 5 s.
PERFORMERS = {"long-drum": (136, 88), "accordion": (365, 186)}
LOAD_MS = 60_000


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("app-cache")


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings, cache_root):
    window = MainWindow(settings=settings, cache_root=cache_root, sound=False)
    qtbot.addWidget(window)
    window.resize(1200, 720)
    window.show()
    yield window
    window.close()


def open_duet(qtbot, window: MainWindow, path: Path = DUET) -> None:
    with qtbot.waitSignal(window.loaded, timeout=LOAD_MS):
        window.open_path(path)
    assert window.last_error == ""


def click_video(qtbot, window: MainWindow, x: float, y: float, shift: bool = False) -> float:
    """A real mouse click on the picture at video pixel (x, y); waits until it is heard. Returns the latency."""
    view = window.view
    wx, wy = view.viewport().to_widget(x, y, *view.video_size)
    modifier = Qt.KeyboardModifier.ShiftModifier if shift else Qt.KeyboardModifier.NoModifier
    with qtbot.waitSignal(window.buffer_ready, timeout=10_000) as blocker:
        QTest.mouseClick(view, Qt.MouseButton.LeftButton, modifier, QPoint(round(wx), round(wy)))
    return blocker.args[1]


def slider_of(window: MainWindow, name: str):
    for row in range(window.table.rowCount()):
        if window.table.item(row, 1).data(Qt.ItemDataRole.UserRole) == name:
            return row, window.table.cellWidget(row, 2)
    raise AssertionError(f"no row for {name}")


def test_click_each_performer_makes_sources_and_queries(qtbot, window):
    open_duet(qtbot, window)
    window.seek(5.0)
    for x, y in PERFORMERS.values():
        latency = click_video(qtbot, window, x, y)
        assert 0 < latency < 5
    recipe = window.editor.recipe
    assert [s.name for s in recipe.sources] == ["source1", "source2"]
    for source, (x, y) in zip(recipe.sources, PERFORMERS.values(), strict=True):
        (part,) = source.parts
        assert not part.is_box and part.time_seconds == pytest.approx(5.0)
        assert (part.x, part.y) == pytest.approx((x, y), abs=1.0)  # one widget pixel is < 1 video pixel here
    queries = rcp.engine_sources(recipe)
    assert [type(q.parts[0]).__name__ for q in queries] == ["Point", "Point"]
    # the list shows both sources and the residual; markers sit on the performers in their colours
    assert window.table.rowCount() == 3
    qtbot.waitUntil(lambda: len(window.tracks) == 2, timeout=10_000)  # tracked in a thread
    markers = window.marker_positions()
    assert [(m[2], m[3]) for m in markers] == [(model.colour_for(0), "source1"), (model.colour_for(1), "source2")]
    for (mx, my, *_), (x, y) in zip(markers, PERFORMERS.values(), strict=True):
        assert abs(mx - x) < 2 and abs(my - y) < 2
    # Shift+click adds a part to the selected source; a drag draws a box
    click_video(qtbot, window, 150, 120, shift=True)
    assert len(window.editor.recipe.sources[1].parts) == 2 and len(window.editor.recipe.sources) == 2
    view = window.view
    start = view.viewport().to_widget(20, 250, *view.video_size)
    end = view.viewport().to_widget(120, 340, *view.video_size)
    with qtbot.waitSignal(window.buffer_ready, timeout=10_000):
        QTest.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(round(start[0]), round(start[1])))
        QTest.mouseMove(view, QPoint(round(end[0]), round(end[1])))
        QTest.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(round(end[0]), round(end[1])))
    box = window.editor.recipe.sources[2].parts[0]
    assert box.is_box and (box.x, box.y, box.x1, box.y1) == pytest.approx((20, 250, 120, 340), abs=1.5)


def test_slider_mute_solo_change_the_recipe_and_the_remix(qtbot, window):
    open_duet(qtbot, window)
    window.seek(5.0)
    for x, y in PERFORMERS.values():
        click_video(qtbot, window, x, y)
    session = window.session
    a = int(5.0 * session.sample_rate)
    n = 4096
    original = window.analysis.read_audio(a, a + n)
    np.testing.assert_array_equal(session.remix(a, n), original)  # every gain at 0 dB: the clip itself
    stems = window.separator.separate(window.analysis, rcp.engine_sources(window.editor.recipe)).render_samples(
        a, a + n, residual=False).stems  # fmt: skip
    residual = original - stems.sum(axis=0)

    row, slider = slider_of(window, "source1")
    with qtbot.waitSignal(window.buffer_ready, timeout=5_000) as blocker:
        slider.setValue(model.db_to_slider(-12.0))
    assert blocker.args[0] == "slider" and blocker.args[1] < 0.15
    assert window.editor.recipe.sources[0].gain_db == -12.0
    assert window.table.item(row, 3).text() == "-12.0 dB"
    g = 10 ** (-12 / 20)
    np.testing.assert_allclose(session.remix(a, n), g * stems[0] + stems[1] + residual, atol=2e-5)
    # the device the audio sink pulls from hands out the same remix, interleaved float32
    device = window.audio.device
    device.seek_samples(a)
    pulled = np.frombuffer(device.readData(n * device.bytes_per_frame), dtype=np.float32).reshape(n, -1).T
    np.testing.assert_allclose(pulled, g * stems[0] + stems[1] + residual, atol=2e-5)

    _, mute_box = row, window.table.cellWidget(slider_of(window, "source2")[0], 4)
    mute_box.setChecked(True)
    assert window.editor.recipe.sources[1].mute
    np.testing.assert_allclose(session.remix(a, n), g * stems[0] + residual, atol=2e-5)
    solo_box = window.table.cellWidget(slider_of(window, "source1")[0], 5)
    solo_box.setChecked(True)
    assert window.editor.recipe.sources[0].solo
    np.testing.assert_allclose(session.remix(a, n), g * stems[0], atol=2e-5)

    # Undo / Redo with the keyboard, every step
    window.activateWindow()
    for _ in range(3):  # solo, mute, volume
        QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    recipe = window.editor.recipe
    assert [(s.gain_db, s.mute, s.solo) for s in recipe.sources] == [(0.0, False, False), (0.0, False, False)]
    np.testing.assert_array_equal(session.remix(a, n), original)
    assert model.slider_to_db(slider_of(window, "source1")[1].value()) == 0.0  # the list follows the undo
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # the second click
    assert len(window.editor.recipe.sources) == 1 and window.table.rowCount() == 2
    for _ in range(4):
        QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    recipe = window.editor.recipe
    assert [(s.gain_db, s.mute, s.solo) for s in recipe.sources] == [(-12.0, False, True), (0.0, True, False)]
    qtbot.waitUntil(lambda: session.is_rendered(a, a + n), timeout=10_000)  # the redone click's stems
    np.testing.assert_allclose(session.remix(a, n), g * stems[0], atol=2e-5)


def test_export_every_delivery_and_reopen_the_recipe(qtbot, window, tmp_path, settings, cache_root):
    open_duet(qtbot, window)
    window.seek(5.0)
    for x, y in PERFORMERS.values():
        click_video(qtbot, window, x, y)
    window.set_gain("source2", -6.0)
    window.editor.rename("source1", "drum")
    before = DUET.stat().st_mtime_ns, DUET.stat().st_size
    out = tmp_path / "out"
    exports = [("stems", out / "stems"), ("remix", out / "duet.remix.flac"), ("video", out / "duet.remix.mp4"),
               ("timeline", out / "duet.mlt")]  # fmt: skip
    written: list[str] = []
    window.exported.connect(written.append)
    for count, (kind, path) in enumerate(exports, start=1):
        window.export(kind, path)
        qtbot.waitUntil(lambda count=count: len(written) == count or bool(window.last_error), timeout=60_000)
        assert window.last_error == ""
    stems = sorted(p.name for p in (out / "stems").iterdir())
    assert stems == ["duet.drum.wav", "duet.residual.wav", "duet.source2.wav"]
    drum, rate = media.read_audio(out / "stems" / "duet.drum.wav")
    assert rate == 44100 and drum.shape[0] == 2 and np.abs(drum).max() > 0.01
    remix = media.probe(out / "duet.remix.flac")
    assert remix.has_audio and remix.duration_seconds == pytest.approx(10.0, abs=0.1)
    video = media.probe(out / "duet.remix.mp4")
    assert video.has_video and video.has_audio
    assert "duet-stems" in (out / "duet.mlt").read_text() or "drum" in (out / "duet.mlt").read_text()
    with qtbot.waitSignal(window.exported, timeout=5_000):
        window.export("recipe", out / "edit.json")
    assert (DUET.stat().st_mtime_ns, DUET.stat().st_size) == before  # the source is never written

    again = MainWindow(settings=settings, cache_root=cache_root, sound=False)
    qtbot.addWidget(again)
    open_duet(qtbot, again, out / "edit.json")
    recipe = again.editor.recipe
    assert [(s.name, s.gain_db) for s in recipe.sources] == [("drum", 0.0), ("source2", -6.0)]
    assert [p.x for s in recipe.sources for p in s.parts] == pytest.approx([136, 365], abs=1.0)
    assert again.table.rowCount() == 3 and not again.editor.can_undo
    again.close()


def test_the_event_loop_keeps_turning_during_analysis(qtbot, settings, tmp_path):
    window = MainWindow(settings=settings, cache_root=tmp_path / "fresh-cache", sound=False)
    qtbot.addWidget(window)
    window.show()
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    started = time.perf_counter()
    with qtbot.waitSignal(window.loaded, timeout=LOAD_MS):
        window.open_path(DUET)
        assert window.progress.isVisible() and window.cancel_button.isVisible()
    seconds = time.perf_counter() - started
    timer.stop()
    assert "analysed" in window.statusBar().currentMessage()
    gaps = np.diff([started, *ticks])
    print(f"event loop during a {seconds:.2f} s analysis: {len(ticks)} ticks, longest gap {gaps.max() * 1000:.0f} ms")
    # analysis on the UI thread would stop the timer for the whole analysis; here it keeps ticking
    # (a busy machine may delay a tick, never by much of the analysis)
    assert len(ticks) >= 5
    assert gaps.max() < min(0.3, 0.5 * seconds), f"the window froze for {gaps.max() * 1000:.0f} ms"
    window.close()


def test_cancel_analysis(qtbot, settings, tmp_path):
    window = MainWindow(settings=settings, cache_root=tmp_path / "cancel-cache", sound=False)
    qtbot.addWidget(window)
    task = window.open_path(DUET)
    with qtbot.waitSignal(task.stopped, timeout=LOAD_MS):
        window.cancel_button.click()
    assert window.session is None and not window.progress.isVisible()
    assert "cancelled" in window.statusBar().currentMessage()
    window.close()


def test_errors_are_one_sentence_dialogs(qtbot, window, tmp_path):
    bad = tmp_path / "not-a-video.mp4"
    bad.write_text("hello")
    with qtbot.waitSignal(window.error_shown, timeout=LOAD_MS) as blocker:
        window.open_path(bad)
    message = blocker.args[0]
    assert "\n" not in message and "Traceback" not in message and message
    assert window._error_box is not None and window._error_box.text() == message
    window.open_path(tmp_path / "missing.mp4")
    assert "not found" in window.last_error
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with qtbot.waitSignal(window.error_shown, timeout=10_000):
        window.open_path(broken)
    assert window.last_error.startswith("broken.json: recipe: not valid JSON")
    open_duet(qtbot, window)
    window.seek(5.0)
    click_video(qtbot, window, 136, 88)
    item = window.table.item(0, 1)
    item.setText("residual")  # reserved: refused, the name stays
    assert "reserved" in window.last_error and "\n" not in window.last_error
    assert window.editor.recipe.sources[0].name == "source1" and window.table.item(0, 1).text() == "source1"
    item = window.table.item(0, 1)
    item.setText("long drum")
    assert window.editor.recipe.sources[0].name == "long drum"
    # the clip itself is never written, not even when asked to
    before = DUET.read_bytes()
    with qtbot.waitSignal(window.error_shown, timeout=30_000):
        window.export("video", DUET)
    assert "\n" not in window.last_error and DUET.name in window.last_error
    assert DUET.read_bytes() == before


def test_settings_remember_folder_and_layout(qtbot, settings, cache_root, tmp_path):
    window = MainWindow(settings=settings, cache_root=cache_root, sound=False)
    qtbot.addWidget(window)
    window.resize(900, 640)
    window.show()
    open_duet(qtbot, window)
    size = (window.width(), window.height())
    window.close()
    assert Path(settings.value("last_folder")) == DUET.parent
    again = MainWindow(settings=settings, cache_root=cache_root, sound=False)
    qtbot.addWidget(again)
    assert (again.width(), again.height()) == size != (1200, 720)  # not the default size
    again.close()
    assert Path(settings.fileName()).parent == tmp_path and Path(settings.fileName()).exists()


def test_heatmap_playback_and_frame_stepping(qtbot, window):
    open_duet(qtbot, window)
    window.seek(5.0)
    window.heat_box.setChecked(True)
    qtbot.waitUntil(lambda: window.view.heat is not None, timeout=10_000)
    index = window.heat_frame_index()
    rgba = window.heat_cache[index]
    assert rgba.shape == (360, 480, 4) and rgba[..., 3].max() > 200  # legible: opaque where the sound is
    window.heat_box.setChecked(False)
    assert window.view.heat is None
    frame_before = window.view.frame
    QTest.keyClick(window, Qt.Key.Key_Right)
    assert window.position == pytest.approx(5.0 + 1 / 24, abs=2e-3) and window.view.frame != frame_before
    QTest.keyClick(window, Qt.Key.Key_Left)
    assert window.position == pytest.approx(5.0, abs=2e-3)
    QTest.keyClick(window, Qt.Key.Key_Space)
    assert window.playing
    qtbot.wait(300)
    QTest.keyClick(window, Qt.Key.Key_Space)
    assert not window.playing and 5.15 < window.position < 6.5
    window.scrubber.setValue(2500)
    assert window.position == pytest.approx(2.5)


def test_markers_follow_the_performers(qtbot, window):
    """At other times than the click, each marker stays on its performer (the sidecar's boxes, give or
    take one feature cell: the tracking moves cell by cell)."""
    import json

    open_duet(qtbot, window)
    started = time.perf_counter()
    open_duet(qtbot, window)  # again: a cached clip opens at once
    assert "from the cache" in window.statusBar().currentMessage() and time.perf_counter() - started < 2.0
    window.seek(5.0)
    for x, y in PERFORMERS.values():
        click_video(qtbot, window, x, y)
    qtbot.waitUntil(lambda: len(window.tracks) == 2, timeout=10_000)
    sidecar = json.loads(DUET.with_suffix(".json").read_text())
    boxes = {p["name"]: p["boxes"] for p in sidecar["performers"]}
    cell = 480 / window.analysis.features.shape[-1]
    for seconds in (0.5, 2.0, 7.5, 9.5):
        window.seek(seconds)
        for (mx, my, *_), name in zip(window.marker_positions(), PERFORMERS, strict=True):
            x0, y0, x1, y1 = boxes[name][min(int(seconds * 24), len(boxes[name]) - 1)]
            assert x0 - cell <= mx <= x1 + cell and y0 - cell <= my <= y1 + cell, (name, seconds, mx, my)


def test_drop_a_clip_on_the_window(qtbot, window):
    from PyQt6.QtCore import QMimeData, QPointF, QUrl
    from PyQt6.QtGui import QDropEvent

    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(DUET))])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)  # fmt: skip
    with qtbot.waitSignal(window.loaded, timeout=LOAD_MS):
        window.dropEvent(event)
    assert window.editor.recipe.clip.path == DUET.resolve()


def test_a_recipe_whose_clip_moved_is_relinked(qtbot, window, tmp_path):
    import shutil

    open_duet(qtbot, window)
    window.seek(5.0)
    click_video(qtbot, window, *PERFORMERS["accordion"])
    moved = tmp_path / "moved" / "duet.mp4"
    moved.parent.mkdir()
    shutil.copy(DUET, tmp_path / "duet.mp4")
    recipe = rcp.load(window.export("recipe", tmp_path / "edit.json") or tmp_path / "edit.json")
    assert recipe.clip.path == DUET.resolve()
    # the recipe points at a copy of the clip, which then moves
    recipe.clip.path = tmp_path / "duet.mp4"
    rcp.save(recipe, tmp_path / "edit.json")
    (tmp_path / "duet.mp4").rename(moved)
    asked: list[Path] = []
    window.locate_clip = lambda missing: asked.append(missing) or None  # the user cancels
    assert window.open_path(tmp_path / "edit.json") is None
    assert asked == [tmp_path / "duet.mp4"] and "missing" in window.last_error
    window.locate_clip = lambda missing: moved
    open_duet(qtbot, window, tmp_path / "edit.json")
    assert window.editor.recipe.clip.path == moved and len(window.editor.recipe.sources) == 1


def test_an_unexpected_error_is_a_dialog_not_a_crash(tmp_path):
    """`pixelsep app` reports an exception that escapes a slot in one sentence and keeps running
    (PyQt would otherwise end the application)."""
    import subprocess
    import sys

    script = """
import sys
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication
from host_bridge.app import main
from host_bridge.app.window import MainWindow

app = QApplication([])
def later():
    window = next(w for w in app.topLevelWidgets() if isinstance(w, MainWindow))
    QTimer.singleShot(10, lambda: 1 / 0)
    QTimer.singleShot(300, lambda: (print("ALIVE", window.last_error), window.close()))
QTimer.singleShot(100, later)
sys.exit(main.run(None, sound=False))
"""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ALIVE unexpected ZeroDivisionError: division by zero" in done.stdout
    assert "Traceback" in done.stderr  # the details stay in the terminal, for bug reports
