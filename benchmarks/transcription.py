"""How well the instrument swap hears the notes: note-level F1 of the transcription, per instrument.

    .venv/bin/python benchmarks/transcription.py --out benchmarks/results/transcription.json

Generates (deterministically, with the project's generator, condition ``classic``: FluidR3 sounds,
Noto pictures, no recording chain; split ``test``: melodies and seeds never trained on) 10 s solo
clips, ``--solos`` per instrument, and ``--duets`` x (instruments / 2) duets of the same instruments,
whose sidecars hold every performer's notes. Then transcribes, with pixelsep's transcription (the
Basic Pitch network, :mod:`pixelsep_plugin.swap.transcribe`), and scores against those notes with
``mir_eval.transcription`` (onset within 50 ms, pitch within 50 cents, offsets ignored):

- **solo**: each solo clip's own stem (the performer alone, with its room);
- **separated**: each duet performer's stem separated by ``--model`` (both performers clicked at
  once at mid-clip on their pictures, as ``pixelsep eval`` does), the stems ``pixelsep swap`` hears;
- beside it, on the same duets: the performer's true stem (**true stem**: what a perfect
  separation would give) and the unseparated **mixture** (what transcribing without separating gives).

Writes OUT (JSON: the command line, settings, versions, per-stem rows, and per instrument and set
the median and quartiles of F1, precision, recall and the F1 with offsets scored too) and OUT with
suffix .md (the tables).
``--data DIR`` keeps the clips (and reuses them on the next run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

INSTRUMENTS = ("piano", "acoustic guitar", "violin", "flute", "trumpet", "accordion")
SETS = ("solo", "separated", "true stem", "mixture")
METRICS = ("f1", "precision", "recall", "f1_with_offsets")


def note_scores(reference: list[list[float]], notes) -> dict[str, float]:
    """Precision, recall and F1 of ``notes`` (swap.Note) against sidecar note events [onset, offset, pitch, velocity]
    (offsets ignored), and the F1 with offsets scored too."""
    import mir_eval

    ref_intervals = np.array([[r[0], r[1]] for r in reference], dtype=float).reshape(-1, 2)
    ref_pitches = mir_eval.util.midi_to_hz(np.array([r[2] for r in reference], dtype=float))
    est_intervals = np.array([[n.onset_seconds, n.offset_seconds] for n in notes], dtype=float).reshape(-1, 2)
    est_pitches = mir_eval.util.midi_to_hz(np.array([n.pitch for n in notes], dtype=float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        precision, recall, f1, _ = mir_eval.transcription.precision_recall_f1_overlap(
            ref_intervals, ref_pitches, est_intervals, est_pitches,
            onset_tolerance=0.05, pitch_tolerance=50.0, offset_ratio=None,
        )  # fmt: skip
        # the same with offsets within 20 % of the note's length (at least 50 ms): how long the swapped notes last
        _, _, f1_offsets, _ = mir_eval.transcription.precision_recall_f1_overlap(
            ref_intervals, ref_pitches, est_intervals, est_pitches,
            onset_tolerance=0.05, pitch_tolerance=50.0, offset_ratio=0.2, offset_min_tolerance=0.05,
        )  # fmt: skip
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "f1_with_offsets": float(f1_offsets),
    }


def make_sets(
    data: Path, instruments: tuple[str, ...], solos: int, duets: int, seconds: float, workers: int, split: str
) -> None:
    from pixelsep_plugin.synth.generate import CONDITIONS, SynthSettings, generate_set
    from pixelsep_plugin.synth.instruments import get_instruments

    chosen = get_instruments(list(instruments))
    settings = SynthSettings(seconds=seconds, **CONDITIONS["classic"])
    generate_set(data / f"{split}-solos", "solo", split, solos * len(chosen), settings, chosen, workers=workers)
    count = max(1, duets * len(chosen) // 2)
    generate_set(data / f"{split}-duets", "duet", split, count, settings, chosen, workers=workers)


def _sidecars(folder: Path) -> list[dict]:
    out = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        data["_folder"] = str(folder)
        out.append(data)
    return out


def _row(kind: str, clip: str, performer: dict, notes, seconds: float) -> dict[str, Any]:
    reference = performer["note_events"]
    return {"set": kind, "clip": clip, "instrument": performer["instrument"], "notes": len(reference),
            "transcribed": len(notes), "transcribe_seconds": round(seconds, 3), **note_scores(reference, notes)}  # fmt: skip


def evaluate(data: Path, model: str, threads: int, settings, split: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows of scores for every stem of every set, and the separation model's id, version and checksum."""
    from pixelsep_plugin import media
    from pixelsep_plugin.api import Separator
    from pixelsep_plugin.evaluate.run import click_point
    from pixelsep_plugin.runtime.query import Source
    from pixelsep_plugin.swap import Transcriber

    transcriber = Transcriber(threads=threads)

    def transcribe(audio: np.ndarray, rate: int):
        started = time.perf_counter()
        notes = transcriber.transcribe(audio, rate, settings)
        return notes, time.perf_counter() - started

    rows = []
    for sidecar in _sidecars(data / f"{split}-solos"):
        performer = sidecar["performers"][0]
        stem, rate = media.read_audio(Path(sidecar["_folder"]) / performer["stem"])
        rows.append(_row("solo", sidecar["name"], performer, *transcribe(stem, rate)))
    with tempfile.TemporaryDirectory(prefix="pixelsep-transcription-") as cache:
        separator = Separator(model, threads=threads, cache_root=Path(cache))
        for sidecar in _sidecars(data / f"{split}-duets"):
            folder = Path(sidecar["_folder"])
            clip = folder / sidecar["video"]
            analysis, _ = separator.analyze(clip)
            performers = sidecar["performers"]
            middle = float(sidecar["duration_seconds"]) / 2
            sources = [Source(p["name"], (click_point(p, sidecar["fps"], middle),)) for p in performers]
            stems, _ = separator.separate(analysis, sources).render(residual=False)
            mixture, rate = media.read_audio(clip)
            for index, performer in enumerate(performers):
                truth, _ = media.read_audio(folder / performer["stem"])
                rows.append(
                    _row("separated", sidecar["name"], performer, *transcribe(stems[index], analysis.sample_rate))
                )
                rows.append(_row("true stem", sidecar["name"], performer, *transcribe(truth, rate)))
                rows.append(_row("mixture", sidecar["name"], performer, *transcribe(mixture, rate)))
        package = separator.package
    return rows, {"id": package.model_id, "version": package.manifest.get("version"), "checksum": package.checksum}


def _stats(values: list[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=float)
    if not arr.size:
        return {"median": None, "quartiles": None}
    return {"median": round(float(np.median(arr)), 4),
            "quartiles": [round(float(np.percentile(arr, 25)), 4), round(float(np.percentile(arr, 75)), 4)]}  # fmt: skip


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for kind in SETS:
        mine = [r for r in rows if r["set"] == kind]
        if not mine:
            continue
        entry: dict[str, Any] = {"stems": len(mine), **{m: _stats([r[m] for r in mine]) for m in METRICS}}
        entry["per_instrument"] = {
            name: {"stems": len(group), **{m: _stats([r[m] for r in group]) for m in METRICS}}
            for name in sorted({r["instrument"] for r in mine})
            for group in [[r for r in mine if r["instrument"] == name]]
        }
        summary[kind] = entry
    return summary


def _cell(stats: dict[str, Any]) -> str:
    if stats["median"] is None:
        return "n/a"
    low, high = stats["quartiles"]
    return f"{stats['median']:.2f} [{low:.2f}, {high:.2f}]"


def markdown(report: dict[str, Any]) -> str:
    summary = report["summary"]
    kinds = [k for k in SETS if k in summary]
    names = sorted({n for k in kinds for n in summary[k]["per_instrument"]})
    lines = [
        f"Note F1 of `pixelsep swap`'s transcription (onset within 50 ms, pitch within 50 cents, offsets ignored); "
        f"separation by `{report['model']['id']}`. Median [first, third quartile] over stems (stem count in brackets).",
        "",
        "| instrument | " + " | ".join(kinds) + " |",
        "| --- | " + " | ".join("---" for _ in kinds) + " |",
    ]
    for name in names:
        cells = []
        for kind in kinds:
            entry = summary[kind]["per_instrument"].get(name)
            cells.append(f"{_cell(entry['f1'])} ({entry['stems']})" if entry else "n/a")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(
        "| **all** | " + " | ".join(f"{_cell(summary[k]['f1'])} ({summary[k]['stems']})" for k in kinds) + " |"
    )
    lines += [
        "",
        "All instruments: precision, recall, and the F1 with offsets scored too (within 20 % of the note's length, "
        "at least 50 ms; the notes as played end at their note-off, the sound rings on).",
        "",
        "| set | precision | recall | F1 with offsets |",
        "| --- | --- | --- | --- |",
        *(f"| {k} | {_cell(summary[k]['precision'])} | {_cell(summary[k]['recall'])} | "
          f"{_cell(summary[k]['f1_with_offsets'])} |" for k in kinds),
        "",
        f"Command: `{report['command']}` ({report['wall_seconds']:.0f} s on {report['machine']['cpus']} cores).",
        "",
    ]  # fmt: skip
    return "\n".join(lines)


def _interpreter() -> str:
    """The Python that runs this, as typed from the current folder (e.g. .venv/bin/python)."""
    relative = os.path.relpath(sys.executable)
    return Path(sys.executable).name if relative.startswith("..") else relative


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instruments", default=",".join(INSTRUMENTS), help="comma-separated pitched instruments")
    parser.add_argument("--solos", type=int, default=8, help="solo clips per instrument (default 8)")
    parser.add_argument("--duets", type=int, default=8, help="duet performers per instrument on average (default 8)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each clip (default 10)")
    parser.add_argument("--model", default="pixelsep-small", help="the separation model (default pixelsep-small)")
    parser.add_argument("--data", type=Path, help="keep the generated clips here (default: a temporary folder)")
    parser.add_argument("--split", choices=("test", "val"), default="test",
                        help="melodies and seeds: test (reported) or val (for choosing settings)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="processes generating clips")
    parser.add_argument("--onset-threshold", type=float, default=None, help="transcription setting (default: its own)")
    parser.add_argument("--frame-threshold", type=float, default=None, help="transcription setting (default: its own)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/transcription.json"))
    args = parser.parse_args(argv)
    from pixelsep_plugin.swap import TranscriptionSettings
    from pixelsep_plugin.swap.transcribe import BASIC_PITCH_VERSION, MODEL_SHA256

    changes = {k: v for k, v in (("onset_threshold", args.onset_threshold), ("frame_threshold", args.frame_threshold))
               if v is not None}  # fmt: skip
    settings = TranscriptionSettings(**changes).check()
    instruments = tuple(n.strip() for n in args.instruments.split(",") if n.strip())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pixelsep-transcription-data-") as temp:
        data = args.data or Path(temp)
        make_sets(data, instruments, args.solos, args.duets, args.seconds, args.workers, args.split)
        rows, model = evaluate(data, args.model, args.threads, settings, args.split)
    report = {
        "command": " ".join(shlex.quote(a) for a in [_interpreter(), *sys.argv]),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "processor": platform.machine()},
        "model": model,
        "transcription": {
            "network": f"basic-pitch {BASIC_PITCH_VERSION} nmp.onnx",
            "sha256": MODEL_SHA256,
            "settings": settings.__dict__,
        },  # fmt: skip
        "data": {
            "condition": "classic",
            "split": args.split,
            "seconds": args.seconds,
            "instruments": list(instruments),
            "solos_per_instrument": args.solos,
            "duets": max(1, args.duets * len(instruments) // 2),
        },  # fmt: skip
        "scoring": {
            "onset_tolerance_seconds": 0.05,
            "pitch_tolerance_cents": 50.0,
            "offsets": "ignored in f1, precision and recall; f1_with_offsets: within 20 % of the note's length (>= 50 ms)",
        },
        "summary": summarise(rows),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    table = markdown(report)
    args.out.with_suffix(".md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
