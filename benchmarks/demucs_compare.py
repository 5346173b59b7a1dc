"""pixelsep beside Demucs (htdemucs) on the same minute: wall time and peak memory on the CPU.

    pip install --no-deps demucs einops julius      # never plain `pip install demucs`: it pulls torchaudio and may change torch
    python benchmarks/demucs_compare.py --out benchmarks/results/demucs_compare.json

Not part of CI; it skips (exit 0, nothing written) when demucs is not installed. demucs 4.x's
``demucs.htdemucs`` and ``demucs.apply`` import torch, einops, julius and tqdm only (checked with
demucs 4.1.0), so neither torchaudio nor demucs's other dependencies (dora-search, lameenc,
openunmix, PyYAML) are needed and no module is stubbed; the audio is read with PyAV
(``pixelsep_plugin.media.read_audio``) and resampled to 44.1 kHz with julius, as ``demucs.audio``
would.

The clips are made as ``benchmarks/speed.py`` makes them (shared in benchmarks/.clips/): 60 s of
1920x1080 30 fps h264 with film grain and AAC stereo 48 kHz, one with a keyframe every second and
one with a keyframe every 250 frames; both hold the same audio. Each run is its own process, timed
from start to exit (imports included), its peak resident memory from ``wait4`` (ru_maxrss, the
process forked from a small launcher so that this script's own memory is not counted):

- pixelsep: ``pixelsep analyze CLIP`` into a fresh cache, then one click's whole stem,
  ``pixelsep separate CLIP --at W/6,H/2 --no-residual`` (reading that cache), with ``--threads``;
- Demucs: htdemucs (4 stems; the released model's constructor arguments, random weights: its speed
  does not depend on them) through its own ``apply_model`` with its defaults (a bag of one model,
  shifts=1, split into 7.8 s segments with overlap 0.25), torch on ``--threads`` threads, on the
  same minute of audio (the clip with a keyframe every 250 frames).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
INSTALL = "pip install --no-deps demucs einops julius"

# The constructor arguments of the released htdemucs model (signature 955717e8, demucs v4).
HTDEMUCS_KWARGS = {
    "sources": ["drums", "bass", "other", "vocals"], "audio_channels": 2, "samplerate": 44100,
    "segment": Fraction(39, 5), "channels": 48, "channels_time": None, "growth": 2, "nfft": 4096,
    "wiener_iters": 0, "end_iters": 0, "wiener_residual": False, "cac": True, "depth": 4, "rewrite": True,
    "multi_freqs": [], "multi_freqs_depth": 3, "freq_emb": 0.2, "emb_scale": 10, "emb_smooth": True,
    "kernel_size": 8, "stride": 4, "time_stride": 2, "context": 1, "context_enc": 0, "norm_starts": 4,
    "norm_groups": 4, "dconv_mode": 3, "dconv_depth": 2, "dconv_comp": 8, "dconv_init": 1e-3,
    "bottom_channels": 512, "t_layers": 5, "t_hidden_scale": 4.0, "t_heads": 8, "t_dropout": 0.02,
    "t_layer_scale": True, "t_gelu": True, "t_emb": "sin", "t_max_positions": 10000, "t_max_period": 10000.0,
    "t_weight_pos_embed": 1.0, "t_cape_mean_normalize": True, "t_cape_augment": True,
    "t_cape_glob_loc_scale": [5000.0, 1.0, 1.4], "t_sin_random_shift": 0, "t_norm_in": True,
    "t_norm_in_group": False, "t_group_norm": False, "t_norm_first": True, "t_norm_out": True,
    "t_weight_decay": 0.0, "t_lr": None, "t_sparse_self_attn": False, "t_sparse_cross_attn": False,
    "t_mask_type": "diag", "t_mask_random_seed": 42, "t_sparse_attn_window": 400, "t_global_window": 100,
    "t_sparsity": 0.95, "t_auto_sparsity": False, "t_cross_first": False, "rescale": 0.1,
}  # fmt: skip


def spread(values: list[float]) -> dict[str, float]:
    """min / median / max of a list of measurements."""
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


# Measures one command from a small launcher process: a process's peak RSS (ru_maxrss) starts from
# the memory of the process it was forked from, so a command forked from this script (with numpy and
# torch loaded) would report at least this script's size. The launcher forks it from ~10 MB instead.
LAUNCHER = """
import json, os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as report:
    json.dump({"wall_seconds": time.perf_counter() - started, "cpu_seconds": usage.ru_utime + usage.ru_stime,
               "peak_rss_mib": usage.ru_maxrss / 1024}, report)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_process(command: list[str], threads: int) -> dict:
    """Run ``command`` to its end; its wall seconds, CPU seconds (all threads) and peak resident
    memory (MiB, ``wait4``'s ru_maxrss of that process alone), and what it printed."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="pixelsep-bench-") as work:
        report = Path(work) / "usage.json"
        proc = subprocess.run(
            [sys.executable, "-c", LAUNCHER, str(report), *command], stdout=subprocess.PIPE, env=env, cwd=ROOT
        )
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(command[:4])} ... failed (exit {proc.returncode})")
        usage = json.loads(report.read_text())
    return {**usage, "load_average_before_after": [load_before, os.getloadavg()[0]], "stdout": proc.stdout.decode()}


def bench_pixelsep(clip: Path, model: str, threads: int, repeat: int, click: str) -> dict:
    """``repeat`` times: analyse into a fresh cache, then render one click's whole stem from it."""
    cli = [sys.executable, "-c", "from host_bridge.cli.main import main; raise SystemExit(main())"]  # `pixelsep`
    common = ["--model", model, "--threads", str(threads), "--quiet"]
    runs = []
    for _ in range(repeat):
        work = Path(tempfile.mkdtemp(prefix="pixelsep-demucs-compare-"))
        try:
            cache = ["--cache-dir", str(work / "cache")]
            analyze = run_process([*cli, "analyze", str(clip), *cache, *common], threads)
            separate = run_process(
                [
                    *cli,
                    "separate",
                    str(clip),
                    "--at",
                    click,
                    "--no-residual",
                    "-o",
                    str(work / "stems"),
                    *cache,
                    *common,
                ],
                threads,
            )
            stems = sorted(p.name for p in (work / "stems").iterdir())
        finally:
            shutil.rmtree(work, ignore_errors=True)
        for step in (analyze, separate):
            step.pop("stdout")
        runs.append({"analyze": analyze, "separate": separate, "stem_files": stems})
    totals = [r["analyze"]["wall_seconds"] + r["separate"]["wall_seconds"] for r in runs]
    return {
        "commands": [
            f"pixelsep analyze {clip.name} --cache-dir FRESH --model {model} --threads {threads} -q",
            f"pixelsep separate {clip.name} --at {click} --no-residual -o OUT --cache-dir FRESH --model {model} "
            f"--threads {threads} -q",
        ],
        "analyze_wall_seconds": spread([r["analyze"]["wall_seconds"] for r in runs]),
        "separate_wall_seconds": spread([r["separate"]["wall_seconds"] for r in runs]),
        "total_wall_seconds": spread(totals),
        "analyze_cpu_seconds": spread([r["analyze"]["cpu_seconds"] for r in runs]),
        "separate_cpu_seconds": spread([r["separate"]["cpu_seconds"] for r in runs]),
        "analyze_peak_rss_mib": spread([r["analyze"]["peak_rss_mib"] for r in runs]),
        "separate_peak_rss_mib": spread([r["separate"]["peak_rss_mib"] for r in runs]),
        "runs": runs,
    }


def demucs_child(clip: Path, threads: int) -> dict:
    """In a fresh process: read the clip's audio, resample it to 44.1 kHz and separate it with
    htdemucs (random weights) through ``demucs.apply.apply_model`` with its defaults."""
    t0 = time.perf_counter()
    import julius
    import torch
    from demucs.apply import BagOfModels, apply_model
    from demucs.htdemucs import HTDemucs

    from pixelsep_plugin import media

    torch.set_num_threads(threads)
    t1 = time.perf_counter()
    audio, sample_rate = media.read_audio(clip)  # float32 (channels, samples)
    t2 = time.perf_counter()
    torch.manual_seed(0)
    model = HTDemucs(**HTDEMUCS_KWARGS)
    bag = BagOfModels([model])  # the named model `htdemucs` is a bag of this one model
    t3 = time.perf_counter()
    wav = julius.resample_frac(torch.from_numpy(audio), sample_rate, model.samplerate)
    ref = wav.mean(0)  # normalised as demucs.separate does
    wav = (wav - ref.mean()) / ref.std()
    t4 = time.perf_counter()
    with torch.no_grad():
        sources = apply_model(bag, wav[None], device="cpu", shifts=1, split=True, overlap=0.25, progress=False)[0]
    sources = sources * ref.std() + ref.mean()
    t5 = time.perf_counter()
    return {
        "import_seconds": t1 - t0,
        "read_audio_seconds": t2 - t1,
        "build_model_seconds": t3 - t2,
        "resample_seconds": t4 - t3,
        "apply_model_seconds": t5 - t4,
        "audio_seconds": audio.shape[1] / sample_rate,
        "input_sample_rate": sample_rate,
        "sources_shape": list(sources.shape),
        "outputs_finite": bool(torch.isfinite(sources).all()),
        "parameters": sum(p.numel() for p in model.parameters()),
        "torch_threads": torch.get_num_threads(),
    }


def bench_demucs(clip: Path, threads: int, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        run = run_process([sys.executable, __file__, "--demucs-child", str(clip), "--threads", str(threads)], threads)
        run.update(json.loads(run.pop("stdout").strip().splitlines()[-1]))
        runs.append(run)
    return {
        "model": "htdemucs (4 stems: drums, bass, other, vocals), random weights",
        "apply_model": {
            "shifts": 1,
            "split": True,
            "overlap": 0.25,
            "segment_seconds": float(HTDEMUCS_KWARGS["segment"]),
        },
        "wall_seconds": spread([r["wall_seconds"] for r in runs]),
        "apply_model_seconds": spread([r["apply_model_seconds"] for r in runs]),
        "cpu_seconds": spread([r["cpu_seconds"] for r in runs]),
        "peak_rss_mib": spread([r["peak_rss_mib"] for r in runs]),
        "runs": runs,
    }


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "demucs_compare.json")
    parser.add_argument("--model", default="pixelsep-small", help="pixelsep model folder or id")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--demucs-child", type=Path, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    if args.demucs_child is not None:
        print(json.dumps(demucs_child(args.demucs_child, args.threads)))
        return 0
    if args.repeat < 3:
        raise SystemExit("--repeat must be at least 3")
    if importlib.util.find_spec("demucs") is None:
        print(f"demucs is not installed, skipping the comparison (install it with: {INSTALL})")
        return 0
    import numpy as np
    import torch
    from demucs import __version__ as demucs_version

    from pixelsep_plugin import __version__, media

    sys.path.insert(0, str(HERE))
    from speed import make_clip

    seconds = int(args.seconds)
    clips = [
        make_clip(HERE / ".clips" / f"hd-{seconds}s-grain-gop30.mp4", args.seconds, 30, grain=6.0),
        make_clip(HERE / ".clips" / f"hd-{seconds}s-grain-gop250.mp4", args.seconds, None, grain=6.0),
    ]
    audios = [media.read_audio(c)[0] for c in clips]
    same_audio = audios[0].shape == audios[1].shape and bool(np.array_equal(audios[0], audios[1]))
    del audios
    pixelsep_results = []
    for clip in clips:
        info = media.probe(clip)
        click = f"{info.width / 6:.0f},{info.height / 2:.0f}@0"
        print(f"pixelsep on {clip.name} ...", flush=True)
        result = bench_pixelsep(clip, args.model, args.threads, args.repeat, click)
        result = {
            "clip": clip.name,
            "keyframe_interval_frames": 30 if "gop30" in clip.name else 250,
            "duration_seconds": info.duration_seconds,
            "size": [info.width, info.height],
            "audio": {"sample_rate": info.sample_rate, "channels": info.num_channels},
            **result,
        }
        pixelsep_results.append(result)
        print(f"  analyse + click {json.dumps(result['total_wall_seconds'])} s", flush=True)
    print(f"Demucs htdemucs on the audio of {clips[1].name} ...", flush=True)
    demucs_result = {"clip": clips[1].name, **bench_demucs(clips[1], args.threads, args.repeat)}
    print(f"  {json.dumps(demucs_result['wall_seconds'])} s", flush=True)
    manifest = ROOT / "models" / args.model / "manifest.json"
    report = {
        "what": "pixelsep (analyse a clip, then one click's whole stem) beside Demucs htdemucs (4 stems) on the same 60 s",
        "command": "python benchmarks/demucs_compare.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "install": INSTALL,
        "stubs": "none: demucs.htdemucs and demucs.apply import without torchaudio",
        "versions": {
            "pixelsep": __version__,
            "pixelsep_model": json.loads(manifest.read_text()).get("id") if manifest.is_file() else args.model,
            "demucs": demucs_version,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "threads": args.threads,
        "repeats": args.repeat,
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "same_audio_in_both_clips": same_audio,
        "note_on_load": (
            "load_average_before_after: the 1-minute load average around each process; above the cpus, "
            "other work shared the cores and wall times are inflated (cpu_seconds less so)"
        ),
        "pixelsep": pixelsep_results,
        "demucs": demucs_result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temp = args.out.with_suffix(".json.tmp")
    temp.write_text(json.dumps(report, indent=1))
    os.replace(temp, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
