"""``python -m host_bridge.app [CLIP | RECIPE]``: the same as ``pixelsep app``."""

import sys

from host_bridge.cli.main import main

sys.exit(main(["app", *sys.argv[1:]]))
