"""How `pixelsep separate` scales with the clip's length: peak memory, wall time, start-up, span renders.

    .venv/bin/python benchmarks/scale.py --seconds 10 60 600 --out benchmarks/results/scale.json

For each length a 160x120, 10 fps clip with 44.1 kHz stereo sound is made with
``media.make_test_clip`` and analysed once (cached); then, each in a fresh process:

- ``pixelsep separate`` with 3 clicked sources: peak resident memory (``ru_maxrss`` of the child)
  and wall time, whole clip and ``--span 0:10``;
- in-process: the time to open the cached analysis, and the milliseconds of
  ``Separation.render_span`` for 10 s spans at the start, middle and end, wall and CPU time
  (``process_time``, all threads), min/median/max of ``--repeat`` runs: ``span_10s_first`` with a
  fresh separation each time (clicked at the first frame: tracking from there to the span
  included), ``span_10s_again`` rendering the span again on it (tracking remembered, the analysis
  read again);
- fresh-process import times of the modules a cached click loads (best of 3).

The machine may be shared: each row records the load average before and after.

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

IN_PROCESS = r"""
import json, os, statistics, sys, time
from pathlib import Path
from pixelsep_plugin.api import Separator
from pixelsep_plugin.runtime.query import Point, Source
clip, model, cache, repeat = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
separator = Separator(model, cache_root=cache)
t = time.perf_counter()
analysis, _ = separator.analyze(clip)
open_seconds = time.perf_counter() - t
sources = [Source(f"s{i}", (Point(x, y),)) for i, (x, y) in enumerate([(40, 60), (100, 60), (140, 100)])]


def spread(values):
    return {"min": round(min(values), 1), "median": round(statistics.median(values), 1), "max": round(max(values), 1)}


def timed(call):
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return 1000 * (time.perf_counter() - wall), 1000 * (time.process_time() - cpu)


separation = separator.separate(analysis, sources)
duration = separation.num_samples / separation.sample_rate
positions = [("start", 0.0), ("middle", max(0.0, duration / 2 - 5)), ("end", max(0.0, duration - 10))]
first, again = {}, {}
separation.render_span(0.0, 1.0)  # warm-up: the FFT module, thread pool
for name, start in positions:
    # a click (at the first frame) and its first span: tracking from the click's time to the span included
    walls, cpus = [], []
    for _ in range(repeat):
        fresh = separator.separate(analysis, sources)
        wall, cpu = timed(lambda: fresh.render_span(start, start + 10.0))
        walls.append(wall)
        cpus.append(cpu)
    first[name] = {"wall_ms": spread(walls), "cpu_ms": spread(cpus)}
    # the same click, another render of the span (a slider move): tracking remembered, components read again
    walls, cpus = [], []
    for _ in range(repeat):
        fresh.forget_read_components()
        wall, cpu = timed(lambda: fresh.render_span(start, start + 10.0))
        walls.append(wall)
        cpus.append(cpu)
    again[name] = {"wall_ms": spread(walls), "cpu_ms": spread(cpus)}
print(json.dumps({"open_cached_analysis_seconds": open_seconds, "span_10s_first": first, "span_10s_again": again,
                  "load_average_after": os.getloadavg()}))
"""

STARTUP = "import sys, time\nt = time.perf_counter()\n__import__(sys.argv[1])\nprint(time.perf_counter() - t)\n"


def import_seconds(module: str, repeat: int = 3) -> float:
    """Best of ``repeat`` fresh-process import times of ``module`` (with what it imports)."""
    best = float("inf")
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", STARTUP, module], check=True, capture_output=True, text=True)
        best = min(best, float(out.stdout))
    return round(best, 3)


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
    row: dict = {"clip_seconds": seconds, "analyze_or_open_seconds": time.perf_counter() - started,
                 "load_average_before": os.getloadavg()}  # fmt: skip
    for label, extra in [("separate", []), ("separate_span_0_10", ["--span", "0:10"])]:
        args = pixelsep("separate", str(clip), *CLICKS, "-o", str(work / "out"), "--force", *common, *extra)
        result = subprocess.run([sys.executable, "-c", CHILD_RSS, *args], check=True, capture_output=True, text=True)
        row[label] = json.loads(result.stdout)
        if row[label]["code"] != 0:
            raise RuntimeError(f"{' '.join(args)} exited with {row[label]['code']}")
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
    startup = {
        module: import_seconds(module)
        for module in ("numpy", "host_bridge.cli.main", "pixelsep_plugin.api", "av", "scipy.fft")
    }
    print(json.dumps({"import_seconds": startup}), flush=True)
    rows = []
    for seconds in args.seconds:
        rows.append(measure(seconds, args.work, args.model, args.repeat))
        print(json.dumps(rows[-1]), flush=True)
    report = {
        "command": "python benchmarks/scale.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "clip": "160x120, 10 fps, 44.1 kHz stereo (media.make_test_clip); 3 clicked sources + residual, wav",
        "import_seconds": startup,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
