"""Time and memory of one training step (forward + backward + optimizer step) on the CPU.

    python benchmarks/train_step.py --out benchmarks/results/train_step.json
    python benchmarks/train_step.py --data data/train2      # real clips (decoded into the sample cache first)

For each training config given (default: configs/small.toml, plain mix-and-separate, and
configs/small-composite.toml, train as you click), a fresh process builds the config's nets and
optimizer with the project's training code (``pixelsep_plugin.train``: ``MixSampler`` draws the
mixes, ``graph_inputs`` makes the tensors, ``MixAndSeparate`` is the graph, the optimizer is the
run's AdamW) and runs ``--warmup`` steps, then ``--steps`` timed steps, exactly the body of the
training loop (no validation, logging or checkpoints), at the config's batch size and ``--threads``
torch threads. A step's time is split into drawing the batch (sampling, composing, tensors) and
the compute (forward, backward, optimizer step).

The data are synthetic by default: in-memory clips of random audio and random frames of the sizes
the training cache holds for the synthetic solo clips (12 s at the analysis rate, 320x240 video
sampled at the config's frames per second and resized to 208x160), each with a performer box, so
that the sampler, the composite path and the nets do exactly the work of real data; ``--data``
reads real clips through the training cache instead. Peak memory is each process's peak resident
set size (``wait4``'s ru_maxrss), which includes Python, torch and the data.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_CONFIGS = (ROOT / "configs" / "small.toml", ROOT / "configs" / "small-composite.toml")
SYNTHETIC_CLIPS = 24
SYNTHETIC_SECONDS = 12.0
SYNTHETIC_FRAME_SHAPE = (160, 208)  # (height, width): a 320x240 clip resized to the `small` nets' 160 short side


def spread(values: list[float]) -> dict[str, float]:
    """min / median / max (and mean) of a list of seconds."""
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


def rss_mib() -> float:
    """This process's resident set size now, in MiB (from /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def synthetic_clips(model_cfg, frames_per_second: float, seed: int) -> list:
    """In-memory clips of random audio (float32 at the analysis rate) and random uint8 frames, each
    with its own label and a performer box that drifts a little from frame to frame."""
    import numpy as np

    from pixelsep_plugin.train.data import CachedClip

    rng = np.random.default_rng(seed)
    height, width = SYNTHETIC_FRAME_SHAPE
    num_frames = int(round(SYNTHETIC_SECONDS * frames_per_second))
    samples = int(SYNTHETIC_SECONDS * model_cfg.audio.sample_rate)
    clips = []
    for i in range(SYNTHETIC_CLIPS):
        audio = (0.1 * rng.standard_normal(samples)).astype(np.float32)
        frames = rng.integers(0, 256, size=(num_frames, height, width, 3), dtype=np.uint8)
        times = np.arange(num_frames, dtype=np.float64) / frames_per_second
        x0 = rng.uniform(0.15, 0.35) * width + rng.uniform(-4, 4, num_frames)
        y0 = rng.uniform(0.1, 0.3) * height + rng.uniform(-4, 4, num_frames)
        boxes = np.stack([x0, y0, x0 + 0.4 * width, y0 + 0.6 * height], axis=1).astype(np.float32)
        clips.append(CachedClip(Path(f"synthetic-{i}.mp4"), f"instrument-{i}", audio, frames, times, boxes))
    return clips


def run_child(config: Path, data: str, threads: int, warmup: int, steps: int) -> dict:
    """Build the run of ``config`` and time ``steps`` training steps after ``warmup`` ones."""
    import numpy as np
    import torch

    from pixelsep_plugin.nets.builders import build_pixelplayer
    from pixelsep_plugin.train.config import load_train_config
    from pixelsep_plugin.train.data import MixBatch, MixSampler, default_cache_dir
    from pixelsep_plugin.train.loop import MixAndSeparate, _optimizer, graph_inputs, load_sets

    torch.set_num_threads(threads)
    cfg = load_train_config(config, threads=threads)
    model_cfg = cfg.model_config()
    rss_start = rss_mib()
    started = time.perf_counter()
    if data == "synthetic":
        clips = synthetic_clips(model_cfg, cfg.frames_per_second, cfg.seed)
    else:
        cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
        clips = load_sets((str(Path(data).resolve()),), cfg, model_cfg, cache, workers=os.cpu_count() or 1)
    data_seconds = time.perf_counter() - started
    rng = np.random.default_rng([cfg.seed, 0])
    sampler = MixSampler(
        clips, model_cfg, cfg.num_mix, model_cfg.video_net.frames_per_window, tuple(cfg.gain_range), rng,
        composite=cfg.composite, reach_cells=model_cfg.video_net.click_reach_cells, mix_sizes=cfg.mix_sizes,
    )  # fmt: skip
    graph = MixAndSeparate(build_pixelplayer(model_cfg, seed=cfg.seed), cfg.mask)
    optimizer = _optimizer(graph, cfg)
    graph.train()
    aug_rng = np.random.default_rng([cfg.seed, 0, 0, 1])
    rss_ready = rss_mib()

    def step() -> tuple[float, float, float, list[int], list[int]]:
        c0 = time.process_time()
        t0 = time.perf_counter()
        batch: MixBatch = sampler.batch(cfg.batch_size)
        inputs = graph_inputs(batch, aug_rng, "cpu")
        t1 = time.perf_counter()
        loss, _, _ = graph(*inputs)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, time.process_time() - c0, list(batch.audio.shape), list(batch.frames.shape)

    for _ in range(warmup):
        step()
    batch_times, compute_times, cpu_times, mix_sizes = [], [], [], []
    audio_shape = frames_shape = None
    for _ in range(steps):
        batch_seconds, compute_seconds, cpu_seconds, audio_shape, frames_shape = step()
        cpu_times.append(cpu_seconds)
        batch_times.append(batch_seconds)
        compute_times.append(compute_seconds)
        mix_sizes.append(audio_shape[1])
    totals = [a + b for a, b in zip(batch_times, compute_times, strict=True)]
    by_mix = {
        str(n): spread([t for t, m in zip(totals, mix_sizes, strict=True) if m == n]) for n in sorted(set(mix_sizes))
    }
    return {
        "config": str(config.relative_to(ROOT)) if config.is_relative_to(ROOT) else str(config),
        "composite": cfg.composite,
        "mask": cfg.mask,
        "batch_size": cfg.batch_size,
        "mix_sizes": list(cfg.mix_sizes) or [cfg.num_mix],
        "model": cfg.model,
        "model_overrides": cfg.model_overrides,
        "parameters": sum(p.numel() for p in graph.model.parameters()),
        "data": data,
        "data_clips": len(clips),
        "data_load_seconds": data_seconds,
        "last_batch_shapes": {"audio": audio_shape, "frames": frames_shape},
        "warmup_steps": warmup,
        "timed_steps": steps,
        "step_seconds": spread(totals),
        "batch_seconds": spread(batch_times),
        "compute_seconds": spread(compute_times),
        "step_seconds_by_mix_size": by_mix,
        # CPU seconds of the whole process (all threads) per step: less sensitive to other load than wall time
        "step_cpu_seconds": spread(cpu_times),
        "samples_per_second": {
            "at_median_step": cfg.batch_size / statistics.median(totals),
            "overall": cfg.batch_size * steps / sum(totals),
        },
        "rss_mib": {"at_start": rss_start, "ready_to_train": rss_ready, "after_steps": rss_mib()},
        "torch_threads": torch.get_num_threads(),
    }


def run_in_subprocess(config: Path, data: str, args: argparse.Namespace) -> dict:
    """One config on one data source in a fresh process; its peak RSS from ``wait4`` (that process
    alone, forked from a small launcher: see ``demucs_compare.run_process``)."""
    sys.path.insert(0, str(HERE))
    from demucs_compare import run_process

    command = [
        sys.executable, __file__, "--child", str(config), "--data", data, "--threads", str(args.threads),
        "--warmup", str(args.warmup), "--steps", str(args.steps),
    ]  # fmt: skip
    run = run_process(command, args.threads)
    result = json.loads(run.pop("stdout").strip().splitlines()[-1])
    result["process_wall_seconds"] = run["wall_seconds"]
    result["process_cpu_seconds"] = run["cpu_seconds"]
    result["peak_rss_mib"] = run["peak_rss_mib"]
    result["load_average_before_after"] = run["load_average_before_after"]
    return result


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "train_step.json")
    parser.add_argument("--configs", type=Path, nargs="+", default=list(DEFAULT_CONFIGS))
    parser.add_argument(
        "--data", nargs="+", default=["synthetic"],
        help="'synthetic' (default) and/or folders of training clips; each config runs on each",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    if args.warmup < 0 or args.steps < 3:
        raise SystemExit("--steps must be at least 3 and --warmup not negative")
    for data in args.data:
        if data != "synthetic" and not Path(data).is_dir():
            raise SystemExit(f"--data {data}: no such folder (give a folder of training clips or 'synthetic')")
    if args.child is not None:
        print(json.dumps(run_child(args.child.resolve(), args.data[0], args.threads, args.warmup, args.steps)))
        return 0
    import torch

    from pixelsep_plugin import __version__

    results = []
    for data, config in [(d, c) for d in args.data for c in args.configs]:
        print(f"{config} on {data}: {args.warmup} warm-up + {args.steps} timed steps ...", flush=True)
        result = run_in_subprocess(config.resolve(), data, args)
        step = result["step_seconds"]
        print(
            f"  step {step['min']:.3f} / {step['median']:.3f} / {step['max']:.3f} s (min/median/max), "
            f"{result['samples_per_second']['at_median_step']:.1f} mixes/s, peak RSS {result['peak_rss_mib']:.0f} MiB",
            flush=True,
        )
        results.append(result)
    report = {
        "what": "one training step (batch drawing + forward + backward + AdamW step) of the project's training loop",
        "command": "python benchmarks/train_step.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "data_note": (
            "data 'synthetic': in-memory clips (random audio and frames of the training cache's sizes for "
            "320x240 synthetic clips, with performer boxes): the same shapes and code path as real data; "
            "a folder: its clips through the training sample cache (decoded once, then memory-mapped)"
        ),
        "pixelsep": __version__,
        "torch": torch.__version__,
        "threads": args.threads,
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "python": platform.python_version(),
        "note_on_load": (
            "load_average_before_after: the 1-minute load average around each process; where it exceeds the "
            "cpus, other work shared the cores and wall times are inflated (step_cpu_seconds less so)"
        ),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temp = args.out.with_suffix(".json.tmp")
    temp.write_text(json.dumps(report, indent=1))
    os.replace(temp, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
