"""Evaluating a model on ensemble clips with ground truth (pixelsep synthetic clips or the same layout).

For every clip: the clip is analysed once; each performer is clicked once at mid-clip, on its
picture (the sidecar's point: the opaque pixel nearest the centre of its box), as a user clicks, and

- **together**: all performers clicked at once (mixture-consistent stems), each stem scored
  against that performer's reference with BSS Eval (SDR, SIR, SAR; mir_eval, on the channel mean,
  at the clip's own rate) and NSDR = SDR - SDR of the unprocessed mixture;
- **alone**: each performer clicked on its own (one stem + residual); the click is *right* when
  its stem is closer (scale-invariant SDR) to the clicked performer's reference than to any other's.

Beside the model, on the same mixture and the engine's own STFT at the clip's rate: the ideal
binary mask and ideal ratio mask (oracles: the ceiling) and the mixture itself (the floor).
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixelsep_plugin import media
from pixelsep_plugin.audio.stft import Stft, source_stft_size
from pixelsep_plugin.runtime.query import Point, Source

METHODS = ("model", "ibm", "irm", "mixture")


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR in dB of mono signals."""
    scale = float(np.dot(estimate, reference) / (np.dot(reference, reference) + 1e-12))
    target = scale * reference
    return float(10 * np.log10((np.sum(target**2) + 1e-12) / (np.sum((estimate - target) ** 2) + 1e-12)))


def bss_eval(references: np.ndarray, estimates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SDR, SIR, SAR (each (sources,)) of mono estimates against mono references (sources, samples)."""
    from mir_eval.separation import bss_eval_sources  # imported here: the eval extra

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        sdr, sir, sar, _ = bss_eval_sources(references, estimates, compute_permutation=False)
    return sdr, sir, sar


def oracle_stems(mixture: np.ndarray, references: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
    """Ideal binary and ratio mask stems (sources, channels, samples) on the engine's STFT of the mixture."""
    stft = Stft(*source_stft_size(sample_rate))
    n = mixture.shape[-1]
    mix_spec = stft(mixture)  # (channels, F, T)
    ref_mags = np.abs(stft(references))  # (sources, channels, F, T)
    ibm = (ref_mags == ref_mags.max(axis=0, keepdims=True)).astype(np.float32)
    irm = ref_mags / (ref_mags.sum(axis=0, keepdims=True) + 1e-10)
    return {
        "ibm": np.stack([stft.inverse(mix_spec * m, n) for m in ibm]).astype(np.float32),
        "irm": np.stack([stft.inverse(mix_spec * m, n) for m in irm]).astype(np.float32),
    }


def click_point(performer: dict, fps: float, time_seconds: float) -> Point:
    """Where a user clicks the performer at ``time_seconds``: on its picture (the sidecar's point
    of that frame, the opaque pixel nearest the centre of its box); for sidecars without points,
    the centre of its box."""
    boxes = performer["boxes"]
    frame = min(len(boxes) - 1, int(round(time_seconds * fps)))
    if performer.get("points"):
        x, y = performer["points"][frame]
        return Point(float(x) + 0.5, float(y) + 0.5, frame / fps)
    x0, y0, x1, y1 = boxes[frame]
    return Point((x0 + x1) / 2, (y0 + y1) / 2, frame / fps)


def evaluate_clip(separator, sidecar_path: Path, cache_root: Path) -> dict[str, Any]:
    sidecar = json.loads(sidecar_path.read_text())
    folder = sidecar_path.parent
    clip = folder / sidecar["video"]
    performers = sidecar["performers"]
    mixture, rate = media.read_audio(clip)
    references = []
    for p in performers:
        stem, stem_rate = media.read_audio(folder / p["stem"])
        if stem_rate != rate:
            raise ValueError(f"{p['stem']} is at {stem_rate} Hz, the clip at {rate} Hz")
        references.append(stem)
    n = min(mixture.shape[-1], *(r.shape[-1] for r in references))
    mixture = mixture[:, :n]
    references = np.stack([r[:, :n] for r in references])  # (sources, channels, n)

    analysis, _ = separator.analyze(clip)
    t = float(sidecar["duration_seconds"]) / 2
    points = [click_point(p, sidecar["fps"], t) for p in performers]
    sources = [Source(p["name"], (pt,)) for p, pt in zip(performers, points, strict=True)]
    together, _ = separator.separate(analysis, sources).render(residual=False)
    estimates = {"model": together[..., :n], **oracle_stems(mixture, references, rate)}
    estimates["mixture"] = np.repeat(mixture[None], len(performers), axis=0)

    mono_refs = references.mean(axis=1)
    scores: dict[str, dict[str, np.ndarray]] = {}
    for method in METHODS:
        sdr, sir, sar = bss_eval(mono_refs, estimates[method].mean(axis=1))
        scores[method] = {"sdr": sdr, "sir": sir, "sar": sar}

    clicks = []
    for index, source in enumerate(sources):
        alone, _ = separator.separate(analysis, [source]).render(residual=False)
        stem = alone[0, :, :n].mean(axis=0)
        closeness = [si_sdr(ref, stem) for ref in mono_refs]
        clicks.append(int(np.argmax(closeness)) == index)

    rows = []
    for index, performer in enumerate(performers):
        row = {
            "clip": sidecar["name"],
            "kind": sidecar.get("kind"),
            "performer": performer["name"],
            "instrument": performer.get("instrument", performer["name"]),
            "click": [round(points[index].x, 1), round(points[index].y, 1), round(points[index].time_seconds, 3)],
            "click_right": bool(clicks[index]),
        }
        for method in METHODS:
            for metric in ("sdr", "sir", "sar"):
                row[f"{method}_{metric}"] = float(scores[method][metric][index])
        for method in ("model", "ibm", "irm"):
            row[f"{method}_nsdr"] = row[f"{method}_sdr"] - row["mixture_sdr"]
        rows.append(row)
    return {"clip": sidecar["name"], "sample_rate": rate, "channels": int(mixture.shape[0]), "rows": rows}


def _finite_median(values: list[float]) -> float | None:
    arr = np.asarray([v for v in values if np.isfinite(v)])
    return float(np.median(arr)) if arr.size else None


def _finite_quartiles(values: list[float]) -> list[float] | None:
    arr = np.asarray([v for v in values if np.isfinite(v)])
    return [float(np.percentile(arr, 25)), float(np.percentile(arr, 75))] if arr.size else None


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"performers": len(rows), "clips": len({r["clip"] for r in rows})}
    for method in METHODS:
        for metric in ("sdr", "sir", "sar", "nsdr"):
            key = f"{method}_{metric}"
            if rows and key in rows[0]:
                out[f"median_{key}"] = _finite_median([r[key] for r in rows])
                out[f"quartiles_{key}"] = _finite_quartiles([r[key] for r in rows])
    out["click_accuracy"] = float(np.mean([r["click_right"] for r in rows])) if rows else None
    if out.get("median_model_sdr") is not None and out.get("median_ibm_sdr") is not None:
        out["gap_to_ibm_db"] = out["median_ibm_sdr"] - out["median_model_sdr"]
    per_instrument: dict[str, dict[str, Any]] = {}
    for name in sorted({r["instrument"] for r in rows}):
        mine = [r for r in rows if r["instrument"] == name]
        per_instrument[name] = {
            "performers": len(mine),
            "median_model_sdr": _finite_median([r["model_sdr"] for r in mine]),
            "median_model_nsdr": _finite_median([r["model_nsdr"] for r in mine]),
            "quartiles_model_nsdr": _finite_quartiles([r["model_nsdr"] for r in mine]),
            "median_ibm_sdr": _finite_median([r["ibm_sdr"] for r in mine]),
            "click_accuracy": float(np.mean([r["click_right"] for r in mine])),
        }
    out["per_instrument"] = per_instrument
    return out


def find_sidecars(paths: Sequence[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found += sorted(p for p in path.glob("*.json") if not p.name.startswith("."))
        elif path.suffix == ".json":
            found.append(path)
        elif path.with_suffix(".json").is_file():
            found.append(path.with_suffix(".json"))
        else:
            raise FileNotFoundError(f"{path} is neither a folder of clips nor a clip with a .json sidecar")
    sidecars = []
    for p in found:
        try:
            data = json.loads(p.read_text())
        except ValueError:
            continue
        if data.get("format") == "pixelsep-synth" and len(data.get("performers", [])) >= 2:
            sidecars.append(p)
    return sidecars


def evaluate(
    model: str | Path | None,
    clips: Sequence[Path],
    progress: Callable[[int, int], None] | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` on every ensemble clip under ``clips``; returns the report (JSON-ready)."""
    from pixelsep_plugin.api import Separator

    sidecars = find_sidecars(clips)
    if not sidecars:
        raise FileNotFoundError("no ensemble clips (sidecars with two or more performers) found")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pixelsep-eval-") as cache:
        separator = Separator(model, threads=threads, cache_root=Path(cache))
        results = []
        for done, sidecar in enumerate(sidecars):
            results.append(evaluate_clip(separator, sidecar, Path(cache)))
            if progress:
                progress(done + 1, len(sidecars))
    rows = [row for r in results for row in r["rows"]]
    by_kind: dict[str, Any] = {}
    for kind in sorted({r["kind"] for r in rows if r["kind"]}):
        by_kind[kind] = summarise([r for r in rows if r["kind"] == kind])
    package = separator.package
    return {
        "model": {"id": package.model_id, "version": package.manifest.get("version"), "checksum": package.checksum},
        "seconds": round(time.perf_counter() - started, 1),
        "summary": by_kind,
        "rows": rows,
    }


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _spread(quartiles: list[float] | None) -> str:
    return "" if not quartiles else f" [{quartiles[0]:.1f}, {quartiles[1]:.1f}]"


def markdown_table(report: dict[str, Any]) -> str:
    lines = [
        f"Model `{report['model']['id']}` (version {report['model']['version']}).",
        "",
        "| set | performers | model SDR [quartiles] | model NSDR [quartiles] | SIR | SAR | right clicks | IBM SDR | IRM SDR | mixture SDR | gap to IBM |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for kind, s in report["summary"].items():
        lines.append(
            f"| {kind}s | {s['performers']} | {_fmt(s['median_model_sdr'])}{_spread(s.get('quartiles_model_sdr'))} | "
            f"{_fmt(s['median_model_nsdr'])}{_spread(s.get('quartiles_model_nsdr'))} | "
            f"{_fmt(s['median_model_sir'])} | {_fmt(s['median_model_sar'])} | {s['click_accuracy'] * 100:.1f}% | "
            f"{_fmt(s['median_ibm_sdr'])} | {_fmt(s['median_irm_sdr'])} | {_fmt(s['median_mixture_sdr'])} | "
            f"{_fmt(s.get('gap_to_ibm_db'))} |"
        )
    lines += ["", "Medians in dB over performers, [first, third quartile]; NSDR = SDR - mixture SDR. Each performer is "
              "clicked once, on its picture, at mid-clip.", ""]  # fmt: skip
    for kind, s in report["summary"].items():
        lines += [f"Per instrument ({kind}s):", "", "| instrument | performers | SDR | NSDR [quartiles] | IBM SDR | right clicks |",
                  "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for name, v in s["per_instrument"].items():
            lines.append(
                f"| {name} | {v['performers']} | {_fmt(v['median_model_sdr'])} | {_fmt(v['median_model_nsdr'])}{_spread(v.get('quartiles_model_nsdr'))} | "
                f"{_fmt(v['median_ibm_sdr'])} | {v['click_accuracy'] * 100:.0f}% |"
            )
        lines.append("")
    return "\n".join(lines)


def plot_per_instrument(report: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    names = sorted({r["instrument"] for r in rows})
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(names) + 2), 4), dpi=100)
    model = [[r["model_sdr"] for r in rows if r["instrument"] == n and np.isfinite(r["model_sdr"])] for n in names]
    ibm = [_finite_median([r["ibm_sdr"] for r in rows if r["instrument"] == n]) for n in names]
    ax.boxplot(model, tick_labels=names, showfliers=False)
    ax.plot(range(1, len(names) + 1), [v if v is not None else np.nan for v in ibm], "v", label="ideal binary mask (median)")
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.set_ylabel("SDR (dB)")
    ax.set_title(f"{report['model']['id']}: SDR per instrument")
    ax.legend(loc="lower right")
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
