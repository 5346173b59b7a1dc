"""The previewer's main window: the picture with markers and heatmap, the transport, the source list,
menus, exports. Thin: every decision is in :mod:`.model`, every sound in :mod:`.engine`."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QElapsedTimer, QPointF, QRectF, QSettings, QSize, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QBrush, QColor, QFont, QImage, QKeySequence, QPainter, QPen
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSlider,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from host_bridge.app import model
from host_bridge.app.engine import PreviewSession, Rendered
from host_bridge.app.frames import FrameReader
from host_bridge.app.workers import RenderThread, Task, error_text
from pixelsep_plugin import recipe as rcp
from pixelsep_plugin.errors import InputError, PixelsepError

RECIPE_SUFFIX = ".json"
TIMELINE_FILTER = "Timelines (*.otio *.xml *.fcpxml *.kdenlive *.mlt *.xges)"
REMIX_FILTER = "Audio (*.wav *.flac *.mp3 *.opus *.m4a)"
VIDEO_FILTER = "Video (*.mp4 *.mov *.mkv)"


def _image(rgb: np.ndarray, fmt: QImage.Format = QImage.Format.Format_RGB888) -> QImage:
    """A QImage over a C-contiguous uint8 array (H, W, C); the array is kept alive by the image's copy."""
    height, width, channels = rgb.shape
    return QImage(rgb.data, width, height, width * channels, fmt).copy()


class VideoView(QWidget):
    """The picture, the sources' markers, the heatmap and the box being dragged.

    Emits ``picked(x, y, x1, y1, shift)`` in video pixels (x1, y1 < 0 for a click without a box)."""

    picked = pyqtSignal(float, float, float, float, bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(320, 240)
        self.setMouseTracking(False)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.video_size = (16, 9)
        self.frame: QImage | None = None
        self.heat: QImage | None = None
        self.markers: list[tuple[float, float, tuple[int, int, int], str, bool]] = []
        self.placeholder = "Open a clip (Ctrl+O) or drop one here"
        self._press: tuple[float, float] | None = None
        self._drag: tuple[float, float] | None = None

    def viewport(self) -> model.Viewport:
        return model.Viewport.fit(self.width(), self.height(), *self.video_size)

    def set_frame(self, rgb: np.ndarray) -> None:
        self.frame = _image(rgb)
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(24, 24, 24))
        if self.frame is None:
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        view = self.viewport()
        target = QRectF(view.left, view.top, view.width, view.height)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(target, self.frame)
        if self.heat is not None:
            painter.drawImage(target, self.heat)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont(painter.font())
        font.setBold(True)
        painter.setFont(font)
        for x, y, colour, label, selected in self.markers:
            cx, cy = view.to_widget(x, y, *self.video_size)
            radius = 13 if selected else 10
            painter.setPen(QPen(QColor(0, 0, 0), 5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(QPointF(cx, cy), radius, radius)
            painter.setPen(QPen(QColor(*colour), 3))
            painter.drawEllipse(QPointF(cx, cy), radius, radius)
            painter.setBrush(QBrush(QColor(*colour)))
            painter.drawEllipse(QPointF(cx, cy), 2.5, 2.5)
            if label:
                painter.setPen(QColor(0, 0, 0))
                for dx, dy in ((-1, -1), (1, 1), (-1, 1), (1, -1)):
                    painter.drawText(QPointF(cx + radius + 4 + dx, cy + 4 + dy), label)
                painter.setPen(QColor(*colour))
                painter.drawText(QPointF(cx + radius + 4, cy + 4), label)
        if self._press is not None and self._drag is not None:
            painter.setPen(QPen(QColor(255, 255, 255), 1, Qt.PenStyle.DashLine))
            painter.setBrush(QBrush(QColor(255, 255, 255, 40)))
            painter.drawRect(QRectF(QPointF(*self._press), QPointF(*self._drag)).normalized())

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if event.button() == Qt.MouseButton.LeftButton and self.frame is not None:
            self._press = (event.position().x(), event.position().y())
            self._drag = None

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if self._press is not None:
            x, y = event.position().x(), event.position().y()
            if max(abs(x - self._press[0]), abs(y - self._press[1])) >= model.CLICK_DRAG_PIXELS:
                self._drag = (x, y)
                self.update()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if self._press is None or event.button() != Qt.MouseButton.LeftButton:
            return
        press, self._press = self._press, None
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        view = self.viewport()
        x, y = event.position().x(), event.position().y()
        if self._drag is not None:
            self._drag = None
            self.update()
            # corners outside the picture are clipped to it
            u0 = (press[0] - view.left) / view.width * self.video_size[0]
            v0 = (press[1] - view.top) / view.height * self.video_size[1]
            u1 = (x - view.left) / view.width * self.video_size[0]
            v1 = (y - view.top) / view.height * self.video_size[1]
            self.picked.emit(u0, v0, u1, v1, shift)
            return
        point = view.to_video(x, y, *self.video_size)
        if point is not None:
            self.picked.emit(point[0], point[1], -1.0, -1.0, shift)


SOURCE_COLUMNS = ("", "Source", "Volume", "dB", "Mute", "Solo")


class MainWindow(QMainWindow):
    """``pixelsep app``: open a clip or recipe, click performers, hear the remix, export.

    settings: where the last folder and the window layout are kept (tests pass a temporary file).
    model, cache_root: the engine's model and analysis cache (None: the defaults). sound: try to
    open the audio output (False: silent, as in tests)."""

    buffer_ready = pyqtSignal(str, float)  # ("click" | "slider" | ..., seconds from the edit to its buffer)
    loaded = pyqtSignal()
    exported = pyqtSignal(str)
    error_shown = pyqtSignal(str)

    def __init__(
        self,
        settings: QSettings | None = None,
        model_name: str | None = None,
        cache_root: Path | None = None,
        sound: bool = True,
    ):
        super().__init__()
        self.settings = settings or QSettings("pixelsep", "pixelsep-app")
        self.model_name, self.cache_root, self.sound = model_name, cache_root, sound
        self.separator = None
        self.analysis = None
        self.editor: model.Editor | None = None
        self.session: PreviewSession | None = None
        self.reader: FrameReader | None = None
        self.renderer: RenderThread | None = None
        self.audio = None
        self.task: Task | None = None
        self.heat_task: Task | None = None
        self.heat_cache: dict[int, np.ndarray] = {}
        self.tracks: dict[tuple, np.ndarray] = {}  # part -> its tracked positions (frames, 2)
        self.track_tasks: dict[tuple, Task] = {}
        self.position = 0.0  # the playhead, seconds
        self.playing = False
        self.last_error = ""
        self.latencies: list[tuple[str, float]] = []
        self._edit_started: tuple[str, float, int] | None = None  # (kind, perf_counter, generation)
        self._clock = QElapsedTimer()
        self._clock_origin = 0.0
        self._error_box: QMessageBox | None = None

        self.setWindowTitle("pixelsep")
        self.setAcceptDrops(True)
        self._build()
        self._build_menus()
        self._timer = QTimer(self)
        self._timer.setInterval(15)
        self._timer.timeout.connect(self._tick)
        geometry, size = self.settings.value("window/geometry"), self.settings.value("window/size")
        if geometry is not None:
            self.restoreGeometry(geometry)
        self.resize(size if size is not None else QSize(1200, 720))
        split = self.settings.value("window/splitter")
        if split is not None:
            self.splitter.restoreState(split)
        else:
            self.splitter.setSizes([self.width() - 460, 460])
        self._update_actions()

    # -- building ---------------------------------------------------------------------------------

    def _build(self) -> None:
        self.view = VideoView()
        self.view.picked.connect(self._picked)

        self.play_button = QPushButton("Play")
        self.play_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.play_button.clicked.connect(self.toggle_play)
        self.scrubber = QSlider(Qt.Orientation.Horizontal)
        self.scrubber.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.scrubber.setRange(0, 0)
        self.scrubber.valueChanged.connect(lambda ms: self.seek(ms / 1000.0))
        self.time_label = QLabel("0:00.00 / 0:00.00")
        self.heat_box = QCheckBox("Heatmap")
        self.heat_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.heat_box.toggled.connect(self._heat_toggled)
        transport = QHBoxLayout()
        for widget in (self.play_button, self.scrubber, self.time_label, self.heat_box):
            transport.addWidget(widget)
        transport.setStretch(1, 1)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.view, 1)
        left_layout.addLayout(transport)

        self.table = QTableWidget(0, len(SOURCE_COLUMNS))
        self.table.setHorizontalHeaderLabels(SOURCE_COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.table.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(3, 72)
        self.table.setMinimumWidth(440)
        self.table.itemChanged.connect(self._item_changed)
        self.table.itemSelectionChanged.connect(self._row_selected)
        help_label = QLabel(
            "Click a performer to add a source; drag for a box; Shift+click adds a part to the selected source. "
            "Double-click a name to rename it."
        )
        help_label.setWordWrap(True)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.table, 1)
        right_layout.addWidget(help_label)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.setCentralWidget(self.splitter)

        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_task)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)
        self.statusBar().showMessage("Open a clip (Ctrl+O) or a recipe (Ctrl+Shift+O), or drop one on the window")

    def _action(self, menu, text: str, slot, shortcut=None, checkable: bool = False) -> QAction:
        action = QAction(text, self)
        if isinstance(shortcut, list):
            action.setShortcuts([QKeySequence(key) for key in shortcut])
        elif shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "&Open clip…", lambda: self.open_dialog("clip"), QKeySequence.StandardKey.Open)
        self._action(file_menu, "Open &recipe…", lambda: self.open_dialog("recipe"), "Ctrl+Shift+O")
        self.save_action = self._action(file_menu, "&Save recipe…", lambda: self.export_dialog("recipe"),
                                        QKeySequence.StandardKey.Save)  # fmt: skip
        export = file_menu.addMenu("&Export")
        self.export_actions = [
            self._action(export, "&Stems…", lambda: self.export_dialog("stems"), "Ctrl+E"),
            self._action(export, "&Remix…", lambda: self.export_dialog("remix"), "Ctrl+Shift+E"),
            self._action(export, "&Video with the remix…", lambda: self.export_dialog("video")),
            self._action(export, "&Timeline…", lambda: self.export_dialog("timeline")),
            self.save_action,
        ]
        export.addAction(self.save_action)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        edit_menu = bar.addMenu("&Edit")
        self.undo_action = self._action(edit_menu, "&Undo", self.undo, "Ctrl+Z")
        self.redo_action = self._action(edit_menu, "&Redo", self.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])
        edit_menu.addSeparator()
        self.remove_action = self._action(
            edit_menu, "Remove source", self.remove_selected, QKeySequence.StandardKey.Delete
        )
        self.mute_action = self._action(edit_menu, "Mute selected", lambda: self._toggle_selected("mute"), "M")
        self.solo_action = self._action(edit_menu, "Solo selected", lambda: self._toggle_selected("solo"), "S")
        self._action(edit_menu, "Selected louder (+1 dB)", lambda: self._nudge_selected(1.0), "Up")
        self._action(edit_menu, "Selected quieter (-1 dB)", lambda: self._nudge_selected(-1.0), "Down")

        play_menu = bar.addMenu("&Playback")
        self._action(play_menu, "Play / pause", self.toggle_play, "Space")
        self._action(play_menu, "Next frame", lambda: self.step_frames(1), "Right")
        self._action(play_menu, "Previous frame", lambda: self.step_frames(-1), "Left")
        self._action(play_menu, "Forward 1 s", lambda: self.seek(self.position + 1.0), "Shift+Right")
        self._action(play_menu, "Back 1 s", lambda: self.seek(self.position - 1.0), "Shift+Left")
        self._action(play_menu, "To the start", lambda: self.seek(0.0), "Home")
        view_menu = bar.addMenu("&View")
        self.heat_action = self._action(view_menu, "&Heatmap", lambda on: self.heat_box.setChecked(on), "H", True)

    # -- messages ---------------------------------------------------------------------------------

    def report_error(self, text: str) -> None:
        """One sentence in a dialog (non-blocking) and the status bar."""
        self.last_error = text
        self.statusBar().showMessage(text, 10000)
        if self._error_box is not None:
            self._error_box.close()
        self._error_box = QMessageBox(QMessageBox.Icon.Warning, "pixelsep", text, QMessageBox.StandardButton.Ok, self)
        self._error_box.open()
        self.error_shown.emit(text)

    def _guard(self, action) -> bool:
        """Run an edit; a refused one (InputError) is reported in one sentence. Returns whether it ran."""
        try:
            action()
        except PixelsepError as error:
            self.report_error(error_text(error))
            return False
        return True

    # -- busy tasks -------------------------------------------------------------------------------

    def _run_task(self, label: str, work, done, cancellable: bool = True) -> Task | None:
        if self.task is not None and self.task.isRunning():
            self.report_error("another task is still running: wait for it or cancel it")
            return None
        task = Task(work, self)
        self.task = task
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(cancellable)
        self.statusBar().showMessage(label)

        def progressed(stage: str, done_units: float, total: float) -> None:
            if total > 0:
                self.progress.setRange(0, 1000)
                self.progress.setValue(int(1000 * min(1.0, done_units / total)))
                self.progress.setFormat(f"{stage} %p%")

        def finished() -> None:
            task.wait()
            if self.task is task:
                self.task = None
            self.progress.setVisible(False)
            self.cancel_button.setVisible(False)

        task.progress.connect(progressed)
        task.succeeded.connect(lambda result: (finished(), done(result)))
        task.failed.connect(lambda text: (finished(), self.report_error(text)))
        task.stopped.connect(
            lambda: (finished(), self.statusBar().showMessage(f"{label.rstrip('…')}: cancelled", 5000))
        )
        task.start()
        return task

    def cancel_task(self) -> None:
        if self.task is not None:
            self.task.cancel()

    # -- opening ----------------------------------------------------------------------------------

    def _folder(self) -> str:
        return str(self.settings.value("last_folder", str(Path.home())))

    def _remember_folder(self, path: Path) -> None:
        self.settings.setValue("last_folder", str(path if path.is_dir() else path.parent))

    def open_dialog(self, kind: str) -> None:
        if kind == "recipe":
            path, _ = QFileDialog.getOpenFileName(self, "Open a recipe", self._folder(), "Recipes (*.json)")
        else:
            path, _ = QFileDialog.getOpenFileName(self, "Open a clip", self._folder(),
                                                  "Videos (*.mp4 *.mov *.mkv *.webm *.m4v *.avi);;All files (*)")  # fmt: skip
        if path:
            self.open_path(Path(path))

    def open_path(self, path: Path) -> Task | None:
        """Open a clip, or a recipe (a .json file) to continue its edit; analysis runs in a thread."""
        path = Path(path)
        self.last_error = ""
        if not path.exists():
            self.report_error(f"{path} not found")
            return None
        self._remember_folder(path)
        loaded: rcp.Recipe | None = None
        relink: Path | None = None
        if path.suffix.lower() == RECIPE_SUFFIX:
            try:
                loaded = rcp.load(path)
            except PixelsepError as error:
                self.report_error(error_text(error))
                return None
            if not loaded.clip.path.exists():
                relink = self.locate_clip(loaded.clip.path)
                if relink is None:
                    self.report_error(
                        f"the recipe's clip {loaded.clip.path} is missing: open the recipe again and locate it"
                    )
                    return None
        model_name, cache_root = self.model_name, self.cache_root
        separator = self.separator

        def work(progress, cancelled):
            from pixelsep_plugin.api import Separator

            sep = separator or Separator(model_name, cache_root=cache_root)
            recipe = None
            clip = path
            if loaded is not None:
                # the clip must be the one the recipe was made on (its sha256), and the model the same
                recipe = rcp.check_clip(loaded, relink=relink, digest=sep.clip_sha256)
                clip = recipe.clip.path
                if recipe.model.sha256 != sep.package.checksum:
                    raise InputError(
                        f"this recipe was made with model {recipe.model.id}, not {sep.package.model_id}: "
                        "start the app with that model (pixelsep app --model ...)"
                    )

            def analysing(*values) -> None:  # (stage, done, total) or (done, total)
                stage = f"analysing ({values[0]})" if len(values) == 3 else "analysing"
                progress(stage, values[-2], values[-1])

            analysis, cached = sep.analyze(clip, progress=analysing, cancel=cancelled)
            if recipe is None:
                clip_ref = rcp.clip_ref(clip, sha256=sep.clip_sha256(clip))
                recipe = rcp.new_recipe(clip_ref, sep.package.model_id, sep.package.checksum)
            return sep, analysis, cached, recipe, loaded is not None

        self.stop()
        return self._run_task(f"Opening {path.name}…", work, self._opened)

    def locate_clip(self, missing: Path) -> Path | None:
        """Ask where a recipe's clip has gone (None: the user cancelled)."""
        path, _ = QFileDialog.getOpenFileName(self, f"Where is {missing.name}? (the recipe's clip has moved)",
                                              self._folder(), f"{missing.name} (*{missing.suffix});;All files (*)")  # fmt: skip
        return Path(path) if path else None

    def _opened(self, result) -> None:
        separator, analysis, cached, recipe, from_recipe = result
        self._close_clip()
        self.separator, self.analysis = separator, analysis
        self.editor = model.Editor(recipe, recipe.sources[0].name if recipe.sources else None)
        self.session = PreviewSession(separator, analysis, recipe)
        self.reader = FrameReader(recipe.clip.path)
        self.view.video_size = (recipe.clip.width, recipe.clip.height)
        self.renderer = RenderThread(self.session, self)
        self.renderer.rendered.connect(self._chunk_rendered)
        self.renderer.failed.connect(self._render_failed)
        self.renderer.start()
        from host_bridge.app.audio import AudioOutput

        self.audio = AudioOutput(self.session, enabled=self.sound)
        self.heat_cache.clear()
        self.tracks.clear()
        self.scrubber.blockSignals(True)
        self.scrubber.setRange(0, int(recipe.clip.duration_seconds * 1000))
        self.scrubber.setValue(0)
        self.scrubber.blockSignals(False)
        self.position = 0.0
        self.setWindowTitle(f"{recipe.clip.path.name} - pixelsep")
        self._refresh_table(force=True)
        self.show_frame()
        what = "recipe" if from_recipe else "clip"
        note = "analysis from the cache" if cached else "analysed"
        sound = "" if self.audio.available else f"; {self.audio.reason}"
        effects = any(s.effects for s in recipe.sources) or recipe.residual.effects
        fx = "; effect chains are not previewed (they are in the exports)" if effects else ""
        self.statusBar().showMessage(f"Opened {what} {recipe.clip.path.name} ({note}){sound}{fx}: click a performer")
        self._update_actions()
        self.loaded.emit()

    def _close_clip(self) -> None:
        self.stop()
        if self.renderer is not None:
            self.renderer.stop()
            self.renderer = None
        if self.audio is not None:
            self.audio.close()
            self.audio = None
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    # -- drag and drop ----------------------------------------------------------------------------

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_path(Path(urls[0].toLocalFile()))

    # -- playback ---------------------------------------------------------------------------------

    @property
    def duration(self) -> float:
        return self.editor.recipe.clip.duration_seconds if self.editor else 0.0

    def toggle_play(self) -> None:
        if self.playing:
            self.stop()
        else:
            self.play()

    def play(self) -> None:
        if self.session is None:
            return
        if self.position >= self.duration - 1e-3:
            self.position = 0.0
        self.playing = True
        self.audio.start(int(self.position * self.session.sample_rate))
        # the clock: what the output has played (it counts on across pauses), else the wall clock
        self._clock_origin = self.position - (self.audio.played_seconds() or 0.0)
        self._clock.start()
        self._timer.start()
        self.play_button.setText("Pause")

    def stop(self) -> None:
        if not self.playing:
            return
        self.playing = False
        self._timer.stop()
        if self.audio is not None:
            self.audio.pause()
        self.play_button.setText("Play")

    def _tick(self) -> None:
        played = self.audio.played_seconds() if self.audio is not None else None
        elapsed = played if played is not None else self._clock.nsecsElapsed() / 1e9
        position = self._clock_origin + elapsed
        if position >= self.duration:
            self.stop()
            position = self.duration
        self._set_position(position)

    def seek(self, seconds: float) -> None:
        """Move the playhead (seconds, clipped to the clip); playback goes on from there."""
        if self.session is None:
            return
        seconds = min(max(0.0, seconds), self.duration)
        self._set_position(seconds)
        if self.playing:
            # the output keeps running (restarting it can take a second): it reads on from the new
            # place, and the clock is re-based on what it has played so far
            played = self.audio.played_seconds()
            self.audio.device.seek_samples(int(seconds * self.session.sample_rate))
            self._clock_origin = seconds - (played or 0.0)
            self._clock.start()

    def step_frames(self, count: int) -> None:
        if self.reader is not None:
            self.stop()
            self.seek(self.position + count * self.reader.frame_seconds + (1e-4 if count > 0 else 0))

    def _set_position(self, seconds: float) -> None:
        self.position = seconds
        self.session.set_playhead(seconds)
        if self.renderer is not None:
            self.renderer.wake()
        self.scrubber.blockSignals(True)
        self.scrubber.setValue(int(seconds * 1000))
        self.scrubber.blockSignals(False)
        self.show_frame()

    def show_frame(self) -> None:
        if self.reader is None:
            return
        try:
            self.view.set_frame(self.reader.frame_at(min(self.position, max(0.0, self.duration - 1e-3))))
        except PixelsepError as error:
            self.stop()
            self.report_error(error_text(error))
            return
        self._update_markers()
        self._update_heat()
        self.time_label.setText(f"{_clock_text(self.position)} / {_clock_text(self.duration)}")

    # -- markers and heatmap ----------------------------------------------------------------------

    def _track(self, part: rcp.PartRef) -> np.ndarray | None:
        """The part's tracked positions (frames, 2), or None while they are computed in a thread."""
        key = (part.x, part.y, part.time_seconds, part.x1, part.y1)
        if key in self.tracks:
            return self.tracks[key]
        # not while an edit's first chunk renders: the click is heard first, the marker follows
        if key not in self.track_tasks and self._edit_started is None:
            reach = self.separator.package.config.video_net.click_reach_cells
            clip, analysis = self.editor.recipe.clip, self.analysis

            def work(progress, cancelled):
                return model.track_positions(part, analysis.features, analysis.frame_times, clip.width, clip.height,
                                             1, reach)[0]  # fmt: skip

            def done(centres, key=key) -> None:
                self.track_tasks.pop(key, None)
                if analysis is self.analysis:
                    self.tracks[key] = centres
                    self._update_markers()

            task = Task(work, self)
            task.succeeded.connect(done)
            task.failed.connect(lambda text, key=key: (self.track_tasks.pop(key, None), self.report_error(text)))
            self.track_tasks[key] = task
            task.start()
        return None

    def marker_positions(self) -> list[tuple[float, float, tuple[int, int, int], str, bool]]:
        """Each part's marker at the playhead: (x, y, colour, label, selected), video pixels. A part
        whose tracking is still being computed is shown where it was clicked."""
        markers = []
        for index, source in enumerate(self.editor.recipe.sources):
            for number, part in enumerate(source.parts):
                centres = self._track(part)
                if centres is None:
                    x, y = ((part.x + part.x1) / 2, (part.y + part.y1) / 2) if part.is_box else (part.x, part.y)
                else:
                    x, y = model.position_at(centres, self.analysis.frame_times, self.position)
                markers.append((x, y, model.colour_for(index), source.name if number == 0 else "",
                                source.name == self.editor.selected))  # fmt: skip
        return markers

    def _update_markers(self) -> None:
        if self.editor is not None:
            self.view.markers = self.marker_positions()
            self.view.update()

    def _heat_toggled(self, on: bool) -> None:
        self.heat_action.setChecked(on)
        if not on:
            self.view.heat = None
            self.view.update()
        self._update_heat()

    def heat_frame_index(self) -> int:
        return int(np.argmin(np.abs(np.asarray(self.analysis.frame_times) - self.position)))

    def _update_heat(self) -> None:
        if not self.heat_box.isChecked() or self.analysis is None:
            return
        index = self.heat_frame_index()
        if index in self.heat_cache:
            self.view.heat = _image(self.heat_cache[index], QImage.Format.Format_RGBA8888)
            self.view.update()
            return
        if self.heat_task is not None and self.heat_task.isRunning():
            return
        separator, analysis = self.separator, self.analysis
        seconds = float(analysis.frame_times[index])
        size = self.reader.size

        def work(progress, cancelled):
            return index, model.heat_rgba(separator.energy_map(analysis, seconds), *size)

        def done(result) -> None:
            self.heat_task = None
            if analysis is self.analysis:
                self.heat_cache[result[0]] = result[1]
                self._update_heat()

        def failed(text: str) -> None:
            self.heat_task = None
            self.heat_box.setChecked(False)
            self.report_error(text)

        self.heat_task = Task(work, self)
        self.heat_task.succeeded.connect(done)
        self.heat_task.failed.connect(failed)
        self.heat_task.start()

    # -- editing ----------------------------------------------------------------------------------

    def _picked(self, x: float, y: float, x1: float, y1: float, shift: bool) -> None:
        if self.editor is None:
            return
        box = x1 >= 0 or y1 >= 0

        def click() -> None:
            self.editor.click(x, y, self.position, x1 if box else None, y1 if box else None, add_part=shift)

        self._edit("click", click)

    def _edit(self, kind: str, action) -> bool:
        """Apply an edit to the editor and hand the new recipe to the sound."""
        started = time.perf_counter()
        if not self._guard(action):
            return False
        self._apply(kind, started)
        return True

    def _apply(self, kind: str, started: float) -> None:
        restems = self.session.set_recipe(self.editor.recipe)
        if restems and self.session.has_sources:
            self._edit_started = (kind, started, self.session.generation)
            self.renderer.wake()
        else:
            if restems:  # no source left: the remix is the clip's own sound, nothing to wait for
                self._edit_started = None
            # gains only: the next buffer the sink pulls is mixed with them; make it now to time it
            n = int(0.05 * self.session.sample_rate)
            self.session.remix(int(self.position * self.session.sample_rate), n)
            self._latency(kind, time.perf_counter() - started)
        self._refresh_table()
        self._update_markers()
        self._update_actions()

    def _render_failed(self, text: str) -> None:
        self._edit_started = None
        self.report_error(text)

    def _latency(self, kind: str, seconds: float) -> None:
        self.latencies.append((kind, seconds))
        self.statusBar().showMessage(f"{kind}: heard after {seconds * 1000:.0f} ms", 4000)
        self.buffer_ready.emit(kind, seconds)

    def _chunk_rendered(self, done: Rendered) -> None:
        if self._edit_started is None or self.session is None:
            return
        kind, started, generation = self._edit_started
        playhead = int(self.position * self.session.sample_rate)
        if done.generation == generation and self.session.is_rendered(playhead, playhead + 1):
            self._edit_started = None
            self._latency(kind, done.finished - started)
            self._update_markers()  # now track the new parts

    def undo(self) -> None:
        if self.editor is not None and self.editor.can_undo:
            started = time.perf_counter()
            label = self.editor.undo()
            self._apply("undo", started)
            self.statusBar().showMessage(f"Undid: {label}", 4000)

    def redo(self) -> None:
        if self.editor is not None and self.editor.can_redo:
            started = time.perf_counter()
            label = self.editor.redo()
            self._apply("redo", started)
            self.statusBar().showMessage(f"Redid: {label}", 4000)

    def remove_selected(self) -> None:
        if self.editor is not None and self.editor.selected:
            self._edit("remove", lambda: self.editor.remove(self.editor.selected))

    def _toggle_selected(self, what: str) -> None:
        if self.editor is None or not self.editor.selected:
            return
        source = self.editor.recipe.source(self.editor.selected)
        if what == "mute":
            self._edit("mute", lambda: self.editor.set_mute(source.name, not source.mute))
        else:
            self._edit("solo", lambda: self.editor.set_solo(source.name, not source.solo))

    def _nudge_selected(self, step_db: float) -> None:
        if self.editor is None or not self.editor.selected:
            return
        source = self.editor.recipe.source(self.editor.selected)
        self._edit("slider", lambda: self.editor.set_gain(source.name, source.gain_db + step_db, merge=False))

    def set_gain(self, name: str, gain_db: float) -> None:
        """What a volume slider does (also used by tests and the benchmark)."""
        self._edit("slider", lambda: self.editor.set_gain(name, gain_db))

    def set_mute(self, name: str, mute: bool) -> None:
        self._edit("mute", lambda: self.editor.set_mute(name, mute))

    def set_solo(self, name: str, solo: bool) -> None:
        self._edit("solo", lambda: self.editor.set_solo(name, solo))

    # -- the source list --------------------------------------------------------------------------

    def _rows(self) -> list[tuple[str, rcp.SourceEdit | rcp.ResidualEdit]]:
        recipe = self.editor.recipe
        return [(s.name, s) for s in recipe.sources] + [("residual", recipe.residual)]

    def _refresh_table(self, force: bool = False) -> None:
        """Rebuild the list when the sources changed; otherwise update the values in place (a slider
        being dragged keeps its grip)."""
        if self.editor is None:
            return
        rows = self._rows()
        names = [name for name, _ in rows]
        current = [self.table.item(r, 1).data(Qt.ItemDataRole.UserRole) for r in range(self.table.rowCount())]
        self.table.blockSignals(True)
        if force or names != current:
            self.table.setRowCount(0)
            self.table.setRowCount(len(rows))
            for row, (name, edit) in enumerate(rows):
                self._make_row(row, name, edit)
        for row, (_, edit) in enumerate(rows):
            slider: QSlider = self.table.cellWidget(row, 2)
            slider.blockSignals(True)
            slider.setValue(model.db_to_slider(edit.gain_db))
            slider.blockSignals(False)
            self.table.item(row, 3).setText(model.format_db(edit.gain_db))
            for column, value in ((4, edit.mute), (5, getattr(edit, "solo", False))):
                box = self.table.cellWidget(row, column)
                if box is not None:
                    box.blockSignals(True)
                    box.setChecked(value)
                    box.blockSignals(False)
        selected = names.index(self.editor.selected) if self.editor.selected in names else -1
        if selected >= 0:
            self.table.selectRow(selected)
        else:
            self.table.clearSelection()
        self.table.blockSignals(False)

    def _make_row(self, row: int, name: str, edit) -> None:
        is_residual = name == "residual"
        index = row
        self.table.setItem(row, 0, QTableWidgetItem(""))
        colour = (128, 128, 128) if is_residual else model.colour_for(index)
        swatch = QLabel()
        swatch.setFixedWidth(18)
        swatch.setStyleSheet(f"background-color: rgb{colour}; border: 1px solid black; margin: 4px 2px;")
        self.table.setCellWidget(row, 0, swatch)
        label = QTableWidgetItem("residual (the rest)" if is_residual else name)
        label.setData(Qt.ItemDataRole.UserRole, name)
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        label.setFlags(flags if is_residual else flags | Qt.ItemFlag.ItemIsEditable)
        label.setToolTip("the sound no source took" if is_residual else "double-click to rename")
        self.table.setItem(row, 1, label)
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        low, high = model.GAIN_SLIDER_DB
        slider.setRange(model.db_to_slider(low), model.db_to_slider(high))
        slider.setMinimumWidth(120)
        slider.setToolTip("volume in dB")
        slider.valueChanged.connect(lambda value, n=name: self.set_gain(n, model.slider_to_db(value)))
        slider.sliderReleased.connect(lambda: self.editor and self.editor.end_merge())
        self.table.setCellWidget(row, 2, slider)
        db = QTableWidgetItem("")
        db.setFlags(Qt.ItemFlag.ItemIsEnabled)
        db.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.table.setItem(row, 3, db)
        mute = QCheckBox()
        mute.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        mute.toggled.connect(lambda on, n=name: self.set_mute(n, on))
        self.table.setCellWidget(row, 4, mute)
        if not is_residual:
            solo = QCheckBox()
            solo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            solo.toggled.connect(lambda on, n=name: self.set_solo(n, on))
            self.table.setCellWidget(row, 5, solo)

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() != 1 or self.editor is None:
            return
        old = item.data(Qt.ItemDataRole.UserRole)
        new = item.text()
        if not self._edit("rename", lambda: self.editor.rename(old, new)):
            self.table.blockSignals(True)
            item.setText(old)
            self.table.blockSignals(False)
        self._refresh_table(force=True)

    def _row_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows or self.editor is None:
            return
        name = self.table.item(rows[0].row(), 1).data(Qt.ItemDataRole.UserRole)
        if name != "residual" and name != self.editor.selected:
            self.editor.select(name)
            self._update_markers()

    def _update_actions(self) -> None:
        has_edit = self.editor is not None
        self.undo_action.setEnabled(has_edit and self.editor.can_undo)
        self.redo_action.setEnabled(has_edit and self.editor.can_redo)
        self.undo_action.setText(f"&Undo {self.editor.undo_label()}" if has_edit and self.editor.can_undo else "&Undo")
        self.redo_action.setText(f"&Redo {self.editor.redo_label()}" if has_edit and self.editor.can_redo else "&Redo")
        for action in (*self.export_actions, self.remove_action, self.mute_action, self.solo_action):
            action.setEnabled(has_edit)

    # -- exports ----------------------------------------------------------------------------------

    def export_dialog(self, kind: str) -> None:
        if self.editor is None:
            return
        stem = self.editor.recipe.prefix
        folder = Path(self._folder())
        if kind == "stems":
            path = QFileDialog.getExistingDirectory(self, "Export the stems into", str(folder))
        else:
            titles = {"recipe": ("Save the recipe", f"{stem}.json", "Recipes (*.json)"),
                      "remix": ("Export the remix", f"{stem}.remix.wav", REMIX_FILTER),
                      "video": ("Export the video with the remix", f"{stem}.remix.mp4", VIDEO_FILTER),
                      "timeline": ("Export a timeline", f"{stem}.otio", TIMELINE_FILTER)}  # fmt: skip
            title, name, filters = titles[kind]
            path, _ = QFileDialog.getSaveFileName(self, title, str(folder / name), filters)
        if path:
            self.export(kind, Path(path))

    def export(self, kind: str, path: Path) -> Task | None:
        """Write a delivery through the engine: "stems" (a folder), "remix", "video", "timeline" or
        "recipe" (a file). Runs in a thread; ``exported(message)`` says what was written."""
        from host_bridge import timeline
        from pixelsep_plugin import api

        if self.editor is None:
            return None
        self.last_error = ""
        self._remember_folder(path)
        recipe = self.editor.recipe.validate()
        separator, analysis = self.separator, self.analysis
        if kind == "recipe":
            if not self._guard(lambda: rcp.save(recipe, path)):
                return None
            self.statusBar().showMessage(f"Saved the recipe as {path}", 6000)
            self.exported.emit(str(path))
            return None
        if not recipe.sources:
            self.report_error("no source yet: click a performer first")
            return None

        def work(progress, cancelled):
            def report(stage, done, total):
                if cancelled():
                    from pixelsep_plugin.errors import Cancelled

                    raise Cancelled("export cancelled")
                progress(stage, done, total)

            if kind == "stems":
                result = api.render_recipe(separator, analysis, recipe, path, stems=True, remix=False, progress=report)
                return f"Wrote {len(result.stems) + (result.residual is not None)} stems into {path}"
            if kind == "remix":
                written, warnings = api.render_remix_file(separator, analysis, recipe, path, progress=report)
                return f"Wrote the remix {written}" + (f" ({warnings[0]})" if warnings else "")
            if kind == "video":
                if path.suffix.lower() not in api.REMIX_VIDEO_SUFFIXES:
                    raise InputError(f"a video is written to {', '.join(api.REMIX_VIDEO_SUFFIXES)}, not {path.name}")
                return f"Wrote the video {api.write_remix_video(separator, analysis, recipe, path, progress=report)}"
            if kind == "timeline":
                return (
                    f"Wrote the timeline {timeline.export_timeline(separator, analysis, recipe, path, progress=report)}"
                )
            raise InputError(f"unknown export {kind!r}")

        def done(message: str) -> None:
            self.statusBar().showMessage(message, 8000)
            self.exported.emit(message)

        return self._run_task(f"Exporting {path.name}…", work, done)

    # -- closing ----------------------------------------------------------------------------------

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/size", self.size())
        self.settings.setValue("window/splitter", self.splitter.saveState())
        self.settings.sync()
        if self.task is not None and self.task.isRunning():
            self.task.cancel()
            self.task.wait()
        if self.heat_task is not None:
            self.heat_task.wait()
        for task in list(self.track_tasks.values()):
            task.wait()
        self._close_clip()
        super().closeEvent(event)


def _clock_text(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60.0)
    return f"{int(minutes)}:{rest:05.2f}"
