"""Speed of analysis, of the nets alone, and of one query, on a 60-second 1920x1080 clip.

    python benchmarks/speed.py --out benchmarks/results/speed.json

Makes the clips once (h264 + AAC stereo 48 kHz, 30 fps) in benchmarks/.clips/: a picture with film
grain (a bitrate like real footage) with x264's default keyframe interval (250 frames) and with one
keyframe per second, and a flat picture. Each timing is the best of ``--repeat`` runs, in this
process, with the threads given (default: all cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from pixelsep_plugin import __version__, media
from pixelsep_plugin.api import Separator
from pixelsep_plugin.runtime.query import Point, Source

HERE = Path(__file__).resolve().parent


def make_clip(path: Path, seconds: float, keyframe_interval: int | None, grain: float) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"making {path.name} ...", flush=True)
        media.make_test_clip(
            path,
            seconds,
            width=1920,
            height=1080,
            fps=30,
            sample_rate=48000,
            channel_layout="stereo",
            keyframe_interval=keyframe_interval,
            grain=grain,
        )
    return path


def best_of(repeat: int, fn):
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def bench_clip(separator: Separator, clip: Path, repeat: int) -> dict:
    cfg = separator.package.config
    info = media.probe(clip)
    out: dict = {
        "clip": clip.name,
        "duration_seconds": info.duration_seconds,
        "size": [info.width, info.height],
        "video_megabits_per_second": round(clip.stat().st_size * 8 / info.duration_seconds / 1e6, 2),
    }

    def decode_frames():
        return sum(1 for _ in media.iter_sampled_frames(clip, cfg.chunks.frames_per_second, cfg.video_net.frame_size))

    out["decode_frames_seconds"], n_frames = best_of(repeat, decode_frames)
    out["frame_decoding_path"] = media.plan_frame_decoding(clip, cfg.chunks.frames_per_second)
    out["sampled_frames"] = n_frames
    out["decode_analysis_audio_seconds"], _ = best_of(repeat, lambda: media.read_analysis_audio(clip, 11025))
    out["decode_native_audio_seconds"], _ = best_of(
        repeat, lambda: sum(b.shape[-1] for b in media.iter_audio_blocks(clip))
    )

    def full_analysis():
        root = Path(tempfile.mkdtemp(prefix="pixelsep-bench-"))
        try:
            separator.cache_root = root
            analysis, cached = separator.analyze(clip)
            assert not cached
            return analysis.meta
        finally:
            shutil.rmtree(root, ignore_errors=True)

    out["analysis_seconds"], meta = best_of(repeat, full_analysis)
    out["analysis_realtime_factor"] = info.duration_seconds / out["analysis_seconds"]

    # The nets alone, on inputs of the shapes the analysis used.
    windows = meta["arrays"]["window_starts"]["shape"][0]
    frames = meta["arrays"]["features"]["shape"][0]
    fh, fw = meta["analysis"]["frame_height"], meta["analysis"]["frame_width"]
    rng = np.random.default_rng(0)
    logmag = rng.standard_normal((4, 1, cfg.audio.log_freq_bins, cfg.chunks.window_columns)).astype(np.float32)
    pixels = rng.random((8, 3, fh, fw), dtype=np.float32)

    def nets_only():
        for _ in range(-(-windows // 4)):
            separator.nets.audio(logmag)
        for _ in range(-(-frames // 8)):
            separator.nets.video(pixels)

    out["nets_seconds"], _ = best_of(repeat, nets_only)
    out["nets_realtime_factor"] = info.duration_seconds / out["nets_seconds"]
    out["windows"], out["frames"] = windows, frames

    # One query after analysis: the whole stem at the clip's own rate and channels.
    separator.cache_root = Path(tempfile.mkdtemp(prefix="pixelsep-bench-"))
    try:
        analysis, _ = separator.analyze(clip)
        source = [Source("left", (Point(info.width / 6, info.height / 2, 1.0),))]

        def query(residual: bool):
            separation = separator.separate(analysis, source)
            return separation.render(residual=residual)

        def masks_only():
            separation = separator.separate(analysis, source)
            return separation.source_masks(0, separation.stft.num_frames(separation.num_samples)).shape

        # the click alone: tracking, per-window masks, blending, carried onto the clip's own STFT grid
        out["query_masks_seconds"], _ = best_of(repeat, masks_only)
        out["query_stem_seconds"], (stems, _) = best_of(repeat, lambda: query(False))
        out["query_stem_and_residual_seconds"], _ = best_of(repeat, lambda: query(True))
        out["stem_shape"] = list(stems.shape)
        out["stem_sample_rate"] = analysis.sample_rate
    finally:
        shutil.rmtree(separator.cache_root, ignore_errors=True)
    return out


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "speed.json")
    parser.add_argument("--model", help="model folder or id (default model if omitted)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    separator = Separator(args.model, threads=args.threads)
    clips_dir = HERE / ".clips"
    seconds = int(args.seconds)
    clips = [
        # film-grain noise gives a bitrate like real 1080p camera footage; x264's default GOP
        make_clip(clips_dir / f"hd-{seconds}s-grain-gop250.mp4", args.seconds, None, grain=6.0),
        # the same with one keyframe per second (common for camera and streaming footage)
        make_clip(clips_dir / f"hd-{seconds}s-grain-gop30.mp4", args.seconds, 30, grain=6.0),
        # flat synthetic picture (a very low bitrate): decoding is cheapest
        make_clip(clips_dir / f"hd-{seconds}s-flat-gop250.mp4", args.seconds, None, grain=0.0),
    ]
    report = {
        "pixelsep": __version__,
        "model": separator.package.model_id,
        "model_config": separator.package.config.name,
        "providers": separator.nets.active_providers,
        "threads": args.threads or os.cpu_count(),
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "python": platform.python_version(),
        "numpy": np.__version__,
        "results": [bench_clip(separator, clip, args.repeat) for clip in clips],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
