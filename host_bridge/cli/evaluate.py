"""``pixelsep eval``: score a model on ensemble clips with ground truth (BSS Eval, oracles, clicks)."""

from __future__ import annotations

import json
from pathlib import Path

from host_bridge.cli.progress import ProgressBar
from pixelsep_plugin.errors import InputError


def add_parser(commands) -> None:
    ev = commands.add_parser(
        "eval",
        help="score a model on duets/trios with ground-truth stems (needs the [eval] extra)",
        description=(
            "Clicks every performer of every ensemble clip once at mid-clip, on its picture (the "
            "sidecar's point nearest the centre of its box), separates at the clip's own rate and scores the stems with BSS Eval beside the ideal "
            "binary/ratio masks and the mixture. Writes REPORT.json, REPORT.md and REPORT.png."
        ),
    )
    ev.add_argument("model", help="model folder or id")
    ev.add_argument("clips", type=Path, nargs="+", help="folders of clips with sidecars, or clips")
    ev.add_argument("-o", "--out", type=Path, required=True, help="report path without suffix, e.g. eval/report")
    ev.add_argument("--threads", type=int, help="CPU threads for the nets")
    ev.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def run(args) -> int:
    try:
        import mir_eval  # noqa: F401
    except ImportError:
        raise InputError("evaluation needs mir_eval and matplotlib: pip install 'pixelsep[eval]'") from None
    from pixelsep_plugin.evaluate.run import evaluate, markdown_table, plot_per_instrument

    bar = ProgressBar("eval", enabled=not args.quiet)
    try:
        report = evaluate(args.model, args.clips, progress=lambda d, t: bar.update("clips", d, t), threads=args.threads)
    except (FileNotFoundError, ValueError) as error:
        raise InputError(str(error)) from None
    finally:
        bar.close()
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    table = markdown_table(report)
    out.with_suffix(".md").write_text(table + "\n")
    plot_per_instrument(report, out.with_suffix(".png"))
    print(table)
    print(f"report: {out.with_suffix('.json')}, {out.with_suffix('.md')}, {out.with_suffix('.png')}")
    return 0
