"""The 10 s span render against the previous implementation, interleaved in one process (same load).

    .venv/bin/python benchmarks/span_ab.py --old /tmp/oldsep.py --clip /tmp/pixelsep-scale/clip-3600s.mp4 \\
        --cache /tmp/pixelsep-scale/cache --out benchmarks/results/span_ab.json

``--old`` is the previous ``pixelsep_plugin/runtime/separate.py`` (``git show
b29a737:pixelsep_plugin/runtime/separate.py``), loaded as a module beside the current one. For each
of ``--repeat`` rounds, both render the same 10 s spans (start, middle, end of the clip; three
points clicked at the first frame) after their component caches are dropped; also timed: the
click itself (constructing the separation: the previous one tracked every frame there) and the
first span after it. Wall and CPU (``process_time``) milliseconds, min/median/max, and the load
average, because the machine may be shared.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def spread(values: list[float]) -> dict:
    return {"min": round(min(values), 1), "median": round(statistics.median(values), 1), "max": round(max(values), 1)}


def timed(call, *args):
    """(result, wall ms, cpu ms) of ``call(*args)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call(*args)
    return result, 1000 * (time.perf_counter() - wall), 1000 * (time.process_time() - cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="the previous separate.py")
    parser.add_argument("--clip", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--model", default=str(HERE.parent / "models" / "small-untrained"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "span_ab.json")
    args = parser.parse_args(argv)

    from pixelsep_plugin.api import Separator
    from pixelsep_plugin.runtime.query import Point, Source

    spec = importlib.util.spec_from_file_location("old_separate", args.old)
    old = importlib.util.module_from_spec(spec)
    sys.modules["old_separate"] = old  # its dataclasses look themselves up there
    spec.loader.exec_module(old)
    separator = Separator(args.model, cache_root=args.cache)
    analysis, _ = separator.analyze(args.clip)
    sources = [Source(f"s{i}", (Point(x, y),)) for i, (x, y) in enumerate([(40, 60), (100, 60), (140, 100)])]
    makers = {
        "previous": lambda: old.Separation(analysis, separator.package, sources),
        "current": lambda: separator.separate(analysis, sources),
    }
    duration = analysis.duration_seconds
    positions = {"start": 0.0, "middle": max(0.0, duration / 2 - 5), "end": max(0.0, duration - 10)}
    samples: dict = {}
    for make in makers.values():
        make().render_span(0.0, 1.0)  # warm-up: the FFT module, pages
    for _ in range(args.repeat):
        for name, make in makers.items():
            for where, start in positions.items():
                separation, *click = timed(make)
                _, *first = timed(separation.render_span, start, start + 10.0)
                if hasattr(separation, "forget_read_components"):
                    separation.forget_read_components()
                else:
                    separation._window_cache.clear()
                _, *again = timed(separation.render_span, start, start + 10.0)
                for label, (wall, cpu) in (("click", click), ("first_span", first), ("span_again", again)):
                    entry = (
                        samples.setdefault(name, {}).setdefault(where, {}).setdefault(label, {"wall": [], "cpu": []})
                    )
                    entry["wall"].append(wall)
                    entry["cpu"].append(cpu)
    report = {
        "command": "python benchmarks/span_ab.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "clip_seconds": duration,
        "load_average_after": os.getloadavg(),
        "cpus": os.cpu_count(),
        "ms": {
            name: {
                where: {label: {"wall": spread(v["wall"]), "cpu": spread(v["cpu"])} for label, v in labels.items()}
                for where, labels in wheres.items()
            }
            for name, wheres in samples.items()
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
