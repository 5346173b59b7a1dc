"""The engine's open choices, measured: each variant separates the same held-out duets; writes JSON.

    .venv/bin/python benchmarks/engine_choices.py data/test-duets --clips 20 \\
        --out benchmarks/results/engine_choices.json

Every variant clicks each performer at the centre of its ground-truth box at mid-clip (as
``pixelsep eval`` does), separates all performers together and scores the stems with BSS Eval
(mir_eval) against the true stems; the table gives the median SDR and NSDR over performers. The
variants change one thing each from the shipped settings:

- ``high_band``: above the model's 5.5 kHz band, ``extend`` (the mask's top bin carried up) or
  ``residual`` (everything above the band goes to the residual);
- ``overlap``: analysis-window overlap in STFT columns (of 256; windows are cross-faded);
- ``frame_rate``: video frames sampled per second of the clip;
- ``reach``: the cells around a clicked point whose features are max-pooled (0 = the cell alone);
- ``stft_frames_per_window``: the stems' STFT (at the clip's own rate) hops a half, quarter or
  eighth of its window;
- ``model``: other model packages (``--model`` may be given several times).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import numpy as np

from pixelsep_plugin import media
from pixelsep_plugin.api import Separator
from pixelsep_plugin.evaluate.run import bss_eval, click_point
from pixelsep_plugin.runtime.query import Source
from pixelsep_plugin.runtime.separate import Separation

BASE = {"high_band": "extend", "overlap": None, "frame_rate": None, "reach": 2, "stft_frames_per_window": 4}


def variants(models: list[str]) -> list[tuple[str, str, dict]]:
    out = [("shipped settings", models[0], {})]
    out += [("high band: residual", models[0], {"high_band": "residual"})]
    out += [(f"overlap {o} columns", models[0], {"overlap": o}) for o in (0, 32, 128)]
    out += [(f"frame rate {f:g} /s", models[0], {"frame_rate": f}) for f in (0.5, 2.0)]
    out += [(f"point reach {r} cells", models[0], {"reach": r}) for r in (0, 1, 3)]
    out += [(f"stems' STFT hop 1/{f} window", models[0], {"stft_frames_per_window": f}) for f in (2, 8)]
    out += [(f"model {_model_id(m)}", m, {}) for m in models[1:]]
    return out


def _model_id(model: str) -> str:
    from pixelsep_plugin.modelstore import load_package
    from pixelsep_plugin.modelstore.registry import resolve_model

    return load_package(resolve_model(model)).model_id


def _with_chunks(separator: Separator, overlap: int | None, frame_rate: float | None) -> None:
    cfg = separator.package.config
    chunks = cfg.chunks
    if overlap is not None:
        chunks = dataclasses.replace(chunks, overlap_columns=overlap)
    if frame_rate is not None:
        chunks = dataclasses.replace(chunks, frames_per_second=frame_rate)
    separator.package = dataclasses.replace(separator.package, config=dataclasses.replace(cfg, chunks=chunks))


def score_variant(model: str, settings: dict, sidecars: list[Path], threads: int | None) -> dict:
    s = {**BASE, **settings}
    separator = Separator(model, threads=threads, use_cache=False)
    default_overlap = separator.package.config.chunks.overlap_columns
    _with_chunks(separator, s["overlap"], s["frame_rate"])
    sdrs, nsdrs = [], []
    started = time.perf_counter()
    for sidecar_path in sidecars:
        sidecar = json.loads(sidecar_path.read_text())
        folder = sidecar_path.parent
        mixture, rate = media.read_audio(folder / sidecar["video"])
        refs = [media.read_audio(folder / p["stem"])[0] for p in sidecar["performers"]]
        n = min(mixture.shape[-1], *(r.shape[-1] for r in refs))
        refs_mono = np.stack([r[:, :n].mean(axis=0) for r in refs])
        mix_mono = mixture[:, :n].mean(axis=0)
        analysis, _ = separator.analyze(folder / sidecar["video"])
        t = float(sidecar["duration_seconds"]) / 2
        sources = [Source(p["name"], (click_point(p, sidecar["fps"], t),)) for p in sidecar["performers"]]
        separation = Separation(analysis, separator.package, sources, high_band=s["high_band"], point_reach_cells=s["reach"],
                                stft_frames_per_window=s["stft_frames_per_window"])  # fmt: skip
        stems, _ = separation.render(residual=False)
        sdr, _, _ = bss_eval(refs_mono, stems[:, :, :n].mean(axis=1))
        mix_sdr, _, _ = bss_eval(refs_mono, np.repeat(mix_mono[None], len(sources), axis=0))
        sdrs += sdr.tolist()
        nsdrs += (sdr - mix_sdr).tolist()
    return {
        "model": _model_id(model),
        "settings": {**s, "overlap": s["overlap"] if s["overlap"] is not None else default_overlap},
        "performers": len(sdrs),
        "median_sdr": float(np.median(sdrs)),
        "median_nsdr": float(np.median(nsdrs)),
        "mean_nsdr": float(np.mean(nsdrs)),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder of ensemble clips with sidecars")
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--model", action="append", help="model id or folder; the first is varied (default: the default model)")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--only", action="append", metavar="TEXT",
                        help="run the variants whose names contain TEXT (and the shipped settings)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/engine_choices.json"))
    args = parser.parse_args()
    models = args.model or [str(Separator().package.path)]
    sidecars = sorted(p for p in args.folder.glob("*.json") if (p.with_suffix(".mp4")).is_file())[: args.clips]
    results = []
    chosen = [v for v in variants(models) if not args.only or v[0] == "shipped settings" or any(t in v[0] for t in args.only)]
    for name, model, settings in chosen:
        row = {"variant": name, **score_variant(model, settings, sidecars, args.threads)}
        results.append(row)
        print(f"{name:28s} SDR {row['median_sdr']:6.2f}  NSDR {row['median_nsdr']:6.2f}  ({row['seconds']} s)", flush=True)
    doc = {"clips": [p.stem for p in sidecars], "machine": platform.platform(), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
