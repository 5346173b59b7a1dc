"""How `pixelsep separate` scales with the clip's length: peak memory, wall time, start-up, span renders.

    .venv/bin/python benchmarks/scale.py --seconds 10 60 600 --out benchmarks/results/scale.json

For each length a 160x120, 10 fps clip with 44.1 kHz stereo sound is made with
``media.make_test_clip`` and analysed once (cached); then, each in a fresh process:

- ``pixelsep separate`` with 3 clicked sources: peak resident memory (``ru_maxrss`` of the child)
  and wall time, whole clip and ``--span 0:10``;
- in-process: the time to open the cached analysis, and the milliseconds of
  ``Separation.render_span`` for 10 s spans at the start, middle and end (best of ``--repeat``).

The model is ``models/small-untrained`` (build it with
``python -m pixelsep_plugin.export.build_untrained --config small --out models/small-untrained``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CLICKS = ["--at", "40,60", "--at", "100,60", "--at", "140,100"]

CHILD_RSS = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "seconds = time.perf_counter() - t\n"
    "kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(json.dumps({'code': code, 'seconds': seconds, 'peak_rss_mb': kib / 1024}))\n"
)

IN_PROCESS = (
    "import json, sys, time\n"
    "from pathlib import Path\n"
    "from pixelsep_plugin.api import Separator\n"
    "from pixelsep_plugin.runtime.query import Point, Source\n"
    "clip, model, cache, repeat = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])\n"
    "separator = Separator(model, cache_root=cache)\n"
    "t = time.perf_counter()\n"
    "analysis, _ = separator.analyze(clip)\n"
    "open_seconds = time.perf_counter() - t\n"
    "sources = [Source(f's{i}', (Point(x, y),)) for i, (x, y) in enumerate([(40, 60), (100, 60), (140, 100)])]\n"
    "separation = separator.separate(analysis, sources)\n"
    "duration = separation.num_samples / separation.sample_rate\n"
    "spans = {}\n"
    "for name, start in [('start', 0.0), ('middle', max(0.0, duration / 2 - 5)), ('end', max(0.0, duration - 10))]:\n"
    "    best = float('inf')\n"
    "    for _ in range(repeat):\n"
    "        separation._window_cache.clear()\n"
    "        t = time.perf_counter()\n"
    "        separation.render_span(start, start + 10.0)\n"
    "        best = min(best, time.perf_counter() - t)\n"
    "    spans[name] = round(best * 1000, 1)\n"
    "print(json.dumps({'open_cached_analysis_seconds': open_seconds, 'span_10s_ms': spans}))\n"
)


def pixelsep(*args: str) -> list[str]:
    return [sys.executable, "-m", "host_bridge.cli.main", *args]


def measure(seconds: float, work: Path, model: str, repeat: int) -> dict:
    from pixelsep_plugin import media

    clip = work / f"clip-{seconds:g}s.mp4"
    cache = work / "cache"
    if not clip.exists():
        media.make_test_clip(clip, seconds=seconds, width=160, height=120, fps=10)
    common = ["--model", model, "--cache-dir", str(cache), "-q"]
    started = time.perf_counter()
    subprocess.run(pixelsep("analyze", str(clip), *common), check=True, stdout=subprocess.DEVNULL)
    row: dict = {"clip_seconds": seconds, "analyze_or_open_seconds": time.perf_counter() - started}
    for label, extra in [("separate", []), ("separate_span_0_10", ["--span", "0:10"])]:
        args = pixelsep("separate", str(clip), *CLICKS, "-o", str(work / "out"), *common, *extra)
        result = subprocess.run([sys.executable, "-c", CHILD_RSS, *args], check=True, capture_output=True, text=True)
        row[label] = json.loads(result.stdout)
    result = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, str(clip), model, str(cache), str(repeat)],
        check=True,
        capture_output=True,
        text=True,
    )
    row.update(json.loads(result.stdout.strip().splitlines()[-1]))
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0, 600.0], help="clip lengths")
    parser.add_argument("--model", default=str(REPO / "models" / "small-untrained"), help="model folder")
    parser.add_argument("--work", type=Path, default=Path("/tmp/pixelsep-scale"), help="clips and cache go here")
    parser.add_argument("--repeat", type=int, default=5, help="span renders per position (best is kept)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "scale.json")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for seconds in args.seconds:
        rows.append(measure(seconds, args.work, args.model, args.repeat))
        print(json.dumps(rows[-1]), flush=True)
    report = {
        "command": "python benchmarks/scale.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "clip": "160x120, 10 fps, 44.1 kHz stereo (media.make_test_clip); 3 clicked sources + residual, wav",
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
