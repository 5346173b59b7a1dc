"""Analysis throughput levers, each timed on 60 s 1080p clips and, where it changes numbers, scored in SDR.

    python benchmarks/analysis_levers.py --out benchmarks/results/analysis_levers.json

or, timings and SDR scores in two processes (on a shared machine the scores take longest), then joined
with the verdicts (``VERDICTS`` below):

    python benchmarks/analysis_levers.py --seconds 20 --no-eval --out benchmarks/results/analysis_levers.json
    python benchmarks/analysis_levers.py --eval-only --out /tmp/levers-sdr.json
    python benchmarks/analysis_levers.py --out benchmarks/results/analysis_levers.json --merge-sdr /tmp/levers-sdr.json

Clips: the two film-grain clips of ``benchmarks/speed.py`` (made by it if missing): a keyframe every
250 frames ("gop250") and one per second ("gop30"). Each timing is min / median / max of
``--repeat`` runs in this process. Levers are applied by patching module attributes for the
duration of one measurement, so one process compares them on the same machine state:

- decoder: thread type (frame / slice), thread count, ``skip_loop_filter``, ``skip_idct``, and
  reusing a keyframe for sample times within ``X`` seconds of it (decoding stops at a GOP's last
  needed frame and resumes at the next keyframe);
- analysis layout (a prototype of a change in ``run_analysis``): decoding the video in a thread
  while the audio path runs; decoding the audio once for both the native and the analysis audio;
- ONNX Runtime: intra-op threads, spinning, graph optimisation level, batch sizes, int8 weights
  (dynamic and static QDQ quantisation, calibrated on ``data/val2``), float16 weights.

Levers that change the analysis are scored on the evaluation set (default ``data/test2-classic``)
with ``pixelsep eval``'s click and BSS Eval (its ``model_sdr``, without the oracle masks): the median
SDR, and the paired per-performer SDR difference to the baseline (median, min, max). The float16
variant needs ``onnxconverter-common`` importable (it is left out otherwise).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import speed  # noqa: E402  (the clip maker)

from pixelsep_plugin import __version__, media  # noqa: E402
from pixelsep_plugin.api import Separator  # noqa: E402
from pixelsep_plugin.media import decode  # noqa: E402
from pixelsep_plugin.runtime import sessions  # noqa: E402

# ------------------------------------------------------------------------------------------------
# timing helpers


def timed(repeat: int, fn: Callable[[], object]) -> dict:
    """Wall seconds (min / median / max) of ``repeat`` calls of ``fn``, and the process's CPU seconds
    (all threads; min / median / max): on a loaded machine CPU time is the steadier measure of work."""
    wall, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)

    def spread(values: list[float]) -> dict:
        return {
            "min": round(min(values), 3),
            "median": round(statistics.median(values), 3),
            "max": round(max(values), 3),
        }

    return {**spread(wall), "cpu": spread(cpu)}


@contextlib.contextmanager
def patched(target, name: str, value):
    old = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, old)


# ------------------------------------------------------------------------------------------------
# decoder levers


def thread_count_patch(count: int, thread_type: str = "AUTO"):
    """``_open_video_decoder`` with an explicit decoder thread count (0: FFmpeg's choice)."""
    original = decode._open_video_decoder

    def open_with_threads(container, skip_frame):
        stream = original(container, skip_frame)
        stream.thread_type = thread_type
        stream.codec_context.thread_count = count
        return stream

    return patched(decode, "_open_video_decoder", open_with_threads)


def options_patch(options: dict):
    return patched(decode, "FAST_DECODE_OPTIONS", options)


# ------------------------------------------------------------------------------------------------
# analysis layout prototypes (what a change in run_analysis would do)


def decode_audio_once_blocks(path, analysis_rate: int, block_samples: int = 262_144):
    """One decode of the audio stream through two resamplers: (native blocks list, analysis mono array)."""
    native_blocks, analysis_pieces = [], []
    with decode.open_input(path) as container:
        stream = decode.audio_stream(container)
        native = av.AudioResampler(format="fltp", layout=stream.layout, rate=stream.rate)
        mono = av.AudioResampler(format="flt", layout="mono", rate=analysis_rate)
        channels = len(stream.layout.channels)
        assembler = decode._BlockAssembler(channels, block_samples)
        frames = decode._decoded_frames(Path(path), container, stream)
        while True:
            frame = next(frames, None)
            for out in native.resample(frame):
                if out is not None:
                    native_blocks.extend(assembler.push(out.to_ndarray().reshape(channels, -1)))
            for out in mono.resample(frame):
                if out is not None:
                    analysis_pieces.append(out.to_ndarray().reshape(-1))
            if frame is None:
                break
        native_blocks.extend(assembler.rest())
    return native_blocks, np.concatenate(analysis_pieces)


# ------------------------------------------------------------------------------------------------
# ONNX Runtime levers


def session_patch(
    threads: int | None = None,
    spinning: bool = False,
    level: str = "ORT_ENABLE_ALL",
    graphs: dict[str, Path] | None = None,
):
    """``sessions._session`` with other options and, optionally, other ONNX files for the nets."""
    import onnxruntime as ort

    def make(path: Path, providers, threads_arg):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or threads_arg or (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        if graphs is not None:
            path = graphs[Path(path).stem]
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)

    return patched(sessions, "_session", make)


def calibration_inputs(separator: Separator, clips: list[Path]) -> dict[str, list[np.ndarray]]:
    """Real inputs of both nets from ``clips`` (not the evaluation set): frames and log-magnitude windows."""
    from pixelsep_plugin.runtime.analysis import Analysis  # noqa: F401  (only to read the cache's arrays)

    cfg = separator.package.config
    frames, logmags = [], []
    root = Path(tempfile.mkdtemp(prefix="pixelsep-calib-"))
    try:
        separator.cache_root = root
        for clip in clips:
            for _, rgb in media.iter_sampled_frames(clip, cfg.chunks.frames_per_second, cfg.video_net.frame_size):
                frames.append((rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])
            analysis, _ = separator.analyze(clip)
            lm = np.asarray(analysis.log_magnitude, dtype=np.float32)
            logmags.extend(lm[i][None, None] for i in range(lm.shape[0]))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"video": frames, "audio": logmags}


def quantised_graphs(
    package, work: Path, calibration: dict[str, list[np.ndarray]] | None
) -> dict[str, dict[str, Path]]:
    """int8 dynamic, int8 static (QDQ) and float16 variants of both graphs, written under ``work``."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, dict[str, Path]] = {"int8-dynamic": {}, "int8-static": {}, "float16": {}}
    inputs = {"video": "frames", "audio": "log_magnitude"}
    for name, source in (("video", package.video_onnx), ("audio", package.audio_onnx)):
        pre = work / f"{name}.pre.onnx"
        quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)
        dyn = work / f"{name}.int8-dynamic.onnx"
        quantize_dynamic(str(pre), str(dyn), weight_type=QuantType.QInt8)
        out["int8-dynamic"][name] = dyn
        if calibration is not None:

            class Reader(CalibrationDataReader):
                def __init__(self, input_name: str, items):
                    self.input_name, self.items = input_name, iter(items)

                def get_next(self):
                    item = next(self.items, None)
                    return None if item is None else {self.input_name: item}

            static = work / f"{name}.int8-static.onnx"
            quantize_static(
                str(pre),
                str(static),
                Reader(inputs[name], calibration[name]),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=True,
            )
            out["int8-static"][name] = static
        try:
            from onnxconverter_common import float16

            half = float16.convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
            path = work / f"{name}.float16.onnx"
            onnx.save(half, str(path))
            out["float16"][name] = path
        except ImportError:
            out.pop("float16", None)
    return {k: v for k, v in out.items() if len(v) == 2}


# ------------------------------------------------------------------------------------------------
# measurements


def cut_clip(clip: Path, seconds: float) -> Path:
    """The first ``seconds`` of ``clip``, streams copied (no re-encoding), beside it."""
    out = clip.with_name(f"{clip.stem}-first{seconds:g}s{clip.suffix}")
    if not out.exists():
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            raise SystemExit("--seconds below 60 needs the ffmpeg command to cut the clips")
        subprocess.run(
            [ffmpeg, "-v", "error", "-y", "-i", str(clip), "-t", f"{seconds:g}", "-c", "copy", str(out)], check=True
        )
    return out


def decode_video(clip: Path, cfg) -> int:
    return sum(1 for _ in media.iter_sampled_frames(clip, cfg.chunks.frames_per_second, cfg.video_net.frame_size))


def full_analysis(separator: Separator, clip: Path) -> None:
    root = Path(tempfile.mkdtemp(prefix="pixelsep-levers-"))
    try:
        separator.cache_root = root
        _, cached = separator.analyze(clip)
        assert not cached
    finally:
        shutil.rmtree(root, ignore_errors=True)


def nets_only(separator: Separator, windows: int, frames: int, frame_hw, batch_windows=4, batch_frames=8) -> None:
    cfg = separator.package.config
    rng = np.random.default_rng(0)
    logmag = rng.standard_normal((batch_windows, 1, cfg.audio.log_freq_bins, cfg.chunks.window_columns)).astype(
        np.float32
    )
    pixels = rng.random((batch_frames, 3, *frame_hw), dtype=np.float32)
    for _ in range(-(-windows // batch_windows)):
        separator.nets.audio(logmag)
    for _ in range(-(-frames // batch_frames)):
        separator.nets.video(pixels)


def fresh_nets(separator: Separator) -> None:
    """Drop the loaded sessions so that the next run builds them with the current ``_session``."""
    for name in ("_video", "_audio"):
        separator.nets.__dict__.pop(name, None)


def sdr_of(model: str, eval_clips: list[Path], threads: int | None) -> dict:
    """The model's SDR (dB) per performer, keyed "clip/performer", computed exactly as ``pixelsep eval``
    computes ``model_sdr`` (same click, same render, same BSS Eval) but without the oracle masks."""
    from pixelsep_plugin.evaluate.run import bss_eval, click_point, find_sidecars
    from pixelsep_plugin.runtime.query import Source

    scores: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="pixelsep-levers-eval-") as cache:
        separator = Separator(model, threads=threads, cache_root=Path(cache))
        for sidecar_path in find_sidecars(eval_clips):
            sidecar = json.loads(sidecar_path.read_text())
            folder = sidecar_path.parent
            clip = folder / sidecar["video"]
            performers = sidecar["performers"]
            mixture, rate = media.read_audio(clip)
            references = [media.read_audio(folder / p["stem"])[0] for p in performers]
            n = min(mixture.shape[-1], *(r.shape[-1] for r in references))
            mono_refs = np.stack([r[:, :n] for r in references]).mean(axis=1)
            analysis, _ = separator.analyze(clip)
            t = float(sidecar["duration_seconds"]) / 2
            sources = [Source(p["name"], (click_point(p, sidecar["fps"], t),)) for p in performers]
            together, _ = separator.separate(analysis, sources).render(residual=False)
            sdr, _, _ = bss_eval(mono_refs, together[..., :n].mean(axis=1))
            for performer, value in zip(performers, sdr, strict=True):
                scores[f"{sidecar['name']}/{performer['name']}"] = float(value)
    return scores


def sdr_summary(scores: dict, baseline: dict | None) -> dict:
    values = np.array(list(scores.values()))
    out = {"median_sdr_db": round(float(np.median(values)), 3), "performers": len(values)}
    if baseline is not None:
        diff = np.array([scores[k] - baseline[k] for k in baseline])
        out["delta_sdr_db"] = {
            "median": round(float(np.median(diff)), 3),
            "min": round(float(diff.min()), 3),
            "max": round(float(diff.max()), 3),
        }
    return out


# What was kept, and why: the reading of one run's numbers (benchmarks/results/analysis_levers.json).
# "cpu" below is the process's CPU seconds (all threads), the steady measure on a loaded machine.
VERDICTS: dict[str, tuple[bool, str]] = {
    "current: frame threads (AUTO), skip_loop_filter=all, flags2=fast": (True, "the reference"),
    "current run_analysis": (True, "the reference"),
    "current: intra-op = cores, no spinning, ORT_ENABLE_ALL, batches 4 windows / 8 frames": (True, "the reference"),
    "slice threads": (False, "same cpu as frame threads; no wall-time gain measurable under load"),
    "frame threads, thread_count=1": (False, "same cpu; one thread cannot use the second core"),
    "frame threads, thread_count=2": (False, "same cpu as FFmpeg's own count; no reason to pin it"),
    "frame threads, thread_count=3": (False, "same cpu as FFmpeg's own count (which is this on 2 cores)"),
    "frame threads, thread_count=4": (False, "same cpu; more threads than cores"),
    "loop filter on (no skip_loop_filter)": (
        False,
        "skipping the loop filter (kept, as before) saves 12-13% of decoding cpu for -0.03 dB median SDR",
    ),
    "skip_idct=nokey (P/B residuals dropped)": (
        False,
        "FFmpeg's h264 decoder ignores skip_idct: same pixels, same cpu",
    ),
    "reuse a keyframe within 1 s of a sample": (
        False,
        "17% less decoding cpu on long GOPs, -0.006 dB median SDR; not default: see KEYFRAME_REUSE_SECONDS=5",
    ),
    "reuse a keyframe within 4.2 s of a sample": (
        False,
        "28x less decoding cpu on 250-frame GOPs (44x on 60 s), -0.03 dB median SDR, but the clicked frame stays exact here",
    ),
    "KEYFRAME_REUSE_SECONDS=5 (the decode.py implementation)": (
        False,
        "-0.05 dB median SDR (worst performer -3.6 dB) with the clicked frame 5 s stale; off by default: a "
        "sample would no longer be the picture shown at its time (tracking a moving performer in a long-GOP "
        "clip sees one picture per GOP), which these mostly still performers cannot measure",
    ),
    "video decoded in a thread while the audio path runs": (
        True,
        "20 s runs: 8-19% less wall time, same cpu; now what run_analysis does (measured on a quiet machine by "
        "benchmarks/speed.py), so the 'current run_analysis' entry includes it",
    ),
    "intra-op threads 1": (False, "slightly less cpu, but the nets take longer"),
    "spinning on": (False, "twice the cpu, slower: spinning threads take the decoder's cores"),
    "graph optimisation ORT_DISABLE_ALL": (False, "35% more cpu than ORT_ENABLE_ALL (kept)"),
    "graph optimisation ORT_ENABLE_BASIC": (False, "39% more cpu than ORT_ENABLE_ALL (kept)"),
    "graph optimisation ORT_ENABLE_EXTENDED": (False, "43% more cpu than ORT_ENABLE_ALL (kept)"),
    "batches 1 windows / 1 frames": (False, "within the spread of the current 4 / 8"),
    "batches 2 windows / 4 frames": (False, "13% less cpu than 4 / 8, within this loaded run's noise"),
    "batches 8 windows / 16 frames": (False, "within the spread of the current 4 / 8"),
    "batches 14 windows / 30 frames": (False, "within the spread of the current 4 / 8"),
    "int8-dynamic weights": (False, "3.3x the cpu (ConvInteger kernels) and -0.04 dB"),
    "int8-static weights": (
        False,
        "25% less nets cpu, -0.05 dB median paired SDR (median SDR +0.15): within the bar, but it needs "
        "new ONNX files in the model package (not in this script's files), proposed",
    ),
    "float16 weights": (False, "no float16 kernels here (AVX-512 FP16 absent): Cast nodes, 1.45x the cpu; SDR same"),
}


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "analysis_levers.json")
    parser.add_argument(
        "--model", default="small-untrained", help="model for the timings (same cost as pixelsep-small)"
    )
    parser.add_argument("--eval-model", default="pixelsep-small", help="model for the SDR scores")
    parser.add_argument("--eval-clips", type=Path, nargs="+", default=[Path("data/test2-classic")])
    parser.add_argument("--calibration-clips", type=Path, default=Path("data/val2"), help="int8 calibration clips")
    parser.add_argument("--calibration-count", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-eval", action="store_true", help="timings only")
    parser.add_argument("--match", help="only the decoder levers whose name matches this regular expression")
    parser.add_argument("--eval-only", action="store_true", help="SDR scores only (no timings)")
    parser.add_argument(
        "--merge-sdr",
        type=Path,
        nargs="+",
        help="only add the SDR scores of --eval-only reports, and the verdicts, to the --out report",
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="time the first SECONDS of the clips")
    parser.add_argument("--only", nargs="*", help="lever groups to run: decoder, layout, ort, quant")
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    groups = set(args.only or ["decoder", "layout", "ort", "quant"])
    if args.merge_sdr:
        report = json.loads(args.out.read_text())
        known = {entry["lever"]: entry for entry in report["results"]}
        for path in args.merge_sdr:
            for scored in json.loads(path.read_text())["results"]:
                if scored["lever"] in known and scored.get("sdr"):
                    known[scored["lever"]]["sdr"] = scored["sdr"]
                elif scored["lever"] not in known:
                    report["results"].append(scored)
                    known[scored["lever"]] = scored
        for entry in report["results"]:
            if entry["lever"] in VERDICTS:
                entry["kept"], entry["why"] = VERDICTS[entry["lever"]]
        args.out.write_text(json.dumps(report, indent=1))
        return 0
    separator = Separator(args.model, threads=args.threads)
    cfg = separator.package.config
    clips_dir = HERE / ".clips"
    clips = {
        "gop250": speed.make_clip(clips_dir / "hd-60s-grain-gop250.mp4", 60.0, None, grain=6.0),
        "gop30": speed.make_clip(clips_dir / "hd-60s-grain-gop30.mp4", 60.0, 30, grain=6.0),
    }
    if args.seconds < 60.0:
        clips = {key: cut_clip(clip, args.seconds) for key, clip in clips.items()}
    clip_seconds = min(60.0, args.seconds)
    results: list[dict] = []
    baseline_sdr: dict | None = None
    threads = args.threads

    def write_report() -> None:
        flags = set()
        with contextlib.suppress(OSError):
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
        report = {
            "pixelsep": __version__,
            "model_for_timings": separator.package.model_id,
            "model_for_sdr": args.eval_model,
            "eval_clips": [str(p) for p in args.eval_clips],
            "clip_seconds": clip_seconds,
            "threads": threads or os.cpu_count(),
            "repeat": args.repeat,
            "machine": {
                "cpus": os.cpu_count(),
                "processor": platform.processor() or platform.machine(),
                "cpu_flags": sorted(f for f in flags if f.startswith(("avx", "amx", "f16c", "fma"))),
                "gpu": None,
            },
            "results": results,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if args.out.exists() and args.only:
            previous = json.loads(args.out.read_text())
            groups_done = {r["group"] for r in results}
            report["results"] = [r for r in previous.get("results", []) if r["group"] not in groups_done] + results
        args.out.write_text(json.dumps(report, indent=1))

    def record(entry: dict) -> None:
        results.append(entry)
        print(json.dumps(entry), flush=True)
        write_report()  # after every lever, so that a long run leaves what it measured

    def score(patch_factory) -> dict | None:
        if args.no_eval:
            return None
        with patch_factory():
            scores = sdr_of(args.eval_model, args.eval_clips, threads)
        return sdr_summary(scores, baseline_sdr)

    if args.no_eval and args.eval_only:
        raise SystemExit("--no-eval and --eval-only exclude each other")
    if not args.no_eval:
        baseline_sdr = sdr_of(args.eval_model, args.eval_clips, threads)
        record({"lever": "baseline (eval)", "group": "eval", **sdr_summary(baseline_sdr, None)})

    def decode_entry(lever: str, patch_factory, sdr: bool = False) -> None:
        entry: dict = {"lever": lever, "group": "decoder"}
        if (args.eval_only and not sdr) or (args.match and not re.search(args.match, lever)):
            return
        for key, clip in [] if args.eval_only else clips.items():
            with patch_factory():
                decode_video(clip, cfg)  # warm (file cache, plan)
                entry[f"{key}_video_decode_seconds"] = timed(args.repeat, lambda c=clip: decode_video(c, cfg))
            entry[f"{key}_video_decode_realtime_factor"] = round(
                clip_seconds / entry[f"{key}_video_decode_seconds"]["min"], 1
            )
        if sdr:
            entry["sdr"] = score(patch_factory)
        record(entry)

    if "decoder" in groups:
        nothing = contextlib.nullcontext
        decode_entry("current: frame threads (AUTO), skip_loop_filter=all, flags2=fast", nothing)
        decode_entry("slice threads", lambda: patched(decode, "VIDEO_THREAD_TYPE", "SLICE"))
        for count in (1, 2, 3, 4):
            decode_entry(f"frame threads, thread_count={count}", lambda c=count: thread_count_patch(c, "FRAME"))
        decode_entry("loop filter on (no skip_loop_filter)", lambda: options_patch({"flags2": "fast"}), sdr=True)
        decode_entry(
            "skip_idct=nokey (P/B residuals dropped)",
            lambda: options_patch({**decode.FAST_DECODE_OPTIONS, "skip_idct": "nokey"}),
        )
        for reuse in (1.0, 4.2):
            decode_entry(
                f"reuse a keyframe within {reuse:g} s of a sample",
                lambda r=reuse: patched(decode, "KEYFRAME_REUSE_SECONDS", r),
                sdr=True,
            )
        decode_entry(
            "KEYFRAME_REUSE_SECONDS=5 (the decode.py implementation)",
            lambda: patched(decode, "KEYFRAME_REUSE_SECONDS", 5.0),
            sdr=True,
        )

    def analysis_entry(lever: str, group: str, patch_factory, state_setup=None) -> None:
        entry: dict = {"lever": lever, "group": group}
        for key, clip in clips.items():

            def run(c=clip):
                with patch_factory() as state:
                    if state_setup is not None:
                        state_setup(state)
                    full_analysis(separator, c)

            run()
            entry[f"{key}_analysis_seconds"] = timed(args.repeat, run)
            entry[f"{key}_realtime_factor"] = round(clip_seconds / entry[f"{key}_analysis_seconds"]["min"], 1)
        record(entry)

    if "layout" in groups and not args.eval_only:
        analysis_entry("current run_analysis", "layout", contextlib.nullcontext)

        for key, clip in clips.items():
            entry = {"lever": f"audio decodes alone ({key})", "group": "layout"}
            entry["native_audio_seconds"] = timed(
                args.repeat, lambda c=clip: sum(1 for _ in media.iter_audio_blocks(c))
            )
            entry["analysis_audio_seconds"] = timed(args.repeat, lambda c=clip: media.read_analysis_audio(c, 11025))
            entry["both_in_one_decode_seconds"] = timed(
                args.repeat, lambda c=clip: decode_audio_once_blocks(c, cfg.audio.sample_rate)
            )
            record(entry)

    # shapes of the nets' inputs in a 60 s analysis
    windows, frames, frame_hw = 14, 60, (160, 288)

    def nets_entry(lever: str, patch_factory, batch_windows=4, batch_frames=8, sdr: bool = False, group="ort"):
        entry: dict = {"lever": lever, "group": group}
        with patch_factory():
            fresh_nets(separator)
            nets_only(separator, windows, frames, frame_hw, batch_windows, batch_frames)
            entry["nets_seconds"] = timed(
                args.repeat, lambda: nets_only(separator, windows, frames, frame_hw, batch_windows, batch_frames)
            )
            entry["nets_realtime_factor"] = round(60.0 / entry["nets_seconds"]["min"], 1)
            if sdr:
                entry["sdr"] = score(patch_factory)
        fresh_nets(separator)
        record(entry)

    if "ort" in groups and not args.eval_only:
        nets_entry(
            "current: intra-op = cores, no spinning, ORT_ENABLE_ALL, batches 4 windows / 8 frames", session_patch
        )
        nets_entry("intra-op threads 1", lambda: session_patch(threads=1))
        nets_entry("spinning on", lambda: session_patch(spinning=True))
        for level in ("ORT_DISABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED"):
            nets_entry(f"graph optimisation {level}", lambda lv=level: session_patch(level=lv))
        for bw, bf in ((1, 1), (2, 4), (8, 16), (14, 30)):
            nets_entry(f"batches {bw} windows / {bf} frames", session_patch, bw, bf)

    if "quant" in groups:
        calib_clips = sorted(args.calibration_clips.glob("*.mp4"))[: args.calibration_count]
        calibration = (
            calibration_inputs(Separator(args.eval_model, threads=threads), calib_clips) if calib_clips else None
        )
        work = Path(tempfile.mkdtemp(prefix="pixelsep-quant-"))
        try:
            eval_package = Separator(args.eval_model).package
            variants = quantised_graphs(eval_package, work, calibration)
            timing_variants = quantised_graphs(separator.package, work / "timing", None)
            for name, graphs in variants.items():
                timing = timing_variants.get(name, graphs)
                entry_patch = lambda g=timing: session_patch(graphs=g)  # noqa: E731
                entry: dict = {"lever": f"{name} weights", "group": "quant"}
                with entry_patch():
                    fresh_nets(separator)
                    try:
                        if args.eval_only:
                            raise NotImplementedError("timings skipped (--eval-only)")
                        nets_only(separator, windows, frames, frame_hw)
                        entry["nets_seconds"] = timed(
                            args.repeat, lambda: nets_only(separator, windows, frames, frame_hw)
                        )
                        entry["nets_realtime_factor"] = round(60.0 / entry["nets_seconds"]["min"], 1)
                    except NotImplementedError:
                        pass
                    except Exception as error:  # a graph this build cannot run is a result too
                        entry["error"] = str(error).splitlines()[0]
                fresh_nets(separator)
                if "error" not in entry:
                    entry["sdr"] = score(lambda g=graphs: session_patch(graphs=g))
                record(entry)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    write_report()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
