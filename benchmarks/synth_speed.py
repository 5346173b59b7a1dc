"""How fast the synthetic performance generator makes training footage; writes JSON.

    .venv/bin/python benchmarks/synth_speed.py --clips 40 --out benchmarks/results/synth_speed.json

Generates ``--clips`` 12-second 320x240 solo training clips with ``--workers`` processes into a
temporary folder (the music21 corpus is read before the clock starts) and extrapolates the wall time
to two hours of footage (600 clips). Goal: two hours in under 30 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from pixelsep_plugin.synth.generate import SynthSettings, generate_set
from pixelsep_plugin.synth.melodies import melodies_for_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/synth_speed.json"))
    args = parser.parse_args()
    settings = SynthSettings()
    melodies_for_split("train")
    with tempfile.TemporaryDirectory(prefix="pixelsep-synth-bench-") as folder:
        started = time.perf_counter()
        generate_set(Path(folder), "solo", "train", args.clips, settings, workers=args.workers)
        seconds = time.perf_counter() - started
        size = sum(p.stat().st_size for p in Path(folder).iterdir())
    footage = args.clips * settings.seconds
    result = {
        "clips": args.clips,
        "clip_seconds": settings.seconds,
        "size": [settings.width, settings.height],
        "fps": settings.fps,
        "workers": args.workers,
        "machine": {"cpus": os.cpu_count(), "processor": platform.machine()},
        "wall_seconds": round(seconds, 2),
        "footage_seconds_per_wall_second": round(footage / seconds, 2),
        "minutes_for_two_hours": round(7200 / (footage / seconds) / 60, 2),
        "bytes_per_footage_minute": int(size / (footage / 60)),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
