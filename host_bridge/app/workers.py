"""The previewer's threads: a one-off task (analysis, export, a heatmap) and the background renderer."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import QThread, pyqtSignal

from host_bridge.app.engine import PreviewSession
from pixelsep_plugin.errors import Cancelled, PixelsepError


def error_text(error: BaseException) -> str:
    """One sentence for a dialog: pixelsep's own one-line message, else the error's kind and first line."""
    if isinstance(error, PixelsepError):
        return str(error).splitlines()[0] if str(error) else type(error).__name__
    if isinstance(error, MemoryError):
        return "out of memory: close other programs or work on a shorter clip"
    if isinstance(error, OSError) and error.strerror:
        where = f" ({error.filename})" if error.filename else ""
        return f"{error.strerror}{where}"
    first = str(error).splitlines()[0] if str(error) else ""
    return f"unexpected {type(error).__name__}{': ' + first if first else ''}"


Work = Callable[[Callable[[str, float, float], None], Callable[[], bool]], Any]


class Task(QThread):
    """Runs ``work(progress, cancelled)`` once in its own thread.

    ``progress(stage, done, total)`` may be called from the work; ``cancelled()`` says whether
    :meth:`cancel` was asked. Emits ``succeeded(result)``, ``failed(one-line message)`` or
    ``cancelled_()`` (for :class:`~pixelsep_plugin.errors.Cancelled` or after :meth:`cancel`)."""

    progress = pyqtSignal(str, float, float)
    succeeded = pyqtSignal(object)
    failed = pyqtSignal(str)
    stopped = pyqtSignal()

    def __init__(self, work: Work, parent=None):
        super().__init__(parent)
        self._work = work
        self._cancel = threading.Event()
        self.finished.connect(self.deleteLater)  # one-off: gone once its signals are handled

    def cancel(self) -> None:
        self._cancel.set()

    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> None:
        try:
            result = self._work(lambda stage, done, total: self.progress.emit(stage, float(done), float(total)),
                                self._cancel.is_set)  # fmt: skip
        except Cancelled:
            self.stopped.emit()
        except Exception as error:  # shown as one sentence; the details go to stderr for bug reports
            if not isinstance(error, PixelsepError):
                traceback.print_exc()
            self.failed.emit(error_text(error))
        else:
            if self._cancel.is_set():
                self.stopped.emit()
            else:
                self.succeeded.emit(result)


class RenderThread(QThread):
    """Renders the session's chunks, the playhead's first, until it is told to stop.

    Emits ``rendered(Rendered)`` after each chunk and ``failed(message)`` when rendering fails (it
    then waits for the next :meth:`wake`, i.e. the next edit)."""

    rendered = pyqtSignal(object)
    failed = pyqtSignal(str)

    def __init__(self, session: PreviewSession, parent=None):
        super().__init__(parent)
        self.session = session
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.warm_up_error = ""
        self.warmed = threading.Event()  # set once the warm-up render is done (or failed)

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.wait()

    def run(self) -> None:
        try:
            self.session.warm_up()
        except Exception as error:  # not fatal: a clip the engine cannot render shows its error at the first click
            self.warm_up_error = error_text(error)
        self.warmed.set()
        while not self._stop.is_set():
            try:
                done = self.session.render_next()
            except Exception as error:
                if not isinstance(error, PixelsepError):
                    traceback.print_exc()
                self.failed.emit(error_text(error))
                self._wake.clear()
                self._wake.wait()
                continue
            if done is not None:
                self.rendered.emit(done)
            elif self.session.pending_chunk() is None:
                self._wake.wait(0.25)
                self._wake.clear()
