"""``python -m pixelsep_plugin.train CONFIG [--steps N] [--run-dir DIR]`` (also under ``torchrun
--nproc_per_node N -m ...``): train the run CONFIG describes, resuming from its checkpoint.

The engine's own entry point: it prints a line per tenth of the run on the first process and
never imports a host (``pixelsep train`` is the command line's version, with a progress bar).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pixelsep_plugin.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--steps", type=int, help="stop after this step (a later run resumes)")
    parser.add_argument("--run-dir", help="override the config's run_dir")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)

    from pixelsep_plugin.train.config import load_train_config
    from pixelsep_plugin.train.loop import train

    if not os.path.isfile(args.config):
        print(f"{parser.prog}: error: config {args.config} not found", file=sys.stderr)
        return 1
    try:
        cfg = load_train_config(args.config, run_dir=args.run_dir)
    except (ValueError, KeyError) as error:
        print(f"{parser.prog}: error: {os.path.basename(args.config)}: {error}", file=sys.stderr)
        return 1
    rank0 = int(os.environ.get("RANK", "0")) == 0
    show = rank0 and not args.quiet
    reported = [-1]

    def progress(step: int, total: int, record: dict) -> None:
        tenth = 10 * step // max(total, 1)
        if show and record.get("stage") != "decode" and tenth > reported[0]:
            reported[0] = tenth
            print(f"step {step}/{total}", file=sys.stderr, flush=True)

    try:
        run_dir = train(cfg, steps=args.steps, progress=progress)
    except (ValueError, FileNotFoundError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    if rank0:
        print(f"run: {run_dir} (log: {run_dir / 'log.jsonl'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
