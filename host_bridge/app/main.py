"""Start the previewer: ``pixelsep app [CLIP | RECIPE]`` (or ``python -m host_bridge.app``)."""

from __future__ import annotations

import sys
from pathlib import Path


def run(path: Path | None = None, model: str | None = None, cache_root: Path | None = None, sound: bool = True,
        argv: list[str] | None = None) -> int:  # fmt: skip
    """Open the window (with ``path``, a clip or a recipe, when given) and run until it is closed."""
    import signal
    import traceback

    from PyQt6.QtWidgets import QApplication

    from host_bridge.app.window import MainWindow
    from host_bridge.app.workers import error_text

    app = QApplication.instance() or QApplication(argv if argv is not None else [sys.argv[0]])
    app.setApplicationName("pixelsep")
    app.setOrganizationName("pixelsep")
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl+C in the terminal closes the app
    window = MainWindow(model_name=model, cache_root=cache_root, sound=sound)

    def unexpected(kind, error, trace) -> None:
        # PyQt ends the application on an exception that escapes a slot: report it in one sentence
        # instead (the details go to the terminal, for a bug report) and keep the edit alive
        traceback.print_exception(kind, error, trace)
        window.report_error(error_text(error))

    sys.excepthook = unexpected
    window.show()
    if path is not None:
        window.open_path(Path(path))
    return app.exec()
