"""How a model does beyond its training world: `pixelsep eval` on one test set per condition.

The sets (split ``test``: melodies and seeds never trained on; 10 s clips), made by
``pixelsep synth`` with these conditions (see ``pixelsep synth --help``):

| set | kind | condition | what differs from training |
| --- | --- | --- | --- |
| test2-duets | 40 duets | train | nothing but the melodies and seeds |
| test2-trios | 20 trios | train | three performers |
| test2-style | 30 duets | heldout-style | pictures in a style never trained on (Emoji One) |
| test2-sound | 30 duets | heldout-sound | sounds of a SoundFont family never trained on (TimGM6mb) |
| test2-real | 30 duets | real | real recorded phrases never trained on (sonic-pi-samples) |
| test2-classic | 40 duets | classic | the first model's world (Noto pictures, FluidR3 sound, 13 instruments) |

    .venv/bin/python benchmarks/generalisation.py --model pixelsep-small --data data \
        --out benchmarks/results/generalisation-pixelsep-small

generates any set that is missing (deterministic), evaluates the model on each (each performer
clicked once on its picture at mid-clip) and writes OUT.json (every set's summary: medians,
quartiles, click accuracy, per instrument), OUT.md (the table) and OUT/<set>.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

SETS = (
    ("test2-duets", "duet", 40, "train"),
    ("test2-trios", "trio", 20, "train"),
    ("test2-style", "duet", 30, "heldout-style"),
    ("test2-sound", "duet", 30, "heldout-sound"),
    ("test2-real", "duet", 30, "real"),
    ("test2-classic", "duet", 40, "classic"),
)


def ensure_set(data: Path, name: str, kind: str, count: int, condition: str) -> Path:
    folder = data / name
    done = len(list(folder.glob("*.json"))) if folder.is_dir() else 0
    if done < count:
        command = [sys.executable, "-m", "host_bridge.cli.main", "synth", kind, "--split", "test", "--count", str(count),
                   "--seconds", "10", "--condition", condition, "-o", str(folder), "-q"]  # fmt: skip
        subprocess.run(command, check=True)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="pixelsep-small")
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--out", type=Path, required=True, help="report path without suffix")
    parser.add_argument("--sets", help="comma-separated set names (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    from pixelsep_plugin.evaluate.run import evaluate, markdown_table, plot_per_instrument

    wanted = args.sets.split(",") if args.sets else [s[0] for s in SETS]
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    started = time.perf_counter()
    for name, kind, count, condition in SETS:
        if name not in wanted:
            continue
        folder = ensure_set(args.data, name, kind, count, condition)
        report = evaluate(args.model, [folder], threads=args.threads)
        (args.out / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")
        (args.out / f"{name}.md").write_text(markdown_table(report) + "\n")
        plot_per_instrument(report, args.out / f"{name}.png")
        results[name] = {"condition": condition, "kind": kind, "model": report["model"], **report["summary"][kind]}
        print(f"{name}: NSDR {results[name]['median_model_nsdr']:.2f} dB, right clicks {results[name]['click_accuracy']:.1%}",
              flush=True)  # fmt: skip
    doc = {"model": args.model, "seconds": round(time.perf_counter() - started, 1), "sets": results}
    args.out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    lines = [
        "| set | condition | performers | NSDR median [quartiles] | SDR median | right clicks | IBM SDR | gap to IBM |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in results.items():
        q = s["quartiles_model_nsdr"]
        lines.append(
            f"| {name} | {s['condition']} | {s['performers']} | {s['median_model_nsdr']:.2f} [{q[0]:.1f}, {q[1]:.1f}] | "
            f"{s['median_model_sdr']:.2f} | {s['click_accuracy'] * 100:.1f}% | {s['median_ibm_sdr']:.2f} | {s['gap_to_ibm_db']:.2f} |"
        )
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
