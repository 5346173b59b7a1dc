"""Bytes of an analysis cache entry per hour of footage, per array, for a few audio codecs; and what
reading the audio back costs when the entry does not store it.

    .venv/bin/python benchmarks/cache_size.py --seconds 600 --out benchmarks/results/cache_size.json
    .venv/bin/python benchmarks/cache_size.py --clips data/test2-classic/*.mp4 --out benchmarks/results/cache_size_test2_classic.json

For each codec a 320x240, 10 fps clip with 44.1 kHz stereo sound (48 kHz for Opus) is made with
``media.make_test_clip`` (its two tones; ``--noise`` adds white noise at that level) and analysed
with the shipped ``pixelsep-small`` model into a fresh cache. Reported per clip: each file of the
entry in bytes and extrapolated to an hour (bytes * 3600 / seconds), whether the audio is stored or
decoded again, the analysis time, and the seconds to read the whole audio in 10 s spans from the
start (as a render does) and the median/min/max of single 10 s spans at random places (as a span
render does), each from a freshly opened entry.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

CODECS = {
    "aac-mp4": (".mp4", {}),
    "mp3-mkv": (".mkv", {"audio_codec": "libmp3lame"}),
    "opus-webm": (".webm", {"sample_rate": 48000}),
    "pcm-mov": (".mov", {"audio_codec": "pcm_s16le"}),
}


def measure(name: str, seconds: float, noise: float, work: Path, model: str, spans: int) -> dict:
    from pixelsep_plugin import media
    from pixelsep_plugin.api import Separator

    suffix, kwargs = CODECS[name]
    rate = kwargs.get("sample_rate", 44100)
    audio = media.tone_pair(seconds, rate, 2)
    if noise:
        audio = audio + np.random.default_rng(0).normal(scale=noise, size=audio.shape).astype(np.float32)
    clip = media.make_test_clip(work / f"{name}{suffix}", seconds, fps=10, audio=audio, **kwargs)
    cache_root = work / f"cache-{name}"
    separator = Separator(model, cache_root=cache_root)
    started = time.perf_counter()
    analysis, _ = separator.analyze(clip)
    analyse_seconds = time.perf_counter() - started
    files = {p.name: p.stat().st_size for p in sorted(analysis.folder.iterdir()) if p.is_file()}
    total = sum(files.values())
    per_hour = 3600.0 / seconds
    n, step = analysis.num_samples, 10 * analysis.sample_rate
    folder = analysis.folder
    del analysis
    # a render's reads: 10 s spans from start to end, from a freshly opened entry
    fresh, _ = separator.analyze(clip)
    started = time.perf_counter()
    for a in range(0, n, step):
        fresh.read_audio(a, min(n, a + step))
    sequential_seconds = time.perf_counter() - started
    del fresh
    rng = np.random.default_rng(1)
    single = []
    for a in rng.integers(0, max(1, n - step), size=spans):
        opened, _ = separator.analyze(clip)
        started = time.perf_counter()
        opened.read_audio(int(a), int(a) + step)
        single.append(time.perf_counter() - started)
        del opened
    meta = json.loads((folder / "analysis.json").read_text())
    return {
        "codec": name,
        "clip_seconds": seconds,
        "clip_bytes": clip.stat().st_size,
        "audio_storage": meta["audio"]["storage"],
        "audio_storage_reason": meta["audio"]["reason"],
        "analysis_seconds": round(analyse_seconds, 2),
        "entry_bytes": total,
        "entry_bytes_per_hour": int(total * per_hour),
        "files_bytes": files,
        "files_bytes_per_hour": {k: int(v * per_hour) for k, v in files.items()},
        "read_all_audio_in_10s_spans_seconds": round(sequential_seconds, 3),
        "random_10s_span_seconds": {
            "min": round(min(single), 4),
            "median": round(statistics.median(single), 4),
            "max": round(max(single), 4),
            "count": len(single),
        },
    }


def measure_clips(clips: list[Path], work: Path, model: str) -> dict:
    """Existing clips (e.g. a test set): whether each entry keeps the audio, and its bytes per hour."""
    from pixelsep_plugin.api import Separator

    separator = Separator(model, cache_root=work / "cache-clips")
    rows = []
    for clip in clips:
        analysis, _ = separator.analyze(clip)
        meta = json.loads((analysis.folder / "analysis.json").read_text())
        total = sum(p.stat().st_size for p in analysis.folder.iterdir() if p.is_file())
        seconds = analysis.num_samples / analysis.sample_rate
        rows.append({
            "clip": clip.name, "seconds": round(seconds, 3), "audio_storage": meta["audio"]["storage"],
            "entry_bytes_per_hour": int(total * 3600.0 / seconds),
        })  # fmt: skip
        del analysis
    stored = [r for r in rows if r["audio_storage"] == "stored"]
    decoded = [r for r in rows if r["audio_storage"] != "stored"]

    def spread(group: list[dict]) -> dict | None:
        values = sorted(r["entry_bytes_per_hour"] for r in group)
        return {"min": values[0], "median": int(statistics.median(values)), "max": values[-1]} if values else None

    return {
        "clips": len(rows), "audio_stored": len(stored), "audio_decoded": len(decoded),
        "bytes_per_hour_stored": spread(stored), "bytes_per_hour_decoded": spread(decoded), "rows": rows,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="clip length (default 600)")
    parser.add_argument("--codecs", nargs="+", choices=sorted(CODECS), default=list(CODECS))
    parser.add_argument("--noise", type=float, default=0.0, help="white noise level added to the tones")
    parser.add_argument("--spans", type=int, default=5, help="random single spans to time")
    parser.add_argument("--model", default="pixelsep-small")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "cache_size.json")
    parser.add_argument("--clips", type=Path, nargs="+", help="measure these clips instead (e.g. data/test2-classic/*.mp4)")
    args = parser.parse_args()
    import av
    import onnxruntime

    if args.clips:
        with tempfile.TemporaryDirectory(prefix="pixelsep-cache-size-") as tmp:
            summary = measure_clips(args.clips, Path(tmp), args.model)
        summary = {"command": " ".join(sys.argv[:1] + ["--clips", "..."] + sys.argv[sys.argv.index("--out"):]
                                       if "--out" in sys.argv else sys.argv[:1]),
                   "model": args.model, **summary}  # fmt: skip
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=1) + "\n")
        print(json.dumps({k: v for k, v in summary.items() if k != "rows"}))
        print(f"wrote {args.out}")
        return

    rows = []
    with tempfile.TemporaryDirectory(prefix="pixelsep-cache-size-") as tmp:
        for name in args.codecs:
            row = measure(name, args.seconds, args.noise, Path(tmp), args.model, args.spans)
            print(json.dumps(row), flush=True)
            rows.append(row)
    report = {
        "command": " ".join(sys.argv),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "av": av.__version__, "onnxruntime": onnxruntime.__version__},
        "model": args.model,
        "noise": args.noise,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
