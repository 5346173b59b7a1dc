"""The ``pixelsep`` command line: :func:`host_bridge.cli.main.main` runs a command in-process,
``python -m host_bridge.cli.main`` and the installed ``pixelsep`` run it as a program.

Nothing is imported here, so that ``python -m host_bridge.cli.main`` loads that module once."""
