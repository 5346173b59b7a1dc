"""The ``pixelsep`` command line."""

from host_bridge.cli.main import get_parser, main

__all__ = ["get_parser", "main"]
