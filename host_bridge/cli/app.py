"""``pixelsep app [CLIP | RECIPE]``: the previewer window (PyQt6, the ``app`` extra), imported only here."""

from __future__ import annotations

import argparse
from pathlib import Path

from pixelsep_plugin.errors import InputError

INSTALL_HINT = "the previewer needs PyQt6: pip install 'pixelsep[app]' (on Debian also: apt-get install libpulse0 libegl1 libxkbcommon0)"


def add_parser(commands) -> None:
    app = commands.add_parser(
        "app",
        help="the previewer: watch a clip, click performers, hear them alone, set volumes, export",
        description="Open a clip (or a recipe to continue its edit) in a window. Needs the app extra: "
        "pip install 'pixelsep[app]'.",
    )
    app.add_argument("path", nargs="?", type=Path, metavar="CLIP | RECIPE", help="a video, or a recipe (.json)")
    app.add_argument("--model", help="model folder or id (default: the shipped default model)")
    app.add_argument("--cache-dir", type=Path, help="where analyses are kept (default: ~/.cache/pixelsep)")
    app.add_argument("--no-sound", action="store_true", help="play without opening the audio output")


def run(args: argparse.Namespace) -> int:
    if args.path is not None and not args.path.exists():
        raise InputError(f"{args.path} not found")
    try:
        import PyQt6.QtMultimedia  # noqa: F401
        import PyQt6.QtWidgets  # noqa: F401
    except ImportError as error:
        raise InputError(f"{INSTALL_HINT} ({str(error).splitlines()[0]})") from None
    from host_bridge.app.main import run as run_app

    return run_app(args.path, model=args.model, cache_root=args.cache_dir, sound=not args.no_sound)
