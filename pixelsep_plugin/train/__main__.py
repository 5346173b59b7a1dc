"""``python -m pixelsep_plugin.train CONFIG`` (also under ``torchrun --nproc_per_node N -m ...``)."""

import sys

from host_bridge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
